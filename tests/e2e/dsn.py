"""Bounces the e2e tests send through Postfix: RFC 3464 reports written here, per test."""

from __future__ import annotations

import uuid


def dsn(
    recipient: str,
    *,
    bounce_to: str,
    status: str = "5.1.1",
    sender: str = "news@corp.example",
    diagnostic: str | None = None,
    mta: str = "mx.remote.example",
) -> bytes:
    """A multipart/report DSN (RFC 3464 §2) for one failed recipient, addressed to `bounce_to`.

    Every call gets a fresh Message-ID and boundary, so two calls are two messages (the
    idempotency key is a digest of the bytes).
    """
    ident = uuid.uuid4().hex
    boundary = f"b-{ident}"
    diagnostic = diagnostic or f"smtp; 550 {status} <{recipient}>: Recipient address rejected"
    action = "failed" if status.startswith("5") else "delayed"
    text = f"""\
From: Mail Delivery System <MAILER-DAEMON@{mta}>
To: {bounce_to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{ident}@{mta}>
Date: Tue, 24 Nov 2026 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered to {recipient}.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; {mta}
Arrival-Date: Tue, 24 Nov 2026 11:59:59 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; {mta}
Diagnostic-Code: {diagnostic}

--{boundary}
Content-Type: text/rfc822-headers

Return-Path: <{bounce_to}>
From: {sender}
To: {recipient}
Subject: newsletter {ident[:8]}
Message-ID: <orig-{ident}@corp.example>

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode()


def xverp_token(recipient: str) -> str:
    """The XVERP extension Postfix writes for `recipient`: local=domain."""
    local, _, domain = recipient.rpartition("@")
    return f"{local}={domain}"
