"""The real bounce-handler with signed tokens: what the pipe records (no Postfix needed)."""

from __future__ import annotations

import time

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler import verp
from tests.verp.conftest import KEY_A

DSN = """\
Return-Path: <>
From: MAILER-DAEMON@mx.remote.example
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown

--b1--
"""


@pytest.fixture
def vstore(store):
    keys = store.root / "verp.keys"
    keys.write_text(KEY_A + "\n")
    store.write_config(f'[verp]\nkey_file = "{keys}"\ndomain = "relay.example"\n')
    store.cfg = settings_mod.load(str(store.config))
    return store


def deliver(store, extension, rcpt):
    to = f"bounces+{extension}@relay.example"
    return store.handler(extension, input=DSN.format(to=to, rcpt=rcpt).encode())


def events(store):
    return store.query(
        "SELECT recipient, sender, verified, verify_reason FROM bounce_events ORDER BY id"
    )


def test_signed_bounce_recorded_verified_with_sender(vstore):
    address = verp.encode("alice@example.net", "newsletter", vstore.cfg, time.time())
    ext = verp.split_address(address, vstore.cfg)
    p = deliver(vstore, ext, "alice@example.net")
    assert p.returncode == 0, p.stdout + p.stderr
    assert events(vstore) == [("alice@example.net", "newsletter", 1, None)]


def test_forged_bounce_recorded_unverified(vstore):
    address = verp.encode("alice@example.net", "newsletter", vstore.cfg, time.time())
    ext = verp.split_address(address, vstore.cfg)
    forged = ext[:4] + ("x" if ext[4] != "x" else "y") + ext[5:]
    p = deliver(vstore, forged, "alice@example.net")
    assert p.returncode == 0, p.stdout + p.stderr  # nothing lost
    assert events(vstore) == [("alice@example.net", "newsletter", 0, "bad-tag")]


def test_xverp_bounce_recorded_unsigned(vstore):
    p = deliver(vstore, "alice=example.net", "alice@example.net")
    assert p.returncode == 0
    assert events(vstore)[0][2:] == (0, "unsigned")


def test_missing_key_file_defers_with_its_name(vstore):
    keys = vstore.root / "verp.keys"
    address = verp.encode("alice@example.net", "newsletter", vstore.cfg, time.time())
    ext = verp.split_address(address, vstore.cfg)
    keys.unlink()
    p = deliver(vstore, ext, "alice@example.net")
    assert p.returncode == 75
    assert str(keys).encode() in p.stdout and b"does not exist" in p.stdout
    assert events(vstore) == []
