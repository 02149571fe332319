"""One message in, one outcome out: the path every intake shares after the bytes are read.

The pipe entrypoint, the LMTP service and `bounces import` all call ``process``; nothing
after this point knows how the message arrived.  The flow:

    raw bytes ──► parse (detectors) ──► VERP token ──► rows (Batch) ──► writer ──► Outcome

Outcomes and what they mean for the message (the pipe maps them to exit codes in one
table, ``pipe.EXIT``):

    recorded     bounce/delay/complaint events written                    kept, counted
    spooled      the same, written to the PostgreSQL spool: in the        kept, counted
                 database once `bounces daemon` drains it                 when drained
    duplicate    this exact message was recorded before (redelivery)     nothing new
    ignored      an auto-reply or delivery report: nothing to count       kept, logged
    quarantined  not understood: kept with why, for a human               kept
    tempfail     the store could not take it now (not the message's fault) retried

A bug in a detector must not turn into a retry loop (the same message would fail the same
way until Postfix gives up after 5 days and bounces it, i.e. loses it): anything unexpected
while *understanding* the message quarantines it with the exception as the reason.  Only a
failure to *store* it is a tempfail.
"""

from __future__ import annotations

import time
import zlib

from bounce_handler.errors import StoreUnavailable

# The rows a message becomes (Batch) and the cleaning every stored text goes through live
# with the store, which intake feeds: store/spool.py reads Batch back without importing
# intake (they used to import each other).
from bounce_handler.store.rows import Batch, clean_text


class Envelope:
    """What Postfix told us about the delivery (argv macros, or the flags=DOR headers).

    ``client_address`` and ``client_protocol`` are pipe(8)'s ``${client_address}`` and
    ``${client_protocol}`` when master.cf passes them ("" for a message no network
    client sent), None when it does not: then nothing is known to be local
    (trust.origin).
    """

    __slots__ = (
        "extension", "sender", "recipient", "original_recipient", "queue_id", "client_address",
        "client_protocol",
    )

    def __init__(
        self,
        extension: str | None = None,
        sender: str | None = None,
        recipient: str | None = None,
        original_recipient: str | None = None,
        queue_id: str | None = None,
        client_address: str | None = None,
        client_protocol: str | None = None,
    ) -> None:
        self.extension = extension
        self.sender = sender
        self.recipient = recipient
        self.original_recipient = original_recipient
        self.queue_id = queue_id
        self.client_address = client_address
        self.client_protocol = client_protocol


class Outcome:
    """What became of a message; ``name`` is one of the six outcomes above."""

    __slots__ = ("name", "detail", "message_id", "events", "kind", "token")

    def __init__(self, name, detail, message_id=None, events=(), kind=None, token=None):
        self.name = name
        self.detail = detail
        self.message_id = message_id
        self.events = events
        self.kind = kind
        self.token = token


# Kinds that produce bounce events; the rest are ignored or quarantined.
COUNTED_KINDS = ("bounce", "delay", "complaint")
IGNORED_KINDS = ("autoreply", "delivery")

# Bounds on what one event keeps of free text (a diagnostic can be a whole transcript).
MAX_DIAGNOSTIC = 2000
MAX_FIELD = 500


def utc_text(now: float) -> str:
    """A UTC timestamp in the exact text form SQLAlchemy's SQLite DateTime stores."""
    t = time.gmtime(now)
    micro = int((now % 1) * 1_000_000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{micro:06d}"
    )


def message_digest(raw: bytes, envelope: Envelope) -> str:
    """The idempotency key: the same message to the same bounce address, whenever it comes.

    Postfix redelivers the very same queue file after a deferral, so the bytes (including
    the Delivered-To/X-Original-To lines pipe's flags add) are identical; the extension is
    mixed in because one bounce can reach two VERP addresses as two deliveries.
    """
    try:
        from _sha256 import sha256  # the builtin: no OpenSSL load (~2 ms) on the hot path
    except ImportError:  # pragma: no cover - interpreters without the builtin module
        from hashlib import sha256
    h = sha256((envelope.extension or "").encode("utf-8", "surrogateescape") + b"\0")
    h.update((envelope.recipient or "").encode("utf-8", "surrogateescape") + b"\0")
    h.update(raw)
    return h.hexdigest()


def _clip(value: str | None, limit: int = MAX_FIELD) -> str | None:
    # The store's one cleaning (NUL and lone surrogates to U+FFFD, cut with "…"); the
    # writers apply it again per column, with the column's size and one-line rule.
    return clean_text(value, limit, one_line=False)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _norm_address(address: str) -> str:
    """Domain lower-cased (RFC 5321 §2.4: local parts are case-sensitive, domains not)."""
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if at else address


