"""The direct PostgreSQL writer (store/pg.py) against a private server: same rows as the
SQLite writer, idempotent under racing processes, exit 75 when the server is not there."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from bounce_handler import intake
from bounce_handler import settings as settings_mod
from bounce_handler.errors import StoreUnavailable
from bounce_handler.store import pg
from tests.conftest import script
from tests.e2e.dsn import dsn, xverp_token
from tests.e2e.helpers import pg_query

pytestmark = pytest.mark.postgresql

NOW = 1_795_000_000.5


def config(tmp_path, url):
    path = tmp_path / "pg.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\npg_mode = "direct"\nbusy_timeout = 5.0\n'
        '[log]\ntarget = "stderr"\n[intake]\nrelay = "writer-test"\n'
    )
    return path


def handler(cfg, extension, data):
    return subprocess.run(
        [script("bounce-handler"), "--config", str(cfg), "--", extension],
        input=data,
        capture_output=True,
        timeout=60,
    )


def test_record_writes_typed_rows_and_a_duplicate_is_not_a_second(pg_db):
    s = settings_mod.from_dict(
        {"database": {"url": pg_db, "pg_mode": "direct"}, "intake": {"relay": "r"}}
    )
    rcpt = "hana@example.net"
    raw = dsn(rcpt, bounce_to="bounces@relay.test")
    env = intake.Envelope(extension=xverp_token(rcpt), recipient="bounces@relay.test")
    out = intake.process(raw, env, s, NOW, writer=pg.writer_for_settings(s))
    assert out.name == "recorded"
    again = intake.process(raw, env, s, NOW + 60, writer=pg.writer_for_settings(s))
    assert (again.name, again.message_id) == ("duplicate", out.message_id)
    rows = pg_query(
        pg_db,
        "SELECT e.recipient, e.hard, e.verified, e.occurred_at, m.truncated, length(r.content) > 0"
        " FROM bounce_events e JOIN messages m ON m.id = e.message_id"
        " JOIN raw_messages r ON r.message_id = m.id",
    )
    assert rows == [
        (
            rcpt,
            True,
            False,
            datetime.fromtimestamp(NOW, UTC).replace(tzinfo=None),
            False,
            True,
        )
    ]


def test_racing_deliveries_of_one_message_give_one_row(tmp_path, pg_db):
    """Eight processes deliver the very same bytes at once (a redelivery racing the first
    delivery, or a message handed to several relays' pipes): ON CONFLICT makes one row."""
    cfg = config(tmp_path, pg_db)
    rcpt = "ivan@example.org"
    data = dsn(rcpt, bounce_to="bounces@relay.test")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: handler(cfg, xverp_token(rcpt), data), range(8)))
    assert [r.returncode for r in results] == [0] * 8, [r.stdout for r in results]
    outcomes = sorted(r.stdout.split(b":")[0] for r in results)
    assert outcomes == [b"duplicate"] * 7 + [b"recorded"]
    assert pg_query(pg_db, "SELECT count(*) FROM messages") == [(1,)]
    assert pg_query(pg_db, "SELECT count(*) FROM bounce_events") == [(1,)]


def test_many_processes_many_messages_none_lost(tmp_path, pg_db):
    cfg = config(tmp_path, pg_db)
    msgs = [
        (f"u{i}@example.com", dsn(f"u{i}@example.com", bounce_to="b@relay.test")) for i in range(16)
    ]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda m: handler(cfg, xverp_token(m[0]), m[1]).returncode, msgs))
    assert codes == [0] * len(msgs)
    got = pg_query(pg_db, "SELECT recipient FROM bounce_events ORDER BY recipient")
    assert sorted(r for (r,) in got) == sorted(m[0] for m in msgs)


def test_server_unreachable_is_exit_75_with_the_reason(tmp_path, pg_server):
    url = f"postgresql+psycopg://bounce:s3cretpw@127.0.0.1:{pg_server.port + 1}/nowhere"
    res = handler(config(tmp_path, url), "a=b.example", dsn("a@b.example", bounce_to="x@y"))
    assert res.returncode == 75
    assert res.stdout.startswith(b"deferred: cannot connect to PostgreSQL 127.0.0.1:")
    assert b"s3cretpw" not in res.stdout + res.stderr


def test_schema_missing_is_exit_75_naming_the_fix(tmp_path, pg_server):
    url = pg_server.create_database("never_migrated")
    res = handler(config(tmp_path, url), "a=b.example", dsn("a@b.example", bounce_to="x@y"))
    assert res.returncode == 75
    assert b"bounces db upgrade" in res.stdout


def test_urls_and_redaction():
    assert pg.libpq_url("postgresql+psycopg://u:p@h:5/d?sslmode=require") == (
        "postgresql://u:p@h:5/d?sslmode=require"
    )
    with pytest.raises(StoreUnavailable):
        pg.libpq_url("sqlite:////x.db")
    assert pg.redact("failed for u:p%40ss", "postgresql://u:p%40ss@h/d") == "failed for u:***"
    assert pg.redact("failed for p@ss", "postgresql://u:p%40ss@h/d") == "failed for ***"
