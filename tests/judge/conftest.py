"""A controlled bounce stream into a real, migrated SQLite store, judged incrementally."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from bounce_handler.judge import lean
from bounce_handler.judge.rules import parse
from bounce_handler.store.lean import EVENT_COLUMNS, INSERT_EVENT, INSERT_MESSAGE, MESSAGE_COLUMNS

T0 = datetime(2026, 11, 2, 9, 0, 0)
FMT = "%Y-%m-%d %H:%M:%S.%f"


class Stream:
    """Records bounces the way store/lean.py does, then calls the judge's hook."""

    def __init__(self, path, rules: dict | None = None, conn=None) -> None:
        self.path = path
        if conn is None:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA foreign_keys=ON")
        self.conn = conn
        self.rules = parse(rules or {})
        self.n = 0

    BEGIN = "BEGIN IMMEDIATE"

    def _insert(self, sql: str, row: list) -> int:
        return self.conn.execute(sql, row).lastrowid

    def record(self, at: datetime, *events: dict, judge: bool = True) -> list:
        """One message with these events, received (and judged) at `at`."""
        self.n += 1
        ts = at.strftime(FMT)
        c = self.conn
        c.execute(self.BEGIN)
        kind = events[0].get("kind", "bounce")
        m = {"digest": f"{self.n:064d}", "received_at": ts, "source": "test", "relay": "",
             "kind": kind, "disposition": "recorded", "size": 100, "truncated": 0}
        mid = self._insert(INSERT_MESSAGE, [m.get(k) for k in MESSAGE_COLUMNS])
        rows = []
        for e in events:
            ev = {"message_id": mid, "occurred_at": ts, "kind": "bounce", "reason": "userunknown",
                  "status": "5.1.1", "hard": 1, "detector": "test", "verified": 1,
                  "sender": "alice@relay.example"}
            ev.update(e)
            ev.setdefault("recipient_domain", ev["recipient"].rpartition("@")[2])
            ev["id"] = self._insert(INSERT_EVENT, [ev.get(k) for k in EVENT_COLUMNS])
            rows.append(ev)
        decisions = lean.on_recorded(c, rows, self.rules, at) if judge else []
        c.execute("COMMIT")
        return decisions

    def bounce(self, at: datetime, recipient: str, judge: bool = True, **kw) -> list:
        return self.record(at, dict(recipient=recipient, **kw), judge=judge)

    def flags(self, live: bool = True) -> list[tuple]:
        sql = "SELECT kind, subject, state, rule FROM flags"
        if live:
            sql += " WHERE state != 'cleared'"
        return self.conn.execute(sql + " ORDER BY id").fetchall()

    def query(self, sql: str, params=()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()


class PgStream(Stream):
    """The same stream into PostgreSQL through psycopg (paramstyle %s, real booleans)."""

    BEGIN = "BEGIN"
    BOOLEANS = ("hard", "verified", "truncated")

    def _insert(self, sql: str, row: list) -> int:
        columns = sql[sql.index("(") + 1 : sql.index(")")].split(", ")
        row = [bool(v) if c in self.BOOLEANS and v is not None else v
               for c, v in zip(columns, row, strict=True)]
        sql = sql.replace("?", "%s") + " RETURNING id"
        return self.conn.execute(sql, row).fetchone()[0]

    def query(self, sql: str, params=()) -> list[tuple]:
        return self.conn.execute(sql.replace("?", "%s"), params).fetchall()


@pytest.fixture
def stream(store):
    s = Stream(store.db)
    yield s
    s.close()


@pytest.fixture
def make_stream(store, tmp_path):
    """Streams with given rules; each on its own copy of the migrated template."""
    import shutil

    made = []

    def make(rules: dict | None = None, name: str | None = None) -> Stream:
        path = store.db if name is None else tmp_path / f"{name}.db"
        if name is not None:
            shutil.copy(store.db, path)
        s = Stream(path, rules)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
