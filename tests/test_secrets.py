"""Secrets never printed, and a SQLite path is a path (issue 14, item 7).

Before: a PostgreSQL password given as ``?password=`` was printed by `bounces db upgrade`,
`db current` and `config show` (SQLAlchemy's hide_password masks only user:password@);
a malformed ``%zz`` in it was echoed into the pipe's mailq line by libpq ('invalid
percent-encoded token: "Se%zzCret"'); a SQLite path holding "#" or "%3F" made the pipe open
another file (its ``file:`` URI was not escaped) and defer forever while `db upgrade`
reported success.  One redaction (bounce_handler/redaction.py) is used everywhere now.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from bounce_handler.redaction import redact, url_secrets
from tests.conftest import SAMPLES, script
from tests.faults.helpers import run_handler

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
SECRET = "Se%zzCret"
URLS = [
    # Nothing listens on port 1: every command fails to connect and reports why.
    f"postgresql+psycopg://bounce@127.0.0.1:1/bounces?password={SECRET}",
    f"postgresql+psycopg://bounce:{SECRET}@127.0.0.1:1/bounces",
    "postgresql+psycopg://bounce@127.0.0.1:1/bounces?sslmode=disable&password=Pl41nS3cret",
    "postgresql+psycopg://bounce:Pl41n%40S3cret@127.0.0.1:1/bounces",
]


def leaked(text: str) -> list[str]:
    words = ("zzCret", "Pl41n", "S3cret", "Pl41n@S3cret", "Pl41n%40S3cret")
    return [w for w in words if w in text]


def test_redact_forms():
    assert redact("x postgresql://u:p@ss@h/d y") == "x postgresql://u:***@h/d y"
    assert redact("h/d?sslmode=require&password=abc&x=1") == "h/d?sslmode=require&password=***&x=1"
    assert redact("host=h password='a b' user=u") == "host=h password='***' user=u"
    assert redact("PGPASSWORD=zz sslpassword=yy") == "PGPASSWORD=*** sslpassword=***"
    assert redact("sqlite:////srv/a#b/x.db") == "sqlite:////srv/a#b/x.db"
    # What libpq echoes of a malformed URL, with no URL around it to recognise.
    msg = f'invalid percent-encoded token: "{SECRET}"'
    assert redact(msg, *url_secrets(URLS[0])) == 'invalid percent-encoded token: "***"'
    assert sorted(url_secrets(URLS[3])) == ["Pl41n%40S3cret", "Pl41n@S3cret"]
    assert redact("failed for Pl41n@S3cret", *url_secrets(URLS[3])) == "failed for ***"


@pytest.mark.parametrize("url", URLS, ids=range(len(URLS)))
def test_no_password_in_any_output(store, url):
    pytest.importorskip("psycopg")
    store.config.write_text(
        f'[database]\nurl = "{url}"\npg_mode = "direct"\n[log]\ntarget = "stderr"\n'
    )
    outputs = []
    # The pipe's mailq line (stdout) and log line (stderr), in direct mode.
    res = run_handler(store.config, "alice=example.net", DSN)[0]
    assert res.returncode == 75
    outputs.append(res.text)
    for args in (
        ("db", "upgrade"),
        ("db", "current"),
        ("config", "show"),
        ("config", "check"),
        ("daemon", "--drain-once"),
    ):
        proc = store.bounces(*args)
        outputs.append(" ".join(args) + ": " + (proc.stdout + proc.stderr).decode())
    proc = store.bounces("doctor", timeout=300)
    outputs.append("doctor: " + (proc.stdout + proc.stderr).decode())
    for out in outputs:
        assert leaked(out) == [], out
    assert any("***" in out for out in outputs)  # it was there to hide


@pytest.mark.parametrize("name", ["a#b", "a%3Fb", "a%25b", "a b#c%3Fd"])
def test_sqlite_path_is_the_file_it_names(tmp_path, name):
    """`bounces db upgrade` (SQLAlchemy) and the pipe (sqlite3 URI) open the same file."""
    root = tmp_path / name
    root.mkdir()
    db = root / "bounces.db"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "sqlite:///{db}"\n[log]\ntarget = "stderr"\n')
    env = dict(os.environ, BOUNCE_HANDLER_CONFIG=str(cfg))
    up = subprocess.run([script("bounces"), "db", "upgrade"], env=env, capture_output=True)
    assert up.returncode == 0, up.stderr
    assert db.exists()
    before = sorted(os.listdir(tmp_path))
    res = run_handler(cfg, "alice=example.net", DSN)[0]
    assert res.returncode == 0, res.text
    assert res.stdout.startswith(b"recorded: ")
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    finally:
        conn.close()
    assert sorted(os.listdir(tmp_path)) == before  # no other file was made
