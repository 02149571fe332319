"""A store filled through the real pipe path, for the administrator's verbs.

Bounces are made by templating the samples (recipient, sender, ids substituted) and fed
to the real ``bounce-handler`` with a signed VERP token (key file beside this module,
test-only), as a relay that signs its mail gets them: the flags are then verified and
`bounces export` writes them (docs/trust.md); the judge raises the flags as the pipe
records them (the [rules] below lower the thresholds).  Afterwards a few rows are moved
back in time with SQL, which is the only way to get a history spanning days without
waiting for it.
"""

from __future__ import annotations

import os
import pty
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, Store, script

KEY_FILE = Path(__file__).with_name("verp-test.keys")

RULES = f"""
[verp]
key_file = "{KEY_FILE}"
[rules.dead_recipient]
include_unverified = true
[rules.compromised_sender]
include_unverified = true
max_bounces = 5
max_domains = 0
jump_min = 0
[rules.throttled_destination]
include_unverified = true
min_deferrals = 2
"""

USER_UNKNOWN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
MAILBOX_FULL = (SAMPLES / "02-mailbox-full.eml").read_bytes()
DEFERRAL = (SAMPLES / "03-yahoo-deferral.eml").read_bytes()
VACATION = (SAMPLES / "04-vacation.eml").read_bytes()
NOT_A_BOUNCE = (SAMPLES / "05-not-a-bounce.eml").read_bytes()

# What the populated store holds (the tests assert against these).
DEAD = [f"user{i}@example.net" for i in range(4)] + ["gone@example.com", "old@example.com"]
SPAMMER = "news@shop.example"
FULL = ["bob@example.org", "ann@example.org", "joe@example.org"]
FULL_SENDER = "carol@shop.example"
DEFERRED = ["dave@yahoo.com", "eve@yahoo.com"]
DAYS_BACK = 3  # the mailbox-full bounces are moved this many days back
# The local sender each group's mail came from (what its signed token names).
SENDER_OF = {**dict.fromkeys(FULL, FULL_SENDER), **dict.fromkeys(DEFERRED, "mallory")}


def token(address: str, sender: str | None = None) -> str:
    """The signed VERP token an application puts in the return path for `address`."""
    from bounce_handler import verp

    ring = verp.load_keys(str(KEY_FILE))
    return verp.make_token(address, sender or SENDER_OF.get(address, SPAMMER), ring, time.time())


def with_pipe_headers(raw: bytes, address: str) -> bytes:
    """What pipe(8) with flags=R and D prepends."""
    return (
        b"Return-Path: <>\nDelivered-To: bounces+" + token(address).encode()
        + b"@relay.example\n" + raw
    )


def user_unknown(rcpt: str, sender: str = SPAMMER) -> bytes:
    raw = (USER_UNKNOWN.replace(b"alice@example.net", rcpt.encode())
           .replace(b"alice=example.net", token(rcpt).encode())
           .replace(b"news@shop.example", sender.encode()))
    return with_pipe_headers(raw, rcpt)


def mailbox_full(rcpt: str, sender: str = FULL_SENDER) -> bytes:
    raw = (MAILBOX_FULL.replace(b"bob@example.org", rcpt.encode())
           .replace(b"bob=example.org", token(rcpt).encode())
           .replace(b"carol@shop.example", sender.encode()))
    return with_pipe_headers(raw, rcpt)


def deferral(rcpt: str) -> bytes:
    raw = (DEFERRAL.replace(b"dave@yahoo.com", rcpt.encode())
           .replace(b"dave=yahoo.com", token(rcpt).encode()))
    return with_pipe_headers(raw, rcpt)


def feed(store: Store, raw: bytes, address: str) -> str:
    """Run the real bounce-handler on one message; return its one-line answer."""
    proc = store.handler(token(address), input=raw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.decode()


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def backdate(store: Store, where: str, params: tuple, delta: timedelta) -> None:
    """Move matching events (and their messages, raw copies) `delta` into the past."""
    conn = sqlite3.connect(store.db)
    try:
        ids = [r[0] for r in conn.execute(f"SELECT message_id FROM bounce_events WHERE {where}",
                                          params)]
        for table, col, key in (("bounce_events", "occurred_at", "message_id"),
                                ("messages", "received_at", "id"),
                                ("raw_messages", "stored_at", "message_id")):
            for mid in ids:
                (old,) = conn.execute(f"SELECT {col} FROM {table} WHERE {key} = ?",
                                      (mid,)).fetchone() or (None,)
                if old:
                    new = stamp(datetime.fromisoformat(old) - delta)
                    conn.execute(f"UPDATE {table} SET {col} = ? WHERE {key} = ?", (new, mid))
        conn.commit()
    finally:
        conn.close()


def checkpoint(path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def build(store: Store) -> None:
    """Fill `store` through the pipe (see the constants above for what it holds)."""
    for rcpt in DEAD:
        assert feed(store, user_unknown(rcpt), rcpt).startswith("recorded: 1 bounce")
    for rcpt in FULL:
        assert feed(store, mailbox_full(rcpt), rcpt).startswith("recorded: 1 bounce")
    for rcpt in DEFERRED:
        assert feed(store, deferral(rcpt), rcpt).startswith("recorded: 1 delay")
    assert feed(store, with_pipe_headers(VACATION, "erin@example.com"),
                "erin@example.com").startswith("ignored")
    assert feed(store, with_pipe_headers(NOT_A_BOUNCE, "frank@example.com"),
                "frank@example.com").startswith("quarantined")
    backdate(store, "reason = 'mailboxfull'", (), timedelta(days=DAYS_BACK))
    checkpoint(store.db)


@pytest.fixture(scope="module")
def _populated_template(tmp_path_factory, _migrated_template):
    root = tmp_path_factory.mktemp("populated")
    s = Store(root)
    shutil.copy(_migrated_template, s.db)
    s.write_config(RULES)
    build(s)
    return s


@pytest.fixture
def populated(tmp_path, _populated_template) -> Store:
    """A private copy of the populated store (tests may change it)."""
    root = tmp_path / "populated"  # its own directory: a test may also use `store`
    root.mkdir()
    s = Store(root)
    shutil.copy(_populated_template.db, s.db)
    s.write_config(RULES)
    return s


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def on_terminal(store: Store, *args: str) -> tuple[int, bytes]:
    """Run `bounces ARGS` with stdout and stderr on a pseudo-terminal; (status, output)."""
    master, slave = pty.openpty()
    env = store.env()
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([script("bounces"), *args], stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=120), out
