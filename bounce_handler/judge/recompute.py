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
from bounce_handler.judge.sql import Db, marks
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


# The live flags while the replay runs, with the state each had (SQL-side: a store with
# 150,000 live flags should not need them in memory).  A temporary table: dropped at the
# end, gone with a rollback (DDL is transactional on SQLite and PostgreSQL alike).
PARKED = "recompute_parked"


def _rebuild(db: Db, rules, progress, fields: tuple[str, ...], at) -> dict:
    top = db.one("SELECT coalesce(max(id), 0) FROM flags")[0]
    db.run(f"CREATE TEMP TABLE {PARKED} (id INTEGER PRIMARY KEY, state VARCHAR(16) NOT NULL)")
    db.run(f"INSERT INTO {PARKED} (id, state) SELECT id, state FROM flags "
           "WHERE state IN ('open', 'acked')")
    # Park the live flags where the replay cannot see them: a withdrawn flag's form.
    db.run("UPDATE flags SET state = 'cleared' WHERE state IN ('open', 'acked')")

    events, decisions = _replay(db, rules, progress, fields)

    fresh = db.one("SELECT count(*) FROM flags WHERE id > ?", (top,))[0]
    stats = {"events": events, "decisions": decisions, "kept": 0, "changed": 0,
             "raised": fresh, "withdrawn": 0, "restored": 0, "withdrawn_ids": [],
             "restored_ids": []}
    last = top
    while True:
        pairs = db.all(_PAIRS, (top, last, CHUNK))
        if not pairs:
            break
        last = pairs[-1][0]
        _lay(db, pairs, at, stats)
    stats["raised"] -= stats["kept"] + stats["restored"]

    last = 0
    while True:
        gone = db.all(
            f"SELECT p.id, p.state, f.rule FROM {PARKED} p JOIN flags f ON f.id = p.id "
            "WHERE f.state = 'cleared' AND p.id > ? ORDER BY p.id LIMIT ?", (last, CHUNK))
        if not gone:
            break
        last = gone[-1][0]
        db.many(_AUDIT, [(fid, at, "withdrawn", dumps({
            "from": state, "rule": rule, "note": WITHDRAWN_NOTE,
        })) for fid, state, rule in gone])
        stats["withdrawn"] += len(gone)
        stats["withdrawn_ids"].extend(fid for fid, _, _ in gone)
    db.run(f"DROP TABLE {PARKED}")
    return stats


# Each replayed flag (id > top) whose (kind, subject) had a live or withdrawn flag: the
# newest old flag of the subject, if it is one (cleared_at NULL: parked or withdrawn)
# rather than a flag an administrator cleared (a flag raised after a clearing is a new
# episode, a new flag).  With the state it had if it was live (NULL: withdrawn).
_PAIRS = (
    "SELECT n.id, o.id, p.state FROM flags n "
    "JOIN flags o ON o.id = (SELECT max(x.id) FROM flags x "
    "WHERE x.kind = n.kind AND x.subject = n.subject AND x.id <= ?) "
    f"LEFT JOIN {PARKED} p ON p.id = o.id "
    "WHERE n.id > ? AND o.cleared_at IS NULL ORDER BY n.id LIMIT ?"
)
_AUDIT = ("INSERT INTO flag_events (flag_id, at, action, actor, detail) "
          "VALUES (?, ?, ?, 'recompute', ?)")


def _lay(db: Db, pairs: list, at, stats: dict) -> None:
    """Lay each replayed flag onto the old flag it takes the place of (one chunk)."""
    ids = [n for n, _, _ in pairs] + [o for _, o, _ in pairs]
    content = {}
    for i in range(0, len(ids), 900):
        part = ids[i : i + 900]
        for row in db.all(f"SELECT id, {', '.join(CONTENT)} FROM flags "
                          f"WHERE id IN ({marks(len(part))})", part):
            content[row[0]] = tuple(row[1:])
    # The replayed flag goes: its links move to the old id first (deleting the row first
    # would cascade them away), its audit lines are the replay's copy of what the old
    # flag's trail already says (or the 'recomputed' line below says what changed).
    db.many("DELETE FROM flag_evidence WHERE flag_id = ?", [(o,) for _, o, _ in pairs])
    db.many("UPDATE flag_evidence SET flag_id = ? WHERE flag_id = ?",
            [(o, n) for n, o, _ in pairs])
    db.many("DELETE FROM flag_events WHERE flag_id = ?", [(n,) for n, _, _ in pairs])
    db.many("DELETE FROM flags WHERE id = ?", [(n,) for n, _, _ in pairs])
    updates, lines = [], []
    for n, o, state in pairs:
        new, old = content[n], content[o]
        if state is not None:  # it was live
            stats["kept"] += 1
            if new != old:
                stats["changed"] += 1
                lines.append((o, at, "recomputed", dumps({
                    "note": "rebuilt under the current [rules]",
                    "before": _described(old), "after": _described(new),
                })))
        else:
            state = _withdrawn_from(db, o)
            stats["restored"] += 1
            stats["restored_ids"].append(o)
            lines.append((o, at, "restored", dumps({
                "from": "withdrawn", "to": state, "rule": new[0],
                "note": "the current [rules] support this flag again",
            })))
        updates.append((state, *new, o))
    db.many(f"UPDATE flags SET state = ?, {', '.join(k + ' = ?' for k in CONTENT)} "
            "WHERE id = ?", updates)
    db.many(_AUDIT, lines)


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


def _described(content: tuple) -> dict:
    f = dict(zip(CONTENT, content, strict=True))
    try:
        evidence = json.loads(f["evidence"] or "{}")
    except ValueError:
        evidence = f["evidence"]
    return {"rule": f["rule"], "raised_at": str(f["raised_at"]), "evidence": evidence}

