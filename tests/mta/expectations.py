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
- NXDOMAIN for the recipient's domain: the address cannot exist (hostunknown, hard);
- 550 5.7.1 "Sender address rejected: Access denied" at MAIL FROM: the envelope sender is
  refused before any recipient is named (rejected, hard False);
- 554 5.7.1 "Client host [ip] blocked using zen.spamhaus.org" at RCPT: the relay's IP is
  on a block list, nothing is said about the recipient (blocked, hard False);
- 550 5.7.26 "Unauthenticated email ... due to domain's DMARC policy" after DATA: the
  sender's domain failed DMARC (authfailure, hard False);
- 550 5.2.1 "The email account that you tried to reach is disabled" at RCPT: the mailbox
  exists but is disabled (suspend, hard False);
- 551 5.1.6 "Recipient has moved; please try <new-address@elsewhere.test>" at RCPT: the
  address is gone (hasmoved, hard); the forward-path named is no recipient;
- 554 5.7.1 "Relay access denied" at RCPT: the host does not take mail for that domain
  from us, a routing problem, not a dead address (norelaying, hard False);
- 550 5.7.1 "The IP you are using to send mail is not authorized to send email directly
  to our servers" (Gmail, multi-line) at RCPT: the sending host is refused (blocked, hard
  False).  Sendmail's notice says "Status: 5.1.1" and "550 5.1.1 <a>... User unknown",
  its own filing of any multi-line 550 to RCPT; its transcript shows the remote's 5.7.1;
- a null MX (RFC 7505 "MX 0 ."): the domain accepts no mail (notaccept, hard).  Postfix
  3.7 ("does not accept mail (nullMX)", 5.1.0), Exim 4.96 ("an MX or SRV record indicated
  no SMTP service", 5.0.0) and Sendmail 8.17 ("556 Host does not accept mail: MX 0 .",
  5.1.10) know it.  OpenSMTPD 6.8 does not: it says "No MX found for domain", retries as
  for a temporary failure and finally sends "Envelope expired" (expired, 4.4.7, hard
  False) -- its final notice names no cause, so that is all it proves.  Courier 1.0.16
  does not either: it looks up "." as the MX host and says "No such domain." (5.0.0):
  hostunknown, hard -- the domain takes no mail, which is what the notice proves;
- 421 4.7.0 [TSS04] (Yahoo) or 450 4.7.28 (Gmail) at every RCPT until the queue lifetime
  ends: the retries ran out, and the cause is named and more specific than "expired" -- a
  throttle (ratelimited, hard False) so that the judge's throttled-destination rule R8
  sees it (docs/reasons.md); the delay warnings before it are ratelimited deferrals, never
  failures.  OpenSMTPD's expiry notice names no cause (expired, 4.4.7);
- 452 4.3.1 at the end of DATA until expiry, two recipients: both were accepted at RCPT and
  both fail; the receiving system's storage trouble is no more specific than the expiry
  (expired, hard False, the remote's 4.3.1 over the MTAs' summaries 5.0.0 / 4.4.7);
- a 5xx to DATA with three recipients, one refused at RCPT: the two accepted ones fail with
  the DATA reply (policyviolation), the refused one keeps its own (userunknown, hard);
- a pipelined session whose every RCPT is refused, then "554 5.5.1 Error: no valid
  recipients" to DATA: each recipient's RCPT reply is what failed it (Sendmail's
  transcript shows ">>> DATA" before the RCPT replies it read back).

