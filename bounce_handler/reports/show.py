"""`bounces show`: one bounce event (or one message) with everything known about it."""

from __future__ import annotations

import zlib

from sqlalchemy import desc, func, or_, select

from bounce_handler.errors import EX_DATAERR, BounceHandlerError
from bounce_handler.reports import db


class NotFound(BounceHandlerError):
    """No event or message with that id."""

    exit_code = EX_DATAERR


def _row(r) -> dict:
    # Times as RFC 3339 UTC with "Z" (the store's datetimes are naive UTC).
    from bounce_handler.reports.render import utc_text

    return {k: (utc_text(v) if hasattr(v, "isoformat") else v) for k, v in r._mapping.items()}


def event(conn, event_id: int) -> dict:
    """The event's parsed fields, its message, and the flags it is evidence for."""
    ev = db.events
    r = conn.execute(select(ev).where(ev.c.id == event_id)).first()
    if r is None:
        raise NotFound(f"no bounce event #{event_id} (bounces report lists them by key; "
                       "bounces show ADDRESS lists an address's events)")
    out = _row(r)
    out["message"] = message_fields(conn, r.message_id)
    out["flags"] = flags_for(conn, [event_id])
    return out


def message_fields(conn, message_id: int) -> dict:
    """The messages row, whether its raw copy is kept, and its quarantine entry if any."""
    m, q, raw = db.messages, db.quarantine, db.raw_messages
    r = conn.execute(select(m).where(m.c.id == message_id)).first()
    if r is None:
        raise NotFound(f"no message #{message_id}")
    out = _row(r)
    out["raw_kept"] = conn.execute(
        select(func.count()).select_from(raw).where(raw.c.message_id == message_id)
    ).scalar_one() > 0
    qr = conn.execute(select(q).where(q.c.message_id == message_id)).first()
    out["quarantine"] = _row(qr) if qr is not None else None
    return out


def message(conn, message_id: int) -> dict:
    """A message with all its events (a quarantined message has none)."""
    out = message_fields(conn, message_id)
    ev = db.events
    rows = conn.execute(select(ev).where(ev.c.message_id == message_id).order_by(ev.c.id))
    out["events"] = [_row(r) for r in rows]
    out["flags"] = flags_for(conn, [e["id"] for e in out["events"]])
    return out


def flags_for(conn, event_ids: list[int]) -> list[dict]:
    """Flags whose evidence includes any of these events (flag_evidence)."""
    if not event_ids:
        return []
    fl, fe = db.flags, db.flag_evidence
    q = (
        select(fl.c.id, fl.c.kind, fl.c.subject, fl.c.state, fl.c.rule, fl.c.raised_at,
               fl.c.advice)
        .where(fl.c.id.in_(select(fe.c.flag_id).where(fe.c.event_id.in_(event_ids))))
        .order_by(fl.c.id)
    )
    return [_row(r) for r in conn.execute(q)]


def raw(conn, message_id: int) -> bytes:
    """The kept bytes of a message, decompressed."""
    t = db.raw_messages
    r = conn.execute(select(t.c.compression, t.c.content).where(t.c.message_id == message_id)
                     ).first()
    if r is None:
        raise NotFound(f"the raw copy of message #{message_id} is not kept (keep_raw is off, "
                       "or `bounces prune` dropped it after raw_retention_days)")
    if r.compression == "zlib":
        return zlib.decompress(r.content)
    if r.compression in ("", "none", None):
        return bytes(r.content)
    raise BounceHandlerError(f"message #{message_id}: unknown compression {r.compression!r}")


def for_address(conn, address: str, limit: int = 20) -> list[dict]:
    """The latest events whose recipient or sender is `address` (newest first)."""
    ev = db.events
    a = address.strip().strip("<>")
    local, at, domain = a.rpartition("@")
    a = f"{local}@{domain.lower()}" if at else a
    # Two indexed lookups (recipient, sender) rather than lower() over the table: the
    # store keeps domains lower-cased (intake), local parts as given (RFC 5321 2.4).
    q = (
        select(ev.c.id, ev.c.occurred_at, ev.c.kind, ev.c.recipient, ev.c.sender, ev.c.status,
               ev.c.reason, ev.c.message_id)
        .where(or_(ev.c.recipient == a, ev.c.sender == a))
        .order_by(desc(ev.c.occurred_at), desc(ev.c.id))
        .limit(limit)
    )
    return [_row(r) for r in conn.execute(q)]
