"""One expectation table over tests/data: what parse() must read from each fixture.

Each fixture is written by hand from the MTA's documented or observed format (none is
copied from another project's corpus).  Every row asserts kind, detector and, per
recipient, address, status, reason and hard; the CRLF and CR-only variants are generated
here from the LF files and must give the same result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bounce_handler.parse import parse

DATA = Path(__file__).resolve().parent.parent / "data"

# file: (kind, detector, [(address, status, reason, hard), ...])
EXPECTED = {
    "postfix_01.eml": ("bounce", "rfc3464", [
        ("nobody@example.net", "5.1.1", "userunknown", True)]),
    "postfix_02.eml": ("delay", "rfc3464", [
        ("bob@slow.example", "4.4.1", "networkerror", None)]),
    "postfix_03.eml": ("bounce", "rfc3464", [
        ("spamtrap@bigprovider.example", "5.7.1", "blocked", False)]),
    "postfix_04.eml": ("delay", "rfc3464", [
        ("ops@busy.example", "4.7.0", "ratelimited", None)]),
    "postfix_05.eml": ("bounce", "postfix_transcript", [
        ("victim@elsewhere.example", "5.7.1", "norelaying", False)]),
    "postfix_06.eml": ("bounce", "postfix", [
        ("gone@old.example.de", "5.1.1", "userunknown", True)]),
    # Genuine Postfix 3.7 notices captured from a private instance on loopback (the
    # instance tests/parse/test_postfix_real.py runs live): the sender's bounce, its
    # postmaster copy (notify_classes=bounce), a delay warning and its postmaster copy.
    "postfix_07.eml": ("bounce", "rfc3464", [
        ("nobody@nowhere.example", "5.1.2", "hostunknown", True)]),
    "postfix_08.eml": ("bounce", "rfc3464", [
        ("nobody@nowhere.example", "5.1.2", "hostunknown", True)]),
    "postfix_09.eml": ("delay", "rfc3464", [
        ("later@defer.test", "4.4.1", "networkerror", None)]),
    "postfix_10.eml": ("delay", "rfc3464", [
        ("later@defer.test", "4.4.1", "networkerror", None)]),
    "rfc3464_01.eml": ("bounce", "rfc3464", [
        ("full@example.edu", "5.2.2", "mailboxfull", False),
        ("moved@example.edu", "5.1.6", "hasmoved", True)]),
    "rfc6533_01.eml": ("bounce", "rfc6533", [
        ("用户@例え.jp", "5.1.1", "userunknown", True)]),
    "exim_01.eml": ("bounce", "exim", [
        ("nosuch@example.co.uk", "5.1.1", "userunknown", True)]),
    "exim_02.eml": ("delay", "exim", [
        ("later@example.org", "4.2.2", "mailboxfull", None)]),
    "qmail_01.eml": ("bounce", "qmail", [
        ("ghost@example.net", "5.1.1", "userunknown", True),
        ("quota@example.net", "5.2.2", "mailboxfull", False)]),
    "sendmail_01.eml": ("bounce", "sendmail", [
        ("olduser@host.example.com", "5.1.1", "userunknown", True)]),
    "sendmail_02.eml": ("delay", "sendmail", [
        ("patient@far.example.com", "4.4.0", "networkerror", None)]),
    "courier_01.eml": ("bounce", "courier", [
        ("nouser@example.info", "5.1.1", "userunknown", True)]),
    "opensmtpd_01.eml": ("bounce", "opensmtpd", [
        ("niemand@example.nl", "5.1.1", "userunknown", True)]),
    "opensmtpd_02.eml": ("delay", "opensmtpd", [
        ("wacht@traag.example.nl", "4.4.0", "networkerror", None)]),
    "exchange_01.eml": ("bounce", "exchange", [
        ("jdoe@corp.example.com", "5.1.1", "userunknown", True)]),
    "exchange_02.eml": ("bounce", "rfc3464", [
        ("former.employee@corp.example.com", "5.1.1", "userunknown", True)]),
    "office365_01.eml": ("bounce", "rfc3464", [
        ("sales@tenant.example", "5.1.10", "userunknown", True)]),
    # Microsoft's S3150: the sending IP is on its block list - never the address's fault.
    "office365_02.eml": ("bounce", "office365", [
        ("shopper@hotmail.example", "5.7.1", "blocked", False)]),
    "outlook_01.eml": ("bounce", "outlook", [
        ("inactive.user@hotmail.example", None, "onhold", False)]),
    "gmail_01.eml": ("bounce", "gmail", [
        ("lost@example.org", "5.1.1", "userunknown", True)]),
    "gmail_02.eml": ("delay", "rfc3464", [
        ("recipient@gmail.example", "4.7.28", "ratelimited", None)]),
    "yahoo_01.eml": ("bounce", "yahoo", [
        ("closed.account@yahoo.example", "5.1.1", "userunknown", True)]),
    # AOL's "not accepting mail from <sender>": this recipient refuses this sender.
    "aol_01.eml": ("bounce", "aol", [
        ("BuddyFan42@aol.com", "5.7.1", "rejected", False)]),
    "ses_01.eml": ("bounce", "ses", [
        ("bounced@example.com", "5.1.1", "userunknown", True)]),
    "ses_02.eml": ("complaint", "ses", [
        ("annoyed@example.com", None, "feedback", None)]),
    "domino_01.eml": ("bounce", "domino", [
        ("jsmith@notes.example.com", "5.1.1", "userunknown", True)]),
    "groupwise_01.eml": ("bounce", "groupwise", [
        ("clerk@gw.example.gov", "5.1.1", "userunknown", True)]),
    "zoho_01.eml": ("bounce", "zoho", [
        ("missing@zoho-customer.example", "5.1.1", "userunknown", True)]),
    "foreign_01.eml": ("bounce", "foreign", [
        ("unbekannt@example.de", "5.1.1", "userunknown", True)]),
    "foreign_02.eml": ("bounce", "foreign", [
        ("boite.pleine@example.fr", "5.2.2", "mailboxfull", False)]),
    "foreign_03.eml": ("bounce", "foreign", [
        ("nikto@example.ru", "5.1.1", "userunknown", True)]),
    "foreign_04.eml": ("bounce", "foreign", [  # ISO-2022-JP text and subject
        ("dareka@example.jp", "5.1.1", "userunknown", True)]),
    "arf_01.eml": ("complaint", "arf", [
        ("complainer@mailbox.example", None, "feedback", None)]),
    "mdn_01.eml": ("bounce", "mdn", [
        ("sieve.user@example.com", "5.2.0", "filtered", False)]),
    # The SMTP phase decides: a user unknown in reply to RCPT TO is a dead mailbox; the
    # same words in reply to end of DATA are a content filter (Japanese carriers); a
    # multi-line Gmail reply is joined before its words are read (several From:).
    "postfix_21.eml": ("bounce", "rfc3464", [
        ("gone@carrier.example.jp", "5.1.1", "userunknown", True),
        ("screened@carrier.example.jp", "5.1.1", "filtered", False),
        ("two@from.example.net", "5.7.1", "notcompliantrfc", False)]),
    # Courier's text part: ">>> DATA" / "<<< 550 Unknown user" (the DSN part has no phase).
    "courier_02.eml": ("bounce", "rfc3464", [
        ("member@mobile.example.jp", "5.0.0", "filtered", False)]),
    # Sendmail keeps only the first line of a multi-line reply in Diagnostic-Code; the
    # transcript has the rest ("... attachment content guidelines").
    "sendmail_21.eml": ("bounce", "rfc3464", [
        ("friend@gmail.example.com", "5.7.0", "policyviolation", False)]),
    # OpenSMTPD's delay template reporting an expired envelope: a failure.
    "opensmtpd_21.eml": ("bounce", "rfc3464", [
        ("klant@traag.example.nl", "4.4.7", "expired", False)]),
    # Amazon SES: "Status: 4.4.7" is its own verdict; the remote said 4.4.2.
    "ses_21.eml": ("bounce", "rfc3464", [
        ("later@slow.example.org", "4.4.2", "expired", False)]),
    # Exim: refused after MAIL FROM, "Unroutable sender address": the sender, not the
    # recipient's domain.
    "exim_21.eml": ("bounce", "rfc3464", [
        ("teacher@school.example.edu", "5.0.0", "rejected", False)]),
    # DragonFly dma: "did not like our RCPT TO:", codes before the address (RFC 7505).
    "dragonfly_01.eml": ("bounce", "dma", [
        ("someone@nullmx.example", "5.1.10", "notaccept", True)]),
    # Google Groups: the sender may not post (or the group is gone): never a dead address.
    "googlegroups_01.eml": ("bounce", "googlegroups", [
        ("announce@googlegroups.com", "5.7.1", "rejected", False)]),
    # Lotus Notes: the reason stands on the line above the address.
    "notes_01.eml": ("bounce", "simple", [
        ("sato@notes.example.co.jp", "5.1.1", "userunknown", True)]),
    "autoreply_01.eml": ("autoreply", "autoreply", []),
    "autoreply_02.eml": ("autoreply", "autoreply", []),
    # Issue 15, which recipients a bounce yields.  A report whose MIME is broken (the
    # boundary before the delivery-status part indented): its fields are read as text,
    # the delayed recipient included.
    "rfc3464_02.eml": ("bounce", "rfc3464", [
        ("gone@dept.example.org", "5.1.1", "userunknown", True),
        ("slow@far.example.net", "4.4.1", "networkerror", None),
        ("full@dept.example.org", "5.2.2", "mailboxfull", False)]),
    # The Final-Recipient is who failed (an alias expanded to kim@; team@ is kept as
    # original_address); a quoted local part keeps its quotes; a Final-Recipient at a
    # bare internal host ("lee@hub") gives way to the Original-Recipient.
    "postfix_11.eml": ("bounce", "rfc3464", [
        ("kim@mail.example.net", "5.1.1", "userunknown", True),
        ('"john..doe"@example.net', "5.1.1", "userunknown", True),
        ("ops@example.net", "5.2.2", "mailboxfull", False)]),
    # Postfix smtpd's transcript: a refused RCPT, and a refused DATA failing both
    # recipients accepted before it.
    "postfix_12.eml": ("bounce", "postfix_transcript", [
        ("ghost@example.net", "5.1.1", "userunknown", True),
        ("ann@example.net", "5.7.1", "spamdetected", False),
        ("bert@example.net", "5.7.1", "spamdetected", False)]),
    # Sendmail 5: no address block, the transcript's error lines are the list ...
    "sendmail_03.eml": ("bounce", "sendmail", [
        ("nobody@example.org", "5.1.1", "userunknown", True),
        ("anyone@unreachable.example", "5.1.2", "hostunknown", True)]),
    # ... or only the host failed: the returned copy's recipient at that host.
    "sendmail_04.eml": ("bounce", "sendmail", [  # "Cannot send ... for 5 days": expired
        ("patient@slow.example", "5.4.7", "expired", False)]),
    # Sendmail 8 whose MIME header was lost: the report's fields in the text.
    "sendmail_05.eml": ("bounce", "rfc3464", [
        ("ops@host.example.com", "4.4.7", "expired", False)]),
    # Exim items naming no address ("save to /var/mail/carol", a bare "dave") take
    # X-Failed-Recipients'; the sender's own address (the notice's To:) failed too.
    "exim_03.eml": ("bounce", "exim", [
        ("alerts@customer.example.org", "5.1.1", "userunknown", True),
        ("dave@example.net", "5.1.1", "userunknown", True),
        ("carol@example.org", "5.2.2", "mailboxfull", False)]),
    # The sender named in the explanation under the failed address is not a recipient.
    "exim_04.eml": ("bounce", "exim", [
        ("pat@example.co.uk", "5.7.1", "rejected", False)]),
    # Exim's DSN: "Final-Recipient: rfc822;|/usr/local/bin/autoresponder ..." is a pipe.
    "exim_05.eml": ("bounce", "rfc3464", [
        ("rosa@example.com", "5.0.0", "mailererror", False)]),
    "xfailed_01.eml": ("bounce", "googlegroups", [  # not the greeted sender; refused post
        ("board-members@googlegroups.com", "5.7.1", "rejected", False)]),
    # Prose that names nobody; X-Failed-Recipients is the only list of what failed.
    "xfailed_02.eml": ("bounce", "xfailed", [
        ("nico@branch.example.net", None, "onhold", False)]),
    "james_01.eml": ("bounce", "james", [
        ("5555550123@vtext.example", "5.1.1", "userunknown", True)]),
    "kddi_01.eml": ("bounce", "kddi", [
        ("yuki@ab12cd34ef56.dion.example", "5.2.2", "mailboxfull", False)]),
    "fml_01.eml": ("bounce", "fml", [  # the list refused a non-member's post
        ("club@lists.example.jp", "5.7.1", "rejected", False)]),
    "mimecast_01.eml": ("bounce", "mimecast", [  # not the sender its intro names
        ("vera@corp.example.au", "5.1.1", "userunknown", True)]),
    "forwarded_01.eml": ("bounce", "forwarded", [  # a report pasted into a text notice
        ("wendy@example.net", "5.1.1", "userunknown", True)]),
    "zoho_02.eml": ("bounce", "zoho", [
        ("xavier@example.jp", "5.1.1", "userunknown", True)]),
    "ses_03.eml": ("bounce", "ses", [  # the JSON broken by "!\n " line wrapping
        ("yolanda@example.com", "5.1.1", "userunknown", True)]),
    # OpenSMTPD's expired envelope: "delayed" in its subject and Action, final in words.
    "opensmtpd_03.eml": ("bounce", "rfc3464", [
        ("nadia@gone-dark.example", "4.4.7", "expired", False)]),
    # The returned headers pasted after a dashed line: not their Message-Id, not the
    # copy's other recipients.
    "simple_01.eml": ("bounce", "simple", [
        ("filtered-user@mobile.example", "5.2.0", "filtered", False)]),
    # m-FILTER: up to "original mail info".  Microsoft's "5.4.1 ... Access denied" is a
    # refusal, not "no answer from host".
    "foreign_05.eml": ("bounce", "foreign", [
        ("rejected@example.co.jp", "5.4.1", "filtered", False)]),
}

NOT_BOUNCES = sorted(p.name for p in (DATA / "not").glob("*.eml"))


def _summary(result) -> tuple:
    return (
        result.kind,
        result.detector,
        [(r.address, r.status, r.reason, r.hard) for r in result.recipients],
    )


def test_every_fixture_has_an_expectation():
    on_disk = {p.name for p in DATA.glob("*.eml")}
    assert on_disk == set(EXPECTED), on_disk ^ set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    result = parse((DATA / name).read_bytes())
    assert result.error is None
    assert _summary(result) == EXPECTED[name]
    for r in result.recipients:
        assert r.detector == EXPECTED[name][1]


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_line_endings(name, ending):
    raw = (DATA / name).read_bytes().replace(b"\n", ending)
    assert _summary(parse(raw)) == EXPECTED[name]


@pytest.mark.parametrize("name", NOT_BOUNCES)
def test_non_bounces_name_nobody(name):
    result = parse((DATA / "not" / name).read_bytes())
    assert result.recipients == ()
    assert result.kind in ("unknown", "delivery", "autoreply")


def test_postfix_bounce_attributes_sender_and_sasl_login():
    r = parse((DATA / "postfix_01.eml").read_bytes())
    assert r.original.sender == "alice@customer.example.org"  # X-Postfix-Sender
    assert r.original.sasl_login == "alice@customer.example.org"
    assert r.original.message_id == "<c0ffee.42@customer.example.org>"
    assert r.original.from_ == "Alice Müller <alice@customer.example.org>"  # RFC 2047 Q
    assert r.original.subject == "Re: Résumé du projet"  # RFC 2047 B
    assert r.reporting_mta == "mail.example.com"
    assert r.arrival_date == "Tue, 24 Nov 2026 10:00:01 +0000 (UTC)"
    rc = r.recipients[0]
    assert rc.remote_mta == "mx1.example.net"
    assert rc.reply_code == "550"
    assert rc.diagnostic.startswith("550 5.1.1 <nobody@example.net>: Recipient address rejected")


@pytest.mark.parametrize("name, sender, login", [
    ("postfix_03.eml", "mallory@compromised.example.org", "mallory"),  # notify_classes=bounce
    ("postfix_04.eml", "newsletter@customer.example.org", "newsletter-bot"),  # =delay
    ("postfix_05.eml", "eve@client.example.org", None),  # SMTP server transcript
    ("arf_01.eml", "bounces+a9b8c7@relay.example.com", "newsletter-bot"),
    ("postfix_08.eml", "bounces+tok1@relay.test", None),  # genuine postmaster copy
    ("postfix_10.eml", "bounces+tok2@relay.test", None),  # genuine postmaster delay copy
])
def test_postmaster_copies_are_attributed_to_the_original_sender(name, sender, login):
    r = parse((DATA / name).read_bytes())
    assert (r.original.sender, r.original.sasl_login) == (sender, login)


def test_final_and_original_recipient_are_both_kept():
    r = parse((DATA / "postfix_11.eml").read_bytes())
    kim, john, ops = r.recipients
    assert (kim.address, kim.original_address, kim.final_address) == (
        "kim@mail.example.net", "team@example.net", None)
    assert (ops.address, ops.original_address, ops.final_address) == (
        "ops@example.net", "ops@example.net", "lee@hub")
    assert john.original_address == '"john..doe"@example.net'


def test_pipe_final_recipient_is_kept_beside_the_address():
    [r] = parse((DATA / "exim_05.eml").read_bytes()).recipients
    assert r.final_address == "|/usr/local/bin/autoresponder rosa@example.com"


def test_expired_envelope_is_final_although_called_delayed():
    [r] = parse((DATA / "opensmtpd_03.eml").read_bytes()).recipients
    assert r.action == "failed"


def test_refused_data_fails_the_accepted_recipients_with_the_reply():
    r = parse((DATA / "postfix_12.eml").read_bytes())
    assert r.original.sender == "mallory@client.example.org"
    assert [x.diagnostic for x in r.recipients[1:]] == ["550 5.7.1 Message content rejected"] * 2


def test_global_dsn_keeps_utf8_addresses():
    r = parse((DATA / "rfc6533_01.eml").read_bytes())
    assert r.original.sender == "ünïcode@customer.example.org"
    assert r.original.subject == "こんにちは"


def test_eight_bit_latin1_text_is_read():
    r = parse((DATA / "foreign_01.eml").read_bytes())
    assert "Empfänger unbekannt" in r.recipients[0].diagnostic


def test_iso_2022_jp_text_is_read():
    r = parse((DATA / "foreign_04.eml").read_bytes())
    assert r.recipients[0].diagnostic == "550 5.1.1 User unknown (ユーザーが存在しません)"


def test_flufl_fallback_reads_what_it_knows():
    # The last resort, called directly: the lazy import of email + flufl.bounce works and
    # its permanent failures come back as failed recipients under the "flufl" name.
    from bounce_handler.parse import fallback
    from bounce_handler.parse.base import Sniff
    from bounce_handler.parse.mime import parse_message

    raw = (DATA / "qmail_01.eml").read_bytes()
    msg = parse_message(raw)
    hit = fallback.DETECTOR.scan(msg, Sniff(msg, raw))
    assert sorted(r.address for r in hit.recipients) == ["ghost@example.net",
                                                         "quota@example.net"]
    assert fallback.DETECTOR.name == "flufl"


def test_parse_never_raises_and_reports_internal_errors(monkeypatch):
    import bounce_handler.parse as parse_mod

    def boom(raw):
        raise RuntimeError("detector bug")

    monkeypatch.setattr(parse_mod, "_parse", boom)
    r = parse_mod.parse(b"whatever")
    assert (r.kind, r.recipients) == ("unknown", ())
    assert r.error == "RuntimeError: detector bug"


@pytest.mark.parametrize("name, phases", [
    ("postfix_01.eml", ["rcpt"]),  # the text part's "(in reply to RCPT TO command)"
    ("postfix_21.eml", ["rcpt", "data", "data"]),
    ("courier_02.eml", ["data"]),  # ">>> DATA" in the text part
    ("sendmail_21.eml", ["data"]),  # the transcript's command before the reply
    ("exim_21.eml", ["mail"]),  # "after MAIL FROM:" in the text part
    ("dragonfly_01.eml", ["rcpt"]),  # "did not like our RCPT TO:"
    ("sendmail_01.eml", ["rcpt"]),  # ">>> RCPT To:" then "<<< 550"
])
def test_the_smtp_phase_is_read_from_the_notice(name, phases):
    assert [r.phase for r in parse((DATA / name).read_bytes()).recipients] == phases


def test_a_multi_line_reply_is_completed_from_the_transcript():
    [r] = parse((DATA / "sendmail_21.eml").read_bytes()).recipients
    assert r.diagnostic == (
        "552-5.7.0 This message was blocked because its content presents a potential "
        "552-5.7.0 security issue. Please visit 552-5.7.0 https://support.google.com/mail/"
        "?p=BlockedMessage to review our 552 5.7.0 message content and attachment content "
        "guidelines. a1si2 - gsmtp")


def test_codes_before_the_address_stay_with_the_reason():
    from bounce_handler.parse.base import address_paragraphs

    section = ("The following addresses failed:\n550 5.2.2 <full@example.net>... Mailbox full"
               "\n<<< 452 4.2.2 <b@example.net>: over quota\n")
    assert address_paragraphs(section, None, True) == [
        ("full@example.net", "550 5.2.2 Mailbox full"), ("b@example.net", "452 4.2.2 over quota")]


def test_a_diagnostic_type_other_than_smtp_is_kept():
    from bounce_handler.parse.rfc3464 import _diagnostic

    assert _diagnostic("smtp; 550 5.1.1 unknown") == "550 5.1.1 unknown"
    assert _diagnostic("X-Unix; 255") == "X-Unix; 255"
    assert _diagnostic("X-Postfix; mail for example.com loops back to myself") == (
        "mail for example.com loops back to myself")
    assert _diagnostic("no type at all") == "no type at all"


def test_a_reason_above_a_bare_address_is_read():
    from bounce_handler.parse.simple import _words_before

    section = ("Your message was not delivered within 0 days and 1 hours.\n"
               "Remote host is not responding.\n\n"
               "The following recipients did not receive this message:\n\n<a@b.example>\n")
    assert _words_before(section, "a@b.example") == (
        "Your message was not delivered within 0 days and 1 hours. Remote host is not "
        "responding. The following recipients did not receive this message:")
    # Another address's lines are not borrowed.
    assert _words_before("x@y.example: mailbox full\nz@w.example\n", "z@w.example") == ""


def test_many_bare_addresses_stay_cheap():
    """Looking for a reason above each of a thousand bare addresses stays bounded."""
    import time

    body = "".join(f"user{i}@example.net\n" for i in range(1000)) + "x" * 60_000
    raw = (b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\n\n"
           b"The following addresses failed:\n" + body.encode())
    t0 = time.perf_counter()
    result = parse(raw)
    assert time.perf_counter() - t0 < 5.0
    assert result.error is None and len(result.recipients) == 1000
