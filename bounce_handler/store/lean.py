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

from bounce_handler.errors import StoreUnavailable, UnstorableMessage
from bounce_handler.store import rows


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
KNOWN_REVISIONS = ("0004",)

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
    "origin",
    "sender_source",
    "sasl_verified",
    "failure_key",
    "token_key",
    "duplicate_of",
    "replay_of",
    "queued_of",
)

RAW_COLUMNS = ("message_id", "stored_at", "compression", "content")
QUARANTINE_COLUMNS = ("message_id", "created_at", "reason", "detail")


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


INSERT_MESSAGE = _insert("messages", MESSAGE_COLUMNS)
INSERT_EVENT = _insert("bounce_events", EVENT_COLUMNS)
INSERT_RAW = _insert("raw_messages", RAW_COLUMNS)
INSERT_QUARANTINE = _insert("quarantine", QUARANTINE_COLUMNS)

# The first stored copy of a failure, and the first row of a token (trust.py): min(id)
# over the (key, id) indexes, one probe each.
LINK_FAILURE = "SELECT min(id) FROM bounce_events WHERE failure_key = ?"
LINK_TOKEN = "SELECT min(id) FROM bounce_events WHERE token_key = ?"
# The live queue's row for this recipient of this message (livequeue.py), if any.
LINK_QUEUED = "SELECT min(id) FROM bounce_events WHERE failure_key = ? AND origin = 'queue'"


def link_copies(one, ev: dict) -> None:
    """Set an event's ``duplicate_of`` and ``replay_of`` from the rows stored before it.

    ``one(sql, params)`` runs a query (qmark style) and returns its first row; the event
    is inserted right after, in the same transaction, so the links see every earlier
    row, this message's included.  Local rows are never replays: the relay's own queue
    file vouches for each of them (trust.py), so only their failure is linked.  A final
    DSN of a recipient the live queue showed deferred carries ``queue_key`` (intake.py):
    the link to that queue row is ``queued_of`` (it no longer counts for R8).
    """
    key = ev.get("failure_key")
    if key:
        row = one(LINK_FAILURE, (key,))
        ev["duplicate_of"] = row[0] if row else None
    queued = ev.get("queue_key")
    if queued:
        row = one(LINK_QUEUED, (queued,))
        ev["queued_of"] = row[0] if row else None
    token = ev.get("token_key")
    if token and ev.get("origin") != "local":
        row = one(LINK_TOKEN, (token,))
        ev["replay_of"] = row[0] if row else None


def insert_events(conn, events: list, message_id: int) -> None:
    """Link, clean and insert a message's events through a sqlite3 connection (ids set)."""

    def one(sql, params):
        return conn.execute(sql, params).fetchone()

    for ev in events:
        ev["message_id"] = message_id
        link_copies(one, ev)
        ev["id"] = conn.execute(
            INSERT_EVENT, rows.values("bounce_events", ev, EVENT_COLUMNS)
        ).lastrowid


def sqlite_path(url: str) -> str:
    """The file path of a sqlite:/// URL, exactly as SQLAlchemy reads it.

    Four slashes = absolute.  SQLAlchemy (2.0, ``make_url``) takes everything up to the
    first "?" literally: no percent-decoding, "#" is an ordinary character; so does this,
    and ``bounces db upgrade`` and the pipe name the same file (tests/test_store_lean.py).
    """
    if not url.startswith("sqlite:///"):
        raise StoreUnavailable(f"not a SQLite URL: {url.split(':', 1)[0]}:...")
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        raise StoreUnavailable("an in-memory SQLite database cannot keep bounces")
    return path


def sqlite_uri(path: str) -> str:
    """The read-write ``file:`` URI (RFC 3986, SQLite's URI filenames) of the file `path`.

    In a URI "?" starts the query, "#" the fragment and "%" an escape, so a path holding
    any of them named another file ("/srv/a#b/x.db" opened "/srv/a"): they are escaped.
    ``mode=rw`` never creates an empty file the schema check would then reject.
    """
    escaped = path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    if escaped.startswith("//"):  # "file://x" would make x an authority
        escaped = "/" + escaped.lstrip("/")
    return f"file:{escaped}?mode=rw"