def build(
    raw: bytes,
    envelope: Envelope,
    settings,
    now: float,
    *,
    source: str = "pipe",
    size: int | None = None,
    truncated: bool = False,
    relay: str = "",
) -> tuple[Batch, Outcome]:
    """Understand a message and turn it into rows.

    No input makes it raise; only configuration problems do (VerpKeyError: the key file
    is unreadable), which the edges map to a deferral.
    """
    stamp = utc_text(now)
    message = _message_row(raw, envelope, stamp, source, relay, size, truncated)
    raw_blob = zlib.compress(raw, 6) if settings.intake.keep_raw else None
    # Imported here, outside the try below: a broken installation is not the message's
    # fault and must defer (75), not quarantine every bounce.
    from bounce_handler import verp
    from bounce_handler.parse import parse

    try:
        events, outcome = _understand(
            raw, envelope, settings, now, message, stamp, truncated, parse, verp
        )
    except verp.VerpKeyError:
        # The key file is missing or unreadable: not the message's fault, so defer (75 /
        # LMTP 451) until the administrator fixes it, rather than quarantine every signed
        # bounce meanwhile (found by tests/faults/test_privileges.py).
        raise
    except Exception as e:  # a bug while understanding: quarantine, never retry forever
        why = f"internal error: {type(e).__name__}: {e}"
        return _kept_unparsed(message, raw, raw_blob, now, "internal-error", why)
    quarantine = None
    if message["disposition"] == "quarantined":
        raw_blob = raw_blob or zlib.compress(raw, 6)
        quarantine = {"reason": message.pop("_qreason"), "detail": message["note"]}
    return Batch(message, raw_blob, events, quarantine, now), outcome


def unparsed(
    raw: bytes,
    envelope: Envelope,
    settings,
    now: float,
    reason: str,
    why: str,
    *,
    source: str = "pipe",
    size: int | None = None,
    truncated: bool = False,
    relay: str = "",
) -> tuple[Batch, Outcome]:
    """The rows of a message kept without being understood: quarantined with why.

    For an intake that had to stop the parse itself (LMTP's per-message time limit,
    daemon/workers.py): the same message row as ``build`` makes, raw bytes kept.
    """
    message = _message_row(raw, envelope, utc_text(now), source, relay, size, truncated)
    return _kept_unparsed(message, raw, None, now, reason, why)


def _message_row(raw, envelope, stamp, source, relay, size, truncated) -> dict:
    return {
        "digest": message_digest(raw, envelope),
        "received_at": stamp,
        "source": source,
        "relay": relay,
        "queue_id": _clip(envelope.queue_id, 64),
        "envelope_sender": _clip(envelope.sender),
        "envelope_recipient": _clip(envelope.recipient),
        "original_recipient": _clip(envelope.original_recipient),
        "extension": _clip(envelope.extension),
        "size": len(raw) if size is None else size,
        "truncated": 1 if truncated else 0,
    }


def _kept_unparsed(message, raw, raw_blob, now, reason, why) -> tuple[Batch, Outcome]:
    message.update(kind="unknown", disposition="quarantined", detector=None)
    message["note"] = why[:MAX_FIELD]
    # Quarantine must keep the bytes even when keep_raw is off.
    raw_blob = raw_blob or zlib.compress(raw, 6)
    quarantine = {"reason": reason, "detail": message["note"]}
    outcome = Outcome("quarantined", message["note"], kind="unknown")
    return Batch(message, raw_blob, [], quarantine, now), outcome


