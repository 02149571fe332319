"""The pipe entrypoint, run as Postfix runs it: the real console script, stdin, exit code."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading

import pytest

from tests.conftest import SAMPLES
from tests.support.stored import one_line

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
PIPE_HEADERS = (
    b"Return-Path: <>\n"
    b"Delivered-To: bounces+alice=example.net@relay.example\n"
    b"X-Original-To: bounces+alice=example.net@relay.example\n"
)


def counts(store) -> tuple[int, int, int]:
    """(messages, bounce events, quarantined) rows in the store."""
    return (
        store.query("SELECT count(*) FROM messages")[0][0],
        store.query("SELECT count(*) FROM bounce_events")[0][0],
        store.query("SELECT count(*) FROM quarantine")[0][0],
    )


def assert_clean(proc) -> None:
    """Exit 0 or 75, one short line out, never a traceback."""
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode in (0, 75), out
    assert "Traceback" not in out
    assert len(proc.stdout.decode().splitlines()) == 1
    assert len(proc.stdout) <= 301


def test_standard_dsn_yields_exactly_the_expected_row(store):
    proc = store.handler("alice=example.net", input=PIPE_HEADERS + DSN)
    assert_clean(proc)
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert out.startswith("recorded: 1 bounce: alice@example.net 5.1.1 userunknown")
    rows = store.query(
        "SELECT recipient, recipient_domain, action, status, reason, hard, remote_mta,"
        " verp_token, verified, verify_reason, kind, original_message_id, diagnostic"
        " FROM bounce_events"
    )
    assert len(rows) == 1
    (rcpt, domain, action, status, reason, hard, mta, token, verified, vreason, kind, omid,
     diag) = rows[0]
    assert (rcpt, domain, action, status, reason, hard) == (
        "alice@example.net", "example.net", "failed", "5.1.1", "userunknown", 1,
    )
    assert mta == "mail.example.net"
    assert (token, verified, vreason, kind) == ("alice=example.net", 0, "unsigned", "bounce")
    assert omid == "<offer-20261124-0001@shop.example>"
    assert "User unknown in virtual mailbox table" in diag
    # The copy's Return-Path is our own bounce address: the sender comes from its From:.
    assert store.query("SELECT sender FROM bounce_events") == [("news@shop.example",)]
    msg = store.query(
        "SELECT disposition, kind, envelope_sender, envelope_recipient, original_recipient,"
        " relay, size, truncated, source FROM messages"
    )
    assert msg == [(
        "recorded", "bounce", "", "bounces+alice=example.net@relay.example",
        "bounces+alice=example.net@relay.example", "test-relay",
        len(PIPE_HEADERS + DSN), 0, "pipe",
    )]
    raw = store.query("SELECT content FROM raw_messages")
    import zlib

    assert zlib.decompress(raw[0][0]) == PIPE_HEADERS + DSN
    # the structured log line (log target stderr in the test config)
    err = proc.stderr.decode()
    assert "outcome=recorded exit=0 token=alice=example.net" in err
    assert "reason=userunknown" in err and "elapsed_ms=" in err


def test_options_carry_postfix_macros(store):
    proc = store.handler(
        "--sender=", "--recipient", "bounces+alice=example.net@relay.example",
        "--original-recipient", "orig@relay.example", "--queue-id", "4ABCDEF",
        "--", "alice=example.net", input=DSN,
    )
    assert_clean(proc)
    assert store.query(
        "SELECT envelope_sender, envelope_recipient, original_recipient, queue_id FROM messages"
    ) == [("", "bounces+alice=example.net@relay.example", "orig@relay.example", "4ABCDEF")]


def test_the_same_message_twice_is_one_row(store):
    first = store.handler("alice=example.net", input=PIPE_HEADERS + DSN)
    second = store.handler("alice=example.net", input=PIPE_HEADERS + DSN)
    assert first.returncode == second.returncode == 0
    assert second.stdout.decode().startswith("duplicate: already recorded as message 1")
    assert counts(store) == (1, 1, 0)


def test_concurrent_redeliveries_still_give_one_row(store):
    procs = [
        subprocess.Popen(
            [store_handler_path()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=store.env(),
        )
        for _ in range(8)
    ]
    outs = [p.communicate(PIPE_HEADERS + DSN, timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    assert counts(store) == (1, 1, 0)


def store_handler_path() -> str:
    from tests.conftest import script

    return script("bounce-handler")


def test_missing_database_is_tempfail(empty_store):
    proc = empty_store.handler("alice=example.net", input=DSN)
    assert_clean(proc)
    assert proc.returncode == 75
    assert "does not exist: run `bounces db upgrade`" in proc.stdout.decode()
    assert not empty_store.db.exists()


def test_uninitialised_schema_is_tempfail(empty_store):
    sqlite3.connect(empty_store.db).close()  # an empty file: no tables
    proc = empty_store.handler("alice=example.net", input=DSN)
    assert proc.returncode == 75
    assert "schema not initialised" in proc.stdout.decode()


def test_schema_at_unknown_revision_is_tempfail(store):
    conn = sqlite3.connect(store.db)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    proc = store.handler("alice=example.net", input=DSN)
    assert proc.returncode == 75
    assert "schema at 9999" in proc.stdout.decode()
    assert counts(store) == (0, 0, 0)


def test_locked_database_is_tempfail_and_nothing_recorded(store):
    holder = sqlite3.connect(store.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = store.handler("alice=example.net", input=DSN)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_clean(proc)
    assert proc.returncode == 75
    assert "locked for more than 2s" in proc.stdout.decode()
    assert counts(store) == (0, 0, 0)
    # and once the lock is gone, the retry records it
    assert store.handler("alice=example.net", input=DSN).returncode == 0
    assert counts(store) == (1, 1, 0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_unwritable_database_is_tempfail(store):
    store.db.chmod(0o444)
    proc = store.handler("alice=example.net", input=DSN)
    assert proc.returncode == 75


def test_unwritable_database_as_nobody_is_tempfail(store, pipe_bin):
    """The pipe runs as nobody: a database only root can write must defer, not bounce."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    handler = os.path.join(pipe_bin, "bounce-handler")
    os.chmod(store.root, 0o755)
    store.config.chmod(0o644)
    store.db.chmod(0o644)  # readable, not writable, by nobody
    proc = subprocess.run(
        ["runuser", "-u", "nobody", "--", handler, "alice=example.net"],
        input=DSN, capture_output=True, env=store.env(), timeout=60,
    )
    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert b"Traceback" not in proc.stdout + proc.stderr
    assert counts(store) == (0, 0, 0)


