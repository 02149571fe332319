"""The judge's core: ``evaluate(state, event, rules, now) -> [Decision]``, a pure function.

No clock, no database: ``state`` holds the windowed counts for the event's subjects (loaded
by ``judge/lean.py`` with a few small indexed queries, or built by hand in tests) and
``now`` is passed in.  The same function serves the pipe's incremental evaluation and
``bounces flags recompute``, which replays history through it, so both give the same flags.

What an event is judged against (``relevance``) is decided here too, so the loader only
runs the queries the rules need.  Windows end at ``t = min(event.occurred_at, now)`` (a
bounce dated in the future by a remote clock must not open a window into the future) and
only count events recorded up to this one (``id <= event id``) and, for a subject whose
last flag was cleared, only events after the clearing: clearing a compromised-sender flag
after a password reset must not re-raise it on the next bounce of the old spam run.

On the pipe's hot path: plain classes, no dataclasses, no typing, and no datetime: times
are ints, epoch microseconds (judge/utc.py says why), durations too, days are proleptic
ordinals.  Datetimes given by callers (tests, PostgreSQL rows) are converted on the way in.
"""

from __future__ import annotations

from bounce_handler import trust
from bounce_handler.judge.rules import COMPROMISED, DEAD, THROTTLED
from bounce_handler.judge.utc import (
    DAY,
    HOUR,
    MINUTE,
    SECOND,
    day_start,
    day_text,
    instant,
    micros,
    plain,
)

RAISE = "raise"
UPDATE = "update"


class Subject:
    """What the loader knows about one (kind, subject) for one event.

    ``flag_id`` is the live (open or acked) flag, or None; ``since`` the time the last
    flag for it was cleared (events at or before it no longer count), or None;
    ``updated_at`` the live flag's last update.  Times are epoch microseconds (a datetime
    or text given here is converted).
    ``mode`` says which rules apply: dead-recipient 'hard' or 'soft', compromised-sender
    'bounce' or 'complaint', throttled-destination 'deferral'.  ``counts`` holds the
    numbers the loader fetched (see ``lean.load``).  ``domains`` is the destination's
    domain list (throttled-destination only).  ``verified`` says the live flag already
    rests on verified evidence (trust.py); ``event_verified`` that this event is verified
    evidence for the flag's family (so it may make an unverified flag verified).
    """

    __slots__ = ("kind", "subject", "mode", "flag_id", "since", "counts", "domains",
                 "updated_at", "verified", "event_verified")

    def __init__(self, kind, subject, mode, flag_id=None, since=None, counts=None, domains=(),
                 updated_at=None, verified=True, event_verified=False):
        self.kind = kind
        self.subject = subject
        self.mode = mode
        self.flag_id = flag_id
        self.since = instant(since)
        self.counts = counts if counts is not None else {}
        self.domains = domains
        self.updated_at = instant(updated_at)
        self.verified = verified
        self.event_verified = event_verified

    def __repr__(self) -> str:
        return (f"Subject({self.kind}, {self.subject!r}, {self.mode}, flag={self.flag_id}, "
                f"{self.counts})")


class Decision:
    """Raise a new flag, or update the live one, with the numbers that justify it.

    ``rule`` is the first matching rule (numbered in rules.RULES), ``matched`` all of
    them; ``evidence`` is a flat dict of JSON-able values; ``lo``/``t`` bound the window
    whose events are linked as samples; ``at`` is when it was decided.  Times are epoch
    microseconds (utc.to_datetime gives a datetime; one given here is converted).
    ``verified``: the rule holds on verified evidence alone (set by ``lean.process_event``;
    only verified flags are exported).
    """

    __slots__ = (
        "action", "kind", "subject", "rule", "matched", "evidence", "advice",
        "flag_id", "event_id", "at", "lo", "t", "domains", "verified",
    )

    def __init__(self, action, subject: Subject, rule, matched, evidence, event_id, at, lo, t,
                 advice=None):
        self.action = action
        self.kind = subject.kind
        self.subject = subject.subject
        self.flag_id = subject.flag_id
        self.domains = subject.domains
        self.rule = rule
        self.matched = matched
        self.evidence = evidence
        self.advice = advice
        self.event_id = event_id
        self.at = instant(at)
        self.lo = instant(lo)
        self.t = instant(t)
        self.verified = False

    def __repr__(self) -> str:
        return f"Decision({self.action} {self.kind} {self.subject!r} {self.rule} {self.evidence})"


