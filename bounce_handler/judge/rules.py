"""The threshold rules: every rule, numbered, with its options, defaults and why, in one place.

The ``[rules]`` section of the configuration file has one table per flag kind::

    [rules.dead_recipient]
    soft_days = 4

    [rules.compromised_sender]
    max_bounces = 100
    exempt_senders = ["newsletter@example.org"]

    [rules.throttled_destination]
    rate_delay = "2s"

``parse(settings.rules)`` validates it into plain objects (``Rules``) once per process; the
hot path reads their attributes.  Unknown tables or keys are errors, not warnings: a
misspelt threshold that is silently ignored is the classic way a flag never fires.  A
numeric threshold of 0 switches that one rule off.

This module is on the pipe's hot path (judge/lean.py imports it): no dataclasses, no
typing, no json.
"""

from __future__ import annotations

from bounce_handler import classify
from bounce_handler.settings import ConfigError

DEAD = "dead-recipient"
COMPROMISED = "compromised-sender"
THROTTLED = "throttled-destination"
KINDS = (COMPROMISED, DEAD, THROTTLED)

# The rules, numbered.  The number is what a flag's `rule` column and its audit trail
# carry; never renumber a rule that has shipped (old flags would then lie), append.
RULES = (
    ("R1", DEAD, "one hard bounce whose reason says the mailbox or domain does not exist "
     "(hard_reasons, or an enhanced status in hard_statuses)"),
    ("R2", DEAD, "soft failures on at least soft_days distinct days spanning at least "
     "soft_span_days days, with no quiet gap longer than quiet_reset_days"),
    ("R3", COMPROMISED, "at least max_bounces bounces for one local sender within "
     "window_minutes"),
    ("R4", COMPROMISED, "failed recipients in at least max_domains distinct domains for one "
     "local sender within window_minutes"),
    ("R5", COMPROMISED, "bounces within window_minutes at least jump_min and at least "
     "jump_factor times the sender's own average per window over baseline_days"),
    ("R6", COMPROMISED, "at least spam_share of the sender's bounces within window_minutes "
     "(and at least spam_min of them) have a spam/policy reason (spam_reasons)"),
    ("R7", COMPROMISED, "at least `complaints` abuse complaints (ARF) about the sender within "
     "complaint_window_hours"),
    ("R8", THROTTLED, "at least min_deferrals rate-limit or reputation deferrals from one "
     "destination (domain, or provider from `providers`) within window_minutes"),
)
RULE_KIND = {number: kind for number, kind, _ in RULES}

# What can make a recipient dead is decided in one place, classify.REASON_TABLE (and
# docs/reasons.md, generated from it): the reasons that say the *sender*, the relay or
# this one message was refused, not that the mailbox is gone, never count (a blocklisted
# relay IP gets "550 5.7.1" for every recipient at that provider, and none of those
# mailboxes is dead); remote-side trouble (expired, networkerror, systemfull...) stays
# countable: a domain whose MX has been unreachable for weeks is as dead as a deleted
# mailbox.  A configuration may still list its own.
SENDER_SIDE = list(classify.SENDER_SIDE)
HARD_REASONS = [r for r in classify.REASONS if r in classify.HARD_REASONS]

