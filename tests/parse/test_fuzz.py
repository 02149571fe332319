"""parse() never raises: arbitrary bytes and mutated real bounces (hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounce_handler.parse import parse
from bounce_handler.parse.model import KINDS as KINDS_ALL

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = sorted(p.read_bytes() for p in DATA.glob("*.eml"))

# Bytes bounces are made of, so mutations hit the parser's decisions (boundaries, header
# colons, encoded words, base64 padding) rather than only noise.
TOKENS = [b"\n", b"\r\n", b"\r", b"--", b":", b";", b"=?utf-8?b?", b"?=", b"=\n", b"@",
          b"<", b">", b"\x00", b"\xff", b"Content-Type: multipart/report; boundary=x\n",
          b"Content-Transfer-Encoding: base64\n", b"message/rfc822", b"Final-Recipient:",
          b"\n\n", b"5.1.1", b"550 ", b"\t"]


def _check(raw: bytes) -> None:
    r = parse(raw)
    assert r.kind in KINDS_ALL
    for rc in r.recipients:
        assert isinstance(rc.address, str) and "@" in rc.address
        assert rc.hard in (True, False, None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw):
    _check(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FIXTURES),
    st.lists(
        st.tuples(st.integers(0, 1 << 16), st.integers(0, 64),
                  st.one_of(st.sampled_from(TOKENS), st.binary(max_size=16))),
        max_size=8,
    ),
)
def test_mutated_fixtures_never_raise(raw, edits):
    data = bytearray(raw)
    for pos, cut, insert in edits:
        pos %= len(data) + 1
        data[pos : pos + cut] = insert
    _check(bytes(data))


def test_deeply_nested_and_huge_inputs_are_bounded():
    nested = b""
    for i in range(200):
        nested = (b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)) + nested
    _check(nested)
    _check(b"Subject: x\n\n" + b"a@b.c " * 200_000)
    _check(b"Content-Type: multipart/report; boundary=z\n\n" + b"--z\n\n" * 50_000)


NOTICE = b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n\n"


def test_hostile_long_lines_stay_linear():
    # Each of these made a pattern backtrack quadratically (minutes) before the bounded
    # and possessive repeats; now each is a few milliseconds.  No timing asserted here
    # (bench/ holds speed targets): a regression shows up as a hung test run.
    _check(NOTICE + b"The following recipients failed:\nx@" + b"a" * 60_000 + b"\n")
    _check(NOTICE + b"The following recipients failed:\n" + b"a" * 60_000 + b"@b\n")
    _check(NOTICE + b"-" * 60_000 + b"\n")
    _check(NOTICE + b"could not be delivered: " + b"x a@b.c " * 8_000)
    _check(NOTICE + b"----- Transcript of session follows " + b"-" * 60_000)
    _check(NOTICE + b"Your message to " + b"a" * 60_000 + b" couldn't be delivered\n")
    _check(NOTICE + b"following addresses had permanent fatal errors\n" + b"\n \n" * 30_000)
    _check(NOTICE + b"\n" * 60_000 + b"x")  # also bounded in the flufl fallback


def test_hostile_inputs_of_the_recipient_rules_stay_linear():
    # The worst input of each pattern and scanner the recipient rules added (issue 15).
    daemon = b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n"
    _check(NOTICE + b"ERROR CODE :\na@b" + b" " * 60_000 + b"x\n")  # zoho's line
    _check(NOTICE + b"ERROR_CODE :\n" + b"a@" * 30_000 + b", ERROR_CODE :1\n")
    _check(b"Subject: Postfix SMTP server: errors\n\n In:" + b" " * 60_000 + b"x\n"
           + b" Out: 550 x\n In:  RCPT TO:<a@b.c>\n" * 5_000)  # transcript dialogue
    _check(NOTICE + b"delayed mail\ncould not be delivered for " + b"1" * 60_000)
    _check(NOTICE + b"final-recipient: multipart/report\n" + b"From x\n" * 30_000)
    _check(NOTICE + b"Received:" + b" " * 60_000 + b"x")  # ORIGINAL_MARKER's headers
    _check(NOTICE + b"----- Transcript of session follows -----\n550 " + b"a" * 60_000)
    _check(NOTICE + b"----- Transcript of session follows -----\n"
           + b"while talking to x:\n>>> DATA\n" * 3_000 + b"550 <a@x>... x\n" * 500)
    _check(NOTICE + b"The following recipients failed:\n a@b.c\n" + b"550-a@b.c\n" * 30_000)
    _check(b"Content-Type: text/plain;\n" + b"a=b\n" * 200_000 + b"\nx")  # lost folding
    _check(daemon + b"Content-Type: multipart/report; boundary=z\n\n"
           + b"Final-Recipient: rfc822; a@b.c\nAction: failed\n\n" * 3_000)  # raw fields
    _check(b"X-Failed-Recipients: " + b"a@b.c, " * 100_000 + b"\n\nhi")
    _check(b"X-Failed-Recipients: a@b.c\n" + daemon
           + b"\nThe following address(es) failed:\n" + b"  save to x\n" * 30_000)
    _check(NOTICE + b"Message details:\n  RCPT TO: " + b"a@b.c " * 20_000 + b"\n")
    _check(NOTICE + b"-- a@b.c\n" * 20_000 + b"The problem appears to be")
    _check(NOTICE + b"Final-Recipient: rfc822; \"" + b"a" * 60_000 + b"\"@b\n")
    _check(b"Subject: x\n\n{\"notificationType\":\"Bounce\"" + b"!\n " * 30_000 + b"}")