def test_unreadable_config_is_tempfail(store, tmp_path):
    env = store.env()
    env["BOUNCE_HANDLER_CONFIG"] = str(tmp_path / "nope.toml")
    proc = subprocess.run(
        [store_handler_path(), "x=y"], input=DSN, capture_output=True, env=env, timeout=60
    )
    assert proc.returncode == 75
    assert b"nope.toml does not exist" in proc.stdout


def test_invalid_config_is_tempfail(store):
    store.config.write_text('[database]\nurl = "sqlite:////x"\nbogus = 1\n')
    proc = store.handler("x=y", input=DSN)
    assert proc.returncode == 75
    assert b"unknown key 'bogus' in [database]" in proc.stdout


def test_bad_argv_is_tempfail_not_bounce(store):
    proc = store.handler("--frobnicate", "x", input=DSN)
    assert_clean(proc)
    assert proc.returncode == 75
    assert b"bad master.cf argv" in proc.stdout
    proc = store.handler("a", "b", input=DSN)
    assert proc.returncode == 75


@pytest.mark.parametrize(
    "name,body",
    [
        ("empty", b""),
        ("garbage", bytes(range(256)) * 40),
        ("invalid-utf8", b"Subject: \xff\xfe\n\n\xc3\x28 \xa0\xa1 not a bounce\n"),
        ("headers-only", b"From: x@y\nSubject: nothing\n"),
        ("not-a-bounce", (SAMPLES / "05-not-a-bounce.eml").read_bytes()),
    ],
)
def test_unintelligible_mail_is_quarantined_with_why(store, name, body):
    proc = store.handler("frank=example.com", input=body)
    assert_clean(proc)
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("quarantined: ")
    assert counts(store) == (1, 0, 1)
    (reason, detail), = store.query("SELECT reason, detail FROM quarantine")
    assert reason == "unparseable" and detail
    (size,), = store.query("SELECT length(content) FROM raw_messages")
    assert size > 0  # kept, even when it is empty (compressed b"" is 8 bytes)


