"""Bounce messages for the trust tests: remote DSNs, and notices as Postfix's bounce daemon
writes them (the shapes captured from Postfix 3.7 in tests/e2e/test_postfix_duplicates.py).

Every call gets fresh identifiers unless told otherwise, so two calls are two messages.
"""

from __future__ import annotations

import uuid

RELAY_HOST = "relay.relay.test"  # the private Postfix's myhostname (tests/support/postfix.py)
BOUNCE_DOMAIN = "relay.test"


def _ident() -> str:
    return uuid.uuid4().hex


def report(
    failures: list[tuple[str, str, str]],
    *,
    to: str,
    mta: str = "mx.remote.example",
    queue_id: str | None = None,
    x_sender: str | None = None,
    arrival: str = "Tue, 24 Nov 2026 11:59:59 +0000",
    message_id: str | None = None,
    returned: str = "",
    top: str = "",
    subject: str = "Undelivered Mail Returned to Sender",
    sender: str = "MAILER-DAEMON",
) -> bytes:
    """A multipart/report DSN (RFC 3464) listing `failures` as (recipient, status, text).

    `top` goes before the DSN's own headers (what pipe(8)'s flags and cleanup's Received:
    put there); `returned` is the text/rfc822-headers part (the original's headers).
    """
    ident = _ident()
    boundary = f"b-{ident}"
    groups = []
    for rcpt, status, text in failures:
        action = "failed" if status.startswith("5") else "delayed"
        groups.append(
            f"Final-Recipient: rfc822; {rcpt}\nOriginal-Recipient: rfc822;{rcpt}\n"
            f"Action: {action}\nStatus: {status}\nRemote-MTA: dns; {mta}\n"
            f"Diagnostic-Code: smtp; {text}\n"
        )
    per_message = f"Reporting-MTA: dns; {mta}\n"
    if queue_id:
        per_message += f"X-Postfix-Queue-ID: {queue_id}\n"
    if x_sender:
        per_message += f"X-Postfix-Sender: rfc822; {x_sender}\n"
    per_message += f"Arrival-Date: {arrival}\n"
    body = "\n".join(groups)
    text = f"""{top}Date: Tue, 24 Nov 2026 12:00:00 +0000
From: Mail Delivery System <{sender}@{mta}>
Subject: {subject}
To: {to}
Message-ID: <{message_id or ident + '@' + mta}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--{boundary}
Content-Type: message/delivery-status

{per_message}
{body}
--{boundary}
Content-Type: text/rfc822-headers

{returned or 'Subject: hello'}

--{boundary}--
"""
    return text.encode()


def returned_headers(
    sender: str = "news@corp.example",
    *,
    return_path: str | None = None,
    message_id: str | None = None,
    received: str = "",
) -> str:
    """The original's headers as a report returns them."""
    rp = f"Return-Path: <{return_path}>\n" if return_path is not None else ""
    return (
        f"{rp}{received}From: {sender}\nTo: someone@remote.example\n"
        f"Subject: newsletter\nMessage-ID: <{message_id or _ident()}@corp.example>"
    )


def bounce_daemon_notice(
    failures: list[tuple[str, str, str]],
    *,
    original_queue_id: str,
    return_path: str,
    postmaster_copy: bool = False,
    queue_id: str | None = None,
    sasl_login: str | None = None,
    original_sender: str = "news@corp.example",
    arrival: str = "Tue,  1 Dec 2026 15:22:13 +0000 (UTC)",
    message_id: str | None = None,
) -> tuple[bytes, str]:
    """A notice as this relay's bounce daemon writes it, as pipe(8) with flags=DORq hands
    it to the handler: (bytes, its own queue ID).

    The DSN to the sender goes to `return_path` with the null sender; the postmaster copy
    (notify_classes) goes to the bare bounce address from double-bounce@.  Both carry the
    original's queue ID, X-Postfix-Sender and Arrival-Date (what makes them one failure).
    """
    qid = queue_id or _ident()[:11].upper()
    if postmaster_copy:
        env_from, to = f"double-bounce@{RELAY_HOST}", f"bounces@{BOUNCE_DOMAIN}"
        subject = "Postmaster Copy: Undelivered Mail"
    else:
        env_from, to = "", return_path
        subject = "Undelivered Mail Returned to Sender"
    top = (
        f"Return-Path: <{env_from}>\nX-Original-To: {to}\nDelivered-To: {to}\n"
        f"Received: by {RELAY_HOST} (Postfix)\n\tid {qid}; Tue,  1 Dec 2026 15:22:13 +0000 (UTC)\n"
    )
    auth = f"\t(Authenticated sender: {sasl_login})\n" if sasl_login else ""
    received = (
        f"Received: from [203.0.113.44] (unknown [203.0.113.44])\n{auth}"
        f"\tby {RELAY_HOST} (Postfix) with ESMTPSA id {original_queue_id}\n"
        f"\tfor <someone@remote.example>; Tue,  1 Dec 2026 15:22:13 +0000 (UTC)\n"
    )
    raw = report(
        failures,
        to=to,
        mta=RELAY_HOST,
        queue_id=original_queue_id,
        x_sender=return_path,
        arrival=arrival,
        message_id=message_id or f"20261201152213.{qid}@{RELAY_HOST}",
        returned=returned_headers(original_sender, return_path=return_path, received=received),
        top=top,
        subject=subject,
    )
    return raw, qid
