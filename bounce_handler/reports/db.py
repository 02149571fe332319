"""What every report shares: the tables, a connection with clear errors, one planner hint.

Queries are SQLAlchemy Core over the models' tables (no ORM objects: the CLI prints rows),
so the same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from bounce_handler.errors import StoreUnavailable
from bounce_handler.store import models

events = models.BounceEvent.__table__
messages = models.Message.__table__
raw_messages = models.RawMessage.__table__
quarantine = models.Quarantine.__table__
flags = models.Flag.__table__
flag_events = models.FlagEvent.__table__
flag_evidence = models.FlagEvidence.__table__
alert_state = models.AlertState.__table__
alert_marks = models.AlertMark.__table__
suppressions = models.Suppression.__table__

LIVE_STATES = ("open", "acked")


class not_indexed(ColumnElement):
    """A column SQLite's planner must not use an index for (unary ``+``).

    SQLite picks ``ix_bounce_events_occurred_at`` for ``occurred_at BETWEEN ...`` whenever
    the database has no ANALYZE statistics (the pipe never runs ANALYZE), then looks up
    every row in the table to group it: 3 s over a million rows.  Writing the term as
    ``+occurred_at`` disqualifies it from driving an index
    (https://sqlite.org/optoverview.html, "Disqualifying WHERE clause terms using unary-+"),
    so the planner scans the covering (key, occurred_at) index instead: 0.25 s.  Other
    databases get the bare column.
    """

    inherit_cache = True
    _traverse_internals = ()

    def __init__(self, column) -> None:
        self.column = column
        self.type = column.type

    def _gen_cache_key(self, anon_map, bindparams):  # the wrapped column is the key
        return (type(self), self.column._gen_cache_key(anon_map, bindparams))


@compiles(not_indexed)
def _plain(element, compiler, **kw):
    return compiler.process(element.column, **kw)


@compiles(not_indexed, "sqlite")
def _unary_plus(element, compiler, **kw):
    return "+" + compiler.process(element.column, **kw)


def engine_for(settings, **kw):
    """The store's engine; a missing SQLite file is an error, never silently created."""
    import os

    from bounce_handler.store.engine import make_engine

    url = settings.database.url
    if url.startswith("sqlite:///") and url not in ("sqlite://", "sqlite:///:memory:"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if not os.path.exists(path):
            raise StoreUnavailable(f"database {path} does not exist: run `bounces db upgrade`")
    return make_engine(settings, **kw)


@contextmanager
def connect(settings, *, write: bool = False) -> Iterator:
    """A Core connection; `write=True` runs it in one transaction committed at the end.

    On SQLite a writing transaction starts with BEGIN IMMEDIATE: it takes the write lock
    up front (waiting up to busy_timeout, like the pipe does) instead of failing with
    "database is locked" half-way when a pipe process commits in between.
    """
    engine = engine_for(settings)
    if write and engine.dialect.name == "sqlite":

        @sa_event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # pysqlite would BEGIN (deferred) on its own

        @sa_event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        if write:
            with engine.begin() as conn:
                yield conn
        else:
            with engine.connect() as conn:
                yield conn
    except (OperationalError, ProgrammingError) as e:
        raise StoreUnavailable(
            _safe_text(f"{settings.database.url}: {e.orig}", settings.database.url)
        ) from None
    finally:
        engine.dispose()


@contextmanager
def connections(settings, n: int) -> Iterator[list]:
    """`n` read connections to the store at once (for queries run side by side)."""
    from contextlib import ExitStack

    engine = engine_for(settings)
    try:
        with ExitStack() as stack:
            yield [stack.enter_context(engine.connect()) for _ in range(n)]
    except (OperationalError, ProgrammingError) as e:
        raise StoreUnavailable(
            _safe_text(f"{settings.database.url}: {e.orig}", settings.database.url)
        ) from None
    finally:
        engine.dispose()


def _safe_text(text: str, url: str) -> str:
    """`text` with the URL's passwords, and any echo of them, masked."""
    from bounce_handler.redaction import redact, url_secrets

    return redact(text, *url_secrets(url))

