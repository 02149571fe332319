"""The rules that decide which addresses a notice yields (issue 15, "Recipients").

Each rule is tested on the smallest text that shows it; the fixtures of test_corpus.py
show them on whole notices.
"""

from __future__ import annotations

import re

import pytest

from bounce_handler.classify import decide
from bounce_handler.parse import parse
from bounce_handler.parse.base import (
    address_paragraphs,
    clean_address,
    session_failures,
    still_retrying,
    usable_address,
)
from bounce_handler.parse.mime import parse_headers, parse_message


@pytest.mark.parametrize("value, usable", [
    ("user@example.net", True),
    ('"john..doe"@example.net', True),  # quoted: doubled dots are valid
    ("user@mailhub", True),  # an internal host is still an address
    ("|/usr/bin/procmail", False),  # Exim/Postfix pipe delivery
    ("|/usr/local/bin/filter user@example.net", False),
    ("/var/mail/user", False),  # file delivery
    ("save to /var/mail/user", False),
    ("user", False),  # a bare local part
    ("@example.net", False),  # no local part
    ("user@", False),
    ("@relay.example:user@host", False),  # RFC 821 source route
    ("MAILER-DAEMON@example.net", False),  # the notice's author
    ("david...@gmail.com", False),  # obfuscation, not an address
    (".user@example.net", False),
    ("a" * 400 + "@example.net", False),
    ("", False),
    (None, False),
])
def test_usable_address(value, usable):
    assert usable_address(value) is usable


@pytest.mark.parametrize("value, clean", [
    ('rfc822; "neko....nyaan...."@example.org', '"neko....nyaan...."@example.org'),
    ('<"a..b"@example.org>', '"a..b"@example.org'),
    ("rfc822; <user@example.net>", "user@example.net"),
    ("mailto:user@example.net", "user@example.net"),
])
def test_clean_address_keeps_quoted_local_parts(value, clean):
    assert clean_address(value) == clean


def _found(section, own=None, inline=False, echo=None):
    return [a for a, _ in address_paragraphs(section, own, inline, echo)]


def test_quoted_headers_and_transcript_commands_name_no_recipient():
    section = (
        "<rcpt@example.net>: 550 user unknown\n"
        "Message-ID: <20261124.ABC@mta.example.org>\n"
        "From: sender@customer.example.org\n"
        "Received: from mta.example.org by mx.example.net\n"
        "\tfor <other@example.net>; Tue, 24 Nov 2026 10:00:00 +0000\n"
        ">>> MAIL FROM:<sender@customer.example.org>\n"
        "Original-Envelope-Id: <20261124.ENV@relay.example.com>\n"
        "<second@example.net>: 550 mailbox unavailable\n"
    )
    assert _found(section, inline=True) == ["rcpt@example.net", "second@example.net"]


def test_multi_line_reply_is_the_explanation_of_the_address_before_it():
    section = ("undeliverable to rcpt@example.jp\n"
               "550-REJECTED - Blacklisted URL in message.\n"
               "550-F=[sender@example.com] T=[rcpt@example.jp] S=[HOT\n"
               "550 DEALS]\n")
    [(a, diag)] = address_paragraphs(section, None, True)
    assert a == "rcpt@example.jp"
    assert "550-F=[sender@example.com]" in diag and diag.endswith("550 DEALS]")


def test_a_transcript_under_an_address_is_its_explanation():
    # KDDI/au's notice: the address, then the dialogue that failed it.  The indented
    # "<<<" reply after ">>> MAIL FROM" is no folded header line, and the command names
    # the phase (the sending host was refused, not the recipient).
    section = ("Each of the following recipients was rejected by a remote\n"
               "mail server.\n\n"
               "    Recipient: <rcpt@example.net>\n"
               "    >>> MAIL FROM:<sender@customer.example.org>\n"
               "    <<< 550 SC-004 Unfortunately, messages from 192.0.2.1 weren't sent.\n")
    [(a, diag)] = address_paragraphs(section, None, True)
    assert a == "rcpt@example.net"
    assert diag.startswith(">>> MAIL FROM:<sender@customer.example.org>")
    assert "<<< 550 SC-004" in diag
    v = decide(None, diag)
    assert (v.reason, v.phase, v.hard) == ("blocked", "mail", False)


