"""`bounces prune`: drop old rows and old kept raw messages, in small transactions.

Deleting a message cascades (ON DELETE CASCADE, foreign_keys=ON) to its raw copy, its
events, their flag_evidence links and its quarantine entry.  Flags and their audit trail
stay: they are the memory of what happened, and small.

Work goes in batches of BATCH messages, each its own transaction, so the pipe's writers
(which wait at most busy_timeout for SQLite's lock) get the lock between batches.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select

from bounce_handler.reports import db

BATCH = 5000


def plan(conn, rows_before, raw_before) -> dict[str, int]:
    """How many messages and raw copies a prune would remove."""
    m, r = db.messages, db.raw_messages
    messages = conn.execute(
        select(func.count()).select_from(m).where(m.c.received_at < rows_before)
    ).scalar_one()
    raws = conn.execute(
        select(func.count()).select_from(r).where(r.c.stored_at < raw_before)
    ).scalar_one()
    return {"messages": messages, "raw_messages": raws}


def prune_messages(settings, before, advance=lambda n: None) -> tuple[int, int]:
    """Delete messages received before `before` (cascading); return (messages, events)."""
    m, ev = db.messages, db.events
    gone = events = 0
    while True:
        with db.connect(settings, write=True) as conn:
            ids = conn.execute(
                select(m.c.id).where(m.c.received_at < before).order_by(m.c.id).limit(BATCH)
            ).scalars().all()
            if not ids:
                break
            events += conn.execute(
                select(func.count()).select_from(ev).where(ev.c.message_id.in_(ids))
            ).scalar_one()
            conn.execute(delete(m).where(m.c.id.in_(ids)))
        gone += len(ids)
        advance(len(ids))
    return gone, events


def prune_raw(settings, before, advance=lambda n: None) -> int:
    """Delete kept raw copies stored before `before` (the parsed rows stay)."""
    r, q = db.raw_messages, db.quarantine
    gone = 0
    while True:
        with db.connect(settings, write=True) as conn:
            # A quarantined message's bytes are all there is of it (the parser could not
            # make rows): keep them until the message row itself goes.
            ids = conn.execute(
                select(r.c.message_id)
                .where(r.c.stored_at < before,
                       r.c.message_id.not_in(select(q.c.message_id)))
                .order_by(r.c.message_id)
                .limit(BATCH)
            ).scalars().all()
            if not ids:
                break
            conn.execute(delete(r).where(r.c.message_id.in_(ids)))
        gone += len(ids)
        advance(len(ids))
    return gone


def optimize(settings) -> None:
    """SQLite: refresh the planner's statistics after a large delete (PRAGMA optimize)."""
    with db.connect(settings) as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA optimize")
