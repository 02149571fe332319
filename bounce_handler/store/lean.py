"""The hot-path writer: one bounce into SQLite through the stdlib ``sqlite3`` module.

The pipe runs once per bounce, so it cannot pay SQLAlchemy's ~300 ms import; it writes the
same tables through the DB-API instead.  The column lists below are the contract with
``store/models.py``; ``tests/test_store_schema.py`` proves every statement here names real
columns and covers every NOT NULL column without a default.

One transaction per message, ``BEGIN IMMEDIATE`` so concurrent pipes queue on SQLite's
write lock (for at most ``[database] busy_timeout`` seconds) instead of failing half-way.
The idempotency check (message digest) runs inside that transaction, so two deliveries of
the same message racing each other still give one row.
"""

from __future__ import annotations

import os
import sys

from bounce_handler.errors import StoreUnavailable


def _import_sqlite3():
    """The sqlite3 C module, without the ~4 ms a cold ``import sqlite3`` costs here.

    The ``sqlite3`` package adds to its C module ``_sqlite3`` only what this writer never
    uses (the datetime adapters: times are bound as text, and the DB-API aliases), and
    pays for it with ``datetime`` and ``collections.abc``.  ``_sqlite3`` itself imports
    ``functools`` for one name: its module init looks up ``functools.lru_cache`` to build
    each connection's statement cache (CPython, Modules/_sqlite/module.c,
    load_functools_lru_cache).  functools drags in collections, operator, keyword,
    reprlib and types: ~3 ms of a ~10 ms interpreter start, paid per bounce.

    So when functools is not loaded yet, _sqlite3 is lent a stand-in whose ``lru_cache``
    returns the very C wrapper functools.lru_cache returns (``_functools._lru_cache_wrapper``,
    the same LRU without update_wrapper's metadata), and the stand-in is withdrawn at once:
    nothing else can see it.  Should a future CPython want more from functools, the
    ordinary import runs instead.  bench/cold_invocation.py measures the difference;
    tests/test_store_lean.py checks the statement cache still works.
    """
    if "_sqlite3" in sys.modules or "functools" in sys.modules:
        import _sqlite3

        return _sqlite3
    import _functools

    def lru_cache(maxsize=128, typed=False):
        def decorate(function):
            return _functools._lru_cache_wrapper(function, maxsize, typed, tuple)

        return decorate

    stand_in = type(sys)("functools")
    stand_in.lru_cache = lru_cache
    sys.modules["functools"] = stand_in
    try:
        import _sqlite3
    except Exception:  # noqa: BLE001 - a CPython that needs more: the ordinary import
        sys.modules.pop("_sqlite3", None)
        sys.modules.pop("functools", None)
        import _sqlite3
    finally:
        if sys.modules.get("functools") is stand_in:
            del sys.modules["functools"]
    return _sqlite3


sqlite3 = _import_sqlite3()

# The alembic revisions whose schema this writer knows. `bounces db upgrade` moves the
# database to the newest; a database at any other revision (older, or written by a newer
# bounce-handler) makes the pipe exit 75 with the reason, rather than write wrong rows.
# tests/test_store_schema.py checks the last one is alembic's head.
KNOWN_REVISIONS = ("0001", "0003")

MESSAGE_COLUMNS = (
    "digest",
    "received_at",
    "source",
    "relay",
    "queue_id",
    "envelope_sender",
    "envelope_recipient",
    "original_recipient",
    "extension",
    "kind",
    "disposition",
    "note",
    "detector",
    "size",
    "truncated",
    "header_message_id",
    "subject",
)

EVENT_COLUMNS = (
    "message_id",
    "occurred_at",
    "kind",
    "recipient",
    "recipient_domain",
    "original_recipient",
    "action",
    "status",
    "reply_code",
    "reason",
    "hard",
    "diagnostic",
    "remote_mta",
    "detector",
    "sender",
    "sasl_login",
    "verp_token",
    "verified",
    "verify_reason",
    "original_message_id",
)

RAW_COLUMNS = ("message_id", "stored_at", "compression", "content")
QUARANTINE_COLUMNS = ("message_id", "created_at", "reason", "detail")


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