class State:
    """The subjects one event touches (0 to 3), each with its counts."""

    __slots__ = ("subjects",)

    def __init__(self, subjects) -> None:
        self.subjects = subjects


# --- time helpers ---------------------------------------------------------------------------

def anchor(event: dict, now: int) -> int:
    """Where the event's windows end: its own time, never later than now (epoch us)."""
    t = micros(event["occurred_at"])
    return t if t <= now else now


# --- which rules an event is judged by -----------------------------------------------------

# Which rule family judges a flag kind (trust.py decides, per family, what may count).
FAMILY = {DEAD: trust.RECIPIENT, COMPROMISED: trust.SENDER, THROTTLED: trust.DESTINATION}


def _counts(event: dict, family: str, rules, strict: bool, shadowed) -> bool:
    """trust.py's verdict on the event, and no earlier copy of it counted.

    ``shadowed``: the families for which lean.load found an earlier counted copy.
    """
    return trust.admits(event, family, rules, strict) and family not in shadowed


def sender_subject(event: dict) -> bool:
    """Whether the event's sender may be a flag subject at all.

    A complete address, or an identity a token or a SASL login gives (a list name, a
    login: exported only as SASL keys).  A sender read from headers must be a complete
    address: ``<corp.example>`` would be an access(5) wildcard for a whole domain.
    """
    sender = event.get("sender")
    if trust.valid_address(sender):
        return True
    return event.get("sender_source") in ("token", "sasl", None) and trust.valid_login(sender)


def is_throttle(event: dict, dest) -> bool:
    """Rule R8's test: a rate-limit or reputation refusal (reason, or a known text)."""
    if event.get("reason") in dest.reasons:
        return True
    diag = event.get("diagnostic")
    if not diag:
        return False
    diag = diag.lower()
    for m in dest.markers:
        if m in diag:
            return True
    return False


def dead_mode(event: dict, rules, strict: bool = False, shadowed=()) -> str | None:
    """'hard' (R1 applies), 'soft' (R2 applies) or None (no dead-recipient rule applies).

    Only a complete address can be a dead recipient (``postmaster@`` or a bare domain
    would become an access(5) wildcard).
    """
    r = rules.dead
    if not r.enabled or not trust.valid_address(event.get("recipient")):
        return None
    if not _counts(event, trust.RECIPIENT, rules, strict, shadowed):
        return None
    kind = event.get("kind")
    if kind != "bounce" and not (kind == "delay" and r.count_delays):
        return None
    reason = event.get("reason")
    if reason in r.sender_side_reasons:
        return None  # the remote refused us or the content, not the mailbox
    if kind == "bounce":
        hard = event.get("hard")  # True/1, False/0, or None when classify could not tell
        status_says = event.get("status") in r.hard_statuses
        if (hard and (status_says or reason in r.hard_reasons)) or (hard is None and status_says):
            return "hard"
    return "soft" if r.soft_days else None


def sender_mode(event: dict, rules, strict: bool = False, shadowed=()) -> str | None:
    """'bounce' (R3-R6 apply), 'complaint' (R7 applies) or None."""
    r = rules.sender
    sender = event.get("sender")
    if not r.enabled or not sender or not sender_subject(event):
        return None
    if not _counts(event, trust.SENDER, rules, strict, shadowed):
        return None
    kind = event.get("kind")
    if kind == "complaint":
        return "complaint" if r.complaints else None
    if kind == "bounce" or (kind == "delay" and r.count_delays):
        if sender.lower() in r.exempt_senders:
            return None
        return "bounce"
    return None


