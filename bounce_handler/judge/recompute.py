"""Rebuild the flags from the recorded history (``bounces flags recompute``).

After a rule change the live flags may be wrong both ways; recompute replays every bounce
event, in the order they were recorded (id order), through the very same
``lean.process_event`` the pipe runs, each with ``now`` = the time its message was
received.  A replay therefore gives exactly the flags incremental evaluation would have
given under the new rules (tests/judge/test_recompute.py checks it).

What happens to the administrator's work:

* cleared flags stay, with their audit trail: they are history, and their ``cleared_at``
  still bounds what counts again for that subject (a cleared compromised-sender flag is
  not re-raised from the spam run that was cleared);
* live (open or acked) flags are dropped and rebuilt; a rebuilt flag for a (kind, subject)
  that was acked before is acked again (flag_events records it, actor ``recompute``).

It runs in one transaction: the pipe's writers wait on the lock meanwhile and, past
``[database] busy_timeout``, exit 75 so Postfix retries them later; nothing is lost.
"""

from __future__ import annotations

from bounce_handler.judge.core import RAISE
from bounce_handler.judge.evidence import dumps
from bounce_handler.judge.lean import JUDGE_FIELDS, process_event
from bounce_handler.judge.sql import Db
from bounce_handler.judge.utc import micros

CHUNK = 5000

# Every field process_event reads, trust and copy links included (judge/lean.py).
EVENT_FIELDS = JUDGE_FIELDS


def count_events(conn) -> int:
    """How many bounce events a recompute will replay (for a progress bar)."""
    return Db(conn).one("SELECT count(*) FROM bounce_events")[0]


def recompute(conn, rules, progress=None, begin: bool = True) -> dict:
    """Drop and rebuild the live flags; return counts. ``progress(n)`` after each chunk.

    ``conn`` is a DB-API connection (sqlite3 in autocommit mode, or psycopg); with
    ``begin`` the whole rebuild is one transaction, committed at the end.
    """
    db = Db(conn)
    if begin:
        db.run("BEGIN IMMEDIATE" if not db.pg else "BEGIN")
    try:
        stats = _rebuild(db, rules, progress)
        if begin:
            db.run("COMMIT")
    except BaseException:
        if begin:
            db.run("ROLLBACK")
        raise
    return stats


def _rebuild(db: Db, rules, progress) -> dict:
    acked = {
        (kind, subject): acked_at
        for kind, subject, acked_at in db.all(
            "SELECT kind, subject, acked_at FROM flags WHERE state = 'acked'"
        )
    }
    live = "SELECT id FROM flags WHERE state != 'cleared'"
    dropped = db.one("SELECT count(*) FROM flags WHERE state != 'cleared'")[0]
    db.run(f"DELETE FROM flag_evidence WHERE flag_id IN ({live})")
    db.run(f"DELETE FROM flag_events WHERE flag_id IN ({live})")
    db.run("DELETE FROM flags WHERE state != 'cleared'")

    columns = ", ".join("e." + f for f in EVENT_FIELDS)
    sql = (
        f"SELECT {columns}, m.received_at FROM bounce_events e "
        "JOIN messages m ON m.id = e.message_id WHERE e.id > ? ORDER BY e.id LIMIT ?"
    )
    n_fields = len(EVENT_FIELDS)
    last, events, raised, decisions = 0, 0, 0, 0
    while True:
        rows = db.all(sql, (last, CHUNK))
        if not rows:
            break
        for row in rows:
            ev = dict(zip(EVENT_FIELDS, row[:n_fields], strict=True))
            out = process_event(db, ev, rules, micros(row[n_fields]))
            if out:
                decisions += len(out)
                raised += sum(1 for d in out if d.action == RAISE)
        events += len(rows)
        last = rows[-1][0]
        if progress is not None:
            progress(len(rows))

    reacked = 0
    for (kind, subject), acked_at in acked.items():
        row = db.one(
            "SELECT id FROM flags WHERE kind = ? AND subject = ? AND state = 'open'",
            (kind, subject),
        )
        if row is None:
            continue
        db.run(
            "UPDATE flags SET state = 'acked', acked_at = ? WHERE id = ?", (acked_at, row[0])
        )
        db.run(
            "INSERT INTO flag_events (flag_id, at, action, actor, detail) "
            "VALUES (?, ?, 'acked', 'recompute', ?)",
            (row[0], acked_at, dumps({"note": "acked before the recompute"})),
        )
        reacked += 1
    return {
        "events": events,
        "dropped": dropped,
        "raised": raised,
        "decisions": decisions,
        "reacked": reacked,
    }