INSERT_MESSAGE = _insert("messages", MESSAGE_COLUMNS)
INSERT_EVENT = _insert("bounce_events", EVENT_COLUMNS)
INSERT_RAW = _insert("raw_messages", RAW_COLUMNS)
INSERT_QUARANTINE = _insert("quarantine", QUARANTINE_COLUMNS)


def sqlite_path(url: str) -> str:
    """The file path of a sqlite:/// URL (SQLAlchemy's form: four slashes = absolute)."""
    if not url.startswith("sqlite:///"):
        raise StoreUnavailable(f"not a SQLite URL: {url.split(':', 1)[0]}:...")
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise StoreUnavailable("an in-memory SQLite database cannot keep bounces")
    return path


class SqliteWriter:
    """Writes one Batch per call; see ``intake.Batch`` for what a batch holds."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout

    def _connect(self):
        if not os.path.exists(self.path):
            raise StoreUnavailable(
                f"database {self.path} does not exist: run `bounces db upgrade`"
            )
        try:
            # mode=rw: never create an empty file the schema check would then reject.
            conn = sqlite3.connect(
                f"file:{self.path}?mode=rw",
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,
            )
            # synchronous stays at SQLite's default FULL: exit 0 tells Postfix to delete its
            # copy, so the commit must be on disk first (NORMAL can lose the last commits
            # of a WAL database on power loss). WAL mode itself is persistent, set by the
            # migrations' connection (store/engine.py) when the file is created.
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            raise StoreUnavailable(_explain(e, self.path, self.busy_timeout)) from None
        return conn

    def record(self, batch, judge=None) -> tuple[int, bool]:
        """Write the batch; return (message row id, created). created=False: a duplicate.

        ``judge``, when given, is called as judge(conn, event_rows, now) inside the same
        transaction after the events are inserted (incremental flag evaluation), so a
        flag and the bounce that raised it commit together.
        """
        conn = self._connect()
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
                _check_schema(conn)
                row = conn.execute(
                    "SELECT id FROM messages WHERE digest = ?", (batch.message["digest"],)
                ).fetchone()
                if row is not None:
                    conn.execute("ROLLBACK")
                    return row[0], False
                m = batch.message
                cur = conn.execute(INSERT_MESSAGE, [m.get(c) for c in MESSAGE_COLUMNS])
                message_id = cur.lastrowid
                if batch.raw is not None:
                    conn.execute(
                        INSERT_RAW, (message_id, m["received_at"], "zlib", batch.raw)
                    )
                for ev in batch.events:
                    ev["message_id"] = message_id
                    ev["id"] = conn.execute(
                        INSERT_EVENT, [ev.get(c) for c in EVENT_COLUMNS]
                    ).lastrowid
                if batch.quarantine is not None:
                    q = batch.quarantine
                    conn.execute(
                        INSERT_QUARANTINE,
                        (message_id, m["received_at"], q["reason"], q.get("detail")),
                    )
                if judge is not None and batch.events:
                    judge(conn, batch.events, batch.now)
                conn.execute("COMMIT")
                return message_id, True
            except sqlite3.Error as e:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise StoreUnavailable(_explain(e, self.path, self.busy_timeout)) from None
        finally:
            conn.close()


NOT_INITIALISED = "database schema not initialised: run `bounces db upgrade`"


def check_revision(row) -> None:
    """Raise StoreUnavailable unless alembic_version's row is a revision this code knows.

    Shared by the SQLite and PostgreSQL writers.
    """
    if row is None or row[0] not in KNOWN_REVISIONS:
        raise StoreUnavailable(
            f"database schema at {row[0] if row else 'none'}, this bounce-handler knows "
            f"{KNOWN_REVISIONS[-1]}: run `bounces db upgrade`"
        )


def _check_schema(conn) -> None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        raise StoreUnavailable(NOT_INITIALISED) from None
    check_revision(row)


def _explain(e: sqlite3.Error, path: str, timeout: float) -> str:
    """One line for mailq: which file, and why, in the administrator's words."""
    text = str(e)
    if "locked" in text or "busy" in text:
        return f"database {path} locked for more than {timeout:g}s"
    if "readonly" in text or "read-only" in text:
        return f"database {path} is read-only for uid {os.getuid()}"
    if "unable to open" in text:
        return f"cannot open database {path} as uid {os.getuid()} (file or directory mode?)"
    if "full" in text:
        return f"disk full writing {path}"
    return f"database {path}: {text}"
