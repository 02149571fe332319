"""classify(): enhanced status first, then vendor codes and words, then the reply code."""

from __future__ import annotations

import pytest

from bounce_handler.classify import HARD_REASONS, REASONS, classify

CASES = [
    # status, diagnostic, action, reply -> status, reason, hard
    ("5.1.1", "550 5.1.1 <a@b>: Recipient address rejected: User unknown", None, None,
     "5.1.1", "userunknown", True),
    ("5.1.2", "Host or domain name not found", None, None, "5.1.2", "hostunknown", True),
    ("5.1.6", "551 User has moved", None, None, "5.1.6", "hasmoved", True),
    ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", None, None,
     "5.1.10", "userunknown", True),
    ("5.2.2", "552 Mailbox full", None, None, "5.2.2", "mailboxfull", False),
    ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", None, None,
     "5.3.4", "emailtoolarge", False),
    ("4.4.1", "connect to mx[192.0.2.1]:25: Connection timed out", "delayed", None,
     "4.4.1", "networkerror", None),
    ("4.4.7", "delivery time expired", "failed", None, "4.4.7", "expired", False),
    # Sender-side blocks are never hard bounces of the recipient.
    ("5.7.1", "554 5.7.1 Client host [192.0.2.1] blocked using zen.spamhaus.org", None, None,
     "5.7.1", "blocked", False),
    ("5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering", None, None,
     "5.7.1", "spamdetected", False),
    ("5.7.26", "550 5.7.26 Unauthenticated email from example.org is not accepted due to "
     "domain's DMARC policy", None, None, "5.7.26", "authfailure", False),
    ("5.7.25", "550 5.7.25 The IP address sending this message does not have a PTR record",
     None, None, "5.7.25", "requireptr", False),
    ("5.7.1", "554 5.7.1 <x@y>: Relay access denied", None, None, "5.7.1", "norelaying", False),
    ("5.1.10", "550 5.1.10 Recipient address has null MX", None, None,
     "5.1.10", "notaccept", True),
    ("4.3.2", "421 4.3.2 System not accepting network messages", "delayed", None,
     "4.3.2", "notaccept", None),
    # Vendor codes (Yahoo TS/TSS, Gmail 4.7.28, Microsoft S3150) before generic statuses.
    ("4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred", "delayed",
     None, "4.7.0", "ratelimited", None),
    ("4.7.0", "421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred", "failed",
     None, "4.7.0", "ratelimited", False),
    (None, "421-4.7.28 Our system has detected an unusual rate of unsolicited mail",
     "delayed", None, "4.7.28", "ratelimited", None),
    ("5.7.1", "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent (S3150)",
     None, None, "5.7.1", "blocked", False),
    # No status: inferred from the words, then from the reply code.
    (None, "Sorry, no mailbox here by that name. (#5.1.1)", None, None,
     "5.1.1", "userunknown", True),
    (None, "user unknown", None, None, "5.1.1", "userunknown", True),
    (None, "This account is over quota", None, None, "5.2.2", "mailboxfull", False),
    (None, "552 Quota violation for a@b", None, None, "5.2.2", "mailboxfull", False),
    (None, "I wasn't able to establish an SMTP connection", None, None,
     "5.4.0", "networkerror", False),
    (None, "550 Requested action not taken", None, None, "5.1.1", "userunknown", True),
    (None, None, None, None, None, "undefined", False),
    # "Status: 5.0.0" next to a specific code in the text: the specific code wins.
    ("5.0.0", "550 5.1.1 <a@b>... User unknown", None, None, "5.1.1", "userunknown", True),
    # Successful deliveries and delays are never failures.
    ("2.0.0", "250 2.0.0 Ok: queued", "delivered", None, "2.0.0", "delivered", None),
    ("4.2.2", "452 4.2.2 Mailbox full", "delayed", None, "4.2.2", "mailboxfull", None),
    # The sender, not the recipient, is refused.
    ("5.1.8", "553 5.1.8 <s@x>... Domain of sender address s@x does not exist", None, None,
     "5.1.8", "rejected", False),
    (None, "450 4.1.8 <s@x>: Sender address rejected: Domain not found", "delayed", None,
     "4.1.8", "rejected", None),
]


@pytest.mark.parametrize("status, diag, action, reply, want_status, reason, hard", CASES)
def test_classify(status, diag, action, reply, want_status, reason, hard):
    assert classify(status, diag, action, reply) == (want_status, reason, hard)


def test_reasons_are_sisimais_vocabulary_and_hard_ones_are_few():
    assert HARD_REASONS == {"userunknown", "hostunknown", "hasmoved"}
    assert len(REASONS) == len(set(REASONS))
    assert {"vacation", "feedback", "delivered", "undefined"} <= set(REASONS)


def test_every_table_reason_is_in_the_vocabulary():
    from bounce_handler import classify as c

    used = set(c.STATUS_REASON.values()) | set(c.GENERIC_DEFAULT.values())
    used |= {r for _, _, r in c.VENDOR_CODES} | {r for r, _ in c.TEXT_REASON}
    used |= set(c.REPLY_REASON.values()) | set(c.REASON_STATUS)
    assert used <= set(REASONS), used - set(REASONS)


@pytest.mark.parametrize("reason", ["blocked", "spamdetected", "badreputation", "requireptr",
                                    "authfailure", "ratelimited", "policyviolation"])
def test_sender_side_blocks_are_soft_even_when_permanent(reason):
    from bounce_handler.classify import REASON_STATUS

    status = "5" + REASON_STATUS[reason][1:]
    _, got, hard = classify(status if status != "5.7.1" else None, reason_text(reason), "failed")
    assert got == reason
    assert hard is False


def reason_text(reason: str) -> str:
    return {
        "blocked": "550 5.7.1 blocked using bl.spamcop.net",
        "spamdetected": "550 5.7.1 message looks like spam",
        "badreputation": "550 5.7.1 poor sender reputation",
        "requireptr": "550 5.7.25 reverse DNS lookup failed",
        "authfailure": "550 5.7.23 SPF check failed",
        "ratelimited": "550 5.7.0 rate limit exceeded",
        "policyviolation": "550 5.7.0 rejected by local policy",
    }[reason]
