"""The schema is defined once: the lean writer's SQL and the migrations match the models."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from bounce_handler import intake, settings
from bounce_handler.store import engine, lean
from bounce_handler.store.models import Base, BounceEvent, Message, Quarantine, RawMessage

TABLES = {
    "messages": lean.MESSAGE_COLUMNS,
    "bounce_events": lean.EVENT_COLUMNS,
    "raw_messages": lean.RAW_COLUMNS,
    "quarantine": lean.QUARANTINE_COLUMNS,
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_lean_columns_exist_and_cover_required_ones(table):
    model = Base.metadata.tables[table]
    cols = set(TABLES[table])
    assert cols <= set(model.columns.keys()), cols - set(model.columns.keys())
    # NOT NULL without a default must be written; "id" is the autoincrement key.
    required = {
        c.name
        for c in model.columns
        if not c.nullable and c.default is None and c.server_default is None and c.name != "id"
    }
    assert required <= cols, f"{table}: lean writer misses NOT NULL {required - cols}"


def test_known_revisions_end_at_alembic_head():
    assert lean.KNOWN_REVISIONS[-1] == engine.head_revision()


def test_migrations_match_the_models(tmp_path):
    """Autogenerate against a migrated database finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path}/m.db"
    engine.upgrade(settings.from_dict({"database": {"url": url}}))
    eng = create_engine(url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert diff == []


def test_migrations_up_and_down(tmp_path):
    url = f"sqlite:///{tmp_path}/ud.db"
    s = settings.from_dict({"database": {"url": url}})
    engine.upgrade(s)
    assert engine.current_revision(s) == engine.head_revision()
    eng = create_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(eng).get_table_names())
    engine.downgrade(s, "base")
    assert engine.current_revision(s) is None
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    engine.upgrade(s)
    assert engine.current_revision(s) == engine.head_revision()
    eng.dispose()


def test_sqlite_store_is_wal(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    engine.upgrade(settings.from_dict({"database": {"url": url}}))
    conn = sqlite3.connect(f"{tmp_path}/w.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_lean_rows_read_back_through_the_models(store):
    """What the hot path writes, SQLAlchemy reads with the right types (dates, booleans)."""
    s = settings.load(str(store.config))
    raw = b"not a bounce at all\n"
    env = intake.Envelope(extension="a=b.example", sender="", recipient="bounces+a=b.example@r")
    now = 1_795_000_000.25
    out = intake.process(raw, env, s, now)
    assert out.name == "quarantined"
    eng = create_engine(store.url)
    with Session(eng) as session:
        m = session.scalars(select(Message)).one()
        assert m.received_at == datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
        assert m.received_at.microsecond == 250000
        assert m.truncated is False and m.disposition == "quarantined"
        q = session.scalars(select(Quarantine)).one()
        assert q.message_id == m.id and q.reason == "unparseable"
        r = session.get(RawMessage, m.id)
        import zlib

        assert zlib.decompress(r.content) == raw
        assert session.scalars(select(BounceEvent)).all() == []
    eng.dispose()


def test_utc_text_matches_sqlalchemy_format():
    assert intake.utc_text(0.5) == "1970-01-01 00:00:00.500000"
