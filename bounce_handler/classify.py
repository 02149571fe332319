"""What a failure means: enhanced status, reply code and text → (status, reason, hard).

Order of evidence (Sisimai's, and RFC 3463's intent): a specific enhanced status code
decides first; the diagnostic text refines generic codes (X.0.0, 5.7.1, 4.7.0 …) whose
meaning depends on the words; the SMTP reply code is the last resort.  When a notice gives
no enhanced status (qmail, old Sendmail, vendor prose) one is inferred from the reason, so
every stored failure carries a status.

``hard`` follows Sisimai's rule: the *address itself* is permanently bad — reasons
userunknown, hostunknown, hasmoved, and notaccept with a 5xx.  Every other failure is
``False`` (a blocked sender, a full mailbox, a DMARC rejection say nothing bad about the
recipient: users of every bounce processor complain that such blocks suppressed good
addresses); non-failures (delays, deliveries, complaints) are ``None``.

All tables live here, once; each entry says where the code or the wording comes from.
Pure functions, no I/O; imported by the pipe's hot path; re is imported only when a vendor
or wording pattern is first needed (codes are read by ``parse.scan``).
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import lazy
from bounce_handler.parse.scan import ClientHostRejected, Word, find_reply, find_status

# Sisimai's current reason vocabulary (Sisimai::Reason, v5), plus the three non-failures.
REASONS = (
    "userunknown", "hostunknown", "mailboxfull", "ratelimited", "emailtoolarge", "blocked",
    "spamdetected", "policyviolation", "authfailure", "badreputation", "requireptr",
    "notcompliantrfc", "rejected", "filtered", "expired", "suspend", "hasmoved",
    "norelaying", "notaccept", "networkerror", "systemerror", "systemfull",
    "securityerror", "virusdetected", "failedstarttls", "syntaxerror", "contenterror",
    "mailererror", "onhold", "undefined", "vacation", "feedback", "delivered",
)

HARD_REASONS = frozenset(("userunknown", "hostunknown", "hasmoved"))

# Enhanced status (RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry) → reason.
# Only codes whose meaning does not depend on the words; "generic" codes are in GENERIC.
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
    "X.1.10": "notaccept",  # RFC 7505: recipient address has null MX
    "X.2.1": "suspend",  # Mailbox disabled, not accepting messages
    "X.2.2": "mailboxfull",  # Mailbox full
    "X.2.3": "emailtoolarge",  # Message length exceeds administrative limit
    "X.2.4": "systemerror",  # Mailing list expansion problem
    "X.3.1": "systemfull",  # Mail system full
    "X.3.2": "notaccept",  # System not accepting network messages
    "X.3.3": "systemerror",  # System not capable of selected features
    "X.3.4": "emailtoolarge",  # Message too big for system
    "X.3.5": "systemerror",  # System incorrectly configured
    "X.4.1": "networkerror",  # No answer from host
    "X.4.2": "networkerror",  # Bad connection
    "X.4.3": "systemerror",  # Directory server failure (DNS SERVFAIL in Postfix)
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
    "X.7.9": "securityerror",  # Authentication mechanism is too weak
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
    "X.7.27": "notaccept",  # RFC 7505: sender address has null MX
    "X.7.28": "ratelimited",  # Gmail: "unusual rate of unsolicited mail" (4.7.28/5.7.28)
    "X.7.29": "authfailure",  # RFC 8617: ARC validation failure
    "X.7.30": "failedstarttls",  # RFC 8689: REQUIRETLS support required
}

# Codes that say "something about policy/transport" and need the words to mean anything.
GENERIC_DEFAULT = {
    "X.0.0": "undefined",
    "X.1.0": "userunknown",  # Other address status: nearly always an unknown recipient
    "X.2.0": "filtered",  # Other or undefined mailbox status
    "X.3.0": "systemerror",
    "X.4.0": "networkerror",
    "X.5.0": "syntaxerror",
    "X.5.1": "syntaxerror",
    "X.5.2": "syntaxerror",
    "X.6.0": "contenterror",
    "X.7.0": "securityerror",  # Other or undefined security status
    "X.7.1": "rejected",  # Delivery not authorized, message refused
}

# Vendor codes found in diagnostics; checked before the enhanced status because the
# vendors reuse generic statuses (421 4.7.0, 554 5.7.1) for them.  Each entry is
# (literal needle in the lower-cased text, optional pattern to confirm, reason): the
# needle keeps the pipe from compiling patterns it does not need (one message per process).
VENDOR_CODES = (
    # Yahoo/AOL "Postmaster" error codes (senders.yahooinc.com/smtp-error-codes):
    # TS01-TS03 temporary deferral for unusual traffic, TSS04 "Messages from x.x.x.x
    # temporarily deferred due to unexpected volume or user complaints": a throttle the
    # relay must slow down for (the judge's throttled-destination rule R8 counts it), so
    # ratelimited rather than blocked.
    ("tss04", None, "ratelimited"),
    ("ts0", lazy(r"\bts0[1-4]\b"), "ratelimited"),
    # Yahoo: "553 5.7.1 [BL21] Connections will not be accepted from ..., because the ip
    # is in Spamhaus's list"; [BL23] own blocklist.
    ("[bl2", None, "blocked"),
    # Microsoft (Outlook.com / Hotmail): "550 5.7.1 Unfortunately, messages from [ip]
    # weren't sent ... (S3150)" - the IP is on Microsoft's block list; S3140 likewise;
    # "(S775)" sending IP reputation; "(AS842)" / "(AS843)" IP block; RP-00x rate.
    ("s3150", None, "blocked"),
    ("(s3140)", None, "blocked"),
    ("(s3114)", None, "blocked"),
    ("(s775)", None, "badreputation"),
    ("(s844)", None, "badreputation"),
    ("(as84", None, "badreputation"),
    ("rp-00", lazy(r"\brp-00[1-3]\b"), "ratelimited"),
    # Office 365 Exchange Online Protection: "5.7.606 Access denied, banned sending IP"
    # (5.7.606-5.7.649 are the IP block list entries).
    ("5.7.6", lazy(r"\b5\.7\.6[0-4][0-9]\b"), "blocked"),
    # Office 365: "5.7.708 Service unavailable. Access denied, traffic not accepted
    # from this IP" (low-reputation tenant ranges).
    ("5.7.70", lazy(r"\b5\.7\.70[0-9]\b"), "badreputation"),
    # Office 365: "5.4.1 Recipient address rejected: Access denied. AS(201806281)"
    # (Directory Based Edge Blocking: the recipient does not exist).
    ("as(201806281)", None, "userunknown"),
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
)

# Diagnostic wording → reason, first match wins; ordered from most to least specific.
# Entries are literal lower-case phrases (cheap `in` tests) or, where a word boundary
# matters, parse.scan matchers (scan.Word: checking them imports no re).  Phrases are
# what the MTAs print (Postfix, Exim, Sendmail, qmail, Exchange, the big providers).
TEXT_REASON = (
    # Postfix "Sender address rejected: Domain not found", Sendmail "553 5.1.8 <x>...
    # Domain of sender address x does not exist": the sender is refused, not the recipient.
    ("rejected", ("sender address rejected", "domain of sender address", "sender rejected",
                  "sender is rejected", "sender denied", "sender not allowed", "bad sender",
                  "sender verify failed",
                  # AOL: "not accepting mail from sender@x": this recipient refuses this
                  # sender (its block list), not every sender (that would be notaccept).
                  "not accepting mail from")),
    ("virusdetected", ("virus", "malware", "infected", "trojan")),
    ("requireptr", ("reverse dns", "reverse lookup", "ptr record", "no ptr",
                    "cannot find your hostname", "not resolve your address", "rdns",
                    "cannot find your reverse hostname")),
    ("authfailure", (Word("spf"), "dkim", "dmarc", "sender policy framework",
                     "authentication failed", "authentication check failed")),
    ("failedstarttls", ("starttls", "tls required", "encryption required",
                        "must use tls", "must issue a starttls")),
    ("norelaying", ("relay access denied", "relaying denied", "relay denied",
                    "relay not permitted", "relaying not permitted", "relay prohibited",
                    "not permitted to relay", "unable to relay", "we do not relay",
                    "not a gateway", "no relaying", "relaying prohibited",
                    "relay not allowed", "relaying not allowed")),
    ("ratelimited", ("rate limit", "ratelimit", "too many messages", "too many connections",
                     "too many recipients", "too many emails", "exceeded the rate",
                     "sending limit", "quota exceeded for", "too fast",
                     "limit exceeded", "unusual rate", "unusual traffic", "throttl",
                     "temporarily deferred", "try again later")),
    ("badreputation", ("reputation", "poor sender", "sender score")),
    ("spamdetected", (Word("spam"), "content rejected", "classified as",
                      "identified as", "considered as", "bulk mail", "junk mail",
                      "unsolicited", "looks like spam", "high probability of being",
                      Word("uce"))),
    ("blocked", ("blacklist", "black list", "blocklist", "block list", "blocked",
                 "dnsbl", Word("rbl"), "spamhaus", "spamcop", "barracuda", "banned",
                 "connection refused from", "connection rejected by policy",
                 "not accepted from", "your ip", "your host", "your server",
                 ClientHostRejected())),
    ("hasmoved", ("has moved", "moved permanently", "no longer with", "no longer at",
                  "no longer available at", "address has changed", "address changed")),
    ("suspend", ("disabled", "deactivated", "suspended", "inactive", "account is locked",
                 "account locked", "account closed", "account is closed", "account expired",
                 "account is frozen", "not active", "has been terminated", "on hold")),
    ("mailboxfull", ("mailbox is full", "mailbox full", "over quota", "over the quota",
                     "quota exceeded", "quota exceed", "quota full", "exceeded storage",
                     "exceeded the storage", "exceeded quota", "exceeded the quota",
                     "exceeding their quota", "disk quota", "mailbox size limit",
                     "insufficient disk space", "insufficient space", "mailbox has exceeded",
                     "mailbox exceeded", "too many messages in", "overquota",
                     "not enough storage", "not enough space", "storage limit",
                     "storage quota", "full mailbox", "mailfolder is full",
                     "quota violation", "too much mail stored", "boite pleine",
                     "boite aux lettres pleine",
                     "postfach voll", "mailbox is over")),
    ("emailtoolarge", ("too large", "too big", "message size", "size limit",
                       "size exceeds", "exceeds the maximum", "exceeds maximum",
                       "message length exceeds", "exceeded maximum message size",
                       "exceeds size")),
    ("hostunknown", ("host or domain name not found", "host not found", "host unknown",
                     "unknown host", "domain not found", "domain does not exist",
                     "domain unknown", "domain name not found", "domain is not valid",
                     "no such domain", "unrouteable", "unroutable", "name service error",
                     "no mx", "nxdomain", "bad destination system", "unknown domain",
                     "mx not found", "mx record not found", "couldn't find any host",
                     "no valid host", "no such host", "nonexistent domain", "invalid domain",
                     "nameserver error", "domain lookup failed")),
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
                     "no account", "not listed in", "account does not exist",
                     "unknown or illegal alias", "bad recipient", "no valid recipients",
                     "recipient address rejected", "not found in the directory",
                     "not found in directory", "undeliverable address",
                     "in virtual alias table", "in local recipient table",
                     "in virtual mailbox table", "utilisateur inconnu", "unbekannt",
                     "nicht gefunden", "desconocido", "inexistente", "sconosciuto",
                     "is not a known user", "no such local user", "unknown name",
                     "this user doesn't have", "non-existent", "nonexistent user",
                     "nonexistent address", "no longer valid", "address is not valid",
                     "isn't a valid", "is not a valid", "recipient name is not recognized",
                     "name is not recognized", "unknown recipient", "invalid mailbox",
                     "no matches to nameserver query", "user doesn't have",
                     "recipient rejected", "mailbox is not valid", "address rejected",
                     "account is not available", "addressee unknown", "user not known",
                     "not known here", "invalid final delivery", "final email delivery point",
                     "did not exactly match", "n'existe pas", "existiert nicht", "no existe",
                     "not listed in domino directory")),
    # "timed out" alone is a network symptom (below); only queue/retry timeouts expire.
    ("expired", ("expired", "retry timeout", "queue timeout", "delivery timeout",
                 "too long in the queue", "too long in queue", "been in the queue too long",
                 "could not be delivered for", "could not be delivered within", "giving up",
                 "delivery time", "undeliverable for", "not delivered for",
                 "unable to deliver for", "deferred for", "not reachable within",
                 "maximum delivery attempts", "not been collected", "delivery attempts")),
    ("networkerror", ("connection refused", "connection reset", "timed out", "time out",
                      "connection closed", "connection lost", "connection dropped", "network",
                      "unreachable", "lost connection", "no route to host",
                      Word("dns"), "establish an smtp connection", "could not connect",
                      "unable to connect", "cannot connect", "not responding")),
    ("systemfull", ("system is full", "system full", "out of disk", "out of memory",
                    "out of space", "insufficient system")),
    ("notaccept", ("does not accept mail", "not accepting mail", "not accepting any mail",
                   "null mx", "accept no mail", "no mail accepted", "not accepting")),
    ("mailererror", ("mailer error", "command died", "command failed", "command output",
                     "program exited", "pipe to ", "unknown mailer", "exit code",
                     "exit status", "procmail", "local delivery failed")),
    ("policyviolation", ("policy", "prohibited", "not allowed", "not permitted",
                         "content filter")),
    ("syntaxerror", ("syntax error", "command unrecognized", "bad sequence",
                     "unrecognized command", "line too long", "invalid command")),
    ("securityerror", ("authentication required", "unauthenticated", "not authenticated",
                       "auth required", "credentials", "security")),
    ("notcompliantrfc", ("rfc 5322", "rfc5322", "rfc 2822", "rfc2822", "rfc 822", "rfc822",
                         "not compliant", "not rfc compliant", "multiple from",
                         "multiple message-id", "malformed", "header field",
                         "header line", "missing header", "invalid header", "headers are not",
                         "field given", "field missing")),
    # Not "undeliverable": it says only that the notice is one (Sisimai: undefined).
    ("filtered", ("filtered", "refused", "denied", "rejected", "not authorized",
                  "not authorised")),
    ("systemerror", ("system error", "internal error", "server error", "configuration error",
                     "local error", "temporary failure", "temporary error",
                     "temporary problem", "loops back to myself", "mail loop",
                     "too many hops", "routing loop", "service unavailable", "try again")),
)


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

# SMTP reply code (RFC 5321 §4.2.2/§4.2.3) → reason, when neither status nor words say.
REPLY_REASON = {
    "421": "systemerror", "450": "systemerror", "451": "systemerror", "452": "systemfull",
    "550": "userunknown",  # "mailbox unavailable": almost always an unknown mailbox
    "551": "hasmoved",  # "User not local; please try <forward-path>"
    "552": "mailboxfull",  # "exceeded storage allocation"
    "553": "userunknown",  # "mailbox name not allowed"
    "554": "rejected", "500": "syntaxerror", "501": "syntaxerror", "502": "syntaxerror",
    "503": "syntaxerror", "504": "syntaxerror", "521": "notaccept", "556": "notaccept",
}

_NON_FAILURE = ("delayed", "delivered", "relayed", "expanded")


def _class_of(status: str) -> str:
    return "X." + status.split(".", 1)[1]


def vendor_reason(low: str) -> str | None:
    """Return the reason a vendor code in the (lower-cased) diagnostic gives, or None."""
    for needle, rx, reason in VENDOR_CODES:
        if needle in low and (rx is None or rx.search(low)):
            return reason
    return None


def text_reason(diagnostic: str | None) -> str | None:
    """Return the reason the words of a diagnostic give (vendor codes first), or None."""
    if not diagnostic:
        return None
    low = diagnostic.lower()
    reason = vendor_reason(low)
    if reason:
        return reason
    for reason, phrases in TEXT_REASON:
        for p in phrases:
            if (p in low) if p.__class__ is str else p.search(low):
                return reason
    return None


def classify(
    status: str | None,
    diagnostic: str | None,
    action: str | None = None,
    reply_code: str | None = None,
) -> tuple:
    """(status, reason, hard) for one recipient; see the module docstring for the rules.

    >>> classify("5.1.1", "550 5.1.1 <a@b>: Recipient address rejected: User unknown")
    ('5.1.1', 'userunknown', True)
    >>> classify(None, "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen")
    ('5.7.1', 'blocked', False)
    """
    action = (action or "failed").lower()
    diag = diagnostic or ""
    if status:
        status = find_status(status)
    if not status and diag:
        status = find_status(diag) or status
    if not reply_code and diag:
        reply_code = find_reply(diag[:40]) or reply_code
    if status and status.endswith(".0.0") and reply_code and reply_code[0] in "45":
        # "Status: 5.0.0" next to "550 5.1.1 ...": trust the more specific code in the text.
        found = find_status(diag)
        if found and not found.endswith(".0.0"):
            status = found

    reason = None
    vendor = vendor_reason(diag.lower()) if diag else None
    if vendor:
        reason = vendor
    elif status:
        key = _class_of(status)
        reason = STATUS_REASON.get(key)
        if reason is None:
            reason = text_reason(diag) if diag else None
            if reason is None:
                reason = GENERIC_DEFAULT.get(key)
                if reason is None:
                    reason = GENERIC_DEFAULT.get(key.rsplit(".", 1)[0] + ".0", "undefined")
            elif key == "X.7.1" and reason in ("expired", "filtered", "networkerror"):
                # 5.7.1 is a policy refusal: "refused"/"denied" words add nothing to it.
                reason = "rejected"
    else:
        reason = text_reason(diag)
        if reason is None and reply_code:
            reason = REPLY_REASON.get(reply_code)

    if action == "delayed":
        if reason in (None, "undefined", "expired"):
            reason = "expired" if action == "delayed" else reason
    elif action in ("delivered", "relayed", "expanded"):
        reason = "delivered"
    if reason is None:
        reason = "undefined"

    if not status and reason not in ("delivered", "undefined"):
        code = REASON_STATUS.get(reason)
        if code:
            first = "4" if (action == "delayed" or (reply_code or "5")[0] == "4") else "5"
            status = first + code[1:]
    elif not status and reason == "undefined" and reply_code:
        status = reply_code[0] + ".0.0"

    if action in _NON_FAILURE:
        hard = None
    elif reason in HARD_REASONS:
        hard = True
    elif reason == "notaccept":
        hard = bool((status and status[0] == "5") or (reply_code and reply_code[0] == "5"))
    else:
        hard = False
    return status, reason, hard
