"""How much of a message the line-by-line readers see: bounded in lines, not only characters.

Issue 14's adversarial table: 64 KB of line breaks ("\\n", "-\\n", folded blank lines) cost
10-16x the time of the same 64 KB of prose, because every reader pays a little Python
per line and prose has ~900 lines where a flood has 64,000.  Each reader's text is now
cut by ``scan.first_lines`` where it enters: the notice text (``base.MAX_TEXT_LINES``),
a delivery-status report (``rfc3464.MAX_REPORT_LINES``), a header block
(``mime.MAX_FOLDED_LINES``); the returned copy's Return-Path and Received are read in
their first ``base.MAX_FIELD`` characters, as the notice's own header values already
were.  These tests pin what is still read and what no longer is.
"""

from __future__ import annotations

from bounce_handler.parse import parse
from bounce_handler.parse.base import MAX_FIELD, MAX_TEXT_LINES, Sniff
from bounce_handler.parse.mime import MAX_FOLDED_LINES, parse_message
from bounce_handler.parse.rfc3464 import MAX_REPORT_LINES, groups

_HEAD = (b"From: MAILER-DAEMON@mx.example (Mail Delivery System)\n"
         b"To: bounces@relay.example\nSubject: Undelivered Mail Returned to Sender\n")


def _yahoo(before: bytes, after: bytes) -> bytes:
    return (_HEAD + b"Content-Type: text/plain\n\n"
            b"Sorry, we were unable to deliver your message to the following address.\n\n"
            + before + b"<alice@example.net>:\nRemote host said: 550 5.1.1 user unknown\n"
            + after)


def test_the_notice_text_is_read_up_to_max_text_lines():
    flood = b"\n" * 60_000
    s = Sniff(parse_message(_yahoo(b"", flood)))
    # MAX_TEXT_LINES lines (and the line end Sniff adds after the last, if it has none).
    assert MAX_TEXT_LINES - 1 <= s.text.count("\n") <= MAX_TEXT_LINES
    # The address before the flood is read as before (a flood after a notice costs
    # MAX_TEXT_LINES lines of reading, not 60,000).
    r = parse(_yahoo(b"", flood))
    assert (r.detector, [x.address for x in r.recipients]) == ("yahoo", ["alice@example.net"])
    assert r.recipients[0].status == "5.1.1"


def test_an_address_behind_max_text_lines_is_not_read():
    # A notice listing its failed address after thousands of lines is no notice anyone
    # writes (the longest notice text in the development corpora has ~310 lines).
    short = parse(_yahoo(b"\n" * (MAX_TEXT_LINES - 100), b""))
    assert [x.address for x in short.recipients] == ["alice@example.net"]
    late = parse(_yahoo(b"\n" * (MAX_TEXT_LINES + 10), b""))
    assert "alice@example.net" not in [x.address for x in late.recipients]


def _group(i: int) -> str:
    return (f"Final-Recipient: rfc822; user{i}@example.net\nAction: failed\n"
            f"Status: 5.1.1\n\n")


