"""LMTP intake (daemon/lmtp.py): per-recipient replies, 451 when the store is down.

Never a 5xx but for a message over the size cap (tests/faults/test_lmtp_budget.py).
"""

from __future__ import annotations

import sqlite3

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler.daemon.lmtp import LmtpService
from tests.faults.helpers import lmtp_session, variant
from tests.support.postgres import free_port


@pytest.fixture
def lmtp(store, tmp_path):
    """A running LMTP service on a unix socket, writing into the test's SQLite store."""
    s = settings_mod.load(str(store.config))
    svc = LmtpService(s, f"unix:{tmp_path / 'lmtp.sock'}")
    svc.start()
    yield svc, str(tmp_path / "lmtp.sock"), store
    svc.stop()


def test_each_recipient_gets_its_own_reply_and_row(lmtp):
    svc, sock, store = lmtp
    _, raw = variant(0)  # alice0@example.net
    rcpts = [
        "bounces+alice0=example.net@relay.example",
        "bounces+carol=example.net@relay.example",
        "bounces@relay.example",
    ]
    [replies] = lmtp_session(sock, [("", rcpts, raw)])
    assert len(replies) == 3
    assert all(r.startswith("250 2.0.0 ") for r in replies), replies
    assert "recorded" in replies[0]
    tokens = {t for (t,) in store.query("SELECT extension FROM messages")}
    assert tokens == {"alice0=example.net", "carol=example.net", None}
    # The same delivery again (Postfix retrying after a lost connection): duplicates.
    [again] = lmtp_session(sock, [("", rcpts, raw)])
    assert all("duplicate" in r for r in again), again
    assert store.query("SELECT count(*) FROM messages")[0][0] == 3


def test_mixed_stream_on_one_connection_matches_the_pipe_outcomes(lmtp):
    svc, sock, store = lmtp
    msgs = [variant(i) for i in range(10)]
    out = lmtp_session(sock, [("", [f"bounces+{e}@relay.example"], raw) for e, raw in msgs])
    names = [r[0].split()[3].rstrip(":") for r in out]
    assert set(names) <= {"recorded", "ignored", "quarantined"}
    assert "recorded" in names and "ignored" in names and "quarantined" in names
    assert store.query("SELECT count(*) FROM messages")[0][0] == 10


def test_store_locked_is_451_per_recipient_then_recorded_once(lmtp):
    svc, sock, store = lmtp
    ext, raw = variant(1, bounces_only=True)
    rcpts = [f"bounces+{ext}@relay.example", "bounces+x=example.org@relay.example"]
    blocker = sqlite3.connect(store.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        [replies] = lmtp_session(sock, [("", rcpts, raw)])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(replies) == 2
    assert all(r.startswith("451 4.3.0 ") for r in replies), replies
    assert "locked" in replies[0]
    assert store.query("SELECT count(*) FROM messages")[0][0] == 0
    [replies] = lmtp_session(sock, [("", rcpts, raw)])
    assert all(r.startswith("250 ") for r in replies), replies
    [replies] = lmtp_session(sock, [("", rcpts, raw)])
    assert all("duplicate" in r for r in replies), replies
    assert store.query("SELECT count(*) FROM messages")[0][0] == 2


# Long lines and DATA over the size cap: tests/faults/test_lmtp_budget.py.


def test_reply_text_cannot_inject_protocol_lines(lmtp):
    svc, sock, store = lmtp
    _, raw = variant(3, bounces_only=True)
    # The client cannot even send a CR LF inside RCPT; a NUL and a quote are carried.
    rcpt = 'bounces+"ev\x00il;../x"=example.net@relay.example'
    [replies] = lmtp_session(sock, [("", [rcpt], raw)])
    assert len(replies) == 1 and "\n" not in replies[0]
    assert replies[0].startswith(("250 ", "451 "))


def test_inet_listener_and_address(store):
    s = settings_mod.load(str(store.config))
    port = free_port()
    svc = LmtpService(s, f"inet:127.0.0.1:{port}")
    svc.start()
    try:
        assert svc.address == f"inet:127.0.0.1:{port}"
        ext, raw = variant(4, bounces_only=True)
        [replies] = lmtp_session(("127.0.0.1", port), [("", [f"bounces+{ext}@r.example"], raw)])
        assert replies[0].startswith("250 ")
    finally:
        svc.stop()


def test_lmtp_rows_equal_the_pipes_rows_for_the_same_message(lmtp, tmp_path, _migrated_template):
    """One code path: the group committer writes what the pipe's SqliteWriter writes."""
    import shutil

    from tests.conftest import Store
    from tests.faults.helpers import run_handler

    svc, sock, store = lmtp
    other = Store(tmp_path / "pipe")
    other.root.mkdir()
    shutil.copy(_migrated_template, other.db)
    other.write_config()
    cols = ("kind, recipient, recipient_domain, original_recipient, action, status, reply_code,"
            " reason, hard, diagnostic, remote_mta, detector, sender, verp_token, verified,"
            " verify_reason, original_message_id")
    for i in range(5):
        ext, raw = variant(i)
        lmtp_session(sock, [("", [f"bounces+{ext}@relay.example"], raw)])
        assert run_handler(other.config, ext, raw)[0].returncode == 0
    q = f"SELECT {cols} FROM bounce_events ORDER BY recipient"
    assert store.query(q) == other.query(q)
    assert store.query(q)  # something was compared
    mq = "SELECT kind, disposition, note, detector, extension FROM messages ORDER BY extension"
    assert store.query(mq) == other.query(mq)


def test_bounces_daemon_serves_lmtp(store, tmp_path):
    """The real `bounces daemon` with only the LMTP service, as systemd runs it."""
    import subprocess
    import time

    from tests.conftest import script

    sock = tmp_path / "d.sock"
    proc = subprocess.Popen(
        [script("bounces"), "--config", str(store.config), "daemon", "--socketmap", "",
         "--lmtp", f"unix:{sock}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "daemon did not create its socket"
            time.sleep(0.05)
        ext, raw = variant(5, bounces_only=True)
        [replies] = lmtp_session(str(sock), [("", [f"bounces+{ext}@relay.example"], raw)])
        assert replies[0].startswith("250 2.0.0 ") and "recorded" in replies[0]
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    assert store.query("SELECT source, extension FROM messages") == [("lmtp", ext)]
    assert not sock.exists()  # removed on SIGTERM
