"""Hostile messages, built on demand (never stored: some are tens of MiB)."""

from __future__ import annotations

import os

from tests.conftest import SAMPLES

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
HEAD = (
    b"From: MAILER-DAEMON@mx.example\nTo: bounces+alice=example.net@relay.example\n"
    b"Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
)
REPORT = (
    b"Content-Type: message/delivery-status\n\n"
    b"Reporting-MTA: dns; mx.example\n\n"
    b"Final-Recipient: rfc822; alice@example.net\nAction: failed\nStatus: 5.1.1\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
)


def deep_multipart(levels: int = 1000) -> bytes:
    """multipart/mixed inside multipart/mixed ... `levels` deep, a DSN at the bottom."""
    out = [HEAD]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i))
    out.append(REPORT)
    for i in reversed(range(levels)):
        out.append(b"\n--b%d--\n" % i)
    return b"".join(out)


def deep_rfc822(levels: int = 1000) -> bytes:
    """message/rfc822 inside message/rfc822 ... `levels` deep."""
    return HEAD + b"Content-Type: message/rfc822\n\n" * levels + b"Subject: x\n\nbody\n"


def many_parts(parts: int = 10_000) -> bytes:
    """A multipart/report with `parts` parts (each a delivery-status one)."""
    body = b"".join(b"--B\n" + REPORT for _ in range(parts))
    ctype = b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
    return HEAD + ctype + body + b"--B--\n"


def huge_header_line(size: int = 5 * 1024 * 1024) -> bytes:
    """One unfolded 5 MB Subject line in front of a real DSN."""
    return b"Subject: " + b"A" * size + b"\n" + DSN


def big_attachment(size: int = 50 * 1024 * 1024) -> bytes:
    """A DSN carrying a `size` base64 attachment: past the 10 MiB cap, truncated."""
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n"
    body = line * (size // len(line))
    return (
        HEAD
        + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        + b"--B\n" + REPORT + b"\n--B\nContent-Type: application/octet-stream\n"
        + b"Content-Transfer-Encoding: base64\n\n" + body + b"--B--\n"
    )


def endless_base64(size: int = 9 * 1024 * 1024) -> bytes:
    """A base64 part that never ends: no closing boundary, no padding, just data."""
    chunk = os.urandom(57 * 1000)
    import base64

    b64 = base64.encodebytes(chunk)
    body = b64 * (size // len(b64))
    return (
        HEAD
        + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        + b"--B\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
        + body
    )


def many_headers(count: int = 200_000) -> bytes:
    """200,000 header fields."""
    return b"".join(b"X-H%d: v\n" % i for i in range(count)) + DSN


def encoded_words(count: int = 100_000) -> bytes:
    """A Subject of 100,000 RFC 2047 encoded words."""
    return b"Subject: " + b"=?utf-8?b?w6k=?= " * count + b"\n" + DSN


def many_recipients(count: int = 10_000) -> bytes:
    """One delivery-status part with 10,000 per-recipient blocks."""
    blocks = b"".join(
        b"\nFinal-Recipient: rfc822; u%d@example.net\nAction: failed\nStatus: 5.1.1\n" % i
        for i in range(count)
    )
    return (
        HEAD
        + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        + b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n"
        + blocks + b"\n--B--\n"
    )


def cr_only(size: int = 5 * 1024 * 1024) -> bytes:
    """5 MB of bare CRs (old Mac line ends) after the headers."""
    return DSN.replace(b"\n", b"\r") + b"\r" * size


def boundary_storm(count: int = 20_000) -> bytes:
    """Delimiter lines that are prefixes of each other (a quadratic scan would crawl)."""
    lines = b"".join(b"--B" + b"x" * (i % 50) + b"\n" for i in range(count))
    return HEAD + b'Content-Type: multipart/report; boundary="B"\n\n' + lines


BOMBS = {
    "deep-multipart-1000": deep_multipart,
    "deep-rfc822-1000": deep_rfc822,
    "parts-10000": many_parts,
    "header-line-5MB": huge_header_line,
    "attachment-50MiB": big_attachment,
    "endless-base64": endless_base64,
    "headers-200000": many_headers,
    "encoded-words-100000": encoded_words,
    "recipients-10000": many_recipients,
    "cr-only-5MB": cr_only,
    "boundary-prefixes": boundary_storm,
}
