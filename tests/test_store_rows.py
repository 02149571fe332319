"""store/rows.py: the one cleaning boundary, its column table checked against the models.

The end-to-end half (hostile text through the real pipe into SQLite and PostgreSQL, every
text column of the models) is tests/e2e/test_hostile_columns.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import String, Text

from bounce_handler.store import lean, rows
from bounce_handler.store.models import Base

ROOT = Path(__file__).resolve().parent.parent
# The tables the intake writers fill (store/lean.py, store/pg.py, the LMTP committer).
WRITTEN = {
    "messages": lean.MESSAGE_COLUMNS,
    "bounce_events": lean.EVENT_COLUMNS,
    "raw_messages": lean.RAW_COLUMNS,
    "quarantine": lean.QUARANTINE_COLUMNS,
}


def model_text_columns(table: str) -> dict[str, tuple[int, bool]]:
    """Every text column of a model table: String(n) -> (n, one line), Text -> (cap, multi)."""
    out = {}
    for col in Base.metadata.tables[table].columns:
        if isinstance(col.type, Text):
            out[col.name] = (rows.TEXT_LIMIT, False)
        elif isinstance(col.type, String):
            assert col.type.length, f"{table}.{col.name}: a String without a size"
            out[col.name] = (col.type.length, True)
    return out


@pytest.mark.parametrize("table", sorted(WRITTEN))
def test_column_table_is_the_models(table):
    """Derived from the models: a text column added there without an entry here fails."""
    assert rows.COLUMNS[table] == model_text_columns(table)


def test_every_written_table_is_in_the_column_table():
    assert set(rows.COLUMNS) == set(WRITTEN)


TEXT = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=300
)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(min_value=1, max_value=200), st.booleans())
def test_clean_text_is_always_storable(text, limit, one_line):
    out = rows.clean_text(text, limit, one_line)
    out.encode("utf-8")  # no lone surrogate: every driver can send it
    assert "\x00" not in out  # PostgreSQL text refuses NUL
    assert len(out) <= limit
    if one_line:
        assert out.isprintable()
    assert rows.clean_text(out, limit, one_line) == out  # idempotent
    if len(text) <= limit and text.isprintable() and "\x00" not in text:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            assert out == text  # clean text is never touched


def test_clean_text_replaces_rather_than_drops():
    # Dropping the NUL would turn a forged address into a real, different one.
    assert rows.clean_text("alice@exa\x00mple.net", 512) == "alice@exa\ufffdmple.net"
    assert rows.clean_text("a@b\ud800.example", 512) == "a@b\ufffd.example"
    assert rows.clean_text("x\r\ny\tz\x1b[2J\u202e", 512) == "x  y z\ufffd[2J\ufffd"
    assert rows.clean_text("line1\nline2\x00", 100, one_line=False) == "line1\nline2\ufffd"
    assert rows.clean_text("abcdef", 4) == "abc…"
    assert rows.clean_text(None, 4) is None and rows.clean_text(7, 4) == 7


def test_clean_batch_dedupes_recipients_that_became_equal():
    long_a = "a" * 600 + "1@example.net"
    long_b = "a" * 600 + "2@example.net"
    batch = rows.Batch(
        {"digest": "d" * 64, "subject": "s\x00"},
        None,
        [{"recipient": long_a}, {"recipient": long_b}, {"recipient": "x@y"}],
        None,
        0.0,
    )
    rows.clean_batch(batch)
    assert [len(e["recipient"]) for e in batch.events] == [512, 3]
    assert batch.message["subject"] == "s\ufffd"


def test_set_aside_keeps_only_our_own_values():
    batch = rows.Batch(
        {"digest": "d" * 64, "received_at": "2026-01-01 00:00:00.000000", "source": "pipe",
         "relay": "r", "size": 10, "truncated": 0, "envelope_sender": "evil\x00",
         "subject": "x", "kind": "bounce", "disposition": "recorded"},
        b"zlib-bytes",
        [{"recipient": "a@b"}],
        None,
        1.0,
    )
    rows.set_aside(batch, "store refused the message's rows: DataError: boom")
    assert batch.events == [] and batch.raw == b"zlib-bytes"
    assert batch.quarantine == {"reason": "unstorable", "detail": batch.aside}
    assert batch.message["disposition"] == "quarantined"
    assert "envelope_sender" not in batch.message and "subject" not in batch.message
    assert batch.message["digest"] == "d" * 64  # a redelivery is still a duplicate


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_store_does_not_import_intake():
    """Arrows point down the flow (issue 15): intake feeds the store, never the reverse;
    store/spool.py and intake.py used to import each other."""
    for path in sorted((ROOT / "bounce_handler" / "store").glob("*.py")):
        assert not any(m.startswith("bounce_handler.intake") for m in _imports(path)), path
