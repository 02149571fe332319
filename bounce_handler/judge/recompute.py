"""Rebuild the flags from the recorded history (``bounces flags recompute``), keeping identities.

After a rule change the live flags may be wrong both ways; recompute replays every bounce
event, in the order they were recorded (id order), through the very same
``lean.process_event`` the pipe runs, each with ``now`` = the time its message was
received, and each event with every column of its row: the columns are the model's
(store/models.py ``BounceEvent``), so a column added to bounce_events reaches the judge on
replay exactly as it did on the pipe (an XVERP row's ``verify_reason`` is what lets
``accept_unsigned`` count it).  A replay therefore gives exactly the flags incremental
evaluation would have given under the rules in force (tests/judge/test_recompute.py).

A flag is an identity the administrator has acted on: its id is in alert mails already
sent (``bounces flags ack 24``), acks and alert bookkeeping (``alert_marks``) hang on it.
So the replay's result is laid onto the flags that exist, not in their place:

* a (kind, subject) that had a live flag and still has one after the replay **keeps its
  id** and its state (open or acked, ``acked_at``); its rule, times, evidence and advice
  become the replay's, its evidence links too.  If they changed, one audit line
  (action ``recomputed``, actor ``recompute``) keeps what it said before; its earlier
  audit lines stay (they are what the judge said at the time);
* a live flag the rules no longer support is **withdrawn**: it leaves the live set
  (reports, exports, alerts' counts) as ``state = 'cleared'`` with ``cleared_at`` NULL,
  keeps its id, evidence links and trail, and gets a ``withdrawn`` audit line saying so
  and from which state.  ``bounces alert`` reports the withdrawal on each channel that
  had reported the flag.  A withdrawal is not an administrator's clearing: it bounds
  nothing (the judge, judge/lean.py ``_subject``, skips such rows), so the subject is
  judged on its whole history as if the flag had never been raised;
* a withdrawn flag the rules support again (a rule change undone) is **restored** under
  its old id, in the state it was withdrawn from (``restored`` audit line; alerted again);
* a (kind, subject) with no live or withdrawn flag since its last clearing gets a new
  flag (new id, the judge's own 'raised' line: alerted like any new flag);
* flags an administrator cleared stay as they are: history, and their ``cleared_at``
  still bounds what counts again for that subject.

Same rules and same history therefore give the same flags with the same ids, and
recomputing twice changes nothing.  Alerting needs no adjustment: what is pending is
decided per flag by its notices (raised / withdrawn / restored) against the channel's
mark (reports/alerts.py), never by a position in flag_events.

It runs in one transaction: SQLite's pipe writers wait on the lock meanwhile and, past
``[database] busy_timeout``, exit 75 so Postfix retries them later; on PostgreSQL the
bounce_events table is locked against inserts (SHARE) for the duration, so the daemon's
writers wait rather than judge against flags half rebuilt.  Nothing is lost either way.
"""

from __future__ import annotations

import json

from bounce_handler.judge.evidence import dumps
from bounce_handler.judge.lean import process_event
from bounce_handler.judge.sql import Db
from bounce_handler.judge.utc import micros

CHUNK = 5000
LIVE = ("open", "acked")
# The fields a recompute may change on a flag it keeps (and records in 'recomputed').
CONTENT = ("rule", "raised_at", "updated_at", "evidence", "advice")
WITHDRAWN_NOTE = "the current [rules] no longer support this flag"


def event_fields() -> tuple[str, ...]:
    """Every column of bounce_events, in the model's order (store/models.py BounceEvent)."""
    from bounce_handler.store.models import BounceEvent

    return tuple(c.name for c in BounceEvent.__table__.columns)


def count_events(conn) -> int:
    """How many bounce events a recompute will replay (for a progress bar)."""
    return Db(conn).one("SELECT count(*) FROM bounce_events")[0]


def recompute(conn, rules, progress=None, begin: bool = True, now=None) -> dict:
    """Replay the history under ``rules`` onto the flags; return counts.

    ``progress(n)`` after each chunk of events.  ``conn`` is a DB-API connection (sqlite3
    in autocommit mode, or psycopg); with ``begin`` the whole rebuild is one transaction,
    committed at the end.  ``now`` (epoch seconds or a datetime; default: the clock) dates
    the audit lines the recompute itself writes.
    """
    import time

    db = Db(conn)
    at = db.ts(micros(time.time() if now is None else now))
    fields = event_fields()
    if begin:
        db.run("BEGIN IMMEDIATE" if not db.pg else "BEGIN")
    try:
        if db.pg:
            # Inserts wait (SHARE conflicts with ROW EXCLUSIVE); readers do not.
            db.run("LOCK TABLE bounce_events IN SHARE MODE")
        stats = _rebuild(db, rules, progress, fields, at)
        if begin:
            db.run("COMMIT")
    except BaseException:
        if begin:
            db.run("ROLLBACK")
        raise
    return stats


class _Flag:
    __slots__ = ("id", "kind", "subject", "state", "cleared_at", "rule", "raised_at",
                 "updated_at", "evidence", "advice")

    COLUMNS = ", ".join(__slots__)

    def __init__(self, row) -> None:
        for name, value in zip(self.__slots__, row, strict=True):
            setattr(self, name, value)

    def content(self) -> tuple:
        return tuple(getattr(self, k) for k in CONTENT)


