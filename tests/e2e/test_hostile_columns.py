"""Every text column of the models, fed hostile text through the real pipe, into every store.

Issue 14, items 2 and 3: ``recipient_domain`` was the one column not cleaned, and one NUL in
it wedged the PostgreSQL spool drain (its insert failed with DataError, mapped to "store
unavailable"); in direct mode the same bounce deferred forever; a signed token whose
punycode decoded to ``a@b\\ud800.example`` made every store raise UnicodeEncodeError and
the pipe exit 75 on every retry.  Now every writer builds its values through one cleaning
boundary (store/rows.py).

The columns come from the models themselves (``Base.metadata``), and each is either fed
hostile text by one of the two messages below (``INJECTED``), reduced by the parser to a
fixed shape (``SHAPED``), or made by this program (``OURS``); a column added to the models
and not sorted here fails ``test_every_text_column_is_accounted_for``.  For each store --
SQLite, PostgreSQL through the spool and the daemon's drain, PostgreSQL written directly
by the pipe -- the real ``bounce-handler`` exits 0 for both messages, and every stored
text value is one PostgreSQL and SQLite take: no NUL, no lone surrogate, within the
column's size, one printable line where the column is a String.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess

import pytest
from sqlalchemy import String, Text

from bounce_handler import verp
from bounce_handler.store.models import Base
from tests.conftest import SAMPLES, script

TABLES = ("messages", "bounce_events", "quarantine", "raw_messages")

# Hostile text: NUL, ESC, a bidi override, a C1 CSI (U+009B: ESC [ on an 8-bit terminal).
MARK = "q\x00u\x1bi\u202e\u009bt"
# What of it a one-line (String) column keeps: the letters, the rest made visible.  A Text
# column (a diagnostic: several lines) keeps its control characters but never a NUL;
# showing them harmlessly is the terminal's and the CSV writer's business (issue 14 item 6).
MARK_STORED = "q\ufffdu\ufffdi\ufffd\ufffdt"
MARK_STORED_TEXT = "q\ufffdu\x1bi\u202e\u009bt"
# argv cannot carry NUL (execve takes C strings): \x01 instead, and a byte that is not UTF-8
# (Python hands it over as the lone surrogate \udcff, PEP 383).
ARGV_MARK = "q\x01u\x1bi\u202e\u009bt".encode() + b"\xff"

INJECTED = {
    "messages": {
        "queue_id", "envelope_sender", "envelope_recipient", "original_recipient",
        "extension", "header_message_id", "subject",
    },
    "bounce_events": {
        "recipient", "recipient_domain", "original_recipient", "action", "diagnostic",
        "remote_mta", "sender", "sasl_login", "verp_token", "original_message_id",
    },
}
# Parsed into a fixed shape whatever the message says (d.d.d, three digits).
SHAPED = {"bounce_events": {"status", "reply_code"}}
# Written by this program: hashes, names, reasons; relay comes from the (validated) config.
OURS = {
    "messages": {"digest", "source", "relay", "kind", "disposition", "note", "detector"},
    "bounce_events": {"kind", "reason", "detector", "verify_reason",
                      # trust.py: a fixed vocabulary, a hash, the signed part of a token
                      # that verified (so only [a-z0-9=._-], verp.py)
                      "origin", "sender_source", "failure_key", "token_key"},
    "quarantine": {"reason", "detail"},
    "raw_messages": {"compression"},
}


def text_columns(table: str) -> dict[str, tuple[int | None, bool]]:
    """Column -> (size or None, one line?) for every String/Text column of a model."""
    out = {}
    for col in Base.metadata.tables[table].columns:
        if isinstance(col.type, Text):
            out[col.name] = (None, False)
        elif isinstance(col.type, String):
            out[col.name] = (col.type.length, True)
    return out


def test_every_text_column_is_accounted_for():
    for table in TABLES:
        sorted_here = INJECTED.get(table, set()) | SHAPED.get(table, set()) | OURS[table]
        assert set(text_columns(table)) == sorted_here, table


def encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def hostile_dsn() -> bytes:
    """Sample 01 with MARK in every field a stranger writes."""
    m = MARK
    dsn = (SAMPLES / "01-postfix-user-unknown.eml").read_text()
    for old, new in (
        ("Original-Recipient: rfc822;alice@example.net",
         f"Original-Recipient: rfc822;orig{m}@example.net"),
        ("Action: failed", f"Action: failed{m}"),
        ("Remote-MTA: dns; mail.example.net", f"Remote-MTA: dns; mail{m}.example.net"),
        ("Diagnostic-Code: smtp; 550 5.1.1", f"Diagnostic-Code: smtp; 550 5.1.1 {m}"),
        ("Message-ID: <offer-20261124-0001@shop.example>", f"Message-ID: <offer{m}@shop.example>"),
        ("Subject: Your weekly offers", f"Subject: {encoded_word('Your ' + m + ' offers')}"),
        ("Received: from relay.example (relay.example [198.51.100.7])",
         f"Received: from relay.example (Authenticated sender: sasl{m})"),
    ):
        assert old in dsn, old
        dsn = dsn.replace(old, new)
    # What pipe(8)'s flags=DOR prepend: the envelope, as Postfix saw it.
    head = f"Return-Path: <env{m}@x.example>\nDelivered-To: rcpt{m}@relay\nX-Original-To: xo{m}@r\n"
    return (head + dsn).encode()


def signed_extension(key_file: str) -> str:
    """A correctly signed token whose sender and recipient decode to NUL, ESC and a lone
    surrogate (issue 14 item 3: punycode decoding to a@b\\ud800.example)."""
    ring = verp.load_keys(key_file)
    return verp.make_token(
        f"r{MARK}@dom{MARK}\ud800.example", f"snd{MARK}\udfff@corp.example", ring, 1.8e9
    )


def write_config(root, url: str, mode: str | None) -> str:
    key_file = root / "verp.keys"
    key_file.write_text("a " + "ab" * 32 + "\n")
    spool = root / "spool"
    for sub in ("", "tmp", "new", "bad"):
        os.makedirs(spool / sub, exist_ok=True)
    cfg = root / "config.toml"
    pg = f'pg_mode = "{mode}"\nspool_dir = "{spool}"\n' if mode else ""
    cfg.write_text(
        f'[database]\nurl = "{url}"\n{pg}[log]\ntarget = "stderr"\n'
        f'[intake]\nrelay = "test-relay"\n[verp]\nkey_file = "{key_file}"\n'
    )
    return str(cfg)


def deliver_both(cfg: str, key_file: str, said: bytes = b"recorded: ") -> None:
    """Message A (hostile fields and argv) and message B (the signed hostile token)."""
    raw = hostile_dsn()
    a_args = (b"--queue-id", b"Q" + ARGV_MARK, b"--", b"e" + ARGV_MARK + b"=x.example")
    b_args = ("--", signed_extension(key_file))
    for args in (a_args, b_args):
        proc = subprocess.run(
            [script("bounce-handler"), "--config", cfg, *args],
            input=raw, capture_output=True, timeout=120,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-2000:]
        assert b"Traceback" not in out
        assert proc.stdout.startswith(said), out[-2000:]


def stored_rows(url: str) -> dict[str, list[dict]]:
    """Every row of TABLES, as dicts, from SQLite or PostgreSQL."""
    out = {}
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        conn.row_factory = sqlite3.Row
        for t in TABLES:
            out[t] = [dict(r) for r in conn.execute(f"SELECT * FROM {t}")]
        conn.close()
        return out
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for t in TABLES:
            out[t] = conn.cursor(row_factory=dict_row).execute(f"SELECT * FROM {t}").fetchall()
    return out


def check_stored(url: str) -> None:
    data = stored_rows(url)
    assert len(data["messages"]) == 2
    assert len(data["bounce_events"]) == 2
    reached: dict[str, set[str]] = {t: set() for t in INJECTED}
    for table in TABLES:
        cols = text_columns(table)
        for row in data[table]:
            for col, (size, one_line) in cols.items():
                value = row[col]
                if value is None:
                    continue
                where = f"{table}.{col} = {value!r}"
                assert "\x00" not in value, where
                value.encode("utf-8")  # no lone surrogate survived
                assert size is None or len(value) <= size, where
                if one_line:
                    assert value.isprintable(), where
                if (MARK_STORED if one_line else MARK_STORED_TEXT) in value and table in reached:
                    reached[table].add(col)
    # The hostile text did reach every injected column (so each was really tested).
    for table, cols in INJECTED.items():
        assert reached[table] == cols, f"{table}: not reached: {cols - reached[table]}"
    domains = {e["recipient_domain"] for e in data["bounce_events"]}
    assert f"dom{MARK_STORED}\ufffd.example" in domains  # the NUL/surrogate domain, kept


def test_sqlite(tmp_path, store):
    cfg = write_config(tmp_path, store.url, None)
    deliver_both(cfg, str(tmp_path / "verp.keys"))
    check_stored(store.url)


@pytest.mark.postgresql
@pytest.mark.parametrize("mode", ["spool", "direct"])
def test_postgresql(tmp_path, pg_db, mode):
    cfg = write_config(tmp_path, pg_db, mode)
    # Spool mode says "spooled": the rows are in the spool, not yet in the database.
    deliver_both(cfg, str(tmp_path / "verp.keys"),
                 b"spooled: " if mode == "spool" else b"recorded: ")
    if mode == "spool":
        # The daemon's drain, as cron or systemd runs it.
        proc = subprocess.run(
            [script("bounces"), "--config", cfg, "daemon", "--drain-once"],
            capture_output=True, timeout=120,
        )
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        assert proc.returncode == 0, out
        assert "drained 2, duplicates 0, bad 0, left 0" in out, out
        assert os.listdir(tmp_path / "spool" / "new") == []
        assert os.listdir(tmp_path / "spool" / "bad") == []
    check_stored(pg_db)