class SqliteWriter:
    """Writes one Batch per call; see ``intake.Batch`` for what a batch holds."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout

    def connect(self):
        """A connection in autocommit mode (StoreUnavailable if there is none).

        For a caller that groups several batches in one transaction of its own, with
        ``write`` (livequeue.py).
        """
        return self._connect()

    def _connect(self):
        if not os.path.exists(self.path):
            raise StoreUnavailable(
                f"database {self.path} does not exist: run `bounces db upgrade`"
            )
        try:
            conn = sqlite3.connect(
                sqlite_uri(self.path),
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
                message_id = write(conn, batch, judge)
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


# Errors that say "these values cannot be stored", not "the store cannot write now":
# a constraint (IntegrityError), a value SQLite refuses (DataError: SQLITE_TOOBIG), text
# no driver can encode (UnicodeEncodeError).  They come back on every retry, so the
# message is set aside (store/rows.py) instead; locked, full, read-only, I/O errors
# (OperationalError) stay StoreUnavailable and are retried.
DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.DataError, UnicodeEncodeError)


class RowsRefused(Exception):
    """The store refused a batch's own rows (a data error); ``why`` says what it said."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def refusal(e: BaseException) -> str:
    """One line saying which data error the store raised (for the quarantine row)."""
    text = str(e).strip().splitlines()
    return f"store refused the message's rows: {type(e).__name__}: {text[0] if text else ''}"


def insert_rows(conn, batch) -> int:
    """INSERT the batch's rows (SQLite); return the message id. Raises RowsRefused.

    Values go through ``rows.values`` (the one cleaning); the events get their ``id``
    and ``message_id`` for the judge hook.
    """
    m = batch.message
    try:
        message_id = conn.execute(
            INSERT_MESSAGE, rows.values("messages", m, MESSAGE_COLUMNS)
        ).lastrowid
        if batch.raw is not None:
            conn.execute(INSERT_RAW, (message_id, m["received_at"], "zlib", batch.raw))
        insert_events(conn, batch.events, message_id)
        if batch.quarantine is not None:
            q = rows.clean_row("quarantine", batch.quarantine)
            conn.execute(
                INSERT_QUARANTINE, (message_id, m["received_at"], q["reason"], q.get("detail"))
            )
    except DATA_ERRORS as e:
        raise RowsRefused(refusal(e)) from None
    return message_id


def write(conn, batch, judge=None, isolate: bool = True) -> int:
    """Write one batch inside the caller's open transaction; return its message id.

    The batch's work is isolated by a savepoint, so a failure undoes this message alone
    (the LMTP group committer writes many messages in one transaction).  When SQLite
    refuses its rows (``RowsRefused``), the message is set aside (``rows.set_aside``:
    quarantined with why) and written again; UnstorableMessage if even that is refused.
    The judge hook then runs on the events as stored.  sqlite3.OperationalError and the
    judge's own errors propagate (the caller decides: an outage, or this message's bug).

    ``isolate=False`` skips the savepoint, for a caller that rolls back its whole
    transaction on any error and then writes the batches again with ``isolate=True``
    (SqliteGroupCommitter): a savepoint makes SQLite copy every page the message touches
    into its statement journal first (~0.07 ms of CPU a bounce, a fifth of the SQL time
    of bench/storm.py's LMTP mode), paid for the rare message that fails.  Without it the
    rows are written as they are (no set-aside): ``RowsRefused`` and the judge's errors
    propagate, with part of this message's rows left in the transaction.
    """
    rows.clean_batch(batch)
    if not isolate:
        message_id = insert_rows(conn, batch)
        if judge is not None and batch.events:
            judge(conn, batch.events, batch.now)
        return message_id
    conn.execute("SAVEPOINT batch")
    try:
        try:
            message_id = insert_rows(conn, batch)
        except RowsRefused as e:
            conn.execute("ROLLBACK TO SAVEPOINT batch")
            rows.set_aside(batch, e.why)
            try:
                message_id = insert_rows(conn, batch)
            except RowsRefused as again:
                raise UnstorableMessage(again.why) from None
        if judge is not None and batch.events:
            judge(conn, batch.events, batch.now)
    except BaseException:
        try:
            conn.execute("ROLLBACK TO SAVEPOINT batch")
            conn.execute("RELEASE SAVEPOINT batch")
        except sqlite3.Error:
            pass  # the transaction itself is gone (the caller rolls back)
        raise
    conn.execute("RELEASE SAVEPOINT batch")
    return message_id


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
