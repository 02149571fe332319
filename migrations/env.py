"""Alembic environment: the URL comes from the application's settings, never from alembic.ini.

``bounce_handler.store.engine.alembic_config`` builds the Config object and passes the URL
in ``config.attributes["url"]`` (or an open connection in ``config.attributes["connection"]``
for tests); there is no alembic.ini to keep in sync.
"""

from alembic import context
from sqlalchemy import create_engine, pool

from bounce_handler.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.attributes["url"],
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=config.attributes["url"].startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_engine(config.attributes["url"], poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