def test_autoreply_is_ignored_and_logged(store):
    proc = store.handler("erin=example.com", input=(SAMPLES / "04-vacation.eml").read_bytes())
    assert_clean(proc)
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("ignored: auto-reply")
    assert counts(store) == (1, 0, 0)
    assert store.query("SELECT disposition, kind FROM messages") == [("ignored", "autoreply")]
    assert b"outcome=ignored" in proc.stderr


def test_message_over_the_cap_is_truncated_and_says_so(store):
    store.write_config("max_message_bytes = 65536\n")
    body = PIPE_HEADERS + DSN + b"X" * (20 * 1024 * 1024)  # 20 MiB: drained, not kept
    proc = store.handler("alice=example.net", input=body, timeout=120)
    assert_clean(proc)
    assert proc.returncode == 0
    (size, truncated), = store.query("SELECT size, truncated FROM messages")
    assert size == len(body) and truncated == 1
    (stored,), = store.query("SELECT length(content) FROM raw_messages")
    assert stored < 65536  # only the capped part, compressed


def test_twenty_mib_message_under_default_cap_is_handled(store):
    body = DSN + b"\n" + b"A" * (20 * 1024 * 1024)
    proc = store.handler("alice=example.net", input=body, timeout=120)
    assert_clean(proc)
    (size, truncated), = store.query("SELECT size, truncated FROM messages")
    assert size == len(body) and truncated == 1  # default cap is 10 MiB


@pytest.mark.parametrize(
    "extension",
    [
        "alice=example.net'; DROP TABLE messages;--",
        "$(touch /tmp/pwned-bh)`id`|;&>",
        '"quoted"\nX-Injected: yes',
        "../../etc/passwd",
        "x" * 500,
        "-starts-with-dash",
    ],
)
def test_hostile_extensions_are_stored_verbatim_and_harmless(store, extension):
    proc = store.handler("--", extension, input=DSN)
    assert_clean(proc)
    assert proc.returncode == 0
    (ext,), = store.query("SELECT extension FROM messages")
    # Verbatim but for what a one-line column cannot hold (the LF becomes a blank).
    assert ext == one_line(extension if len(extension) <= 500 else extension[:499] + "…")
    assert store.query("SELECT count(*) FROM messages")[0][0] == 1  # the table survived
    assert not os.path.exists("/tmp/pwned-bh")
    # the log line stays one line: the newline is escaped, not emitted
    assert all(line.startswith("outcome=") for line in proc.stderr.decode().splitlines())


def test_help_and_version_exit_zero(store):
    assert store.handler("--help").returncode == 0
    proc = store.handler("--version")
    assert proc.returncode == 0 and proc.stdout.startswith(b"bounce-handler ")


def test_many_concurrent_pipes_all_recorded(store):
    """20 different bounces at once: every one recorded, none lost, none deferred."""
    bodies = [DSN.replace(b"alice@example.net", f"user{i}@example.net".encode()) for i in range(20)]
    results = [None] * 20

    def go(i):
        results[i] = store.handler(f"user{i}=example.net", input=bodies[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 20, [r.stdout for r in results]
    assert counts(store) == (20, 20, 0)
    assert len(store.query("SELECT DISTINCT recipient FROM bounce_events")) == 20