def test_a_labelled_address_takes_its_reason_from_the_line_above():
    # A hosting provider's own notice: the reason, then "target mail address: a@b", then
    # a separator before the returned message.  The label is no reason, the separator no
    # text.
    text = ("From: postmaster@hosting.example\nTo: sender@customer.example.org\n"
            "Subject: email bounce notification\n\n"
            "This message is to inform you that an email you sent was rejected.\n\n"
            "reject reason: Mailbox full\n"
            "target mail address: rcpt@example.net\n\n"
            + "-" * 72 + "\nbounced E-Mail:\n\nFrom: sender@customer.example.org\n"
            "To: rcpt@example.net\nSubject: hello\n\nhello\n")
    [r] = parse(text.encode()).recipients
    assert (r.address, r.reason, r.hard) == ("rcpt@example.net", "mailboxfull", False)
    assert "-----" not in r.diagnostic


def test_the_notices_own_recipient_is_dropped_only_where_it_echoes_a_header():
    echo = {"sender@customer.example.org"}
    # A "To:" line repeating the notice's header block: not a failure.
    assert _found("To: sender@customer.example.org\nundeliverable to rcpt@example.jp\n",
                  inline=True, echo=echo) == ["rcpt@example.jp"]
    # Named in the explanation indented under a failed address: its text.
    section = ("  rcpt@example.co.uk\n"
               "    550 5.7.1 <sender@customer.example.org> Sender address rejected\n")
    [(a, diag)] = address_paragraphs(section, None, False, echo)
    assert a == "rcpt@example.co.uk" and "Sender address rejected" in diag
    # Listed as a failed address itself: people write to themselves.
    assert _found("  sender@customer.example.org\n    550 5.1.1 unknown\n",
                  echo=echo) == ["sender@customer.example.org"]


def test_the_notices_author_is_never_a_recipient():
    assert _found("<postmaster@mx.example.net>\n<rcpt@example.net>\n",
                  own={"postmaster@mx.example.net"}) == ["rcpt@example.net"]


# A plain compiled pattern, not lazyre.lazy: a lazy pattern made here would join
# lazyre.ALL, the registry tests/hostile's generator checks against the detectors' own.
DELAY = re.compile(r"is delayed for more than|notification: delay", re.I)


@pytest.mark.parametrize("subject, opening, retrying", [
    ("Delivery status notification: delayed", "user@x: Connection refused", True),
    ("Delivery status notification: delayed", "user@x: Envelope expired", False),
    ("Delivery status notification: error", "user@x: Envelope expired", False),
    ("", "A message is delayed for more than 4 hours", True),
    ("", "A message is delayed for more than 4 hours; retry timeout exceeded", False),
    ("Warning: could not send message", "Message could not be delivered for 5 days", False),
])
def test_delay_words_lose_to_words_saying_the_retries_ran_out(subject, opening, retrying):
    assert still_retrying(DELAY, subject.lower(), opening) is retrying


def test_a_structured_delay_is_final_when_its_words_say_so():
    assert still_retrying(True, "", "4.4.1 connect to mx: Connection timed out") is True
    assert still_retrying(True, "", "Envelope expired") is False
    assert still_retrying(None, "", "anything") is False


def _dialogue(text):
    return [("in" if x.startswith("In:") else "out", x.split(":", 1)[1].strip())
            for x in text.strip().split("\n")]


def test_refused_rcpt_fails_that_recipient_only():
    sender, failed = session_failures(_dialogue("""
In: MAIL FROM:<s@example.org>
Out: 250 Ok
In: RCPT TO:<a@example.net>
Out: 550 5.1.1 unknown
In: RCPT TO:<b@example.net>
Out: 250 Ok
In: DATA
Out: 354 go ahead
Out: 250 queued
"""))
    assert sender == "s@example.org"
    assert failed == [("a@example.net", "550 5.1.1 unknown")]


def test_refused_data_fails_every_accepted_recipient_of_that_transaction():
    _, failed = session_failures(_dialogue("""
In: MAIL FROM:<s@example.org>
Out: 250 Ok
In: RCPT TO:<gone@example.net>
Out: 250 Ok
In: RSET
Out: 250 Ok
In: MAIL FROM:<s@example.org>
Out: 250 Ok
In: RCPT TO:<a@example.net>
Out: 250 Ok
In: RCPT TO:<b@example.net>
Out: 451 4.3.0 try later
In: DATA
Out: 554 5.7.1 rejected as spam
"""))
    assert failed == [("b@example.net", "451 4.3.0 try later"),
                      ("a@example.net", "554 5.7.1 rejected as spam")]


