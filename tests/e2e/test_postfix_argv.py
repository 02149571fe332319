"""The extension is never read as an option, through a real Postfix (issue 14, item 4).

Anyone can mail bounces+--help@relay; Postfix's XVERP writes bounces+--x=example.com@relay
for a recipient --x@example.com.  Through the shipped master.cf entry of before (no ``--``
before ``${extension}``) the first was "delivered" with nothing recorded (the handler
printed its usage and exited 0), the XVERP one deferred forever ("bad master.cf argv"),
and ``--queue-id=...``/``--sender=...`` extensions were taken as options.

Both shapes are delivered here by a private Postfix's pipe(8): the shipped entry
(``... --config PATH -- ${extension}``) and the old one (``... --config PATH
${extension}``), which bounce-handler still accepts: without ``--`` the last argument is
always the extension (pipe(8) always passes it, as '' when there is none: checked here
too).  Every delivery must be recorded once, with its extension, and nothing deferred.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.helpers import sqlite_query
from tests.support import postfix as pf

pytestmark = pytest.mark.postfix

TOKENS = [
    "--help",
    "-h",
    "--version",
    "--queue-id=Q1",
    "--sender=forged",
    "--config=/etc/shadow",
    "--recipient",
    "--",
]

BODY = (
    "From: MAILER-DAEMON@remote.example\r\nTo: {rcpt}\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n\r\nnot a DSN: quarantined, but kept\r\n"
)


def rows(relay) -> list[tuple]:
    return sqlite_query(
        relay.db_path, "SELECT extension, queue_id, envelope_sender, disposition FROM messages")


@pytest.mark.parametrize(
    "macros", [["--", "${extension}"], ["${extension}"]], ids=["shipped", "legacy"]
)
def test_hostile_extensions_through_pipe8(make_relay, macros):
    # Addresses starting with "-" (allow_min_user: off by default, a site may turn it on;
    # the remote MTA that bounces never asks).
    relay = make_relay(handler_macros=macros, extra_main={"allow_min_user": "yes"})
    p = relay.postfix
    for tok in TOKENS:
        rcpt = p.verp_address(tok)
        p.send("", rcpt, BODY.format(rcpt=rcpt))
    # The bare address: pipe(8) passes an empty ${extension}.
    p.send("", p.bounce_address, BODY.format(rcpt=p.bounce_address))
    # A real XVERP bounce: Postfix bounces mail to --x@example.com (the relay delivers
    # nowhere) to bounces+--x=example.com@relay.test.  Submitted locally (sendmail -XV):
    # smtpd would refuse the error: destination at RCPT already.
    proc = subprocess.run(
        [pf.SENDMAIL, "-C", p.config_dir, "-XV", "-i", "-f", p.bounce_address, "--",
         "--x@example.com"],
        input=b"From: news@shop.example\nTo: --x@example.com\nSubject: hi\n\nhi\n",
        capture_output=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # + the bare address, the XVERP bounce, and the postmaster copy of that bounce that
    # the test relay sends to the bare bounce address (notify_classes = bounce).
    want = len(TOKENS) + 3
    p.wait_for(lambda: len(rows(relay)) >= want, timeout=90, what=f"{want} rows")
    p.wait_queue_empty(timeout=60)
    log = p.log_text()
    assert "status=deferred" not in log, log[-3000:]
    assert "bad master.cf argv" not in log
    got = rows(relay)
    assert len(got) == want, got
    extensions = sorted(e for e, *_ in got)
    assert extensions == sorted([*TOKENS, "", "", "--x=example.com"]), extensions
    # Nothing of an extension was taken as an option.
    assert {q for _, q, _, _ in got} == {None}
    assert "forged" not in {s for _, _, s, _ in got}
    assert {d for *_, d in got} <= {"recorded", "quarantined"}
    assert any(e == "--x=example.com" and d == "recorded" for e, _, _, d in got), got