def destination(event: dict, rules, strict: bool = False, shadowed=()):
    """(subject, domains) for R8 if the event is a throttling refusal, else None."""
    r = rules.dest
    if not r.enabled or not r.min_deferrals:
        return None
    if not _counts(event, trust.DESTINATION, rules, strict, shadowed):
        return None
    if event.get("kind") not in ("bounce", "delay"):
        return None
    domain = (event.get("recipient_domain") or "").lower()
    if not domain or not is_throttle(event, r):
        return None
    provider = rules.provider_of.get(domain)
    if provider is None:
        return domain, (domain,)
    return provider, r.providers[provider]


# While a compromised-sender or throttled-destination flag is live, its window numbers are
# refreshed at most this often.  Without it every bounce of a 3,000-bounce spam run would
# recount the whole window (quadratic work, ~1 ms a bounce at the peak of the run); with
# it the cost per bounce stays bounded by the thresholds, which stop a window from
# growing unflagged.  Complaints (R7) and dead recipients are always recorded.
REFRESH = 60 * SECOND


def settled(s: Subject, now: int) -> bool:
    """True when a live windowed flag was updated less than REFRESH ago (skip this event).

    Not while the flag is unverified and this event is verified evidence: that event may
    be what makes the rule hold on verified evidence alone (then the flag is exported);
    there are at most as many such events as genuine bounces.
    """
    return (
        s.flag_id is not None
        and s.updated_at is not None
        and s.mode in ("bounce", "deferral")
        and now - s.updated_at < REFRESH
        and (s.verified or not s.event_verified)
    )


def needs_baseline(counts: dict, rules) -> bool:
    """Whether R5 could fire on these window counts (the baseline query is skipped if not)."""
    r = rules.sender
    return bool(r.jump_factor) and counts.get("bounces", 0) >= max(r.jump_min, 1)


def baseline_windows(rules) -> float:
    """How many windows the baseline period holds (the current window excluded)."""
    r = rules.sender
    return max(r.baseline_days * 24 * 60 / r.window_minutes - 1, 1.0)


def baseline_cap(counts: dict, rules) -> int:
    """A baseline count at or above this cannot let R5 fire (so counting may stop there)."""
    return int(counts.get("bounces", 0) * baseline_windows(rules) / rules.sender.jump_factor) + 1


def dead_lookback(rules) -> int:
    """How far back R2 looks for soft-failure days (microseconds): the longest qualifying run."""
    r = rules.dead
    return (r.soft_span_days + r.soft_days * max(r.quiet_reset_days, 1) + 1) * DAY


# --- the evaluation ------------------------------------------------------------------------

def evaluate(state: State, event: dict, rules, now, settle: bool = True) -> list:
    """The decisions one recorded event causes, given the state of its subjects.

    ``now`` in epoch microseconds, as process_event passes it (or a datetime, as tests do).
    ``settle=False`` ignores REFRESH (lean's verification pass re-judges a decision
    already made).
    """
    now = instant(now)
    t = anchor(event, now)
    out = []
    for s in state.subjects:
        if s.since is not None and t <= s.since:
            continue  # happened before the administrator cleared the last flag
        if settle and settled(s, now):
            continue
        if s.kind == DEAD:
            d = _dead(s, event, rules, now, t)
        elif s.kind == COMPROMISED:
            d = _sender(s, event, rules, now, t)
        else:
            d = _throttled(s, event, rules, now, t)
        if d is not None:
            if s.since is not None and d.lo < s.since:
                d.lo = s.since  # samples, like counts, start after the last clearing
            out.append(d)
    return out


def _action(s: Subject) -> str:
    return RAISE if s.flag_id is None else UPDATE