def test_a_parameter_line_that_lost_its_folding_blank_is_kept():
    # Apache James / Verizon: "Content-Type: multipart/alternative;\nboundary=..."
    assert parse_headers(b'Content-Type: multipart/alternative;\nboundary="b1"\nX-A: 1') == [
        ("content-type", 'multipart/alternative; boundary="b1"'), ("x-a", "1")]


def test_nested_multipart_without_a_usable_boundary_is_read_as_text():
    raw = (b"From: MAILER-DAEMON@mx.example.net\nSubject: Undeliverable\n"
           b"Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
           b"Content-Type: multipart/alternative\n\n"
           b"The following address failed:\n  rcpt@example.net\n--outer--\n")
    assert [r.address for r in parse(raw).recipients] == ["rcpt@example.net"]


def test_a_text_attachment_after_the_notice_is_not_notice_text():
    # X6's "mailheaders-NNN.txt": the returned headers, with their Message-ID.
    raw = (b"From: mailer-daemon\nSubject: There was an error sending your mail\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
           b"The following recipients returned permanent errors: rcpt@example.net.\n"
           b"--b\nContent-Type: text/plain\nContent-Disposition: attachment;"
           b" filename=\"mailheaders.txt\"\n\n"
           b"Message-ID: <68b329da9893e3@x6.example.co.jp>\nTo: rcpt@example.net\n--b--\n")
    msg = parse_message(raw)
    from bounce_handler.parse.base import notice_text

    assert "68b329da9893e3" not in notice_text(msg)
    assert [r.address for r in parse(raw).recipients] == ["rcpt@example.net"]


def test_a_postmaster_address_can_fail_but_a_contact_line_names_nobody():
    raw = (b"From: MAILER-DAEMON@mx.example.org\nSubject: Returned mail\n\n"
           b"Undeliverable Address: postmaster@example.net\n\n"
           b"Reason: The email you sent to the address specified above has been returned\n"
           b"because the recipient is over disk quota.\n\n"
           b"System Contact: helpdesk@mx.example.org\n")
    assert [r.address for r in parse(raw).recipients] == ["postmaster@example.net"]


def test_postfix_text_keeps_the_alias_beside_the_address_that_failed():
    raw = (b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail Returned to Sender\n\n"
           b"This is the mail system at host mx.example.net.\n\n"
           b"                   The mail system\n\n"
           b"<kim@mail.example.net> (expanded from <team@example.net>): host\n"
           b"    mail.example.net[192.0.2.40] said: 550 5.1.1 unknown (in reply to RCPT TO\n"
           b"    command)\n")
    [r] = parse(raw).recipients
    assert (r.address, r.original_address) == ("kim@mail.example.net", "team@example.net")


def test_per_recipient_verp_keeps_the_report_of_the_alias_it_was_sent_to():
    # The token names team@ (what the relay sent to); the DSN lists two recipients, and
    # reports team@ by its Final-Recipient kim@ (an alias expanded at the far end).
    from bounce_handler import intake, settings

    raw = (b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\n\n"
           b"--z\nContent-Type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; mx.example.net\n\n"
           b"Final-Recipient: rfc822; other@example.net\nAction: failed\nStatus: 5.2.2\n\n"
           b"Final-Recipient: rfc822; kim@mail.example.net\n"
           b"Original-Recipient: rfc822;team@example.net\nAction: failed\nStatus: 5.1.1\n"
           b"--z--\n")
    s = settings.from_dict({"database": {"url": "sqlite:////nonexistent/x.db"}})
    batch, outcome = intake.build(raw, intake.Envelope(extension="team=example.net"), s,
                                  1_800_000_000.0)
    assert [(e["recipient"], e["original_recipient"], e["status"]) for e in batch.events] == [
        ("team@example.net", "kim@mail.example.net", "5.1.1")]


def test_exim_wording_without_a_list_falls_back_to_x_failed_recipients():
    raw = (b"From: Mail Delivery System <Mailer-Daemon@mx.example.org>\n"
           b"Subject: Mail delivery failed: returning message to sender\n"
           b"X-Failed-Recipients: rcpt@example.org\n\n"
           b"This message was created automatically by mail delivery software.\n\n"
           b"One or more of the recipients are not a valid user.\n")
    r = parse(raw)
    assert (r.detector, [x.address for x in r.recipients]) == ("xfailed", ["rcpt@example.org"])