# section -> key -> (type, default, why).  ``list`` means a list of strings; ``dict`` a
# table of string -> list of strings.
OPTIONS: dict[str, dict[str, tuple[type, object, str]]] = {
    "dead_recipient": {
        "enabled": (bool, True, "Raise dead-recipient flags (rules R1, R2) at all."),
        "include_unverified": (
            bool,
            False,
            "Count bounces whose VERP token did not verify. Off: anyone can send a forged "
            "bounce naming any address, and a dead-recipient flag usually ends in a "
            "suppression, so a forger could silence a real subscriber.",
        ),
        "hard_reasons": (
            list,
            HARD_REASONS,
            "R1: reasons that mean the address does not exist (no such user, no such "
            "domain, a domain accepting no mail such as a null MX, the user has moved). "
            "Classify calls a bounce hard only for these and a permanent failure. "
            "One such hard bounce is enough, "
            "like Mailman's and listmonk's 'hard' bounce actions: retrying costs "
            "reputation (Gmail and Yahoo count attempts to unknown users).",
        ),
        "hard_statuses": (
            list,
            ["5.1.1", "5.1.2", "5.1.6", "5.1.10"],
            "R1: enhanced statuses that say the same whatever the text: RFC 3463 5.1.1 bad "
            "mailbox, 5.1.2 bad system, 5.1.6 mailbox has moved; RFC 7505 5.1.10 null MX.",
        ),
        "sender_side_reasons": (
            list,
            SENDER_SIDE,
            "Reasons that never make a recipient dead, whatever the status: the remote side "
            "refused the sender, the relay or the content (blocklist, spam filter, rate "
            "limit, policy, a message too big), not the mailbox.",
        ),
        "soft_days": (
            int,
            4,
            "R2: distinct UTC days with a soft failure (mailbox full, over quota, suspended, "
            "undefined) before the address counts as dead. A full mailbox for a weekend is "
            "a person on holiday; 4 separate days of refusals is an abandoned mailbox. "
            "0 disables R2.",
        ),
        "soft_span_days": (
            int,
            7,
            "R2: the first and last of those days must be at least this many days apart, so "
            "a burst of retries in one bad week-end never kills an address (Postfix itself "
            "retries for maximal_queue_lifetime = 5 days before it bounces).",
        ),
        "quiet_reset_days": (
            int,
            7,
            "R2: a gap this long without soft failures starts the count again, as Mailman's "
            "bounce_info_stale_after (7 days) does; listmonk never resets and its users ask "
            "for it, because an old quota problem should not add up with a new one.",
        ),
        "count_delays": (
            bool,
            False,
            "R2: count delay notices (Action: delayed) as soft failures. Off: the message is "
            "still queued and will either be delivered or bounce, which is what counts.",
        ),
    },
    "compromised_sender": {
        "enabled": (bool, True, "Raise compromised-sender flags (rules R3-R7) at all."),
        "include_unverified": (
            bool,
            False,
            "Count bounces whose VERP token did not verify. Off: backscatter from a spammer "
            "forging one of our addresses would otherwise look like that user spamming.",
        ),
        "window_minutes": (
            int,
            10,
            "R3-R6: the sliding window. A spam run from a stolen password sends thousands "
            "of messages within minutes; 10 minutes catches it while the relay's IP is "
            "still clean, and is long enough to smooth out one large legitimate mailing.",
        ),
        "max_bounces": (
            int,
            50,
            "R3: bounces for one sender within the window. A person sending normal mail "
            "does not collect 50 failed recipients in 10 minutes. 0 disables R3.",
        ),
        "max_domains": (
            int,
            20,
            "R4: distinct recipient domains among those bounces. Spam runs go to scraped "
            "lists spread over many domains; a person's mistakes cluster on few. "
            "0 disables R4.",
        ),
        "baseline_days": (
            int,
            7,
            "R5: how far back the sender's own average is taken (a week covers the weekly "
            "rhythm of newsletters and office hours).",
        ),
        "jump_factor": (
            float,
            10.0,
            "R5: how many times its own average per window a sender must exceed. Catches a "
            "sender whose normal bounce rate is far below the absolute thresholds. "
            "0 disables R5.",
        ),
        "jump_min": (
            int,
            20,
            "R5: the jump only counts from this many bounces in the window, and only for a "
            "sender with some history (a new sender is judged by R3/R4), so a sender going "
            "from 0 to 2 bounces is not a 'jump'.",
        ),
        "spam_reasons": (
            list,
            ["spamdetected", "virusdetected", "policyviolation", "contenterror"],
            "R6: reasons that say the content was refused as spam or against policy. "
            "'blocked' and 'badreputation' are left out on purpose: they mean the relay's "
            "IP is listed, which hits every sender at once, not one account.",
        ),
        "spam_share": (
            float,
            0.5,
            "R6: share of the sender's bounces in the window with a spam reason. When most "
            "of someone's failures say 'spam', their mail is spam. 0 disables R6.",
        ),
        "spam_min": (
            int,
            10,
            "R6: the share only counts over at least this many bounces (1 of 1 is 100%).",
        ),
        "complaints": (
            int,
            1,
            "R7: abuse complaints (ARF feedback reports) about the sender within "
            "complaint_window_hours. Mailbox providers send a complaint per 'this is spam' "
            "click and start blocking at complaint rates around 0.3% (Gmail, Yahoo 2024 "
            "sender rules), so any complaint deserves a look. 0 disables R7.",
        ),
        "complaint_window_hours": (
            int,
            24,
            "R7: window for counting complaints (feedback loops report hours late).",
        ),
        "count_delays": (
            bool,
            False,
            "R3-R6: count delay notices too. Off: a delayed message that later bounces "
            "would be counted twice.",
        ),
        "exempt_senders": (
            list,
            [],
            "Senders never flagged by R3-R6 (mailing-list and newsletter envelope senders "
            "whose every send bounces by the hundred). Complaints (R7) still count.",
        ),
    },
    "throttled_destination": {
        "enabled": (bool, True, "Raise throttled-destination flags (rule R8) at all."),
        "include_unverified": (
            bool,
            False,
            "Count deferrals whose VERP token did not verify (a forger could otherwise "
            "talk the relay into slowing down for a destination).",
        ),
        "window_minutes": (
            int,
            15,
            "R8: the sliding window. Yahoo and Microsoft throttle for 'a few minutes to a "
            "few hours'; a quarter of an hour of refusals is a pattern, not a blip.",
        ),
        "min_deferrals": (
            int,
            5,
            "R8: rate-limit or reputation deferrals from one destination within the window. "
            "Five refusals in a row means the relay is sending faster than the provider "
            "accepts and should slow down before it is blocklisted. 0 disables R8.",
        ),
        "reasons": (
            list,
            ["ratelimited", "badreputation", "toomanyconn", "speeding"],
            "R8: reasons (classify.py) that mean 'slow down' or 'your reputation is low'.",
        ),
        "markers": (
            list,
            [
                "ts01",
                "ts02",
                "ts03",
                "ts04",
                "tss04",
                "4.7.28",
                "unusual rate",
                "s3150",
                "421 4.7.",
                "rate limit",
                "too many connections",
            ],
            "R8: text in the diagnostic that means the same, case-insensitive, for when the "
            "classifier called it something else: Yahoo '421 4.7.0 [TSS04] Messages from "
            "x.x.x.x temporarily deferred due to unexpected volume or user complaints' "
            "(TS01-TS04, TSS04), Gmail '421 4.7.28 ... unusual rate of unsolicited mail' "
            "and '4.7.0 ... unusual rate', Microsoft '451 4.7.500 Server busy ... (S3150)', "
            "and any 421 4.7.x.",
        ),
        "providers": (
            dict,
            {
                "yahoo": [
                    "yahoo.com",
                    "ymail.com",
                    "rocketmail.com",
                    "aol.com",
                    "yahoo.co.uk",
                    "yahoo.fr",
                    "yahoo.de",
                ],
                "google": ["gmail.com", "googlemail.com"],
                "microsoft": ["outlook.com", "hotmail.com", "live.com", "msn.com"],
            },
            "R8: domains that share one provider's MX hosts and throttling, counted and "
            "flagged together (subject 'yahoo' rather than 'yahoo.com'), because the "
            "provider throttles the relay's IP, not one domain.",
        ),
        "concurrency_limit": (
            int,
            2,
            "Advice: <transport>_destination_concurrency_limit for the slow transport "
            "(Postfix's default is 20 parallel deliveries per destination).",
        ),
        "rate_delay": (
            str,
            "1s",
            "Advice: <transport>_destination_rate_delay (a Postfix time: 1s, 500ms, 1m). "
            "Non-zero also limits the transport to one delivery at a time per destination.",
        ),
        "transport_prefix": (
            str,
            "slow_",
            "Advice: the master.cf service name is this prefix plus the destination "
            "(slow_yahoo).",
        ),
    },
}

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _postfix_time(text: str) -> bool:
    """A Postfix time value: digits with an optional unit (postconf(5): ms s m h d w)."""
    for unit in ("ms", "s", "m", "h", "d", "w", ""):
        if text.endswith(unit) and text[: len(text) - len(unit)].isdigit():
            return text[: len(text) - len(unit)].isascii()
    return False