def _identities(db: Db) -> tuple[dict, int]:
    """{(kind, subject): the flag a replayed flag for it takes the place of}, and max(id).

    That is the newest live or withdrawn flag of the subject, unless an administrator
    cleared a newer one: a flag raised after a clearing is a new episode, a new flag.
    """
    candidate: dict = {}
    top = 0
    for row in db.all(f"SELECT {_Flag.COLUMNS} FROM flags ORDER BY id"):
        f = _Flag(row)
        top = f.id
        key = (f.kind, f.subject)
        if f.state == "cleared" and f.cleared_at is not None:
            candidate.pop(key, None)
        else:
            candidate[key] = f
    return candidate, top


def _rebuild(db: Db, rules, progress, fields: tuple[str, ...], at) -> dict:
    candidate, top = _identities(db)
    # Park the live flags where the replay cannot see them: a withdrawn flag's form.
    db.run("UPDATE flags SET state = 'cleared' WHERE state IN ('open', 'acked')")

    events, decisions = _replay(db, rules, progress, fields)

    fresh = [_Flag(r) for r in db.all(
        f"SELECT {_Flag.COLUMNS} FROM flags WHERE id > ? ORDER BY id", (top,)
    )]
    kept, changed, restored, raised = [], [], [], 0
    for new in fresh:
        old = candidate.pop((new.kind, new.subject), None)
        if old is None:
            raised += 1  # a new flag, with the judge's own 'raised' line
            continue
        kept.append((old, new))
    # Every replayed flag that takes an old one's place goes: its links move to the old
    # id first (deleting the row first would cascade them away), its audit lines are the
    # replay's copy of what the old flag's trail already says (or the 'recomputed' line
    # below says what changed).
    _many(db, "DELETE FROM flag_evidence WHERE flag_id = ?", [(o.id,) for o, _ in kept])
    _many(db, "UPDATE flag_evidence SET flag_id = ? WHERE flag_id = ?",
          [(o.id, n.id) for o, n in kept])
    _many(db, "DELETE FROM flag_events WHERE flag_id = ?", [(n.id,) for _, n in kept])
    _many(db, "DELETE FROM flags WHERE id = ?", [(n.id,) for _, n in kept])
    updates, lines = [], []
    for old, new in kept:
        if old.state in LIVE:
            state = old.state
            if old.content() != new.content():
                changed.append(old.id)
                lines.append((old.id, at, "recomputed", dumps({
                    "note": "rebuilt under the current [rules]",
                    "before": _described(old), "after": _described(new),
                })))
        else:
            state = _withdrawn_from(db, old.id)
            restored.append(old.id)
            lines.append((old.id, at, "restored", dumps({
                "from": "withdrawn", "to": state, "rule": new.rule,
                "note": "the current [rules] support this flag again",
            })))
        updates.append((state, new.rule, new.raised_at, new.updated_at, new.evidence,
                        new.advice, old.id))
    _many(db, "UPDATE flags SET state = ?, rule = ?, raised_at = ?, updated_at = ?, "
          "evidence = ?, advice = ? WHERE id = ?", updates)

    withdrawn = [f for f in candidate.values() if f.state in LIVE]
    for f in withdrawn:
        lines.append((f.id, at, "withdrawn", dumps({
            "from": f.state, "rule": f.rule, "note": WITHDRAWN_NOTE,
        })))
    _many(db, "INSERT INTO flag_events (flag_id, at, action, actor, detail) "
          "VALUES (?, ?, ?, 'recompute', ?)", lines)
    return {
        "events": events,
        "decisions": decisions,
        "kept": len(kept) - len(restored),
        "changed": len(changed),
        "raised": raised,
        "withdrawn": len(withdrawn),
        "restored": len(restored),
        "withdrawn_ids": sorted(f.id for f in withdrawn),
        "restored_ids": sorted(restored),
    }


def _replay(db: Db, rules, progress, fields: tuple[str, ...]) -> tuple[int, int]:
    columns = ", ".join("e." + f for f in fields)
    sql = (
        f"SELECT {columns}, m.received_at FROM bounce_events e "
        "JOIN messages m ON m.id = e.message_id WHERE e.id > ? ORDER BY e.id LIMIT ?"
    )
    n_fields = len(fields)
    last, events, decisions = 0, 0, 0
    while True:
        rows = db.all(sql, (last, CHUNK))
        if not rows:
            break
        for row in rows:
            ev = dict(zip(fields, row[:n_fields], strict=True))
            out = process_event(db, ev, rules, micros(row[n_fields]))
            if out:
                decisions += len(out)
        events += len(rows)
        last = rows[-1][0]
        if progress is not None:
            progress(len(rows))
    return events, decisions


def _withdrawn_from(db: Db, flag_id: int) -> str:
    """The state a withdrawn flag had (its last 'withdrawn' line says), 'open' if unknown."""
    row = db.one(
        "SELECT detail FROM flag_events WHERE flag_id = ? AND action = 'withdrawn' "
        "ORDER BY id DESC LIMIT 1",
        (flag_id,),
    )
    try:
        state = json.loads(row[0]).get("from") if row else None
    except (ValueError, AttributeError):
        state = None
    return state if state in LIVE else "open"


def _described(f: _Flag) -> dict:
    try:
        evidence = json.loads(f.evidence or "{}")
    except ValueError:
        evidence = f.evidence
    return {"rule": f.rule, "raised_at": str(f.raised_at), "evidence": evidence}


def _many(db: Db, sql: str, rows: list) -> None:
    if rows:
        db.many(sql, rows)

