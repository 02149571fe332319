"""A tiny DB-API adapter so the judge's SQL runs on sqlite3 and on psycopg alike.

The statements are written once, with qmark placeholders (sqlite3's paramstyle); on a
psycopg connection (paramstyle ``format``) they are rewritten to ``%s`` once and cached.
The statements therefore never contain a literal ``?`` or ``%``: LIKE patterns are
parameters.  The judge's times (epoch microseconds, judge/utc.py) go to SQLite as the
exact text SQLAlchemy's DateTime stores (``YYYY-MM-DD HH:MM:SS.ffffff``: comparisons
there are text comparisons) and to PostgreSQL as naive UTC datetimes.  Both accept
``INSERT ... RETURNING`` (SQLite since 3.35) and ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from bounce_handler.judge.utc import text, to_datetime


class Db:
    """Wraps one DB-API connection (sqlite3 or psycopg 3)."""

    __slots__ = ("conn", "pg", "_cache")

    def __init__(self, conn) -> None:
        self.conn = conn
        self.pg = type(conn).__module__.startswith("psycopg")
        self._cache: dict[str, str] = {}

    def _sql(self, sql: str) -> str:
        if not self.pg:
            return sql
        out = self._cache.get(sql)
        if out is None:
            out = self._cache[sql] = sql.replace("?", "%s")
        return out

    def ts(self, us: int):
        """A time (epoch microseconds) as this database compares it."""
        # psycopg has imported datetime already; the pipe's SQLite path never does.
        return to_datetime(us) if self.pg else text(us)

    def run(self, sql: str, params=()):
        """Execute; return the cursor."""
        return self.conn.execute(self._sql(sql), params)

    def one(self, sql: str, params=()):
        """The first row, or None."""
        return self.conn.execute(self._sql(sql), params).fetchone()

    def all(self, sql: str, params=()) -> list:
        """All rows."""
        return self.conn.execute(self._sql(sql), params).fetchall()

    def many(self, sql: str, rows) -> None:
        """Execute once per row of parameters (sqlite3 and psycopg batch it)."""
        if not rows:
            return
        cur = self.conn.cursor()
        try:
            cur.executemany(self._sql(sql), rows)
        finally:
            cur.close()


def marks(n: int) -> str:
    """'?, ?, ?' for an IN list of n values."""
    return ", ".join("?" * n)
