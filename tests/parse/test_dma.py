"""DMA (DragonFly Mail Agent) notices: bounce_handler/parse/dma.py.

The genuine notices of every lab case are in tests/data/real/dma_*.eml
(tests/mta/test_real_corpus.py); these are the shapes the lab does not make.
"""

from __future__ import annotations

import time

from bounce_handler.parse import parse

HEAD = (
    "Received: from MAILER-DAEMON\n"
    "\tid 1f2e3\n"
    "\tby relay.example.org (DragonFly Mail Agent v0.13);\n"
    "\tTue, 11 Jun 2024 18:09:35 +0900\n"
    "X-Original-To: <{rcpt}>\n"
    "From: MAILER-DAEMON <>\n"
    "To: alice@example.org\n"
    "Subject: Mail delivery failed\n"
    "Message-Id: <1f2e3@relay.example.org>\n"
    "Date: Tue, 11 Jun 2024 18:09:35 +0900\n"
    "\n"
    "This is the DragonFly Mail Agent v0.13 at relay.example.org.\n"
    "\n"
    "There was an error delivering your mail to <{rcpt}>.\n"
    "\n"
)


def notice(rcpt: str, error: str, tail: str = "Message headers follow.\n\n") -> bytes:
    return (HEAD.format(rcpt=rcpt) + error + "\n\n" + tail
            + "From: Alice <alice@example.org>\nTo: <" + rcpt + ">\nSubject: hi\n").encode()


def rows(raw: bytes):
    r = parse(raw)
    return r.kind, [(x.address, x.status, x.reason, x.hard, x.detector) for x in r.recipients]


def test_a_refused_sender_is_no_recipient():
    # "did not like our MAIL FROM:" quotes the reply, which names the envelope sender:
    # before the dma detector, the "simple" heuristics took alice@ as a failed recipient
    # too (and a REJECT for her own address would follow).
    raw = notice("bob@example.net", "mx.example.net [192.0.2.1] did not like our MAIL FROM:\n"
                 "550 5.7.1 <alice@example.org>: Sender address rejected: Access denied")
    assert rows(raw) == ("bounce", [("bob@example.net", "5.7.1", "rejected", False, "dma")])


def test_fullbounce_stops_at_the_original_message():
    # FULLBOUNCE: "Original message follows." and the whole message, whose body names
    # other addresses.
    raw = notice("bob@example.net", "mx.example.net [192.0.2.1] did not like our RCPT TO:\n"
                 "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
                 tail="Original message follows.\n\n")
    raw += b"\nPlease write to carol@example.com or dave@example.com.\n"
    assert rows(raw) == ("bounce", [("bob@example.net", "5.1.1", "userunknown", True, "dma")])


def test_expiry_names_no_reply():
    raw = notice("bob@example.net", "Could not deliver for the last 432000 seconds. Giving up.")
    assert rows(raw) == ("bounce", [("bob@example.net", "5.4.7", "expired", False, "dma")])


def test_a_recipient_that_is_no_address_is_not_taken():
    # "<|/bin/sh>" or a bare local part: dma's line, but nothing a REJECT may name.
    for bad in ("|/usr/bin/procmail", "bob"):
        kind, got = rows(notice(bad, "local delivery failed: corrupted queue file"))
        assert [g[0] for g in got if g[4] == "dma"] == []


def test_hostile_lines_stay_linear():
    # The address is bounded (256) and the patterns are anchored at line starts: a notice
    # of huge lines and thousands of near-misses is read in well under a second.
    near = "There was an error delivering your mail to <" + "a" * 300 + "\n"
    raw = (HEAD.format(rcpt="x@example.net").split("There was")[0]
           + near * 2000 + "There was an error delivering your mail to <" + "b" * 200_000
           + "\n").encode()
    t0 = time.monotonic()
    result = parse(raw)
    assert time.monotonic() - t0 < 5.0
    assert all(r.detector != "dma" for r in result.recipients)


def test_a_dns_failure_is_hard_only_for_the_recipients_own_domain():
    # dma names the host it looked up: the recipient's domain (no address: hostunknown),
    # or an MX host or the SMARTHOST it relays through, which say nothing of the
    # recipient's domain (a DNS failure: soft, expired since the retries ran out).
    own = notice("bob@gone.example", "DNS lookup failure: host gone.example not found")
    assert rows(own) == ("bounce", [("bob@gone.example", "5.1.2", "hostunknown", True, "dma")])
    relay = notice("bob@example.net", "DNS lookup failure: host smarthost.isp.example not found")
    (_, [(address, _, reason, hard, detector)]) = rows(relay)
    assert (address, hard, detector) == ("bob@example.net", False, "dma")
    assert reason in ("networkerror", "expired")


def test_a_dma_notice_quoted_in_a_returned_copy_is_not_dmas():
    # A stranger's bounce whose returned copy quotes a dma notice (hostile, or a
    # forwarded one): the address inside the copy is no failed recipient.
    quoted = notice("victim@example.com", "mx.example.com [192.0.2.1] did not like our "
                    "RCPT TO:\n550 5.1.1 <victim@example.com>: User unknown").decode()
    quoted = quoted.split("\n\n", 1)[1]
    raw = ("From: MAILER-DAEMON@mx.remote.example\nTo: alice@example.org\n"
           "Subject: Undelivered Mail Returned to Sender\n\n"
           "<ops@remote.example>: host mx.remote.example said: 550 5.1.1 User unknown\n\n"
           "------ This is a copy of your message, including all the headers. ------\n\n"
           "Subject: fwd\n\n" + quoted).encode()
    r = parse(raw)
    assert "victim@example.com" not in [x.address for x in r.recipients]
    assert "dma" not in [x.detector for x in r.recipients]