Status: the code of the reply that failed the recipient when the notice carries it (the
remote's 5.7.1 over Sendmail's own 5.5.0, the remote's 4.3.2 over Exim's and Courier's
summary 5.0.0 (Courier 1.0.16 says "Status: 5.0.0" for every failure) and
over Sendmail's 4.4.7, whose expiry DSN has it in the transcript only),
otherwise the notice's own (OpenSMTPD's 4.4.7 for an expired envelope, whose notice never
shows the remote's reply; Exim's, OpenSMTPD's and Courier's 5.0.0 for an unroutable domain, which no
reply ever answered).
"""

from __future__ import annotations

MTAS = ("postfix", "exim", "opensmtpd", "sendmail", "courier", "dma")

# case -> [(recipient, status, reason, hard)] for the final notice, for every MTA...
COMMON = {
    "unknown": [("unknown@rcpt.test", "5.1.1", "userunknown", True)],
    "full": [("full@rcpt.test", "5.2.2", "mailboxfull", False)],
    "content": [("content@rcpt.test", "5.7.1", "policyviolation", False)],
    "refused": [("someone@refuse.test", "5.7.1", "blocked", False)],
    "big": [("big@rcpt.test", "5.3.4", "emailtoolarge", False)],
    "expired": [("someone@busy.test", "4.3.2", "expired", False)],
    "sender": [("someone@sender.test", "5.7.1", "rejected", False)],
    "listed": [("listed@rcpt.test", "5.7.1", "blocked", False)],
    "dmarc": [("dmarc@rcpt.test", "5.7.26", "authfailure", False)],
    "disabled": [("disabled@rcpt.test", "5.2.1", "suspend", False)],
    "moved": [("moved@rcpt.test", "5.1.6", "hasmoved", True)],
    "relay": [("relay@rcpt.test", "5.7.1", "norelaying", False)],
    "notauth": [("notauth@rcpt.test", "5.7.1", "blocked", False)],
    "throttled": [("throttled@rcpt.test", "4.7.0", "ratelimited", False)],
    "unusual": [("unusual@rcpt.test", "4.7.28", "ratelimited", False)],
    # ok-t@rcpt.test was accepted at RCPT and fails with the DATA reply like the other.
    "tempdata": [("tempdata-t@rcpt.test", "4.3.1", "expired", False),
                 ("ok-t@rcpt.test", "4.3.1", "expired", False)],
    "datamulti": [("unknown-d@rcpt.test", "5.1.1", "userunknown", True),
                  ("content-d@rcpt.test", "5.7.1", "policyviolation", False),
                  ("ok-d@rcpt.test", "5.7.1", "policyviolation", False)],
    "pipelined": [("unknown-p@pipelining.test", "5.1.1", "userunknown", True),
                  ("full-p@pipelining.test", "5.2.2", "mailboxfull", False)],
}
# ...and where an MTA's notice differs.
NXDOMAIN_STATUS = {"postfix": "5.4.4", "exim": "5.0.0", "opensmtpd": "5.0.0",
                   "sendmail": "5.1.2", "courier": "5.0.0", "dma": "5.1.2"}
NULLMX_STATUS = {"postfix": "5.1.0", "exim": "5.0.0", "sendmail": "5.1.10"}
OVERRIDES = {
    # OpenSMTPD retries a 554 greeting like a 421 and its expiry notice names neither.
    ("opensmtpd", "refused"): [("someone@refuse.test", "4.4.7", "expired", False)],
    ("opensmtpd", "expired"): [("someone@busy.test", "4.4.7", "expired", False)],
    # OpenSMTPD 6.8 takes a null MX for a temporary "No MX found for domain"; its expiry
    # notice, like every one of its expiry notices, shows no remote reply.
    ("opensmtpd", "nullmx"): [("someone@nullmx.test", "4.4.7", "expired", False)],
    ("opensmtpd", "throttled"): [("throttled@rcpt.test", "4.4.7", "expired", False)],
    ("opensmtpd", "unusual"): [("unusual@rcpt.test", "4.4.7", "expired", False)],
    ("opensmtpd", "tempdata"): [("tempdata-t@rcpt.test", "4.4.7", "expired", False),
                                ("ok-t@rcpt.test", "4.4.7", "expired", False)],
    # Courier 1.0.16 does not know RFC 7505 either: it looks up the null MX's "." as a host
    # and, finding no address, says "No such domain." (Status 5.0.0) at once.  That is all
    # its notice proves: an unroutable domain, dead for mail either way.
    ("courier", "nullmx"): [("someone@nullmx.test", "5.0.0", "hostunknown", True)],
    # DMA 0.13 sends one notice per failed recipient and gives no status code of its own.
    # It does not know RFC 7505: the null MX's "." has no address, and it says "DNS lookup
    # failure: host nullmx.test not found" as for a domain that does not exist (a final
    # notice says so only for a permanent failure: a temporary one ends as "Could not
    # deliver for the last N seconds"): hostunknown, 5.1.2 as for the nxdomain case.
    ("dma", "nullmx"): [("someone@nullmx.test", "5.1.2", "hostunknown", True)],
    # "Could not deliver for the last 432000 seconds. Giving up.": the retries ran out and
    # the notice names no reply and no code (RFC 3463 X.4.7, in a final notice 5.4.7).
    ("dma", "expired"): [("someone@busy.test", "5.4.7", "expired", False)],
    ("dma", "throttled"): [("throttled@rcpt.test", "5.4.7", "expired", False)],
    ("dma", "unusual"): [("unusual@rcpt.test", "5.4.7", "expired", False)],
    # DMA delivers each recipient in a session of its own: ok-t and ok-d were delivered
    # (no DATA refusal in their sessions) and are named in no notice.
    ("dma", "tempdata"): [("tempdata-t@rcpt.test", "5.4.7", "expired", False)],
    ("dma", "datamulti"): [("unknown-d@rcpt.test", "5.1.1", "userunknown", True),
                           ("content-d@rcpt.test", "5.7.1", "policyviolation", False)],
}

# (mta, case) -> why the MTA cannot produce it (the tests skip it, saying why).
UNSUPPORTED = {
    ("dma", "success"): "DMA 0.13 has no DSN extension: it sends no success notice",
}
# MTAs that never send a delay warning (so MUST_WARN does not apply to them).
NO_WARNINGS = {"dma": "DMA 0.13 sends no delay warnings: its only notice is the bounce"}

# Cases whose final notice is a failure (kind "bounce"); "success" is a delivery notice.
FAILURE_CASES = ("unknown", "full", "content", "refused", "big", "expired", "nxdomain",
                 "multi", "sender", "listed", "dmarc", "disabled", "moved", "relay",
                 "notauth", "nullmx", "throttled", "unusual", "tempdata", "datamulti",
                 "pipelined")
# Cases the MTA retries (and so may warn about) before the final notice.
RETRIED = ("refused", "expired", "throttled", "unusual", "tempdata", "nullmx")
# Every MTA is configured to warn before these cases expire (a 4xx until the end).
MUST_WARN = ("expired", "throttled", "unusual", "tempdata")


def must_warn(mta: str) -> tuple:
    """The cases `mta` must send a delay warning for (none for an MTA that never warns)."""
    return () if mta in NO_WARNINGS else MUST_WARN
# What a delay warning must say the delay is (a throttle is ratelimited while it lasts,
# so rule R8 counts it before anything expires).
WARNING_REASON = {"throttled": "ratelimited", "unusual": "ratelimited"}


def final(mta: str, case: str) -> list[tuple]:
    """The expected (recipient, status, reason, hard) rows of `mta`'s final notice."""
    if (mta, case) in OVERRIDES:
        return OVERRIDES[(mta, case)]
    nx = NXDOMAIN_STATUS[mta]
    if case == "nullmx":
        return [("someone@nullmx.test", NULLMX_STATUS[mta], "notaccept", True)]
    if case == "nxdomain":
        return [("nobody@nxdomain.test", nx, "hostunknown", True)]
    if case == "multi":
        # ok-m@rcpt.test was delivered: it must not be named.
        return [("unknown-m@rcpt.test", "5.1.1", "userunknown", True),
                ("full-m@rcpt.test", "5.2.2", "mailboxfull", False),
                ("nobody-m@nxdomain.test", nx, "hostunknown", True)]
    return COMMON[case]


# (mta, case) -> why the parser gets it wrong today: the tests mark these strict xfail so
# a defect found later is routed (and the mark dropped once it is fixed).
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


# -- which notices are delay warnings (the test's own reading, from each MTA's templates) --

# Subject lines each MTA gives its delay warnings (Postfix 3.7 bounce(8) templates, Exim
# 4.96's warning message, OpenSMTPD 6.8's bounce.c, Sendmail 8.17's queue warning, Courier
# 1.0.16's /etc/courier/dsnsubjectwarn.txt).
WARNING_SUBJECTS = {
    "postfix": ("Delayed Mail (still being retried)",),
    "exim": ("Warning: message ",),
    "opensmtpd": ("Delivery status notification: delayed",),
    "sendmail": ("Warning: could not send message for past",),
    "courier": ("WARNING: delayed mail.",),
    "dma": (),
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
