"""What a failure means: the evidence a notice gives → (status, reason, hard).

Detectors report what a notice *says* for each recipient: the Action, the ``Status:``
field, the diagnostic text (the remote server's reply, or the reporting MTA's words), the
SMTP reply code and, when they can tell, the SMTP phase the reply answered.  This module
decides what that *means*, in one place, from three tables read top to bottom:

``REASON_TABLE``
    Every reason (Sisimai's vocabulary), whom it is about and whether it can make a
    recipient dead.  ``hard`` is True only for a *permanent* failure (5xx / 5.x.x, or a
    notice with no code at all) whose reason says the address itself is bad: the mailbox
    or the domain does not exist, has moved, or the domain accepts no mail (null MX).
    A blocked sender, a full mailbox, a DMARC rejection say nothing bad about the
    address: users of every bounce processor complain when such blocks suppress good
    addresses.  Non-failures (delays, deliveries, complaints) are ``None``.

``DECIDE``
    The order of evidence; the first rule that gives a reason wins.  The rules read the
    evidence tables below them: ``VENDOR_CODES``, ``STRONG_WORDS``, ``STATUS_REASON``,
    ``WORDS``, ``GENERIC_DEFAULT``, ``WEAK_WORDS``, ``REPLY_REASON``.

``ADJUST``
    What the context changes afterwards (a reply to DATA, retries that ran out).

A notice that calls itself a delay but whose words say it is final (``FINAL_WORDS``:
OpenSMTPD's "Envelope expired") is a failure.

The status reported is the most informative code the notice carries (``best_status``):
the remote server's enhanced code in the diagnostic over the reporting MTA's summary in
``Status:`` (X.0.0, or 4.4.7 on expiry), or inferred from the reason when there is none.

``docs/reasons.md`` is generated from these tables (``scripts/reasons_doc.py``; a test
checks it is current).  The judge's list of reasons that never make a recipient dead
(``judge.rules.SENDER_SIDE``) is ``SENDER_SIDE`` here.

Pure functions, no I/O; imported by the pipe's hot path.  Codes, phases and most words are
read by ``parse.scan``'s linear scanners and ``in`` tests; ``re`` is imported only when a
vendor-code pattern is first needed.  Every text is bounded (``MAX_TEXT``) before it is read.
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import lazy
from bounce_handler.parse.scan import (
    ClientHostRejected,
    Word,
    find_phase,
    find_reply_code,
    find_status,
    join_reply_lines,
    statuses,
)

# A diagnostic longer than this is read only this far (they are stored at 500 characters;
# callers such as the queue report pass raw text).
MAX_TEXT = 2000

# --------------------------------------------------------------------------------------
# 1. The reasons.
#
# side: whom the failure is about.
#   recipient    the mailbox or its domain: counts towards a dead recipient
#   destination  the receiving system's trouble: counts (a destination unreachable for
#                weeks is as dead as a deleted mailbox; rule R2 needs days of it)
#   unknown      nothing said why: counts like destination trouble (R2 only)
#   sender       the sender, the sending host or how it sent: never counts
#   message      this message's content or form: never counts
#   none         not a failure: never counts
# hard: "permanent" - hard when the failure is permanent; "never".
# --------------------------------------------------------------------------------------
RECIPIENT, DESTINATION, UNKNOWN = "recipient", "destination", "unknown"
SENDER, MESSAGE, NONE = "sender", "message", "none"
COUNTS = (RECIPIENT, DESTINATION, UNKNOWN)

REASON_TABLE = (
    # (reason, side, hard, what it says about the recipient, what the sender should do)
    ("userunknown", RECIPIENT, "permanent",
     "The mailbox does not exist at the destination (no such user).",
     "Stop sending to the address; check it for a typo."),
    ("hostunknown", RECIPIENT, "permanent",
     "The recipient's domain does not exist or has no host to deliver to (NXDOMAIN).",
     "Stop sending to the address; check the domain for a typo."),
    ("hasmoved", RECIPIENT, "permanent",
     "The mailbox has moved and takes no more mail (551, X.1.6, X.7.17).",
     "Stop sending; ask the person for the new address."),
    ("notaccept", RECIPIENT, "permanent",
     "The recipient's domain accepts no mail at all (RFC 7505 null MX, no MX, 521/556).",
     "Stop sending to the domain."),
    ("mailboxfull", RECIPIENT, "never",
     "The mailbox exists but is over its quota; it may empty again.",
     "Nothing at once; days of it in a row mean an abandoned mailbox (rule R2)."),
    ("suspend", RECIPIENT, "never",
     "The mailbox exists but is disabled, locked or suspended for now.",
     "Nothing at once; a mailbox disabled for weeks is abandoned (rule R2)."),
    ("filtered", RECIPIENT, "never",
     "The recipient's own filter refused the message (recipient preferences; an unknown-"
     "user answer given only after the message was sent).",
     "Check what the recipient's side refuses; the address itself was accepted."),
    ("expired", DESTINATION, "never",
     "Retries ran out: the message could not be delivered within the queue lifetime.",
     "Look at the destination's reachability; weeks of it count (rule R2)."),
    ("networkerror", DESTINATION, "never",
     "The destination could not be reached (timeouts, refused connections, DNS SERVFAIL, "
     "loops).",
     "Check DNS and connectivity to the destination; retries continue."),
    ("systemerror", DESTINATION, "never",
     "The receiving system failed (a configuration error, a temporary failure).",
     "Nothing; the destination's administrator has to fix it."),
    ("systemfull", DESTINATION, "never",
     "The receiving system is out of disk or resources.",
     "Nothing; retry later."),
    ("mailererror", DESTINATION, "never",
     "The recipient's local delivery program failed (a pipe command's exit code).",
     "Nothing; the destination's administrator has to fix it."),
    # Sisimai 5 names a failure whose notice says nothing usable onhold (its corpus has no
    # undefined at all); this project used undefined for it: both are the same fact.
    ("onhold", UNKNOWN, "never",
     "The notice says the message failed but not why.",
     "Read the diagnostic; days of it count like destination trouble (rule R2)."),
    ("undefined", UNKNOWN, "never",
     "The notice does not say why (the name used before onhold).",
     "As onhold."),
    ("blocked", SENDER, "never",
     "Nothing: the sending host or its IP address is refused (a block list, a refusal of "
     "the connection).",
     "Check the relay's IP on the block lists named; request delisting."),
    ("spamdetected", MESSAGE, "never",
     "Nothing: the message was judged to be spam.",
     "Check the message content and the sender's sending pattern."),
    ("virusdetected", MESSAGE, "never",
     "Nothing: the message was judged to carry a virus or malware.",
     "Check the sender's machine and the attachment."),
    ("policyviolation", MESSAGE, "never",
     "Nothing: the message breaks the receiver's policy (content, attachments, a rule).",
     "Read the receiver's policy named in the diagnostic."),
    ("contenterror", MESSAGE, "never",
     "Nothing: the message's content or encoding cannot be handled (RFC 3463 X.6.x).",
     "Check the message's MIME structure and encoding."),
    ("notcompliantrfc", MESSAGE, "never",
     "Nothing: the message does not comply with RFC 5322 (several From: addresses, bad "
     "headers).",
     "Fix the sending software's headers."),
    ("emailtoolarge", MESSAGE, "never",
     "Nothing: the message is larger than the receiver accepts.",
     "Send a smaller message (a link instead of an attachment)."),
    ("authfailure", SENDER, "never",
     "Nothing: SPF, DKIM or DMARC checks of the sender's domain failed.",
     "Fix the sender domain's SPF, DKIM and DMARC records and signing."),
    ("requireptr", SENDER, "never",
     "Nothing: the sending IP address has no (matching) reverse DNS name.",
     "Give the relay's IP a PTR record matching its HELO name."),
    ("badreputation", SENDER, "never",
     "Nothing: the sending IP address or domain has a poor reputation.",
     "Slow down and clean the lists; see the provider's postmaster pages."),
    ("ratelimited", SENDER, "never",
     "Nothing: the sender or the sending host sends too much, too fast.",
     "Slow down to the destination (rule R8 raises a throttled-destination flag)."),
    ("rejected", SENDER, "never",
     "Nothing: the envelope sender (MAIL FROM) was refused.",
     "Check the sender address and its domain (DNS, SPF)."),
    ("norelaying", SENDER, "never",
     "Nothing: the receiving host does not relay for the sender (relay access denied).",
     "Check the MX used for the recipient's domain."),
    ("securityerror", SENDER, "never",
     "Nothing: authentication or another security requirement was not met.",
     "Check the relay's authentication to that destination."),
    ("failedstarttls", SENDER, "never",
     "Nothing: the receiver requires TLS and the session did not use it.",
     "Enable TLS towards the destination (smtp_tls_security_level)."),
    ("syntaxerror", SENDER, "never",
     "Nothing: the sending MTA broke the SMTP protocol (a command or argument refused).",
     "Check the sending software."),
    ("vacation", NONE, "never",
     "Nothing: an auto-reply, not a failure.",
     "Nothing."),
    ("feedback", NONE, "never",
     "Nothing about delivery: a complaint (ARF feedback report).",
     "Stop mailing the person who complained (rule R7 counts complaints)."),
    ("delivered", NONE, "never",
     "Delivered, relayed or expanded: not a failure.",
     "Nothing."),
)

REASONS = tuple(row[0] for row in REASON_TABLE)
SIDE = {row[0]: row[1] for row in REASON_TABLE}
HARD_REASONS = frozenset(row[0] for row in REASON_TABLE if row[2] == "permanent")

# Sisimai 4's names for reasons Sisimai 5 merged (p5-sisimai#634); a configuration may
# still name them, so the judge's default list carries them too.
LEGACY_NAMES = {"toomanyconn": "ratelimited", "speeding": "ratelimited",
                "mesgtoobig": "emailtoolarge", "exceedlimit": "emailtoolarge"}

# Reasons that never make a recipient dead, whatever the status (the judge's default
# ``sender_side_reasons``): the remote side refused the sender, the relay or the content.
SENDER_SIDE = tuple(r for r in REASONS if SIDE[r] not in COUNTS) + tuple(
    old for old, new in LEGACY_NAMES.items() if SIDE[new] not in COUNTS)

# --------------------------------------------------------------------------------------
# 2. Codes.
# --------------------------------------------------------------------------------------

# Enhanced status (RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry) → reason,
# for codes whose meaning does not depend on the words (only STRONG words overrule them).
STATUS_REASON = {
    "X.1.1": "userunknown",  # Bad destination mailbox address
    "X.1.2": "hostunknown",  # Bad destination system address
    "X.1.3": "userunknown",  # Bad destination mailbox address syntax
    "X.1.4": "systemerror",  # Destination mailbox address ambiguous
    "X.1.5": "userunknown",  # Destination mailbox address valid (used as "unknown" by some)
    "X.1.6": "hasmoved",  # Destination mailbox has moved, no forwarding address
    "X.1.7": "rejected",  # Bad sender's mailbox address syntax
    "X.1.8": "rejected",  # Bad sender's system address
    "X.1.9": "systemerror",  # Message relayed to non-compliant mailer
    "X.2.2": "mailboxfull",  # Mailbox full
    "X.2.3": "emailtoolarge",  # Message length exceeds administrative limit
    "X.2.4": "systemerror",  # Mailing list expansion problem
    "X.3.1": "systemfull",  # Mail system full
    "X.3.2": "notaccept",  # System not accepting network messages
    "X.3.3": "systemerror",  # System not capable of selected features
    "X.3.4": "emailtoolarge",  # Message too big for system
    "X.3.5": "systemerror",  # System incorrectly configured
    "X.4.2": "networkerror",  # Bad connection
    "X.4.3": "networkerror",  # Directory server failure (Postfix: DNS lookup "try again")
    "X.4.4": "hostunknown",  # Unable to route (Postfix: "Host or domain name not found")
    "X.4.5": "systemfull",  # Mail system congestion
    "X.4.6": "networkerror",  # Routing loop detected
    "X.4.7": "expired",  # Delivery time expired
    "X.5.3": "syntaxerror",  # Too many recipients (a sender-side protocol problem)
    "X.5.4": "syntaxerror",  # Invalid command arguments
    "X.5.5": "syntaxerror",  # Wrong protocol version
    "X.5.6": "syntaxerror",  # RFC 6531: authentication exchange line too long
    "X.6.1": "contenterror",  # Media not supported
    "X.6.2": "contenterror",  # Conversion required and prohibited
    "X.6.3": "contenterror",  # Conversion required but not supported
    "X.6.4": "contenterror",  # Conversion with loss performed
    "X.6.5": "contenterror",  # Conversion failed
    "X.6.6": "contenterror",  # Message content not available
    "X.6.7": "contenterror",  # RFC 6531: non-ASCII addresses not permitted
    "X.6.8": "contenterror",  # RFC 6531: UTF-8 string reply required
    "X.6.9": "contenterror",  # RFC 6531: UTF-8 header not supported
    "X.7.2": "securityerror",  # Mailing list expansion prohibited
    "X.7.3": "securityerror",  # Security conversion required but not possible
    "X.7.4": "securityerror",  # Security features not supported
    "X.7.5": "securityerror",  # Cryptographic failure
    "X.7.6": "securityerror",  # Cryptographic algorithm not supported
    "X.7.7": "securityerror",  # Message integrity failure
    "X.7.8": "securityerror",  # Authentication credentials invalid (RFC 4954)
    "X.7.10": "failedstarttls",  # Encryption needed (RFC 5248)
    "X.7.11": "failedstarttls",  # Encryption required for requested mechanism
    "X.7.12": "securityerror",  # A password transition is needed
    "X.7.13": "suspend",  # User account disabled
    "X.7.14": "securityerror",  # Trust relationship required
    "X.7.15": "rejected",  # Priority level is too low (RFC 6710)
    "X.7.16": "emailtoolarge",  # Message too big for specified priority
    "X.7.17": "hasmoved",  # RFC 7293: mailbox owner has changed
    "X.7.18": "hasmoved",  # RFC 7293: domain owner has changed
    "X.7.19": "hasmoved",  # RFC 7293: RRVS test cannot be completed
    "X.7.20": "authfailure",  # RFC 7372: no passing DKIM signature found
    "X.7.21": "authfailure",  # RFC 7372: no acceptable DKIM signature found
    "X.7.22": "authfailure",  # RFC 7372: no valid author-matched DKIM signature
    "X.7.23": "authfailure",  # RFC 7372: SPF validation failed
    "X.7.24": "authfailure",  # RFC 7372: SPF validation error
    "X.7.25": "requireptr",  # RFC 7372: reverse DNS validation failed
    "X.7.26": "authfailure",  # RFC 7372: multiple authentication checks failed (DMARC)
    # RFC 7505 §4.2: the *sender's* domain publishes a null MX, so replies could not be
    # returned; Postfix "550 5.7.27 <s@x>: Sender address rejected: Domain x does not
    # accept mail (nullMX)" (given in reply to RCPT TO under smtpd_delay_reject).  Nothing
    # about the recipient: never notaccept, which would make a good address hard.
    "X.7.27": "rejected",
    "X.7.28": "ratelimited",  # Gmail: "unusual rate of unsolicited mail" (4.7.28/5.7.28)
    "X.7.29": "authfailure",  # RFC 8617: ARC validation failure
    "X.7.30": "failedstarttls",  # RFC 8689: REQUIRETLS support required
}

# Codes whose meaning depends on the words: the words decide, this is the default when
# they say nothing.  X.0.0 has none: the reply code decides then.
GENERIC_DEFAULT = {
    "X.1.0": "rejected",  # Other address status: as often the sender's as the recipient's
    "X.1.10": "notaccept",  # RFC 7505 null MX; Microsoft also uses 5.1.10 for "not found"
    "X.2.0": "filtered",  # Other or undefined mailbox status
    "X.2.1": "suspend",  # Mailbox disabled; many servers say "5.2.1 ... User unknown"
    "X.3.0": "systemerror",
    "X.4.0": "networkerror",
    "X.4.1": "networkerror",  # No answer from host; Microsoft: 5.4.1 "Recipient address
    #                           rejected: Access denied" (a vendor code below)
    "X.5.0": "syntaxerror",
    "X.5.1": "syntaxerror",
    "X.5.2": "syntaxerror",
    "X.6.0": "contenterror",
    "X.7.0": "securityerror",  # Other or undefined security status
    "X.7.1": "rejected",  # Delivery not authorized, message refused
    "X.7.9": "securityerror",  # Mechanism too weak; Yahoo: "5.7.9 ... policy reasons"
}

# SMTP reply code (RFC 5321 §4.2.2/§4.2.3) → reason, when neither status nor words say.
# None of them is hard: a bare code says too little to suppress an address.
REPLY_REASON = {
    "421": "systemerror", "450": "systemerror", "451": "systemerror", "452": "systemfull",
    "550": "filtered",  # "mailbox unavailable": refused, no reason given
    "551": "hasmoved",  # "User not local; please try <forward-path>"
    "552": "mailboxfull",  # "exceeded storage allocation"
    "553": "rejected",  # "mailbox name not allowed" (sender or recipient)
    "554": "rejected", "500": "syntaxerror", "501": "syntaxerror", "502": "syntaxerror",
    "503": "syntaxerror", "504": "syntaxerror", "521": "notaccept", "556": "notaccept",
}

# Vendor codes found in diagnostics; checked before everything else because the vendors
# reuse generic statuses (421 4.7.0, 554 5.7.1) for them.  Each entry is (literal needle
# in the lower-cased text, optional pattern to confirm, reason): the needle keeps the pipe
# from compiling patterns it does not need (one message per process).
VENDOR_CODES = (
    # Yahoo/AOL "Postmaster" error codes (senders.yahooinc.com/smtp-error-codes):
    # TS01-TS03 temporary deferral for unusual traffic, TSS04 "Messages from x.x.x.x
    # temporarily deferred due to unexpected volume or user complaints": a throttle the
    # relay must slow down for (the judge's throttled-destination rule R8 counts it), so
    # ratelimited rather than blocked.
    ("tss04", None, "ratelimited"),
    ("ts0", lazy(r"\bts0[1-4]\b"), "ratelimited"),
    # Yahoo: "553 5.7.1 [BL21] Connections will not be accepted from ..., because the ip
    # is in Spamhaus's list"; [BL22], [BL23] its own block lists.
    ("[bl2", lazy(r"\[bl2[1-3]\]"), "blocked"),
    # Microsoft (Outlook.com / Hotmail): "550 5.7.1 Unfortunately, messages from [ip]
    # weren't sent ... (S3150)" - the IP is on Microsoft's block list; S3140 likewise;
    # "(S775)" sending IP reputation; "(AS842)" / "(AS843)" IP block; RP-00x rate;
    # "SC-001"..."SC-004" (older Hotmail) "messages from [ip] weren't sent ... too many
    # unwanted messages": a block of the sending IP.
    ("s3150", None, "blocked"),
    ("(s3140)", None, "blocked"),
    ("(s3114)", None, "blocked"),
    ("(s3113)", None, "badreputation"),  # "temporarily rate limited due to IP reputation"
    ("(s775)", None, "badreputation"),
    ("(s844)", None, "badreputation"),
    ("(as84", None, "badreputation"),
    ("rp-00", lazy(r"\brp-00[1-3]\b"), "ratelimited"),
    ("sc-00", lazy(r"\bsc-00[1-4]\b"), "blocked"),
    # Office 365 Exchange Online Protection: "5.7.606 Access denied, banned sending IP"
    # (5.7.606-5.7.649 are the IP block list entries).
    ("5.7.6", lazy(r"\b5\.7\.6[0-4][0-9]\b"), "blocked"),
    # Office 365: "5.7.708 Service unavailable. Access denied, traffic not accepted
    # from this IP" (low-reputation tenant ranges).
    ("5.7.70", lazy(r"\b5\.7\.70[0-9]\b"), "badreputation"),
    # Office 365: "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"
    # (Directory Based Edge Blocking: the recipient does not exist in the tenant).
    ("as(201806281)", None, "userunknown"),
    ("recipient address rejected: access denied", lazy(r"\b5\.4\.1\b"), "userunknown"),
    # Office 365: "550 5.4.1 Relay Access Denied ATTR35" - the domain is not an accepted
    # domain of the tenant it reached: a relay refusal, as anywhere else.
    ("relay access denied", lazy(r"\b5\.4\.1\b"), "norelaying"),
    # Any other 5.4.1 "Access denied" from Microsoft ("550 5.4.1 All recipient addresses
    # rejected : Access denied [...protection.outlook.com]") is a refusal by the recipient's
    # tenant, not "no answer from host": nothing says the address is gone.
    ("access denied", lazy(r"\b5\.4\.1\b"), "filtered"),
    ("recipientnotfound", None, "userunknown"),  # "RESOLVER.ADR.RecipientNotFound"
    ("recipnotfound", None, "userunknown"),  # Exchange 2007 "RESOLVER.ADR.RecipNotFound"
    # Office 365: "5.2.121 Recipient's per hour message receive limit from specific
    # sender exceeded" (5.2.120-5.2.122).
    ("5.2.12", lazy(r"\b5\.2\.12[0-2]\b"), "ratelimited"),
    # Gmail: "4.7.28 Our system has detected an unusual rate of unsolicited mail".
    (".7.28", lazy(r"\b[45]\.7\.28\b"), "ratelimited"),
    ("unusual rate of unsolicited", None, "ratelimited"),
    # Gmail: "5.7.26 This mail has been blocked because the sender is unauthenticated"
    # and "Unauthenticated email from x is not accepted due to domain's DMARC policy".
    ("dmarc policy", None, "authfailure"),
    ("sender is unauthenticated", None, "authfailure"),
    # Gmail: "421 4.7.0 ... this message is suspicious due to the very low reputation of
    # the sending IP/domain".
    ("very low reputation", None, "badreputation"),
    # Gmail: "550 5.2.1 The email account that you tried to reach is disabled."
    ("account that you tried to reach is disabled", None, "suspend"),
    ("account that you tried to reach is inactive", None, "suspend"),
    # Gmail: "550 5.1.1 The email account that you tried to reach does not exist."
    ("account that you tried to reach does not exist", None, "userunknown"),
    # Gmail: "4.2.1 The user you are trying to contact is receiving mail at a rate that
    # prevents additional messages from being delivered."
    ("receiving mail at a rate", None, "ratelimited"),
    # Gmail: "4.2.2 The email account that you tried to reach is over quota."
    ("tried to reach is over quota", None, "mailboxfull"),
    # Gmail: "552-5.7.0 This message was blocked because its content presents a potential
    # security issue. Please visit ... to review our message content and attachment
    # content guidelines."
    ("content presents a potential security issue", None, "policyviolation"),
    # Google Groups (parse.googlegroups): "the group you tried to contact may not exist, or
    # you may not have permission to post messages to the group": the sender is refused.
    ("permission to post messages to the group", None, "rejected"),
    # Tencent QQ: "550 Ip frequency limited", "550 Connection frequency limited"
    # (service.mail.qq.com help 20022): a throttle, although the text adds "Blocked IP".
    ("frequency limited", None, "ratelimited"),
    # Yahoo: "553 5.7.2 [TSS09] All messages from x.x.x.x will be permanently deferred;
    # Retrying will NOT succeed" - the sending IP is refused.
    ("tss09", None, "blocked"),
    # NetEase (163.com, 126.com, yeah.net) documented codes: "554 DT:SPM ..." spam
    # content, "DT:RBL" the sending IP on a block list, "451 MI:DMC" too many messages in
    # one connection, "MI:SFQ" the sender's send frequency: throttles.
    ("dt:spm", None, "spamdetected"),
    ("dt:rbl", None, "blocked"),
    ("mi:dmc", None, "ratelimited"),
    ("mi:sfq", None, "ratelimited"),
)

# --------------------------------------------------------------------------------------
# 3. Words.  Lower-case phrases (cheap ``in`` tests) or, where a word boundary matters,
# parse.scan matchers (scan.Word imports no re).  Phrases are what the MTAs print
# (Postfix, Exim, Sendmail, qmail, Exchange, the big providers).
#
# STRONG_WORDS overrule even a specific status ("550 5.1.1 ... has sent to too many
# recipients this hour", "552 5.1.1 ... over quota"); first match wins.
# --------------------------------------------------------------------------------------
# Loops, as X.4.6 "Routing loop detected" (Microsoft: "554 5.4.14 Hop count exceeded -
# possible mail loop"; Domino "Maximum hop count exceeded. Message probably in a routing
# loop."; OpenSMTPD "Loop detected"): final at once, never retries that ran out.
LOOP_WORDS = ("loops back to myself", "mail loop", "too many hops", "routing loop",
              "hop count exceeded", "loop detected", "is looping")

STRONG_WORDS = (
    # amavisd-new: "554 5.7.0 Reject, id=... - INFECTED: Eicar-Signature".
    ("virusdetected", ("virus", "malware", "trojan", "infected")),
    # A quota named as the mailbox's before the sending limits below ("Mailbox quota
    # exceeded for this recipient" is not "quota exceeded for" a sender).
    ("mailboxfull", ("mailbox quota",)),
    # Sending limits before mailbox quotas: "daily sending quota exceeded" is a throttle.
    ("ratelimited", ("rate limit", "ratelimit", "rate-limit", "too many connections",
                     "too many recipients", "sending quota",
                     "quota exceeded for", "sending limit", "exceeded the rate",
                     "connection rate", "too many emails", "unusual rate", "unusual traffic",
                     "throttl",
                     # IronPort: "421 Too many concurrent SMTP connections from this IP".
                     "too many concurrent", "concurrent connections",
                     "too many mails",
                     # A sender that tried too many bad addresses is throttled: "421 4.7.0
                     # Too many invalid recipients" says nothing of any one of them.
                     "too many invalid recipients", "too many unknown recipients",
                     "too many bad recipients",
                     # Counting quotas are rates, not mailbox sizes: policyd "450 4.7.1
                     # ... Policy rejection; Message count quota exceeded"; Exchange
                     # "SubmissionQuotaExceededException".
                     "count quota", "submissionquota", "sender quota")),
    ("mailboxfull", ("mailbox is full", "mailbox full", "over quota", "over the quota",
                     "overquota", "quota exceeded", "quota exceed", "quota full",
                     "exceeded storage", "exceeded the storage", "exceeded quota",
                     "exceeded the quota", "exceeding their quota", "disk quota",
                     "mailbox size limit", "mailbox exceeds", "mailbox has exceeded",
                     "mailbox exceeded", "too many messages in", "not enough storage",
                     "not enough disk space", "storage limit", "storage quota",
                     "full mailbox", "mailfolder is full", "quota violation",
                     "too much mail stored", "boite pleine", "boite aux lettres pleine",
                     "postfach voll", "mailbox is over",
                     # Exchange/Office 365: "STOREDRV.Deliver.Exception:QuotaExceededException
                     # .MapiExceptionShutoffQuotaExceeded" (the submission quota, a sending
                     # limit, is read above).
                     "quotaexceeded", "exceeds quota", "exceeds its quota",
                     # Domino: "Mail file for x exceeds quota"; Italian "casella piena".
                     "casella piena", "casella di posta piena")),
    # A URI block list judges the content, an IP block list the sending host.
    ("spamdetected", ("uribl", "surbl", "blacklisted url", "blacklisted link")),
    # "554 5.7.1 mx ESMTP not accepting mail from your host: blocked": the sending host,
    # whatever else the sentence says (AOL's "not accepting mail from <sender>" is not).
    ("blocked", ("blacklist", "black list", "blocklist", "block list", "dnsbl",
                 Word("rbl"), "spamhaus", "spamcop", "barracuda", "blocked using",
                 "from your host", "from your ip")),
    # Facebook: "550 5.1.1 RCP-P2 ... Refused due to recipient preferences".
    ("filtered", ("recipient preferences",)),
    ("norelaying", ("relay access denied", "relaying denied", "relay denied",
                    "relay not permitted", "relaying not permitted", "relay prohibited",
                    "not permitted to relay", "unable to relay", "we do not relay",
                    "no relaying", "relaying prohibited", "relay not allowed",
                    "relaying not allowed")),
    # RFC 3464 §2.3.6 diagnostic type "X-Unix": the output or exit code of a local
    # delivery program (Sendmail's prog mailer, Postfix pipe(8)), not an SMTP reply:
    # 'x-unix; procmail: Couldn't create "/var/spool/mail/u"' whatever the status says
    # (after the quota words: "x-unix; ...: Disk quota exceeded" is a full mailbox).
    ("mailererror", ("x-unix;",)),
    # "TLS is required" names what failed whatever the code (Postfix gives "4.7.4 TLS is
    # required, but was not offered by host x", X.7.4 being securityerror otherwise).
    ("failedstarttls", ("tls is required", "tls required", "tls session is required",
                        "tls not available", "tls currently unavailable")),
)

# The wording table for everything else, first match wins, ordered from most to least
# specific.  It decides when the status is generic (X.0.0, X.7.1 ...) or missing.
WORDS = (
    # Amazon SES as the relay: "554 Message rejected: Email address is not verified. The
    # following identities failed the check in region X: s@x": it does not relay for a
    # sender it has not verified (before "message rejected" reads as anything else).
    ("norelaying", ("identities failed the check", "email address is not verified")),
    # Postfix "Sender address rejected: Domain not found", Sendmail "553 5.1.8 <x>...
    # Domain of sender address x does not exist": the sender is refused, not the recipient.
    ("rejected", ("sender address rejected", "domain of sender address", "sender rejected",
                  "sender is rejected", "sender denied", "sender not allowed", "bad sender",
                  "sender verify failed", "unroutable sender", "sender domain",
                  # GoDaddy: "550 5.2.0 <s@x> From: Domain is invalid. Please provide a
                  # valid From: IB506".
                  "provide a valid from",
                  # Mailing lists (fml, Mailman): the sender may not post.
                  "you are not a member", "not a member of this",
                  # AOL: "not accepting mail from sender@x": this recipient refuses this
                  # sender (its block list), not every sender (that would be notaccept).
                  "not accepting mail from",
                  # GMX: "550 Sender address is not allowed".
                  "sender address is not allowed", "sender address not allowed",
                  "sender is not allowed")),
    # Postfix smtpd's HELO restrictions answer RCPT TO under smtpd_delay_reject ("550
    # 5.7.1 <h>: Helo command rejected: Host not found"): the sending host's name, never
    # the recipient's domain.
    ("blocked", ("helo command rejected", "ehlo command rejected")),
    # "450 service permits 2 unverifyable sending IPs" (GMX / web.de at MAIL FROM): the
    # sending IP's reverse name could not be verified.
    ("requireptr", ("reverse dns", "reverse lookup", "ptr record", "no ptr",
                    "cannot find your hostname", "not resolve your address", "rdns",
                    "cannot find your reverse hostname", "unverifyable sending ip",
                    "unverifiable sending ip")),
    ("authfailure", (Word("spf"), "dkim", "dmarc", "sender policy framework",
                     "authentication check failed")),
    ("failedstarttls", ("starttls", "encryption required", "must use tls")),
    # Greylisting (postgrey "450 4.2.0 Recipient address rejected: Greylisted"): a
    # deferral of an unknown sending host until it retries.
    ("ratelimited", ("too many messages", "too fast", "too quickly", "temporarily deferred",
                     "greylist", "graylist", "grey-list", "gray-list")),
    ("badreputation", ("reputation", "poor sender", "sender score",
                       # Not a bare "complaints": "550 No such user. Send complaints to
                       # postmaster@x" is about a dead address.
                       "user complaints", "too many complaints", "spam complaints",
                       "complaint rate")),
    # Gmail: "550-5.7.1 This message is not RFC 5322 compliant. To reduce the amount of
    # spam sent to Gmail ..." and "Messages missing a valid address in From: header":
    # the form of the message, before the spam words its explanation carries.
    ("notcompliantrfc", ("rfc 5322 compliant", "rfc5322 compliant", "not rfc 5322",
                         "from: header")),
    ("spamdetected", (Word("spam"), "content rejected", "classified as",
                      "identified as", "considered as", "bulk mail", "junk mail",
                      "unsolicited", "looks like spam", "high probability of being",
                      Word("uce"))),
    # Laposte: "550 5.5.0 Le compte du destinataire est bloque. The recipient account is
    # blocked."; Amazon SES: "User x temporary locked".
    ("suspend", ("account is blocked", "account has been blocked", "temporary locked",
                 "temporarily locked", "disabled", "deactivated", "inactive",
                 # Not a bare "suspended": Postfix's "delivery temporarily suspended:
                 # connect to x: Connection timed out" is about the destination host.
                 "is suspended", "been suspended", "user suspended", "account suspended",
                 "mailbox suspended", "suspended account", "suspended mailbox",
                 "suspended user", "recipient suspended",
                 "account is locked", "account locked", "account closed", "account is closed",
                 "account expired", "account is frozen", "not active", "has been terminated",
                 "on hold", "is frozen", "no longer active")),
    # amavisd-new: "554 5.7.0 Reject, id=... - BANNED: P=p003,...,N=setup.exe" (a banned
    # file name or type), not a banned host.
    ("policyviolation", ("banned:",)),
    # "Please use the smtp server of your ISP": a dynamic address refused as a host.
    # Gmail: "550-5.7.1 [ip] The IP you're using to send mail is not authorized to send
    # email directly to our servers": the sending host is refused, not the sender.
    ("blocked", ("blocked", "banned", "connection refused from", "client host rejected",
                 # Yahoo TSS09 / TS03 "will be permanently deferred"; Microsoft "messages
                 # from [ip] weren't sent. Please contact your Internet service provider".
                 "permanently deferred", "your internet service provider",
                 "the ip you're using", "the ip you are using",
                 "not authorized to send email directly",
                 "server of your isp", "dynamic ip", "dynamic address", "dial-up", "dialup",
                 "connection rejected by policy", "not accepted from", "your ip",
                 "your host", "your server", ClientHostRejected())),
    ("hasmoved", ("has moved", "moved permanently", "no longer with", "no longer at",
                  "no longer available at", "address has changed", "address changed")),
    ("mailboxfull", ("insufficient disk space", "insufficient space", "not enough space")),
    ("emailtoolarge", ("too large", "too big", "message size", "size limit",
                       "size exceeds", "exceeds the maximum", "exceeds maximum",
                       "message length exceeds", "exceeds size")),
    # DNS.  A temporary lookup failure (SERVFAIL, a timeout) says nothing about the
    # domain: Postfix "Host or domain name not found. Name service error for name=x
    # type=MX: Host not found, try again" is 4.4.3.
    ("networkerror", ("host not found, try again", "servfail", "server failure",
                      "temporary failure in name resolution",
                      "dns timeout", "lookup timed out",
                      # Sendmail: "4.0.0 (example.net: host name lookup failure)".
                      "host name lookup failure")),
    # No mail host at all: RFC 7505 null MX ("an MX or SRV record indicated no SMTP
    # service", Exim), OpenSMTPD "No MX found for domain", Yahoo "No mx record found".
    ("notaccept", ("null mx", "no mx", "mx not found", "mx record not found",
                   "indicated no smtp service", "does not accept mail",
                   "not accepting any mail", "accept no mail", "no mail accepted")),
    ("hostunknown", ("host or domain name not found", "host not found", "host unknown",
                     "unknown host", "domain not found", "domain does not exist",
                     "domain unknown", "domain name not found", "domain is not valid",
                     "no such domain", "unrouteable", "unroutable", "name service error",
                     "nxdomain", "bad destination system", "unknown domain",
                     "couldn't find any host", "no valid host", "no such host",
                     "nonexistent domain", "invalid domain", "nameserver error",
                     "domain lookup failed", "domain is not reachable",
                     "domain isn't reachable",
                     # Office 365 "[Message=InfoDomainNonexistent]"; Exim "all relevant MX
                     # records point to non-existent hosts".
                     "domainnonexistent", "non-existent host", "nonexistent host")),
    ("userunknown", ("user unknown", "unknown user", "no such user", "no such mailbox",
                     "no such recipient", "no such address", "no such account",
                     "no such person", "does not exist", "doesn't exist", "does no longer exist",
                     "unknown recipient", "unknown mailbox", "unknown address",
                     "unknown local-part", "unknown local part", "unknown alias",
                     "unknown account", "recipient unknown", "mailbox unknown",
                     "address unknown", "recipient not found", "mailbox not found",
                     "user not found", "address not found", "recipient invalid",
                     "invalid recipient", "invalid mailbox", "invalid address", "invalid user",
                     "mailbox unavailable", "mailbox is unavailable", "not a valid mailbox",
                     "not a valid user", "not a valid recipient", "no mailbox",
                     "not our customer", "not a local user", "mailbox not available",
                     "no account", "not listed in",
                     "unknown or illegal alias", "bad recipient",
                     "not found in the directory", "not found in directory",
                     "undeliverable address", "in virtual alias table",
                     "in local recipient table", "in virtual mailbox table",
                     "utilisateur inconnu", "unbekannt", "nicht gefunden", "desconocido",
                     "inexistente", "sconosciuto", "is not a known user", "no such local user",
                     "unknown name", "this user doesn't have", "non-existent",
                     "nonexistent user", "nonexistent address", "no longer valid",
                     "address is not valid", "isn't a valid", "is not a valid",
                     "recipient name is not recognized", "name is not recognized",
                     "no matches to nameserver query", "user doesn't have",
                     "mailbox is not valid", "account is not available", "addressee unknown",
                     "user not known", "not known here", "invalid final delivery",
                     "final email delivery point", "did not exactly match",
                     "wasn't found at the destination", "n'existe pas", "existiert nicht",
                     "no existe",
                     # Lotus Notes (Japanese): "not in the directory's list".
                     "ディレクトリのリストにありません",
                     # Not a bare "no longer in use": "550 This mail server is no longer in
                     # use" (a retired backup MX), "this IP address is no longer in use".
                     "address is no longer in use", "mailbox is no longer in use",
                     "account is no longer in use")),
    # "timed out" alone is a network symptom (below); only queue/retry timeouts expire.
    ("expired", ("expired", "retry timeout", "queue timeout", "delivery timeout",
                 "too long in the queue", "too long in queue", "been in the queue too long",
                 "could not be delivered for", "could not be delivered within", "giving up",
                 "delivery time", "undeliverable for", "not delivered for",
                 "unable to deliver for", "deferred for", "not reachable within",
                 "maximum delivery attempts", "not been collected", "delivery attempts",
                 # Sendmail's warning: "Deferred: 421 Warning: message still undelivered
                 # after 4 hours" (the 421 and its 4.5.0 are Sendmail's own, not a reply).
                 "still undelivered after",
                 # Sendmail: "Cannot send message for 5 days".
                 "cannot send message for")),
    ("networkerror", ("connection refused", "connection reset", "timed out", "time out",
                      "connection closed", "connection lost", "connection dropped",
                      "network error", "network is unreachable", "network unreachable",
                      "host unreachable", "unreachable", "not reachable", "lost connection",
                      "no route to host", Word("dns"), "establish an smtp connection",
                      "could not connect", "unable to connect", "cannot connect",
                      "not responding", "did not accept our requests to connect",
                      "socket error", "could not find a gateway",
                      # Exim: "Remote host closed connection in response to ...", "host
                      # lookup did not complete" (a DNS timeout).
                      "closed connection", "lookup did not complete")
     + LOOP_WORDS),
    ("systemfull", ("system is full", "system full", "out of disk", "out of memory",
                    "out of space", "insufficient system")),
    ("notaccept", ("not accepting mail", "not accepting")),
    # Exim: "Child process of address_pipe transport returned 69 ...".
    ("mailererror", ("mailer error", "command died", "child process of", "command failed",
                     "command output", "program exited", "pipe to ", "unknown mailer", "exit code",
                     "exit status", "procmail", "local delivery failed")),
    ("securityerror", ("unauthenticated", "authentication required", "not authenticated",
                       "auth required", "smtp authentication", "authentication failed")),
    # Not "rfc822": every DSN field says "rfc822; address".
    ("notcompliantrfc", ("rfc 5322", "rfc5322", "rfc 2822", "rfc2822",
                         "not compliant", "not rfc compliant", "multiple from",
                         "multiple addresses in from", "multiple message-id", "malformed",
                         "header field", "header line", "missing header", "invalid header",
                         "headers are not", "field given", "field missing")),
    ("policyviolation", ("policy", "policies", "prohibited", "not allowed", "not permitted",
                         "does not allow", "content restriction", "inappropriate",
                         # qmail-remote / many filters after DATA: "554 5.7.1 Message
                         # rejected because of unacceptable content".
                         "unacceptable content",
                         "content filter", "attachment", "header error")),
    ("syntaxerror", ("syntax error", "command unrecognized", "bad sequence",
                     "unrecognized command", "line too long", "invalid command")),
    ("securityerror", ("credentials", "security")),
    # Postfix check_recipient_access "REJECT": the recipient's side refuses that address
    # ("554 5.7.1 <a@b>: Recipient address rejected: Access denied"); nothing says it
    # does not exist (Microsoft's 5.4.1 form is a vendor code above).
    ("filtered", ("filtered", "recipient address rejected: access denied",
                  # "rejected by recipient's mail filter", "recipient's domain filter".
                  "mail filter", "domain filter", "recipient filter")),
    ("systemerror", ("system error", "internal error", "server error", "configuration error",
                     "local error", "temporary failure", "temporary error",
                     "temporary problem", "service unavailable", "service currently unavailable",
                     "service not available", "currently unavailable",
                     "temporarily unavailable", "try again")),
)

# Bare refusal words: they say no more than a status does, so they come after the generic
# status's default ("550 5.7.9 Rejected" stays what 5.7.9 says) and decide only when
# there is no status.  Not "undeliverable": it says only that the notice is one.
WEAK_WORDS = (
    ("filtered", ("refused", "denied", "rejected", "not authorized", "not authorised")),
)

# Words that say a notice calling itself a delay is final: OpenSMTPD sends "Envelope
# expired" in its "Delivery status notification: delay" template (Action: delayed).
FINAL_WORDS = ("envelope expired", "i'm not going to try again", "will not be retried",
               "no further delivery attempts", "been in the queue too long",
               "too long in the queue")

# Words that say the retries ran out (with Action: failed or expired, or a 4.x.x status
# in a failure): "retried for 5 days", "in the queue too long", "Delivery failed 20
# attempts", "unable to deliver in 840 minutes".
RETRY_WORDS = ("retried for", "retry time", "queue too long", "too long in the queue",
               "attempts", "attempt(s)", "giving up", "gave up", "message expired",
               "envelope expired", "unable to deliver in", "could not be delivered for",
               "retry timeout")

# The status recorded for a reason when the notice gave none (Sisimai::SMTP::Status's
# "code for reason" idea); 5 or 4 comes from the action / reply code.
REASON_STATUS = {
    "userunknown": "5.1.1", "hostunknown": "5.1.2", "hasmoved": "5.1.6",
    "mailboxfull": "5.2.2", "emailtoolarge": "5.3.4", "suspend": "5.2.1",
    "filtered": "5.2.0", "systemfull": "5.3.1", "notaccept": "5.3.2",
    "networkerror": "5.4.0", "expired": "5.4.7", "norelaying": "5.7.1",
    "blocked": "5.7.1", "spamdetected": "5.7.1", "policyviolation": "5.7.1",
    "rejected": "5.7.1", "securityerror": "5.7.0", "authfailure": "5.7.26",
    "requireptr": "5.7.25", "badreputation": "5.7.1", "ratelimited": "4.7.0",
    "virusdetected": "5.7.1", "failedstarttls": "5.7.10", "syntaxerror": "5.5.2",
    "contenterror": "5.6.0", "notcompliantrfc": "5.6.0", "mailererror": "5.3.0",
    "systemerror": "5.3.0", "undefined": "5.0.0", "onhold": "5.0.0",
}

_NON_FAILURE = ("delayed", "delivered", "relayed", "expanded")
SENDER_PHASES = ("connect", "helo", "mail")


# --------------------------------------------------------------------------------------
# 4. Evidence.
# --------------------------------------------------------------------------------------
def _class_of(status: str) -> str:
    return "X." + status.split(".", 1)[1]


def _summary(status: str) -> bool:
    """The reporting MTA's own verdict rather than the remote's code: X.0.0, X.4.7."""
    return status.endswith(".0.0") or status[1:] == ".4.7"


def vendor_reason(low: str) -> str | None:
    """Return the reason a vendor code in the (lower-cased) diagnostic gives, or None."""
    for needle, rx, reason in VENDOR_CODES:
        if needle in low and (rx is None or rx.search(low)):
            return reason
    return None


def _first(table: tuple, low: str) -> str | None:
    for reason, phrases in table:
        for p in phrases:
            if (p in low) if p.__class__ is str else p.search(low):
                return reason
    return None


def _said(low: str) -> str | None:
    return vendor_reason(low) or _first(STRONG_WORDS, low) or _first(WORDS, low)


def text_reason(diagnostic: str | None) -> str | None:
    """Return the reason the words of a diagnostic give (vendor codes first), or None."""
    if not diagnostic:
        return None
    return _said(diagnostic[:MAX_TEXT].lower().replace("\u2019", "'"))


class Evidence:
    """What a notice says about one recipient, normalised once.

    status       the Status: field as given (None when absent)
    codes        the enhanced status codes in the diagnostic, left to right
    diag / low   the diagnostic (bounded; a multi-line reply joined) and its lower case
    reply        the SMTP reply code (given, else found in the diagnostic)
    phase        the SMTP phase the reply answered (given, else from the wording)
    action       failed, delayed, delivered, relayed, expanded, expired
    """

    __slots__ = ("status", "codes", "diag", "low", "reply", "phase", "action", "_words")

    def __init__(self, status, diagnostic, action, reply_code, phase) -> None:
        diag = join_reply_lines(diagnostic[:MAX_TEXT]) if diagnostic else ""
        self.diag = diag
        # "wasn’t found" (Office 365 writes U+2019) reads as "wasn't found".
        self.low = low = diag.lower().replace("\u2019", "'")
        self.status = find_status(status) if status else None
        self.codes = statuses(diag) if diag else []
        if not reply_code and diag:
            reply_code = find_reply_code(diag)
        self.reply = reply_code
        self.phase = phase or (find_phase(low) if low else None)
        self.action = (action or "failed").lower()
        self._words = 0  # not computed yet

    def words(self) -> str | None:
        """The reason the words give (vendor codes, strong words, the wording table)."""
        if self._words == 0:
            self._words = _said(self.low) if self.low else None
        return self._words

    def permanent(self, status: str | None) -> bool:
        """A 5xx reply or 5.x.x status; a notice with no code at all counts as permanent."""
        if status:
            return status[0] == "5"
        if self.reply:
            return self.reply[0] == "5"
        return True


def best_status(ev: Evidence) -> str | None:
    """The most informative enhanced status the notice carries.

    Status: wins, except that the remote server's code in the diagnostic is preferred
    when Status: is the reporting MTA's summary (X.0.0 for everything, 4.4.7 on expiry:
    "554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.2 Connection
    timed out>"), or when it contradicts Status: and the words back it ("Status: 5.1.1"
    beside "552 5.2.2 Over quota" or "550 5.7.1 IP address blacklisted"), or when the
    diagnostic is a multi-line reply opening with a code of the same class that Status:
    does not repeat: Sendmail 8.17 reads the enhanced code of a single-line reply only and
    files any multi-line 550 to RCPT TO as its own "550 5.1.1 ... User unknown", Status:
    5.1.1 ("550-5.7.1 [ip] The IP you are using to send mail is not authorized to ...").
    """
    field = ev.status
    codes = [c for c in ev.codes if c[0] in "45"]
    if field is None or _summary(field):
        for c in codes:
            if c != field and not _summary(c):
                return c
        return field or (codes[0] if codes else None)
    # The code a multi-line reply opens with ("550-5.7.1 ..."): the remote's own.
    d = ev.diag
    if codes and d[3:4] == "-" and d[:1] in ("4", "5") and d[:3].isdecimal():
        lead = codes[0]
        if (d.startswith(lead, 4) and lead != field and lead[0] == field[0]
                and not _summary(lead)):
            return lead
    for c in codes:
        if c != field and not _summary(c):
            # The remote's code, when the words contradict Status: and agree with it (or
            # it is a code whose meaning the words decide): "Status: 5.1.1" beside "550
            # 5.7.1 IP address blacklisted by recipient".
            said = ev.words()
            meant = STATUS_REASON.get(_class_of(c))
            if said and said != STATUS_REASON.get(_class_of(field)) and meant in (said, None):
                return c
            break
    return field


# --------------------------------------------------------------------------------------
# 5. The order of evidence: DECIDE (first rule giving a reason wins), then ADJUST.
# --------------------------------------------------------------------------------------
def _not_a_failure(ev: Evidence, status: str | None) -> str | None:
    return "delivered" if ev.action in ("delivered", "relayed", "expanded") else None


def _vendor(ev: Evidence, status: str | None) -> str | None:
    return vendor_reason(ev.low) if ev.low else None


def _sender_phase(ev: Evidence, status: str | None) -> str | None:
    if ev.phase not in SENDER_PHASES:
        return None
    low = ev.low
    said = (_first(STRONG_WORDS, low) or _first(WORDS, low)) if low else None
    if said is None and status:
        said = STATUS_REASON.get(_class_of(status))
    if said == "spamdetected":
        # No message content has been seen before DATA: spam words there mean the host
        # or sender is refused for the spam it sent ("554 ... Client host blocked for
        # spamming issues", Comcast "... Comcast block for spam").
        return "blocked"
    if said and SIDE.get(said) in (SENDER, MESSAGE, DESTINATION):
        return said
    return "rejected" if ev.phase == "mail" else "blocked"


def _strong_words(ev: Evidence, status: str | None) -> str | None:
    return _first(STRONG_WORDS, ev.low) if ev.low else None


def _specific_status(ev: Evidence, status: str | None) -> str | None:
    return STATUS_REASON.get(_class_of(status)) if status else None


def _words(ev: Evidence, status: str | None) -> str | None:
    return ev.words()


def _generic_status(ev: Evidence, status: str | None) -> str | None:
    if not status:
        return None
    key = _class_of(status)
    if key.endswith(".0.0"):
        return None  # says nothing: the reply code decides
    return GENERIC_DEFAULT.get(key) or GENERIC_DEFAULT.get(key.rsplit(".", 1)[0] + ".0")


def _weak_words(ev: Evidence, status: str | None) -> str | None:
    return _first(WEAK_WORDS, ev.low) if ev.low else None


def _reply_code(ev: Evidence, status: str | None) -> str | None:
    return REPLY_REASON.get(ev.reply) if ev.reply else None


DECIDE = (
    ("not a failure", "Action delivered, relayed or expanded: delivered.", _not_a_failure),
    ("vendor code", "A provider's documented code or sentence in the diagnostic (Yahoo "
     "TSS04, Microsoft S3150 / 5.7.606 / AS(201806281), Gmail 4.7.28 ...): its reason.",
     _vendor),
    ("sender phase", "The reply answered the connection, HELO/EHLO or MAIL FROM: the sender "
     "or its host was refused.  The words' reason if it is about the sender, the message or "
     "the destination system (requireptr, ratelimited, emailtoolarge, networkerror ...), "
     "else blocked (connection, HELO) or rejected (MAIL FROM).  Spam words before DATA "
     "(no content seen yet) are blocked.  Never a recipient reason, never hard.",
     _sender_phase),
    ("strong words", "Words no status overrules: virus, sending limits, mailbox quota, URI "
     "and IP block lists, recipient preferences, relaying denied (\"550 5.1.1 ... sent to "
     "too many recipients this hour\" is ratelimited, \"4.3.2 Connection rate limit "
     "exceeded\" too).", _strong_words),
    ("specific status", "An enhanced status whose meaning does not depend on the words "
     "(X.1.1 userunknown, X.2.2 mailboxfull, X.4.7 expired, X.7.26 authfailure ...).",
     _specific_status),
    ("words", "The diagnostic's wording (generic statuses X.0.0, X.1.0, X.2.0, X.2.1, "
     "X.4.1, X.5.0, X.7.0, X.7.1, X.7.9 ..., or no status): for X.7.x policy or "
     "attachment words are policyviolation, DMARC/SPF/DKIM authfailure, RFC 5322 or "
     "several From: addresses notcompliantrfc; DNS NXDOMAIN hostunknown, SERVFAIL or "
     "\"try again\" networkerror, a null MX notaccept.", _words),
    ("generic status", "The default of a generic status when its words say nothing "
     "(X.7.1 rejected, X.2.0 filtered, X.2.1 suspend ...).", _generic_status),
    ("weak words", "Bare refusal words (refused, denied, rejected, not authorized): "
     "filtered.", _weak_words),
    ("reply code", "The SMTP reply code alone (RFC 5321): 551 hasmoved, 552 mailboxfull, "
     "421/450/451 systemerror, 550 filtered ... never a hard reason.", _reply_code),
)


def _after_data(ev: Evidence, reason: str, status: str | None) -> str:
    # A recipient refused after the message was sent had been accepted at RCPT TO: an
    # "unknown user" answer to DATA is a content filter wearing that wording (Japanese
    # carriers' sender filters, Courier ">>> DATA <<< 550 Unknown user").
    if ev.phase == "data" and reason in HARD_REASONS:
        return "filtered"
    return reason


def _expiry(ev: Evidence, reason: str, status: str | None) -> str:
    # RFC 3464 §2.3.3: Action "failed" is final; a final failure with a 4.x.x status, an
    # "expired" Action, or retry wording means the retries ran out, and so does a final
    # failure for a transient network cause with no status at all (Gmail: "The recipient
    # server did not accept our requests to connect.").  A cause that names something
    # more specific (a full mailbox, a throttle) stays.
    temporary = (status or "")[:1] == "4"
    if SIDE.get(reason) not in (DESTINATION, UNKNOWN) and not (
            # A routing or DNS failure that stayed temporary until the end ("4.4.4
            # Temporary server error ... after 30 attempt(s)") says nothing of the domain.
            temporary and reason in ("hostunknown", "notaccept")):
        return reason
    if ev.action == "expired":
        return "expired"
    if ev.action == "failed" and (
        temporary
        or any(w in ev.low for w in RETRY_WORDS)
        # ... but not when the remote refused with a 5xx ("Remote protocol error:
        # Connection reset ... (>>> DATA <<< 550 ...)": a refusal, nothing was retried).
        or (status is None and reason == "networkerror" and (ev.reply or "4")[0] != "5"
            # A loop fails at once; nothing was retried.
            and not any(w in ev.low for w in LOOP_WORDS))
    ):
        return "expired"
    return reason


ADJUST = (
    ("after DATA", "A hard reason given in reply to DATA (the recipient was accepted at "
     "RCPT TO) is a content filter: filtered.", _after_data),
    ("expiry", "Action expired, Action failed with a 4.x.x status, or retry wording "
     "(\"retried for N days\", \"in the queue too long\", \"N attempts\"): retries ran out, "
     "so a transport or unknown cause becomes expired.", _expiry),
)


# --------------------------------------------------------------------------------------
# 6. The verdict.
# --------------------------------------------------------------------------------------
class Verdict:
    """classify's answer for one recipient, with the evidence it rests on.

    status, reason, hard   see the module docstring
    action                 the Action, "failed" when a "delayed" notice says it is final
    reply_code, phase      the reply code and SMTP phase found (None when not said)
    rule                   the DECIDE rule that gave the reason (+ ADJUST rules applied)
    """

    __slots__ = ("status", "reason", "hard", "action", "reply_code", "phase", "rule")

    def __init__(self, status, reason, hard, action, reply_code, phase, rule) -> None:
        self.status = status
        self.reason = reason
        self.hard = hard
        self.action = action
        self.reply_code = reply_code
        self.phase = phase
        self.rule = rule

    def __repr__(self) -> str:
        return "Verdict(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


def decide(
    status: str | None,
    diagnostic: str | None,
    action: str | None = None,
    reply_code: str | None = None,
    phase: str | None = None,
) -> Verdict:
    """The verdict for one recipient: DECIDE's first answer, then ADJUST, then hard."""
    ev = Evidence(status, diagnostic, action, reply_code, phase)
    if ev.action == "delayed" and any(w in ev.low for w in FINAL_WORDS):
        ev.action = "failed"
    code = best_status(ev)
    reason = rule = None
    for name, _, step in DECIDE:
        reason = step(ev, code)
        if reason:
            rule = name
            break
    if reason is None:
        reason, rule = "onhold", "nothing said"
    for name, _, step in ADJUST:
        changed = step(ev, reason, code)
        if changed != reason:
            reason, rule = changed, rule + " + " + name

    if not code and reason not in ("delivered", "onhold", "undefined"):
        inferred = REASON_STATUS.get(reason)
        if inferred:
            first = "4" if (ev.action == "delayed" or (ev.reply or "5")[0] == "4") else "5"
            code = first + inferred[1:]
    elif not code and reason in ("onhold", "undefined") and ev.reply:
        code = ev.reply[0] + ".0.0"

    if ev.action in _NON_FAILURE:
        hard = None
    else:
        hard = (reason in HARD_REASONS and ev.phase not in SENDER_PHASES
                and ev.permanent(code))
    return Verdict(code, reason, hard, ev.action, ev.reply, ev.phase, rule)


def classify(
    status: str | None,
    diagnostic: str | None,
    action: str | None = None,
    reply_code: str | None = None,
    phase: str | None = None,
) -> tuple:
    """(status, reason, hard) for one recipient; see the module docstring for the rules.

    >>> classify("5.1.1", "550 5.1.1 <a@b>: Recipient address rejected: User unknown")
    ('5.1.1', 'userunknown', True)
    >>> classify(None, "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen")
    ('5.7.1', 'blocked', False)
    """
    v = decide(status, diagnostic, action, reply_code, phase)
    return v.status, v.reason, v.hard