def _name(text: str, extra: str = "") -> bool:
    """Lower-case letters, digits, _ (and `extra`), starting with a letter or digit.

    String tests rather than a regex: compiling one costs more than the whole module,
    and the pipe parses the rules on every bounce.
    """
    return bool(text) and text[0] != "_" and all(c in _NAME_CHARS or c in extra for c in text)


class _Options:
    """One rules table as attributes (plain slots: cheap to read on the hot path)."""

    __slots__ = ()
    section = ""

    def __init__(self, values: dict) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("rules are frozen")

    def as_dict(self) -> dict:
        """The table as plain TOML-able values."""
        out = {}
        for k in self.__slots__:
            v = getattr(self, k)
            if isinstance(v, frozenset):
                v = sorted(v)
            elif isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, dict):
                v = {p: list(d) for p, d in v.items()}
            out[k] = v
        return out


def _options_class(section: str) -> type:
    return type(
        "".join(w.capitalize() for w in section.split("_")) + "Rules",
        (_Options,),
        {"__slots__": tuple(OPTIONS[section]), "section": section,
         "__doc__": f"The [rules.{section}] table."},
    )


DeadRecipientRules = _options_class("dead_recipient")
CompromisedSenderRules = _options_class("compromised_sender")
ThrottledDestinationRules = _options_class("throttled_destination")


