"""Engine, session and alembic wiring for the `bounces` CLI and the daemon (not the pipe).

SQLite gets WAL and a busy timeout on every connection (the same pragmas the lean writer
sets), PostgreSQL a NullPool: every `bounces` invocation is a short process, and a pool
would only hold connections PgBouncer could give to someone else.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, pool
from sqlalchemy.orm import Session, sessionmaker

from bounce_handler.settings import Settings

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")


def _migrations_dir() -> str:
    # Installed from a wheel: bounce_handler/migrations.  From a source checkout (editable
    # install): the top-level migrations/ directory.
    import bounce_handler.migrations as m

    return os.path.dirname(m.__file__)


def make_engine(settings: Settings, **kw) -> Engine:
    """An Engine for the configured store."""
    url = settings.database.url
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            poolclass=pool.NullPool,
            connect_args={"timeout": settings.database.busy_timeout},
            **kw,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, poolclass=pool.NullPool, **kw)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    engine = make_engine(settings)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
    engine.dispose()


def alembic_config(url: str, connection=None):
    """An alembic Config pointing at our migrations, with the URL passed in directly."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", _migrations_dir())
    cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite file (mode 0750) if it is missing."""
    if url.startswith("sqlite:///") and url not in ("sqlite://", "sqlite:///:memory:"):
        # The file SQLAlchemy and the pipe's writer open (store/lean.py sqlite_path).
        path = url[len("sqlite:///") :].split("?", 1)[0]
        d = os.path.dirname(path)
        if d and not os.path.isdir(d):
            os.makedirs(d, mode=0o750, exist_ok=True)


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    from alembic import command

    ensure_sqlite_dir(settings.database.url)
    # Through our engine, so a new SQLite file gets WAL (persistent in the file) before
    # the first pipe process opens it.
    eng = make_engine(settings)
    try:
        with eng.begin() as conn:
            command.upgrade(alembic_config(settings.database.url, conn), revision)
    finally:
        eng.dispose()


def downgrade(settings: Settings, revision: str) -> None:
    """Undo migrations down to `revision` ("base" for an empty database)."""
    from alembic import command

    eng = make_engine(settings)
    try:
        with eng.begin() as conn:
            command.downgrade(alembic_config(settings.database.url, conn), revision)
    finally:
        eng.dispose()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None when it has never been migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision in migrations/versions."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
