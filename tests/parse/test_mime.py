"""The lean MIME walker and the RFC 3464 field groups, on small hand-made inputs."""

from __future__ import annotations

from bounce_handler.parse import parse
from bounce_handler.parse.mime import decode_words, parse_message, to_str
from bounce_handler.parse.rfc3464 import _addr, groups


def test_folded_headers_are_unfolded_and_names_lowercased():
    m = parse_message(b"Subject: one\n two\n\tthree\nX-Thing:  v \n\nbody")
    assert m.get("subject") == "one two three"
    assert m.get("x-thing") == "v"
    assert m.text() == "body"


def test_nested_multipart_with_a_boundary_that_prefixes_another():
    raw = (b'Content-Type: multipart/mixed; boundary="b"\n\n'
           b"--b\n"
           b'Content-Type: multipart/alternative; boundary="bb"\n\n'
           b"--bb\nContent-Type: text/plain\n\ninner\n--bb--\n"
           b"--b\nContent-Type: text/plain\n\nouter\n--b--\n")
    m = parse_message(raw)
    assert [p.ctype for p in m.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/plain"]
    assert [p.text() for p in m.walk() if p.ctype == "text/plain"] == ["inner", "outer"]


def test_unterminated_multipart_keeps_its_last_part():
    m = parse_message(b'Content-Type: multipart/mixed; boundary=x\n\n--x\n\nfirst\n--x\n\nlast')
    assert [p.text() for p in m.parts] == ["first", "last"]


def test_transfer_encodings_and_charsets():
    b64 = parse_message(b"Content-Transfer-Encoding: base64\nContent-Type: text/plain; "
                        b"charset=koi8-r\n\n9M/S\n\n")
    assert b64.text() == "Тор"
    qp = parse_message(b"Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =\nau lait")
    assert qp.text() == "café au lait"
    assert to_str(b"caf\xc3\xa9", "iso-8859-1") == "café"  # UTF-8 mislabelled as Latin-1
    assert to_str(b"caf\xe9", "us-ascii") == "café"  # 8-bit "ascii"
    assert to_str(b"x\xff", "no-such-charset") == "xÿ"


def test_rfc2047_words():
    assert decode_words("=?utf-8?q?R=C3=A9sum=C3=A9?= =?utf-8?b?IGR1?= jour") == "Résumé du jour"
    assert decode_words("=?iso-8859-1?Q?Gr=FC=DFe?=") == "Grüße"
    assert decode_words("=?bogus?B?!!!?=") == "=?bogus?B?!!!?="


def test_dsn_groups_split_on_blank_lines_and_on_repeated_fields():
    per_message, rcpts = groups(
        "Reporting-MTA: dns; a.example\n\n"
        "Final-Recipient: rfc822; one@example.net\nAction: failed\nStatus: 5.1.1\n"
        "Final-Recipient: rfc822; two@example.net\nAction: delayed\nStatus: 4.4.1\n\n"
        "Original-Recipient: rfc822;three+2Bx@example.net\n"
        "Final-Recipient: rfc822; 3@internal\nAction: failed\n"
    )
    assert per_message == {"reporting-mta": "dns; a.example"}
    assert [r.get("final-recipient") for r in rcpts] == [
        "rfc822; one@example.net", "rfc822; two@example.net", "rfc822; 3@internal"]
    assert _addr(rcpts[2]["original-recipient"], xtext=True) == "three+x@example.net"
    assert _addr("utf-8; j\\x{00FC}rgen@example.de") == "jürgen@example.de"


def test_final_recipient_is_reported_with_the_original_beside_it():
    # The list address the sender wrote is alive; the member it expanded to is what
    # failed (issue 15: report the Final-Recipient, keep the Original-Recipient).
    raw = (b"From: MAILER-DAEMON@x.example\nSubject: Undeliverable\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\n\n"
           b"--z\nContent-Type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; x.example\n\n"
           b"Original-Recipient: rfc822;list@example.org\n"
           b"Final-Recipient: rfc822;member@internal.example.org\n"
           b"Action: failed\nStatus: 5.2.2\n--z--\n")
    [r] = parse(raw).recipients
    assert (r.address, r.original_address, r.final_address, r.reason) == (
        "member@internal.example.org", "list@example.org", None, "mailboxfull")
