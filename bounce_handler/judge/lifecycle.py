r"""The flag lifecycle as the administrator drives it: list, show, ack, clear.

    raised (open) --ack--> acked --clear--> cleared
         \\-------------------clear-------------/

A flag is raised once per (kind, subject) while it is not cleared (the partial unique index
uq_flags_kind_subject_live); new evidence updates it.  Acking says "seen, working on it":
the flag stays live and keeps collecting evidence.  Clearing says "resolved": the next time
the condition holds, on bounces that occur after the clearing, a new flag is raised.  Every
step is a row in flag_events (the audit trail), with who did it.  `bounces flags
recompute` may withdraw a flag the rules no longer support (cleared, with no cleared_at:
shown as ``withdrawn``; it cannot be acked or cleared) or restore it (judge/recompute.py).

DB-API only (sqlite3 or psycopg, through judge/sql.py), so the CLI and the daemon share it.
"""

from __future__ import annotations

import json

from bounce_handler.errors import EX_DATAERR, EX_USAGE, BounceHandlerError
from bounce_handler.judge.rules import KINDS
from bounce_handler.judge.sql import Db, marks
from bounce_handler.judge.utc import as_datetime, micros

STATES = ("open", "acked", "cleared")
FLAG_COLUMNS = (
    "id",
    "kind",
    "subject",
    "state",
    "rule",
    "raised_at",
    "updated_at",
    "acked_at",
    "cleared_at",
    "evidence",
    "advice",
    "verified",
)


class FlagError(BounceHandlerError):
    """No such flag, or a step its state does not allow."""

    exit_code = EX_DATAERR


def connect(settings):
    """A DB-API connection to the store in autocommit mode (transactions are explicit)."""
    url = settings.database.url
    if url.startswith("sqlite"):
        import os
        import sqlite3

        from bounce_handler.errors import StoreUnavailable
        from bounce_handler.store.lean import sqlite_path

        path = sqlite_path(url)
        if not os.path.exists(path):
            raise StoreUnavailable(f"database {path} does not exist: run `bounces db upgrade`")
        conn = sqlite3.connect(path, timeout=settings.database.busy_timeout, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
    if url.startswith("postgresql"):
        import psycopg
        from sqlalchemy.engine import make_url

        u = make_url(url).set(drivername="postgresql")
        return psycopg.connect(u.render_as_string(hide_password=False), autocommit=True)
    raise BounceHandlerError(f"unsupported database URL scheme {url.split(':', 1)[0]!r}", EX_USAGE)


def _iso(value) -> str | None:
    if value is None:
        return None
    return as_datetime(value).isoformat(timespec="seconds") + "Z"


def _flag(row) -> dict:
    f = dict(zip(FLAG_COLUMNS, row, strict=True))
    # Withdrawn by `bounces flags recompute` (judge/recompute.py): cleared, by no one.
    f["withdrawn"] = f["state"] == "cleared" and f["cleared_at"] is None
    for k in ("raised_at", "updated_at", "acked_at", "cleared_at"):
        f[k] = _iso(f[k])
    # Whether the rule holds on verified evidence alone: only such flags are exported.
    f["verified"] = bool(f["verified"])
    try:
        f["evidence"] = json.loads(f["evidence"] or "{}")
    except ValueError:
        f["evidence"] = {"unparsed": f["evidence"]}
    return f


def list_flags(conn, states=("open", "acked"), kind: str | None = None, limit: int | None = None):
    """Flags in these states (newest first), as dicts."""
    db = Db(conn)
    params: list = list(states)
    sql = f"SELECT {', '.join(FLAG_COLUMNS)} FROM flags WHERE state IN ({marks(len(states))})"
    if kind is not None:
        if kind not in KINDS:
            raise FlagError(f"unknown flag kind {kind!r} (known: {', '.join(KINDS)})", EX_USAGE)
        sql += " AND kind = ?"
        params.append(kind)
    sql += " ORDER BY id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [_flag(r) for r in db.all(sql, params)]


def get(conn, flag_id: int) -> dict:
    """One flag with its audit trail (``history``) and linked bounce events (``events``)."""
    db = Db(conn)
    row = db.one(f"SELECT {', '.join(FLAG_COLUMNS)} FROM flags WHERE id = ?", (flag_id,))
    if row is None:
        raise FlagError(f"no flag {flag_id}")
    f = _flag(row)
    f["history"] = [
        {"id": i, "at": _iso(at), "action": a, "actor": who, "detail": json.loads(detail or "{}")}
        for i, at, a, who, detail in db.all(
            "SELECT id, at, action, actor, detail FROM flag_events WHERE flag_id = ? ORDER BY id",
            (flag_id,),
        )
    ]
    f["events"] = [
        {"id": i, "occurred_at": _iso(at), "kind": k, "recipient": rcpt, "sender": snd,
         "status": st, "reason": rs, "diagnostic": dg}
        for i, at, k, rcpt, snd, st, rs, dg in db.all(
            "SELECT e.id, e.occurred_at, e.kind, e.recipient, e.sender, e.status, e.reason, "
            "e.diagnostic FROM flag_evidence x JOIN bounce_events e ON e.id = x.event_id "
            "WHERE x.flag_id = ? ORDER BY e.id",
            (flag_id,),
        )
    ]
    return f


def _step(conn, flag_id: int, action: str, now, actor: str, note: str | None) -> dict:
    db = Db(conn)
    db.run("BEGIN" if db.pg else "BEGIN IMMEDIATE")
    try:
        row = db.one("SELECT state, cleared_at FROM flags WHERE id = ?", (flag_id,))
        if row is None:
            raise FlagError(f"no flag {flag_id}")
        state = row[0]
        if state == "cleared" and row[1] is None:
            raise FlagError(
                f"flag {flag_id} was withdrawn by `bounces flags recompute`: the current "
                f"[rules] no longer support it (bounces flags show {flag_id})"
            )
        if state == "cleared":
            raise FlagError(f"flag {flag_id} is already cleared")
        if action == "acked" and state == "acked":
            db.run("ROLLBACK")
            return {"id": flag_id, "state": state, "changed": False}
        at = db.ts(micros(now))
        if action == "acked":
            db.run("UPDATE flags SET state = 'acked', acked_at = ? WHERE id = ?", (at, flag_id))
        else:
            db.run(
                "UPDATE flags SET state = 'cleared', cleared_at = ? WHERE id = ?", (at, flag_id)
            )
        detail = {"from": state}
        if note:
            detail["note"] = note
        db.run(
            "INSERT INTO flag_events (flag_id, at, action, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (flag_id, at, action, actor[:64], json.dumps(detail)),
        )
        db.run("COMMIT")
    except BaseException:
        if getattr(conn, "in_transaction", True):
            try:
                db.run("ROLLBACK")
            except Exception:  # noqa: BLE001 - already rolled back; keep the first error
                pass
        raise
    return {"id": flag_id, "state": "acked" if action == "acked" else "cleared", "changed": True}


def ack(conn, flag_id: int, now, actor: str, note: str | None = None) -> dict:
    """Acknowledge a live flag (idempotent); FlagError if missing or cleared."""
    return _step(conn, flag_id, "acked", now, actor, note)


def clear(conn, flag_id: int, now, actor: str, note: str | None = None) -> dict:
    """Clear a live flag; FlagError if missing or already cleared."""
    return _step(conn, flag_id, "cleared", now, actor, note)
