"""`bounces db upgrade` / `downgrade base` / `upgrade` again on both engines, through the CLI,
and the migrated schema equals the models on each (alembic autogenerate finds nothing)."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import create_engine, inspect

from bounce_handler.store.engine import head_revision
from bounce_handler.store.models import Base
from tests.conftest import script


def bounces(cfg, *args):
    return subprocess.run(
        [script("bounces"), "--config", str(cfg), "db", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def up_down_up(tmp_path, url):
    cfg = tmp_path / "m.toml"
    cfg.write_text(f'[database]\nurl = "{url}"\n')
    assert bounces(cfg, "current").returncode == 1  # not migrated yet: non-zero
    res = bounces(cfg, "upgrade")
    assert res.returncode == 0, res.stderr
    assert head_revision() in res.stdout
    assert bounces(cfg, "current").returncode == 0
    eng = create_engine(url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(eng).get_table_names())
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        with eng.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        res = bounces(cfg, "downgrade", "base")
        assert res.returncode == 0, res.stderr
        inspector = inspect(eng)
        assert set(inspector.get_table_names()) <= {"alembic_version"}
        res = bounces(cfg, "upgrade")
        assert res.returncode == 0, res.stderr
        assert set(Base.metadata.tables) <= set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_migrations_up_down_up_on_sqlite(tmp_path):
    up_down_up(tmp_path, f"sqlite:///{tmp_path}/m.db")


@pytest.mark.postgresql
def test_migrations_up_down_up_on_postgresql(tmp_path, pg_server):
    up_down_up(tmp_path, pg_server.create_database("migrations"))