def test_a_report_is_read_up_to_max_report_lines():
    # 1,000 recipients (parse keeps MAX_RECIPIENTS) of 4 lines each: 4,000 lines, all read.
    many = "Reporting-MTA: dns; mx.example\n\n" + "".join(_group(i) for i in range(1000))
    assert len(groups(many)[1]) == 1000
    # Behind MAX_REPORT_LINES folded blank lines (one field's "\n \n \n ..."), a group
    # is not read: the report is a flood, not a report of MAX_RECIPIENTS groups.
    flood = "Reporting-MTA: dns; mx.example" + "\n " * MAX_REPORT_LINES + "\n\n"
    assert groups(flood + _group(1))[1] == []
    fits = "Reporting-MTA: dns; mx.example" + "\n " * (MAX_REPORT_LINES // 2) + "\n\n"
    assert [g["final-recipient"] for g in groups(fits + _group(1))[1]] == [
        "rfc822; user1@example.net"]


def test_a_header_block_behind_a_3_mib_folded_field_is_read():
    """tests/faults pads DSNs so: a 3 MiB field folded at 76 characters (41,400 lines)."""
    pad = "\n ".join(["x" * 76] * 41_400)
    m = parse_message(f"X-Pad: {pad}\nSubject: after the pad\n\nbody".encode())
    assert m.get("subject") == "after the pad"
    assert 41_400 < MAX_FOLDED_LINES
    # One more than MAX_FOLDED_LINES physical lines: what follows is not read.
    pad = "\n ".join(["x"] * MAX_FOLDED_LINES)
    assert parse_message(f"X-Pad: {pad}\nSubject: s\n\nbody".encode()).get("subject") is None


def _copy(return_path: str, received: str) -> bytes:
    return (_HEAD + b'Content-Type: multipart/report; report-type=delivery-status; '
            b'boundary="B"\n\n--B\nContent-Type: text/plain\n\nundeliverable\n'
            b"--B\nContent-Type: message/delivery-status\n\n"
            b"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; alice@example.net\n"
            b"Action: failed\nStatus: 5.1.1\n\n--B\nContent-Type: message/rfc822\n\n"
            + f"Received: {received}\nReturn-Path: {return_path}\n".encode()
            + b"Subject: hi\n\nhello\n--B--\n")


def test_the_returned_copys_return_path_and_received_are_read_in_max_field_chars():
    ok = parse(_copy("<bob@example.org>", "from x (Authenticated sender: bob) by y"))
    assert (ok.original.sender, ok.original.sasl_login) == ("bob@example.org", "bob")
    # Behind MAX_FIELD characters of "<>" or "(", nothing is read (a real Return-Path is
    # one address; a Received line is a few hundred characters).
    pad = "<>" * (MAX_FIELD // 2)
    late = parse(_copy(pad + "<bob@example.org>",
                       "(" * MAX_FIELD + "from x (Authenticated sender: bob) by y"))
    assert [x.address for x in late.recipients] == ["alice@example.net"]
    assert (late.original.sender, late.original.sasl_login) == (None, None)


def test_a_report_address_field_is_read_in_max_field_chars():
    from bounce_handler.parse.rfc3464 import _addr

    assert _addr("rfc822; <bob@example.org>") == "bob@example.org"
    assert _addr("rfc822; " + "<>" * (MAX_FIELD // 2) + "<bob@example.org>") is None


def test_multipart_splitting_stops_at_the_part_budget():
    from bounce_handler.parse.mime import MAX_PARTS, _split

    body = b"--B\nContent-Type: text/plain\n\nx\n" * 20_000 + b"--B--\n"
    assert len(_split(body, b"B")) == MAX_PARTS
    assert len(_split(body, b"B", 3)) == 3
    # What a message keeps is the budget either way (MAX_PARTS, all levels together).
    m = parse_message(b'Content-Type: multipart/mixed; boundary="B"\n\n' + body)
    assert len(m.parts) == MAX_PARTS - 1


def test_lines_that_only_start_like_the_delimiter_are_passed_over_a_bounded_number_of_times():
    from bounce_handler.parse.mime import MAX_LONGER_DELIMITERS, _split

    def body(n: int) -> bytes:
        return (b"--B\nContent-Type: text/plain\n\nfirst\n" + b"--Bx\n" * n
                + b"--B\nContent-Type: text/plain\n\nsecond\n--B--\n")

    # A nested multipart's longer boundary ("--Bx") is no delimiter of ours ...
    assert [p.count(b"--Bx") for p in _split(body(MAX_LONGER_DELIMITERS), b"B")] == [
        MAX_LONGER_DELIMITERS, 0]
    # ... but past MAX_LONGER_DELIMITERS of them the part being read runs to the end.
    parts = _split(body(MAX_LONGER_DELIMITERS + 1), b"B")
    assert len(parts) == 1 and parts[0].endswith(b"second\n--B--\n")


def test_a_part_cut_at_max_text_bytes_is_cut_between_utf8_characters():
    from bounce_handler.parse.mime import MAX_TEXT_BYTES, Part

    for pad in range(4):  # the cut falls in each byte of a 2-, 3- and 4-byte character
        for ch in ("д", "€", "\U0001f4e7"):
            body = b"x" * pad + ch.encode() * (MAX_TEXT_BYTES // len(ch.encode()) + 1)
            text = Part([("content-type", "text/plain; charset=utf-8")], body, [9]).text()
            # Not decoded as cp1252 for one cut character (it was: "Ð´Ð´...").
            assert set(text[pad:]) == {ch}


def test_the_returned_copys_message_id_is_one_line_of_at_most_998_characters():
    # RFC 5322 §2.1.1: a line is at most 998 characters; the store cuts there too.  A
    # returned copy's Message-ID of 1 MiB reached `bounces parse` output whole.
    raw = _copy("<bob@example.org>", "from x by y").replace(
        b"Subject: hi\n", b"Message-ID: <" + b"m" * (1 << 20) + b"@x>\nSubject: hi\n")
    r = parse(raw)
    assert [x.address for x in r.recipients] == ["alice@example.net"]
    assert r.original.message_id.startswith("<mmm") and len(r.original.message_id) == 998
    plain = parse(_copy("<bob@example.org>", "from x by y").replace(
        b"Subject: hi\n", b"Message-ID: <id-1@example.org>\nSubject: hi\n"))
    assert plain.original.message_id == "<id-1@example.org>"
