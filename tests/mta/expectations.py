"""What each real MTA's notice for each lab case means, as a mail engineer reads it.

The truth the parser is held to, for the live tests (tests/mta/test_real_mtas.py) and for
the captured corpus (tests/data/real/, tests/mta/test_real_corpus.py).  Written from the
notices themselves and the fake remote's answers (tests/support/mta/net.py), never from
what the parser happens to say:

- 550 5.1.1 at RCPT: the address is dead (userunknown, hard);
- 552 5.2.2 at RCPT: a full mailbox says nothing bad about the address (hard False);
- 554 5.7.1 after DATA, "rejected by content policy": about the message, not the
  recipient (policyviolation, hard False);
- a 554 5.7.1 greeting, "not accepting mail from your host: blocked": the sending host is
  refused before any recipient is named (blocked, hard False);
- 552 5.3.4 after DATA: the message is too big (emailtoolarge, hard False) -- Sendmail's
  DSN says ``Status: 5.2.2`` (its RFC 821 mapping of 552) while the remote said 5.3.4;
- a 421 4.3.2 greeting until the queue lifetime runs out: the retries ran out (expired,
  hard False);
- NXDOMAIN for the recipient's domain: the address cannot exist (hostunknown, hard).

Status: the code of the reply that failed the recipient when the notice carries it (the
remote's 5.7.1 over Sendmail's own 5.5.0, the remote's 4.3.2 over Exim's summary 5.0.0 and
over Sendmail's 4.4.7, whose expiry DSN has it in the transcript only),
otherwise the notice's own (OpenSMTPD's 4.4.7 for an expired envelope, whose notice never
shows the remote's reply; Exim's and OpenSMTPD's 5.0.0 for an unroutable domain, which no
reply ever answered).
"""

from __future__ import annotations

MTAS = ("postfix", "exim", "opensmtpd", "sendmail")

# case -> [(recipient, status, reason, hard)] for the final notice, for every MTA...
COMMON = {
    "unknown": [("unknown@rcpt.test", "5.1.1", "userunknown", True)],
    "full": [("full@rcpt.test", "5.2.2", "mailboxfull", False)],
    "content": [("content@rcpt.test", "5.7.1", "policyviolation", False)],
    "refused": [("someone@refuse.test", "5.7.1", "blocked", False)],
    "big": [("big@rcpt.test", "5.3.4", "emailtoolarge", False)],
    "expired": [("someone@busy.test", "4.3.2", "expired", False)],
}
# ...and where an MTA's notice differs.
NXDOMAIN_STATUS = {"postfix": "5.4.4", "exim": "5.0.0", "opensmtpd": "5.0.0",
                   "sendmail": "5.1.2"}
OVERRIDES = {
    # OpenSMTPD retries a 554 greeting like a 421 and its expiry notice names neither.
    ("opensmtpd", "refused"): [("someone@refuse.test", "4.4.7", "expired", False)],
    ("opensmtpd", "expired"): [("someone@busy.test", "4.4.7", "expired", False)],
}

# Cases whose final notice is a failure (kind "bounce"); "success" is a delivery notice.
FAILURE_CASES = ("unknown", "full", "content", "refused", "big", "expired", "nxdomain",
                 "multi")
# Cases the MTA retries (and so may warn about) before the final notice.
RETRIED = ("refused", "expired")
# Every MTA is configured to warn before the 421 case expires.
MUST_WARN = ("expired",)


def final(mta: str, case: str) -> list[tuple]:
    """The expected (recipient, status, reason, hard) rows of `mta`'s final notice."""
    if (mta, case) in OVERRIDES:
        return OVERRIDES[(mta, case)]
    nx = NXDOMAIN_STATUS[mta]
    if case == "nxdomain":
        return [("nobody@nxdomain.test", nx, "hostunknown", True)]
    if case == "multi":
        # ok-m@rcpt.test was delivered: it must not be named.
        return [("unknown-m@rcpt.test", "5.1.1", "userunknown", True),
                ("full-m@rcpt.test", "5.2.2", "mailboxfull", False),
                ("nobody-m@nxdomain.test", nx, "hostunknown", True)]
    return COMMON[case]


# (mta, case) -> why the parser gets it wrong today: the tests mark these strict xfail so
# a defect found later is routed (and the mark dropped once it is fixed). None today.
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


# -- which notices are delay warnings (the test's own reading, from each MTA's templates) --

# Subject lines each MTA gives its delay warnings (Postfix 3.7 bounce(8) templates, Exim
# 4.96's warning message, OpenSMTPD 6.8's bounce.c, Sendmail 8.17's queue warning).
WARNING_SUBJECTS = {
    "postfix": ("Delayed Mail (still being retried)",),
    "exim": ("Warning: message ",),
    "opensmtpd": ("Delivery status notification: delayed",),
    "sendmail": ("Warning: could not send message for past",),
}


def subject(raw: bytes) -> str:
    """The notice's own Subject: (top-level header block only)."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        if line.lower().startswith(b"subject:"):
            return line[8:].strip().decode("ascii", "replace")
    return ""


def is_warning(mta: str, raw: bytes) -> bool:
    """True for a delay warning (the message is still queued), False for a final notice.

    OpenSMTPD's expiry notice keeps the subject "Delivery status notification: delayed"
    and says "Envelope expired": the envelope is gone from its queue, so it is final.
    """
    if not subject(raw).startswith(WARNING_SUBJECTS[mta]):
        return False
    return not (mta == "opensmtpd" and b"Envelope expired" in raw)