class Rules:
    """All rule tables, validated; ``dead``, ``sender``, ``dest`` are the three tables."""

    __slots__ = ("dead", "sender", "dest", "provider_of", "accept_unsigned")

    def __init__(self, dead, sender, dest, accept_unsigned: bool = True) -> None:
        object.__setattr__(self, "dead", dead)
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "dest", dest)
        # [verp] require_signed = false (the default): rows whose token is XVERP
        # ('unsigned') or absent ('no-token': Postfix's own notices to
        # bounce_notice_recipient) count like verified ones. Forged-looking rows (bad-tag,
        # expired, unknown-key, malformed) never count unless include_unverified says so.
        object.__setattr__(self, "accept_unsigned", accept_unsigned)
        provider_of = {}
        for name, domains in dest.providers.items():
            for d in domains:
                provider_of[d] = name
        object.__setattr__(self, "provider_of", provider_of)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("rules are frozen")

    def as_dict(self) -> dict:
        """The effective rules (defaults filled in), as a [rules] TOML table would be."""
        return {
            "dead_recipient": self.dead.as_dict(),
            "compromised_sender": self.sender.as_dict(),
            "throttled_destination": self.dest.as_dict(),
        }


def _check(section: str, key: str, typ: type, value: object) -> object:
    where = f"[rules.{section}] {key}"
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is list:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return frozenset(x.lower() for x in value)
    if typ is dict:
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in value.values()
        ):
            raise ConfigError(f"{where} must be a table of lists of domains, got {value!r}")
        return {str(k): tuple(x.lower() for x in v) for k, v in value.items()}
    if type(value) is not typ:
        raise ConfigError(f"{where} must be {typ.__name__}, got {value!r}")
    if typ in (int, float) and value < 0:
        raise ConfigError(f"{where} must not be negative, got {value!r}")
    return value


def for_settings(settings) -> Rules:
    """The rules of a Settings object: its [rules] table and [verp] require_signed."""
    return parse(settings.rules, accept_unsigned=not settings.verp.require_signed)


def parse(raw: dict | None, accept_unsigned: bool = True) -> Rules:
    """Validate a ``[rules]`` table (``settings.rules``) into ``Rules``; ConfigError if bad."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError("[rules] must be a table")
    for section in raw:
        if section not in OPTIONS:
            raise ConfigError(
                f"unknown table [rules.{section}] (known: {', '.join(OPTIONS)})"
            )
    built = {}
    for section, keys in OPTIONS.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[rules.{section}] must be a table")
        for key in given:
            if key not in keys:
                raise ConfigError(f"unknown key {key!r} in [rules.{section}]")
        values = {}
        for key, (typ, default, _why) in keys.items():
            values[key] = _check(section, key, typ, given.get(key, default))
        built[section] = values
    dest = built["throttled_destination"]
    if not _postfix_time(dest["rate_delay"]):
        raise ConfigError(
            f"[rules.throttled_destination] rate_delay must be a Postfix time like 1s or "
            f"500ms, got {dest['rate_delay']!r}"
        )
    if not _name(dest["transport_prefix"]) or dest["transport_prefix"][0].isdigit():
        raise ConfigError(
            "[rules.throttled_destination] transport_prefix must be lower-case letters, "
            f"digits and _ (a master.cf service name), got {dest['transport_prefix']!r}"
        )
    seen: dict[str, str] = {}
    for name, domains in dest["providers"].items():
        if not _name(name, "-"):
            raise ConfigError(f"[rules.throttled_destination] provider name {name!r} is invalid")
        for d in domains:
            if d in seen:
                raise ConfigError(
                    f"[rules.throttled_destination] domain {d} is in providers "
                    f"{seen[d]!r} and {name!r}"
                )
            seen[d] = name
    dest["markers"] = tuple(sorted(dest["markers"]))
    return Rules(
        DeadRecipientRules(built["dead_recipient"]),
        CompromisedSenderRules(built["compromised_sender"]),
        ThrottledDestinationRules(built["throttled_destination"]),
        accept_unsigned,
    )


def defaults() -> Rules:
    """The rules with every default."""
    return parse({})


def describe() -> str:
    """The numbered rules and every option with its default and why (for documentation)."""
    lines = ["Rules:"]
    for number, kind, text in RULES:
        lines.append(f"  {number} {kind}: {text}")
    for section, keys in OPTIONS.items():
        lines.append("")
        lines.append(f"[rules.{section}]")
        for key, (_typ, default, why) in keys.items():
            lines.append(f"  {key} = {default!r}")
            lines.append(f"      {why}")
    return "\n".join(lines)
