"""The direct PostgreSQL writer: one message per short connection, idempotent under races.

Same interface as ``store/lean.py``'s ``SqliteWriter`` (``record(batch, judge=None) ->
(message id, created)``) and the same column lists (imported from there, so the models
are matched once, by ``tests/test_store_schema.py``).  Used by the pipe with ``[database]
pg_mode = "direct"`` and by the resident daemon (spool drain, LMTP) in every mode.

Connection strategy: **no pool**.  A pipe process records one message and exits, so a pool
would only keep an idle server connection per process; there each ``record`` opens one
connection, runs one transaction and closes it.  The resident daemon (spool drain, LMTP
threads) makes its writers with ``keep_connection=True``: one connection per writer,
reused for every message, because a new PostgreSQL connection (a forked backend, the
startup packet, authentication) cost the drain more CPU than the rows it wrote.  A kept
connection found broken (the server restarted, an idle timeout) is replaced once, at
once, before the message is given up as unavailable.  A writer is used by one thread.
Either way it is what PgBouncer in *transaction* pooling mode expects of a client:
nothing outlives the transaction --
no session ``SET`` (the statement timeout is ``SET LOCAL``), no server-side prepared
statements (``prepare_threshold=None``), no session advisory locks (the copy links take
transaction-scoped ones, released at COMMIT), no LISTEN.  Put PgBouncer in
front when dozens of relays x ``maxproc`` pipes would exceed ``max_connections``
(``deploy/README.md`` has the settings).

Idempotency: the message digest is UNIQUE; ``INSERT ... ON CONFLICT (digest) DO NOTHING
RETURNING id`` makes two relays (or two redeliveries) racing on one message wait on the
index entry: the loser's insert returns nothing once the winner commits, and it reads the
winner's id -- one row, never an error, never a lost write.  If the winner rolls back,
the loser's insert goes through instead.

Failures that are not the message's fault -- server down or unreachable, authentication,
a full disk, a schema behind -- raise ``StoreUnavailable`` (the pipe exits 75, Postfix
retries).  The URL's password never appears in the text.

psycopg (~150 ms to import) is imported when the first connection is made, never at
module import.
"""

from __future__ import annotations

from bounce_handler import redaction
from bounce_handler.errors import StoreUnavailable, UnstorableMessage
from bounce_handler.store import rows
from bounce_handler.store.lean import (
    EVENT_COLUMNS,
    MESSAGE_COLUMNS,
    NOT_INITIALISED,
    QUARANTINE_COLUMNS,
    RAW_COLUMNS,
    RowsRefused,
    check_revision,
    link_copies,
    refusal,
)

# Columns that are Boolean in the models: the batch carries SQLite's 0/1, which
# PostgreSQL refuses for a boolean column ("column is of type boolean but expression is
# of type smallint").
BOOL_COLUMNS = frozenset(("truncated", "hard", "verified", "sasl_verified"))

# Seconds to wait for the TCP connection when no connect_timeout is in the URL: well under
# pipe(8)'s time limit (deploy/ sets 120 s), so an unreachable server means exit 75, not a
# timeout that makes Postfix bounce the bounce.
DEFAULT_CONNECT_TIMEOUT = 10


def _insert(table: str, columns: tuple[str, ...], tail: str = "") -> str:
    cols = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {table} ({cols}) VALUES ({marks}){tail}"


INSERT_MESSAGE = _insert(
    "messages", MESSAGE_COLUMNS, " ON CONFLICT (digest) DO NOTHING RETURNING id"
)
INSERT_EVENT = _insert("bounce_events", EVENT_COLUMNS, " RETURNING id")
INSERT_RAW = _insert("raw_messages", RAW_COLUMNS)
INSERT_QUARANTINE = _insert("quarantine", QUARANTINE_COLUMNS)


def libpq_url(url: str) -> str:
    """The libpq connection URI for a SQLAlchemy URL (``postgresql+psycopg://`` → ``postgresql://``).

    SQLAlchemy and libpq percent-decode user, password and database the same way, and
    libpq takes the query string (``?sslmode=require&connect_timeout=5``) as parameters.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise StoreUnavailable(f"not a PostgreSQL URL: {scheme or url[:20]}:...")
    return "postgresql://" + rest


def redact(text: str, url: str) -> str:
    """`text` without the URL's secrets (libpq echoes parts of a bad URL: "%zz")."""
    return redaction.redact(text, *redaction.url_secrets(url))


