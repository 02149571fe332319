"""Genuine Postfix notices from a private instance on loopback, read by parse().

The instance (tests/support/postfix.py) delivers nowhere: mail to any outside domain fails
at once with "error:5.1.2", mail to defer.test is deferred by retry:4.4.1.  Its pipe
transport here is a capture script, so we get exactly the bytes Postfix's bounce daemon
hands the real handler: the sender's bounce, the postmaster copy (notify_classes=bounce
with bounce_notice_recipient) and delay warnings.  Skipped without Postfix, failed under
BOUNCE_HANDLER_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest

from bounce_handler.parse import parse
from tests.support import postfix as pf
from tests.support.services import require

pytestmark = pytest.mark.postfix

MESSAGE = (
    "From: Alice <alice@customer.test>\r\n"
    "To: {rcpt}\r\n"
    "Subject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n"
    "Message-ID: <{mid}@customer.test>\r\n"
    "\r\n"
    "Hello.\r\n"
)


@pytest.fixture(scope="module")
def captured():
    reason = pf.unavailable_reason()
    if reason:
        require("postfix", reason)
    # Not under pytest's 0700 tmp root: the pipe runs as nobody and must reach the script.
    base = Path(tempfile.mkdtemp(prefix="bh-parse-pf-"))
    out = base / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    capture = base / "capture.sh"
    capture.write_text(f'#!/bin/sh\ncat > "{out}/$(date +%s%N)-$$.eml"\n')
    capture.chmod(capture.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.chmod(base, 0o755)
    relay = pf.PostfixInstance(
        str(base / "pf"),
        handler_argv=[str(capture)],
        extra_main={"delay_warning_time": "1s", "maximal_queue_lifetime": "1h"},
    )
    relay.write_config()
    relay.start()
    try:
        sender = relay.verp_address("tok1")
        relay.submit(sender, "nobody@nowhere.example",
                     MESSAGE.format(rcpt="nobody@nowhere.example", mid="m1"))
        relay.submit(relay.verp_address("tok2"), "later@defer.test",
                     MESSAGE.format(rcpt="later@defer.test", mid="m2"))
        relay.flush()
        wanted = 3  # bounce to the sender, its postmaster copy, one delay warning (at least)
        relay.wait_for(lambda: len(list(out.glob("*.eml"))) >= wanted, timeout=60,
                       what=f"{wanted} captured notices")
        time.sleep(0.5)
        results = [parse(p.read_bytes()) for p in sorted(out.glob("*.eml"))]
    finally:
        relay.stop()
        relay.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return results


def _subject_of(result) -> str:
    return result.original.subject or ""


def test_bounce_to_the_sender(captured):
    bounces = [r for r in captured if r.kind == "bounce"
               and r.original.sender == "bounces+tok1@relay.test"]
    assert bounces, [(r.kind, r.original) for r in captured]
    r = bounces[0]
    assert r.detector == "rfc3464"
    [rc] = r.recipients
    assert (rc.address, rc.action, rc.status, rc.reason, rc.hard) == (
        "nobody@nowhere.example", "failed", "5.1.2", "hostunknown", True)
    assert "test relay delivers nowhere" in rc.diagnostic
    assert r.original.message_id == "<m1@customer.test>"
    assert r.original.subject == "Résumé"
    assert r.reporting_mta == "relay.relay.test"


def test_postmaster_copy_names_the_original_sender(captured):
    # Two notices for m1 (sender's bounce, postmaster copy), both attributed to the sender.
    m1 = [r for r in captured if r.original.message_id == "<m1@customer.test>"]
    assert len(m1) >= 2
    assert {r.original.sender for r in m1} == {"bounces+tok1@relay.test"}
    assert all(r.recipients[0].address == "nobody@nowhere.example" for r in m1)


def test_delay_warning(captured):
    delays = [r for r in captured if r.kind == "delay"]
    assert delays, [(r.kind, r.original) for r in captured]
    rc = delays[0].recipients[0]
    assert (rc.address, rc.action, rc.status, rc.hard) == (
        "later@defer.test", "delayed", "4.4.1", None)
    assert delays[0].original.sender == "bounces+tok2@relay.test"