def _text(value, limit: int = 300):
    if value is None:
        return None
    value = str(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _dead(s: Subject, event: dict, rules, now, t):
    r = rules.dead
    if s.mode == "hard":
        evidence = {
            "rule": "R1",
            "status": event.get("status"),
            "reason": event.get("reason"),
            "diagnostic": _text(event.get("diagnostic")),
            "remote_mta": event.get("remote_mta"),
            "at": plain(t),  # str(datetime)'s form: no '.000000' on a whole second
        }
        return Decision(_action(s), s, "R1", ["R1"], evidence, event["id"], now, t, t)
    days = sorted(set(s.counts.get("days", ())))
    if not days:
        return None
    # The current run: walk back from the latest day while the gaps stay short enough.
    run = [days[-1]]
    for d in reversed(days[:-1]):
        if run[-1] - d > r.quiet_reset_days:
            break
        run.append(d)
    first, last = run[-1], run[0]
    if len(run) < r.soft_days or last - first < r.soft_span_days:
        return None
    evidence = {
        "rule": "R2",
        "days": len(run),
        "first_day": day_text(first),
        "last_day": day_text(last),
        "span_days": last - first,
        "reason": event.get("reason"),
        "status": event.get("status"),
        "diagnostic": _text(event.get("diagnostic")),
    }
    # lo is exclusive in the sample query; step back a microsecond to include midnight.
    return Decision(_action(s), s, "R2", ["R2"], evidence, event["id"], now,
                    day_start(first) - 1, t)


def _sender(s: Subject, event: dict, rules, now, t):
    r = rules.sender
    c = s.counts
    if s.mode == "complaint":
        n = c.get("complaints", 0)
        if n < r.complaints:
            return None
        lo = t - r.complaint_window_hours * HOUR
        evidence = {
            "rule": "R7",
            "complaints": n,
            "window_hours": r.complaint_window_hours,
            "recipient": event.get("recipient"),
        }
        return Decision(_action(s), s, "R7", ["R7"], evidence, event["id"], now, lo, t)
    bounces = c.get("bounces", 0)
    domains = c.get("domains", 0)
    spam = c.get("spam", 0)
    matched = []
    if r.max_bounces and bounces >= r.max_bounces:
        matched.append("R3")
    if r.max_domains and domains >= r.max_domains:
        matched.append("R4")
    per_window = None
    baseline = c.get("baseline")
    if r.jump_factor and baseline:
        # The loader may stop counting at baseline_cap: past it R5 is false anyway.
        per_window = baseline / baseline_windows(rules)
        if bounces >= r.jump_min and bounces >= r.jump_factor * per_window:
            matched.append("R5")
        else:
            per_window = None  # possibly a capped count: not a number to show
    if r.spam_share and bounces >= max(r.spam_min, 1) and spam >= r.spam_share * bounces:
        matched.append("R6")
    if not matched:
        return None
    lo = t - r.window_minutes * MINUTE
    evidence = {
        "rule": matched[0],
        "rules": matched,
        "window_minutes": r.window_minutes,
        "bounces": bounces,
        "domains": domains,
        "spam": spam,
    }
    if per_window is not None:
        evidence["baseline_per_window"] = round(per_window, 3)
    return Decision(_action(s), s, matched[0], matched, evidence, event["id"], now, lo, t)


def _throttled(s: Subject, event: dict, rules, now, t):
    r = rules.dest
    n = s.counts.get("deferrals", 0)
    if n < r.min_deferrals:
        return None
    lo = t - r.window_minutes * MINUTE
    evidence = {
        "rule": "R8",
        "deferrals": n,
        "live_queue": s.counts.get("queued", 0),
        "window_minutes": r.window_minutes,
        "domains": list(s.domains),
        "status": event.get("status"),
        "diagnostic": _text(event.get("diagnostic")),
        "remote_mta": event.get("remote_mta"),
    }
    advice = None
    if s.flag_id is None:
        from bounce_handler.judge.advice import postfix_advice

        advice = postfix_advice(s.subject, s.domains, r)
    return Decision(_action(s), s, "R8", ["R8"], evidence, event["id"], now, lo, t, advice)


KIND_ORDER = (DEAD, COMPROMISED, THROTTLED)