def _understand(raw, envelope, settings, now, message, stamp, truncated, parse, verp):
    from bounce_handler import trust

    result = parse(raw)
    extension = envelope.extension
    orig = result.original
    if not extension and orig.sender and verp.is_bounce_local_part(
        orig.sender.rpartition("@")[0], settings
    ):
        # A Postfix notice to the bare bounce address (notify_classes' postmaster copy)
        # about mail sent with a VERP return path: X-Postfix-Sender names that return
        # path, so the copy decodes to the same token, sender and trust as the DSN that
        # went to the VERP address itself, and the two are one failure (trust.py).
        try:
            extension = verp.split_address(orig.sender, settings)
        except verp.VerpError:
            extension = None
    token = verp.decode(extension, settings, now)
    origin = trust.origin(envelope, raw)
    local = origin == trust.LOCAL
    message["kind"] = result.kind
    message["detector"] = result.detector or None
    message["header_message_id"] = _clip(orig.message_id, 998)
    message["subject"] = _clip(orig.subject, 998)

    if result.kind in IGNORED_KINDS:
        note = "auto-reply, not a bounce" if result.kind == "autoreply" else "delivery report"
        message.update(disposition="ignored", note=note)
        return [], Outcome("ignored", note, kind=result.kind, token=envelope.extension)

    if result.kind not in COUNTED_KINDS or not result.recipients:
        why = result.error or "no failed recipient found"
        if truncated:
            why += " (message truncated at the size cap)"
        message.update(disposition="quarantined", note=_clip(why), _qreason="unparseable")
        if result.kind == "unknown":
            message["kind"] = "unknown"
        return [], Outcome("quarantined", why, kind=result.kind, token=envelope.extension)

    recipients = list(result.recipients)
    verp_rcpt = _norm_address(token.recipient) if token.recipient else None
    if verp_rcpt and len(recipients) > 1:
        # Per-recipient VERP: the token names the one recipient this bounce is ours for;
        # keep that one when the DSN lists it (a DSN can carry its whole recipient list).
        want = verp_rcpt.lower()
        # The DSN reports the Final-Recipient; the address we sent to may be its
        # Original-Recipient (an alias or list expanded at the far end).
        mine = [r for r in recipients
                if want in (_norm_address(r.address or "").lower(),
                            _norm_address(r.original_address or "").lower())]
        recipients = mine or recipients
    sender, sender_source = attribute_sender(token, orig, settings)
    # A verified token is one unit of evidence (one message we sent): its replays count
    # once.  Not for local rows: the relay's queue file vouches for each of them.
    token_key = verp.signed_part(extension, settings) if token.verified else None
    # A signed recipient covers the row naming it, nothing else the DSN lists.
    covers = token.verified and token.reason is None
    sasl_verified = 1 if local and orig.sasl_login and orig.sasl_hop == 0 else 0
    reference = trust.report_reference(result, message["digest"])
    # A final DSN this relay wrote about a queued message: the identity its recipient had
    # while the message waited in the queue (livequeue.py), for the writers' queued_of link.
    seen_queued = local and result.kind == "bounce" and reference[0] == "q"
    events = []
    seen = set()
    for r in recipients:
        address = _norm_address(r.address or "")
        reported = address
        other = None
        if verp_rcpt and len(recipients) == 1 and address.lower() != verp_rcpt.lower():
            # The token says what we sent to; the DSN names where it ended (an alias or
            # forward). Count it against what we sent to, keep the other for the record.
            address, other = verp_rcpt, address or None
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        # Beside the counted address, the other one the report names: its Original-
        # Recipient, or where the token's recipient ended (the DSN's Final-Recipient).
        beside = r.original_address
        if not beside or _norm_address(beside).lower() == address.lower():
            beside = other
        reason = token.reason
        if covers and address.lower() != verp_rcpt.lower():
            reason = trust.NOT_COVERED
        events.append(
            {
                "occurred_at": stamp,
                "kind": result.kind,
                "recipient": _clip(address),
                "recipient_domain": _domain(address)[:255],
                "original_recipient": _clip(beside),
                "action": _clip(r.action, 16),
                "status": _clip(r.status, 16),
                "reply_code": _clip(r.reply_code, 3),
                "reason": r.reason or "undefined",
                "hard": None if r.hard is None else (1 if r.hard else 0),
                "diagnostic": _clip(r.diagnostic, MAX_DIAGNOSTIC),
                "remote_mta": _clip(r.remote_mta, 255),
                "detector": r.detector or result.detector or "unknown",
                "sender": _clip(sender),
                "sasl_login": _clip(orig.sasl_login, 255),
                "verp_token": _clip(extension),
                "verified": 1 if token.verified else 0,
                "verify_reason": reason,
                "original_message_id": _clip(orig.message_id, 998),
                "origin": origin,
                "sender_source": sender_source if sender else None,
                "sasl_verified": sasl_verified,
                "failure_key": trust.failure_identity(
                    result.kind, reported or address, local, reference
                ),
                "token_key": _clip(token_key, 255),
            }
        )
        if seen_queued:
            # Not a column: store/lean.py link_copies turns it into queued_of.
            events[-1]["queue_key"] = trust.failure_identity(
                "delay", reported or address, True, reference
            )
    first = events[0]
    detail = f"{len(events)} {result.kind}" + ("s" if len(events) > 1 else "")
    detail += f": {first['recipient']} {first['status'] or '-'} {first['reason']}"
    message.update(disposition="recorded", note=None)
    outcome = Outcome(
        "recorded", detail, events=events, kind=result.kind, token=envelope.extension
    )
    return events, outcome