def _where(url: str) -> str:
    """host:port/db of the URL, for messages (no user, no password)."""
    rest = url.partition("://")[2]
    hostpart = rest.rpartition("@")[2]
    return hostpart.split("?", 1)[0] or "localhost"


def _bools(values: list, columns: tuple[str, ...]) -> list:
    return [
        (None if v is None else bool(v)) if c in BOOL_COLUMNS else v
        for c, v in zip(columns, values, strict=True)
    ]


def _data_errors() -> tuple:
    """What PostgreSQL (or psycopg, before sending) says about the values themselves.

    Class 22 (data exception: NUL, a value too long, invalid text), class 23 (integrity
    constraint), 54000 (program limit: an index row too large), and text psycopg cannot
    encode.  Connection, lock, disk, permission and schema errors are not here: those
    are ``StoreUnavailable``, retried.
    """
    import psycopg

    return (
        psycopg.DataError,
        psycopg.IntegrityError,
        psycopg.errors.ProgramLimitExceeded,
        UnicodeEncodeError,
    )


class PgWriter:
    """Writes one ``intake.Batch`` per ``record`` call into PostgreSQL."""

    def __init__(self, url: str, timeout: float = 20.0, keep_connection: bool = False) -> None:
        self.url = url
        self.conninfo = libpq_url(url)
        self.timeout = timeout
        self.keep_connection = keep_connection
        self._conn = None  # the kept connection, between records

    def close(self) -> None:
        """Close the kept connection, if any (the writer stays usable: it reconnects)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection: nothing to save
                pass

    def connect(self):
        """One new connection (the caller closes it). Raises StoreUnavailable."""
        try:
            import psycopg
        except ImportError:
            raise StoreUnavailable(
                "PostgreSQL store configured but psycopg is not installed: "
                "pip install 'bounce-handler[postgresql]'"
            ) from None
        kwargs = {
            "autocommit": False,
            # Server-side prepared statements do not survive PgBouncer's transaction
            # pooling (the next transaction may run on another server connection).
            "prepare_threshold": None,
            "application_name": "bounce-handler",
        }
        if "connect_timeout" not in self.conninfo:
            kwargs["connect_timeout"] = max(1, min(int(self.timeout), DEFAULT_CONNECT_TIMEOUT))
        try:
            return psycopg.connect(self.conninfo, **kwargs)
        except psycopg.Error as e:
            raise StoreUnavailable(
                redact(
                    f"cannot connect to PostgreSQL {_where(self.url)}: {_first_line(e)}", self.url
                )
            ) from None

    def record(self, batch, judge=None) -> tuple[int, bool]:
        """Write the batch; return (message row id, created). created=False: a duplicate.

        ``judge``, when given, runs as judge(conn, event_rows, now) inside the same
        transaction after the events are inserted, as with the SQLite writer.
        """
        import psycopg

        kept, self._conn = self._conn, None
        conn = kept if kept is not None else self.connect()
        try:
            result = self._record(conn, batch, judge)
        except psycopg.Error as e:
            broken = conn.broken or conn.closed
            _discard(conn)
            if kept is not None and broken:
                # The kept connection died while idle (server restart, idle timeout):
                # nothing of this message was committed on it, or, if its COMMIT went
                # through before the break, the digest makes the retry a duplicate.
                return self.record(batch, judge)
            raise StoreUnavailable(_explain(e, self.url)) from None
        except BaseException:
            # Not the server's doing (a bug in a judge rule, an interrupt): roll back so
            # no half-written message survives on a connection that would be reused.
            _discard(conn)
            raise
        if self.keep_connection:
            self._conn = conn
        else:
            conn.close()
        return result

    def _record(self, conn, batch, judge) -> tuple[int, bool]:
        rows.clean_batch(batch)
        try:
            return self._transaction(conn, batch, judge)
        except RowsRefused as e:
            # A data error (class 22/23, a NUL psycopg will not send): the same rows would
            # be refused on every retry, and "store unavailable" here once wedged the
            # whole spool drain behind one message.  Store it set aside instead.
            conn.rollback()
            rows.set_aside(batch, e.why)
        try:
            return self._transaction(conn, batch, judge)
        except RowsRefused as e:
            conn.rollback()
            raise UnstorableMessage(e.why) from None

    def _transaction(self, conn, batch, judge) -> tuple[int, bool]:
        cur = conn.cursor()
        # Transaction-scoped (PgBouncer-safe): a lock held elsewhere past our budget ends
        # in exit 75 and a retry, not in pipe(8)'s time limit and a lost bounce.
        cur.execute(f"SET LOCAL statement_timeout = {int(self.timeout * 1000)}")
        # Exit 0 makes Postfix delete its copy, so the commit must be durable even on a
        # server (or PgBouncer pool) configured with synchronous_commit = off: with it off
        # a server crash loses the last commits (seen in tests/e2e with -m immediate).
        cur.execute("SET LOCAL synchronous_commit = on")
        _check_schema(cur)
        m = batch.message
        try:
            params = rows.values("messages", m, MESSAGE_COLUMNS)
            cur.execute(INSERT_MESSAGE, _bools(params, MESSAGE_COLUMNS))
            row = cur.fetchone()
        except _data_errors() as e:
            raise RowsRefused(refusal(e)) from None
        if row is None:
            # Someone (a redelivery, another relay) committed this digest first.
            cur.execute("SELECT id FROM messages WHERE digest = %s", (m["digest"],))
            existing = cur.fetchone()
            conn.rollback()
            if existing is None:  # pragma: no cover - only if the winner was deleted meanwhile
                raise StoreUnavailable("message digest conflict without a row; retry")
            return existing[0], False
        message_id = row[0]
        try:
            if batch.raw is not None:
                cur.execute(INSERT_RAW, (message_id, m["received_at"], "zlib", batch.raw))
            # Two relays (or the DSN and the postmaster copy of one failure, drained or
            # received side by side) must not both find "no earlier copy": a
            # transaction-scoped lock per key (PgBouncer-safe, released at COMMIT)
            # serialises them, taken in one sorted pass so two messages sharing keys
            # cannot deadlock.
            keys = sorted({k for ev in batch.events
                           for k in (ev.get("failure_key"), ev.get("token_key"),
                                     ev.get("queue_key")) if k})
            for k in keys:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (k,))

            def one(sql, params):
                cur.execute(sql.replace("?", "%s"), params)
                return cur.fetchone()

            for ev in batch.events:
                ev["message_id"] = message_id
                link_copies(one, ev)
                params = rows.values("bounce_events", ev, EVENT_COLUMNS)
                cur.execute(INSERT_EVENT, _bools(params, EVENT_COLUMNS))
                ev["id"] = cur.fetchone()[0]
            if batch.quarantine is not None:
                q = rows.clean_row("quarantine", batch.quarantine)
                cur.execute(
                    INSERT_QUARANTINE,
                    (message_id, m["received_at"], q["reason"], q.get("detail")),
                )
        except _data_errors() as e:
            raise RowsRefused(refusal(e)) from None
        if judge is not None and batch.events:
            judge(conn, batch.events, batch.now)
        conn.commit()
        return message_id, True


def _discard(conn) -> None:
    """Roll back and close a connection after a failure; errors doing so change nothing."""
    import psycopg

    try:
        conn.rollback()
    except psycopg.Error:
        pass
    try:
        conn.close()
    except psycopg.Error:
        pass


def _check_schema(cur) -> None:
    import psycopg

    try:
        cur.execute("SELECT version_num FROM alembic_version")
        row = cur.fetchone()
    except psycopg.errors.UndefinedTable:
        raise StoreUnavailable(NOT_INITIALISED) from None
    check_revision(row)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[-1].strip() if text else type(e).__name__


def _explain(e: Exception, url: str) -> str:
    """One line for mailq: which server, and why."""
    import psycopg

    where = _where(url)
    if isinstance(e, psycopg.errors.QueryCanceled):
        return f"PostgreSQL {where}: statement timed out (locks held elsewhere?)"
    if isinstance(e, psycopg.errors.DiskFull):
        return f"PostgreSQL {where}: disk full"
    if isinstance(e, psycopg.errors.InsufficientPrivilege):
        return redact(f"PostgreSQL {where}: permission denied: {_first_line(e)}", url)
    if isinstance(e, psycopg.OperationalError):
        return redact(f"PostgreSQL {where} unavailable: {_first_line(e)}", url)
    return redact(f"PostgreSQL {where}: {type(e).__name__}: {_first_line(e)}", url)


def writer_for_settings(settings, keep_connection: bool = False) -> PgWriter:
    """The writer for ``[database] url``; ``busy_timeout`` bounds each statement.

    ``keep_connection`` for a resident process (see the module docstring); the pipe
    records one message and exits, so it does not keep one.
    """
    return PgWriter(
        settings.database.url,
        timeout=settings.database.busy_timeout,
        keep_connection=keep_connection,
    )