def attribute_sender(token, orig, settings) -> tuple[str | None, str | None]:
    """The local sender a bounce counts against, and where it was read (trust.SENDER_SOURCES).

    In order of trust: the identity inside a signed VERP token ("token"; unforgeable when
    it verifies); the original envelope sender a Postfix notice names in X-Postfix-Sender
    ("envelope") or the attached copy's Return-Path ("return-path"), unless it is our own
    bounce address (with XVERP the copy's Return-Path is bounces+...@, which says nothing
    about who sent it); the SASL login from the copy's Received header ("sasl"); the
    address in the copy's From: ("from"; weakest: the spammer writes it, but it is still
    the account's mail).  An address that is not complete (``<corp.example>``, ``user@``)
    is never a sender: it would become a wildcard in an access map (trust.valid_address).
    Whether the source is *believed* is trust.py's decision, not this function's.
    """
    from bounce_handler import trust, verp

    if token.sender:
        return token.sender, "token"
    # Any domain: one relay may answer for several bounce domains.
    if orig.sender and not verp.is_bounce_local_part(orig.sender.rpartition("@")[0], settings):
        addr = _norm_address(orig.sender)
        if trust.valid_address(addr):
            return addr, "envelope" if orig.sender_source == "dsn" else "return-path"
    if orig.sasl_login and trust.valid_login(orig.sasl_login):
        return orig.sasl_login, "sasl"
    if orig.from_:
        start, end = orig.from_.rfind("<"), orig.from_.rfind(">")
        addr = orig.from_[start + 1 : end] if 0 <= start < end else orig.from_
        addr = _norm_address(addr.strip())
        if trust.valid_address(addr):
            return addr, "from"
    return None, None


def writer_for(settings):
    """The writer for the configured store, chosen by URL scheme (imported lazily)."""
    url = settings.database.url
    if url.startswith("sqlite"):
        from bounce_handler.store.lean import SqliteWriter, sqlite_path

        return SqliteWriter(sqlite_path(url), settings.database.busy_timeout)
    if url.startswith("postgresql"):
        mode = getattr(settings.database, "pg_mode", "direct")
        if mode == "spool":
            # The pipe must not import psycopg (~150 ms): spool, the daemon drains.
            from bounce_handler.store.spool import SpoolWriter

            return SpoolWriter(settings.database.spool_dir)
        if mode != "direct":
            raise StoreUnavailable(f"[database] pg_mode must be 'spool' or 'direct', not {mode!r}")
        from bounce_handler.store.pg import writer_for_settings

        return writer_for_settings(settings)
    raise StoreUnavailable(f"unsupported database URL scheme {url.split(':', 1)[0]!r}")


def judge_for(settings):
    """The incremental judge hook for the writer, or None when every rule is off."""
    from bounce_handler.judge.lean import hook_for_settings

    return hook_for_settings(settings)


def process(
    raw: bytes,
    envelope: Envelope,
    settings,
    now: float,
    *,
    source: str = "pipe",
    size: int | None = None,
    truncated: bool = False,
    writer=None,
    relay: str | None = None,
) -> Outcome:
    """Parse, classify and record one message.

    Raises only what is not the message's fault, which every intake maps to a deferral
    (pipe exit 75, LMTP 451): StoreUnavailable, VerpKeyError, ConfigError (bad [rules]).
    """
    if relay is None:
        relay = settings.intake.relay or _hostname()
    batch, outcome = build(
        raw, envelope, settings, now, source=source, size=size, truncated=truncated, relay=relay
    )
    writer = writer or writer_for(settings)
    # A writer that defers the judge (the spool: the drain runs it) spares the import.
    wants_judge = batch.events and getattr(writer, "runs_judge", True)
    judge = judge_for(settings) if wants_judge else None
    message_id, created = writer.record(batch, judge=judge)
    outcome.message_id = message_id
    spooled = getattr(writer, "spools", False)
    if batch.aside:
        # The store refused the message's own rows (a data error, store/rows.py): it is
        # kept as quarantined with why instead of being retried forever.
        outcome.name, outcome.detail, outcome.events = "quarantined", batch.aside, ()
    if not created:
        outcome.name = "duplicate"
        outcome.detail = ("already spooled" if spooled
                          else f"already recorded as message {message_id}")
        outcome.events = ()
    elif spooled:
        # Not in the database yet: the daemon's drain puts it there.  Saying "recorded"
        # here would be a claim about the database nobody has checked.
        if outcome.name == "recorded":
            outcome.name = "spooled"
        else:
            outcome.detail += " (spooled)"
    return outcome


def _hostname() -> str:
    import os

    return os.uname().nodename
