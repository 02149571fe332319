"""classify: the decision table, rule by rule, with the wording real MTAs send.

Each case names the MTA or provider whose text it is.  ``decide`` also reports which rule
gave the reason, so each row checks that the *documented* rule decided it, not another one
that happens to agree.
"""

from __future__ import annotations

import time

import pytest

from bounce_handler import classify as c
from bounce_handler.classify import HARD_REASONS, REASONS, SENDER_SIDE, classify, decide

# (why, status field, diagnostic, action, reply, phase) -> (status, reason, hard, rule)
RULES = [
    # -- not a failure -------------------------------------------------------------------
    ("RFC 3464 success DSN (NOTIFY=SUCCESS)", "2.0.0", "250 2.0.0 Ok: queued as 4Xyz",
     "delivered", None, None, ("2.0.0", "delivered", None, "not a failure")),
    # -- vendor codes --------------------------------------------------------------------
    ("Yahoo TSS04 throttle", "4.7.0", "421 4.7.0 [TSS04] Messages from 192.0.2.1 "
     "temporarily deferred due to unexpected volume or user complaints", "delayed", None,
     None, ("4.7.0", "ratelimited", None, "vendor code")),
    ("Microsoft S3150 block list", "5.7.1", "550 5.7.1 Unfortunately, messages from "
     "[192.0.2.1] weren't sent. Please contact your Internet service provider since part "
     "of their network is on our block list (S3150).", None, None, None,
     ("5.7.1", "blocked", False, "vendor code")),
    ("Office 365 Directory Based Edge Blocking", "5.4.1", "550 5.4.1 Recipient address "
     "rejected: Access denied. AS(201806281) [BN8NAM11FT000.eop-nam11.prod.protection."
     "outlook.com]", None, None, None, ("5.4.1", "userunknown", True, "vendor code")),
    ("Office 365 DBEB without the AS() tag", None, "550 5.4.1 <a@tenant.example>: "
     "Recipient address rejected: Access denied [BL2NAM02FT061.eop-nam02.prod.protection."
     "outlook.com]", None, None, None, ("5.4.1", "userunknown", True, "vendor code")),
    ("Microsoft 5.4.1 'Access denied' for every recipient: a refusal, no network error",
     "5.4.1", "550 5.4.1 All recipient addresses rejected : Access denied [NEKO.cat-JPN22."
     "prod.protection.outlook.com]", None, None, None,
     ("5.4.1", "filtered", False, "vendor code")),
    ("Postfix access map refusing a recipient: soft, about the recipient's side", None,
     "SMTP error from remote mail server after RCPT TO:<a@b.example>: host mx1.example.eu "
     "[192.0.2.32]: 554 5.7.1 <a@b.example>: Recipient address rejected: Access denied",
     None, None, None, ("5.7.1", "filtered", False, "words")),
    ("Yahoo [BL21] only as a bracketed code, not inside a Microsoft host name", None,
     "553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.1, because the ip is "
     "in Spamhaus's list", None, None, None, ("5.7.1", "blocked", False, "vendor code")),
    ("Gmail attachment guidelines", "5.7.0", "552-5.7.0 This message was blocked because "
     "its content presents a potential 552-5.7.0 security issue. Please visit 552-5.7.0 "
     "https://support.google.com/mail/?p=BlockedMessage to review our message 552 5.7.0 "
     "content and attachment content guidelines.", None, None, "data",
     ("5.7.0", "policyviolation", False, "vendor code")),
    ("Tencent QQ frequency limit (the text also says 'Blocked IP')", "5.0.0",
     "550 Ip frequency limited [xxx Blocked IP 192.0.2.22]. http://service.mail.qq.com/",
     None, None, None, ("5.0.0", "ratelimited", False, "vendor code")),
    ("Amazon SES as the relay refuses an unverified sender identity", "5.0.0",
     "554 Message rejected: Email address is not verified. The following identities "
     "failed the check in region US-EAST-1: s@customer.example.org", None, None, "data",
     ("5.0.0", "norelaying", False, "words")),
    # "host <name> not found" names whatever host was looked up: the sending host, the
    # sender's domain, a PTR.  Never a dead recipient (dma's own wording is judged by the
    # dma detector, against the recipient's domain: tests/parse/test_dma.py).
    ("A host named not found is no dead recipient: the sending host's name", "5.0.0",
     "550 5.7.1 Your HELO host mail.sender.example not found in DNS", "failed", None, "rcpt",
     ("5.7.1", "networkerror", False, "words")),
    ("A host named not found is no dead recipient: an IP address", "5.0.0",
     "550 Host 192.0.2.9 not found in DNS", "failed", None, "rcpt",
     ("5.0.0", "networkerror", False, "words")),
    ("A retired server 'no longer in use' says nothing of the address", "5.0.0",
     "550 This mail server is no longer in use", "failed", None, "rcpt",
     ("5.0.0", "filtered", False, "reply code")),
    ("'Send complaints to' in a user unknown reply is no reputation", "5.0.0",
     "550 No such user. Send complaints to postmaster@example.com", "failed", None, "rcpt",
     ("5.0.0", "userunknown", True, "words")),
    ("Postfix's temporary lookup failure names no host: not a dead domain", None,
     "Host or domain name not found. Name service error for name=example.net type=MX: "
     "Host not found, try again", "delayed", None, None,
     ("4.4.0", "networkerror", None, "words")),
    # -- the SMTP phase: connection, HELO, MAIL FROM refuse the sender -------------------
    ("GMX: unverifiable sending IPs at MAIL FROM is a reverse-DNS requirement", None,
     "SMTP error from remote mail server after MAIL FROM:<a@example.com> SIZE=1024: 450 "
     "service permits 2 unverifyable sending IPs", "delayed", None, None,
     ("4.7.25", "requireptr", None, "sender phase")),
    ("Postfix smtp(8): refusal in the greeting", None, "host mx.example.net[192.0.2.1] "
     "refused to talk to me: 554 5.7.1 Service unavailable; Client host [192.0.2.9] "
     "blocked using zen.spamhaus.org", None, None, None,
     ("5.7.1", "blocked", False, "sender phase")),
    ("Postfix 3.7 (real lab notice): a 554 greeting refusing the host", None, "554 5.7.1 "
     "mx.refuse.test ESMTP not accepting mail from your host: blocked", None, None,
     "connect", ("5.7.1", "blocked", False, "sender phase")),
    ("Sendmail 8.17 (real lab notice): the same greeting, its own Status: 5.5.0", "5.5.0",
     "554 5.7.1 mx.refuse.test ESMTP not accepting mail from your host: blocked", None,
     None, None, ("5.7.1", "blocked", False, "strong words")),
    ("Exim: a greeting refusal with no reason", None, "SMTP error from remote mail server "
     "after initial connection: host mx.example.net [192.0.2.1]: 554 mx.example.net ESMTP "
     "not accepting messages", None, None, None,
     ("5.7.1", "blocked", False, "sender phase")),
    ("Apple iCloud greeting (a 554 banner is not the domain refusing all mail)", "5.5.0",
     "554 st11p00im-smtpin013.me.com ESMTP not accepting connections", None, None, None,
     ("5.5.0", "blocked", False, "sender phase")),
    ("Exim: MAIL FROM refused, 'unroutable' is about the sender", None, "SMTP error from "
     "remote mail server after MAIL FROM:<s@x.example> SIZE=1024: host mx.example.edu "
     "[192.0.2.1]: 550 Unroutable sender address", None, None, None,
     ("5.7.1", "rejected", False, "sender phase")),
    ("Exim: 5.1.0 'does not exist' after MAIL FROM is the sender's address", None,
     "SMTP error from remote mail server after MAIL FROM:<s@x.example> SIZE=1022: 553 5.1.0 "
     "s x.example does not exist E2110", None, None, None,
     ("5.1.0", "rejected", False, "sender phase")),
    ("Exim: a dynamic address told to use its ISP's server is a blocked host", None,
     "SMTP error from remote mail server after MAIL FROM:<s@x> SIZE=1543: host mx.example.jp "
     "[192.0.2.20]: 550 5.7.0 <s@x>... Please use the smtp server of your ISP.", None, None,
     None, ("5.7.0", "blocked", False, "sender phase")),
    ("Postfix: 'Access denied' in reply to MAIL FROM", "5.7.1", "550 5.7.1 Access denied",
     None, None, "mail", ("5.7.1", "rejected", False, "sender phase")),
    ("qmail-remote: sender was rejected", None, "Connected to 192.0.2.225 but sender was "
     "rejected. Remote host said: 550 5.7.1 <root@x.example>... Access denied", None, None,
     None, ("5.7.1", "rejected", False, "sender phase")),
    ("'Client host [ip] rejected' names the sending host", None, "554 5.7.1 Client host "
     "[192.0.2.1] rejected by policy", None, None, None,
     ("5.7.1", "blocked", False, "words")),
    ("Postfix smtpd: 'Client host rejected: cannot find your hostname' is requireptr",
     None, "450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.1]",
     "delayed", None, None, ("4.7.1", "requireptr", None, "sender phase")),
    ("A size limit declared in MAIL FROM SIZE= is about the message", None,
     "SMTP error from remote mail server after MAIL FROM:<s@x> SIZE=90000000: 552 5.3.4 "
     "Message size exceeds fixed maximum message size", None, None, None,
     ("5.3.4", "emailtoolarge", False, "sender phase")),
    ("Orange: spam words at the greeting mean the host is blocked (no content yet)", None,
     "550 mwinf5c10 ME Adresse IP source bloquee pour incident de spam. Client host "
     "blocked for spamming issues. OFR006_102", None, None, "connect",
     ("5.7.1", "blocked", False, "sender phase")),
    ("Postfix: 'delivery temporarily suspended' before a 421 greeting is the destination's "
     "trouble, not a suspended mailbox", None, "delivery temporarily suspended: host "
     "mx.example.net[192.0.2.1] refused to talk to me: 421 Service not available, closing "
     "transmission channel", "delayed", None, None,
     ("4.3.0", "systemerror", None, "sender phase")),
    # -- strong words over a specific status --------------------------------------------
    ("GoDaddy: too many recipients this hour, whatever the 5.1.1", "5.1.1", "550 5.1.1 "
     "<a@b.example> - 203.0.113.222 has sent to too many recipients this hour. IB607",
     None, None, None, ("5.1.1", "ratelimited", False, "strong words")),
    ("Postfix: 4.3.2 'Connection rate limit exceeded'", "4.3.2",
     "452 4.3.2 Connection rate limit exceeded.", "failed", None, None,
     ("4.3.2", "ratelimited", False, "strong words")),
    ("Facebook: refused due to recipient preferences", "5.1.1", "550 5.1.1 RCP-P2 "
     "http://postmaster.facebook.com/response_codes?ip=192.0.2.1#rcp Refused due to "
     "recipient preferences", None, None, None, ("5.1.1", "filtered", False, "strong words")),
    ("MailFoundry: quota words beat #5.1.1", None, "is over quota temporarily (#5.1.1)",
     None, None, None, ("5.1.1", "mailboxfull", False, "strong words")),
    ("A URI block list judges the content, not the sending host", None,
     "550-REJECTED - Blacklisted URL in message. (example.com) in [black]. "
     "550-See http://lookup.uribl.com", None, None, None,
     ("5.7.1", "spamdetected", False, "strong words")),
    ("Sendmail: block list wording beats a mislabelled Status: 5.1.1", "5.1.1",
     "550 5.7.1 IP address blacklisted by recipient", None, None, None,
     ("5.7.1", "blocked", False, "strong words")),
    ("Postfix pipe(8): a local program's output beats the 5.1.1 it was given", "5.1.1",
     'x-unix; procmail: Couldn\'t create "/var/spool/mail/neko" id: r.example.org: No such '
     "user", None, None, None, ("5.1.1", "mailererror", False, "strong words")),
    ("Maildir quota through a delivery program is a full mailbox", "4.3.0",
     "x-unix; /var/email/u/Maildir/tmp/1000.A0.host: Disk quota exceeded", "delayed", None,
     None, ("4.3.0", "mailboxfull", None, "strong words")),
    # -- a specific status ---------------------------------------------------------------
    ("Postfix: RCPT TO user unknown", "5.1.1", "550 5.1.1 <a@b>: Recipient address "
     "rejected: User unknown in virtual mailbox table", None, None, None,
     ("5.1.1", "userunknown", True, "specific status")),
    ("Postfix: 5.1.2 host not found", "5.1.2", "Host or domain name not found. Name "
     "service error for name=example.invalid type=A: Host not found", None, None, None,
     ("5.1.2", "hostunknown", True, "specific status")),
    ("RFC 3463 X.1.6 mailbox moved", "5.1.6", "551 5.1.6 User has moved", None, None, None,
     ("5.1.6", "hasmoved", True, "specific status")),
    ("Postfix: mailbox full", "5.2.2", "552 5.2.2 <a@b>: Mailbox full", None, None, None,
     ("5.2.2", "mailboxfull", False, "strong words")),
    ("RFC 3463 X.2.2 with no words", "5.2.2", "552 5.2.2", None, None, None,
     ("5.2.2", "mailboxfull", False, "specific status")),
    ("Postfix: message size", "5.3.4", "552 5.3.4 Message size exceeds fixed limit", None,
     None, None, ("5.3.4", "emailtoolarge", False, "specific status")),
    ("Gmail DMARC (RFC 7372 5.7.26)", "5.7.26", "550 5.7.26 This mail is unauthenticated, "
     "which poses a security risk to the sender and Gmail users", None, None, None,
     ("5.7.26", "authfailure", False, "specific status")),
    ("Postfix: 4.4.4 unable to route is not hard while it is temporary", "4.4.4",
     "Host or domain name not found. Name service error for name=x.example type=AAAA: "
     "Host not found", "delayed", None, None, ("4.4.4", "hostunknown", None,
     "specific status")),
    ("RFC 7505 X.7.27 is the sender's null MX (Postfix, RCPT TO under delay reject)",
     "5.7.27", "550 5.7.27 <s@example.org>: Sender address rejected: Domain example.org "
     "does not accept mail (nullMX)", None, None, "rcpt",
     ("5.7.27", "rejected", False, "specific status")),
    ("Postfix 4.7.4: 'TLS is required' beats X.7.4's securityerror", "4.7.4",
     "TLS is required, but was not offered by host mx.example.com[192.0.2.1]", "delayed",
     None, None, ("4.7.4", "failedstarttls", None, "strong words")),
    ("policyd: a message count quota is a rate, not a full mailbox", "4.7.1",
     "450 4.7.1 <a@example.com>: Recipient address rejected: Policy rejection; Message "
     "count quota exceeded", "delayed", None, "rcpt",
     ("4.7.1", "ratelimited", None, "strong words")),
    ("Zoho: a mailbox quota 'for this recipient' is not a sender's quota", None,
     "552 Mailbox quota exceeded for this recipient", None, None, "rcpt",
     ("5.2.2", "mailboxfull", False, "strong words")),
    # -- words decide generic statuses, and notices without one --------------------------
    ("Yahoo: 5.7.9 'policy reasons' is a policy, not weak authentication", "5.7.9",
     "554 5.7.9 Message not accepted for policy reasons. See https://senders.yahooinc.com/"
     "error-codes", None, None, None, ("5.7.9", "policyviolation", False, "words")),
    ("Gmail: several From: addresses, a multi-line reply joined", "5.7.1",
     "550-5.7.1 [192.0.2.222 13] Messages with multiple 550 5.7.1 addresses in From: "
     "header are not accepted. v14si1155795plk.134 - gsmtp", None, None, None,
     ("5.7.1", "notcompliantrfc", False, "words")),
    ("SPF failure under 5.7.1", "5.7.1", "550 5.7.1 SPF check failed for 192.0.2.1",
     None, None, None, ("5.7.1", "authfailure", False, "words")),
    ("Sendmail 5.2.1 'User Unknown': the words decide X.2.1", "5.2.1",
     "550 5.2.1 <a@b>... User Unknown", None, None, None,
     ("5.2.1", "userunknown", True, "words")),
    ("Gmail 5.2.1 disabled account", "5.2.1", "550 5.2.1 The email account that you tried "
     "to reach is disabled.", None, None, None, ("5.2.1", "suspend", False, "vendor code")),
    ("Laposte: 5.5.0 recipient account blocked", "5.5.0", "550 5.5.0 Le compte du "
     "destinataire est bloque. The recipient account is blocked.", None, None, None,
     ("5.5.0", "suspend", False, "words")),
    ("Office 365: 5.1.10 'wasn’t found' (typographic apostrophe)", "5.1.10",
     "The email address wasn’t found at the destination domain. It might be misspelled",
     None, None, None, ("5.1.10", "userunknown", True, "words")),
    ("Postfix null MX (RFC 7505)", "5.1.10", "550 5.1.10 Recipient address rejected: "
     "Domain example.com does not accept mail (nullMX)", None, None, None,
     ("5.1.10", "notaccept", True, "words")),
    ("Exim null MX, no code at all", None, "an MX or SRV record indicated no SMTP service",
     None, None, None, ("5.3.2", "notaccept", True, "words")),
    ("OpenSMTPD: no MX", None, "No MX found for domain", None, None, None,
     ("5.3.2", "notaccept", True, "words")),
    ("Postfix: DNS SERVFAIL is networkerror, not hostunknown", "4.4.3", "Host or domain "
     "name not found. Name service error for name=x.example type=MX: Host not found, try "
     "again", "delayed", None, None, ("4.4.3", "networkerror", None, "specific status")),
    ("Words without a status: SERVFAIL", None, "Host or domain name not found. Name service"
     " error for name=x.example type=MX: Host not found, try again", "delayed", None, None,
     ("4.4.0", "networkerror", None, "words")),
    ("Words without a status: NXDOMAIN", None, "DNS lookup: NXDOMAIN for x.example", None,
     None, None, ("5.1.2", "hostunknown", True, "words")),
    ("Outlook: domain not reachable", "5.5.0", "554 The mail could not be delivered to the "
     "recipient because the domain is not reachable. Please check the domain and try again",
     None, None, None, ("5.5.0", "hostunknown", True, "words")),
    ("qmail: no mailbox by that name", None, "Sorry, no mailbox here by that name. (#5.1.1)",
     None, None, None, ("5.1.1", "userunknown", True, "specific status")),
    ("Amazon SES: temporarily locked is suspend, not a throttle", "5.7.1", "550 5.7.1 <a@b>"
     ": Recipient address rejected: User a@b temporary locked. Please try again later!",
     None, None, None, ("5.7.1", "suspend", False, "words")),
    ("fml: the sender is not a member of the list", None, "You are not a member of this "
     "mailing list <list@example.org>.", None, None, None,
     ("5.7.1", "rejected", False, "words")),
    ("Sendmail: a temporary DNS failure", "4.0.0", "4.0.0 (cat.example.net: host name lookup"
     " failure)", "delayed", None, None, ("4.0.0", "networkerror", None, "words")),
    ("Postfix: 'delivery temporarily suspended' is not a suspended mailbox", "4.4.1",
     "delivery temporarily suspended: connect to mx.example.com[192.0.2.1]:25: Connection "
     "timed out", "delayed", None, None, ("4.4.1", "networkerror", None, "words")),
    ("Postfix smtpd: 'Helo command rejected: Host not found' names the sending host",
     "5.7.1", "550 5.7.1 <mail.example.local>: Helo command rejected: Host not found",
     None, None, "rcpt", ("5.7.1", "blocked", False, "words")),
    ("Domino: a routing loop with no status is final, not retries that ran out", None,
     "Maximum hop count exceeded. Message probably in a routing loop.", None, None, None,
     ("5.4.0", "networkerror", False, "words")),
    ("Sendmail: unauthenticated senders", None, "550 Unauthenticated senders not allowed",
     None, None, None, ("5.7.0", "securityerror", False, "words")),
    ("Microsoft: hop count exceeded is a loop (X.4.6 networkerror)", "5.4.14", "554 5.4.14 "
     "Hop count exceeded - possible mail loop", None, None, None,
     ("5.4.14", "networkerror", False, "words")),
    ("Sendmail X-Unix diagnostic: a local program's exit code", "5.0.0", "X-Unix; 255",
     None, None, None, ("5.0.0", "mailererror", False, "strong words")),
    ("Postfix 'Recipient address rejected' alone says nothing about the mailbox", None,
     "550 5.7.1 <a@b>: Recipient address rejected: Policy rejection", None, None, None,
     ("5.7.1", "policyviolation", False, "words")),
    ("Sendmail 8.17: Status 5.1.1 of its own beside a multi-line 550-5.7.1 at RCPT",
     "5.1.1", "550-5.7.1 [192.0.2.1] The IP you're using to send mail is not authorized to "
     "550-5.7.1 send email directly to our servers. Please use the SMTP relay at your "
     "550 5.7.1 service provider instead.", None, None, "rcpt",
     ("5.7.1", "blocked", False, "words")),
    ("Sendmail 8.17: Status 5.1.1 beside a multi-line 550-5.2.1 disabled account", "5.1.1",
     "550-5.2.1 The account is disabled. 550 5.2.1 See the help pages.", None, None, "rcpt",
     ("5.2.1", "suspend", False, "words")),
    ("A multi-line reply repeating Status: changes nothing", "5.1.1",
     "550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 "
     "Please try double-checking", None, None, "rcpt",
     ("5.1.1", "userunknown", True, "vendor code")),
    ("A single-line reply's code does not overrule Status: without words", "5.1.1",
     "550 5.7.1 <a@b>: Recipient address rejected: User unknown", None, None, "rcpt",
     ("5.1.1", "userunknown", True, "specific status")),
    # -- the generic status's default, then weak words, then the reply code ------------
    ("Amazon SES: 5.7.9 'Rejected'", "5.7.9", "550 5.7.9 Rejected", None, None, None,
     ("5.7.9", "securityerror", False, "generic status")),
    ("A bare 'Rejected' with no status", None, "542 a@b.example Rejected", None, None, None,
     ("5.2.0", "filtered", False, "weak words")),
    ("A bare 550: refused, never hard", None, "550 Requested action not taken", None, None,
     None, ("5.2.0", "filtered", False, "reply code")),
    ("Postfix: 451 with a 4.0.0 summary (the reply decides)", "4.0.0",
     "451 Could not load DRD for domain", "delayed", None, None,
     ("4.0.0", "systemerror", None, "reply code")),
    ("RFC 5321 551 User not local", None, "551 User not local; please try <b@c>", None,
     None, None, ("5.1.6", "hasmoved", True, "reply code")),
    # Sisimai's name for "the notice does not say why" (it never gives undefined).
    ("Nothing at all", None, None, None, None, None, (None, "onhold", False, "nothing said")),
    ("Lotus Notes: words that name no reason", None, "------- Failure Reasons -------- "
     "Error (as a test message)", None, None, None, (None, "onhold", False, "nothing said")),
]


@pytest.mark.parametrize("why, status, diag, action, reply, phase, want", RULES,
                         ids=[r[0] for r in RULES])
def test_decision_rules(why, status, diag, action, reply, phase, want):
    v = decide(status, diag, action, reply, phase)
    assert (v.status, v.reason, v.hard, v.rule) == want


# (why, status, diagnostic, action, reply, phase) -> (status, reason, hard, action, rule)
ADJUSTED = [
    ("Postfix: 'user unknown' in reply to end of DATA is a content filter", "5.1.1",
     "host mx[192.0.2.1] said: 550 5.1.1 <a@b>: user unknown (in reply to end of DATA "
     "command)", None, None, None, ("5.1.1", "filtered", False, "failed",
                                    "specific status + after DATA")),
    ("Courier: >>> DATA <<< 550 Unknown user", "5.0.0", ">>> DATA <<< 550 Unknown user a@b",
     None, None, None, ("5.0.0", "filtered", False, "failed", "words + after DATA")),
    ("Pipelined RCPT: the DATA refusal only repeats it (Sendmail 'Need RCPT')", None,
     ">>> RCPT To:<a@b> <<< 550 5.1.1 <a@b>... User unknown >>> DATA <<< 503 5.0.0 Need "
     "RCPT (recipient)", None, None, None, ("5.1.1", "userunknown", True, "failed",
                                           "specific status")),
    ("Postfix: retries ran out (Action failed, Status 4.4.1)", "4.4.1",
     "connect to example.com[192.0.2.1]:25: Connection timed out", "failed", None, None,
     ("4.4.1", "expired", False, "failed", "words + expiry")),
    ("qmail: in the queue too long", None, "Sorry, I wasn't able to establish an SMTP "
     "connection. (#4.4.1) I'm not going to try again; this message has been in the queue "
     "too long.", None, None, None, ("4.4.1", "expired", False, "failed", "words")),
    ("IMail: N attempts", None, "Delivery failed 20 attempts", None, None, None,
     ("5.4.7", "expired", False, "failed", "nothing said + expiry")),
    ("Gmail: a final failure to connect, no status", None, "The recipient server did not "
     "accept our requests to connect. [(0) example.com. [192.0.2.1]:25: socket error]",
     None, None, None, ("5.4.7", "expired", False, "failed", "words + expiry")),
    ("Zoho: a host not reachable at the end of the retries", None, "421, ERROR_CODE :, Host "
     "not reachable.", None, None, None, ("4.4.7", "expired", False, "failed",
                                          "words + expiry")),
    ("Amazon SES: the remote's code behind the 4.4.7 summary", "4.4.7", "554 4.4.7 Message "
     "expired: unable to deliver in 840 minutes.<421 4.4.2 Connection timed out>", "failed",
     None, None, ("4.4.2", "expired", False, "failed", "specific status + expiry")),
    ("Action: expired (RFC 3464 §2.3.3 extension used by SendGrid)", None,
     "Connection timed out", "expired", None, None,
     ("5.4.7", "expired", False, "expired", "words + expiry")),
    ("A routing failure that stayed temporary to the end is no dead domain", "4.4.4",
     "4.4.4 Temporary server error. Please try again later ATTR5. This condition occurred "
     "after 30 attempt(s) to deliver over a period of 92 hour(s)", "failed", None, None,
     ("4.4.4", "expired", False, "failed", "specific status + expiry")),
    ("A full mailbox stays a full mailbox when the retries run out", "4.2.2",
     "452 4.2.2 Mailbox full", "failed", None, None,
     ("4.2.2", "mailboxfull", False, "failed", "strong words")),
    ("OpenSMTPD: a 'delay' notice saying the envelope expired is final", "4.4.7",
     "Envelope expired", "delayed", None, None,
     ("4.4.7", "expired", False, "failed", "specific status")),
    ("A delay stays a delay, with its cause", "4.4.1", "connect to mx[192.0.2.1]:25: "
     "Connection timed out", "delayed", None, None,
     ("4.4.1", "networkerror", None, "delayed", "words")),
    ("Sendmail's delay warning names no cause, only the time (its 421 4.5.0 is its own)",
     "4.5.0", "Deferred: 421 Warning: message still undelivered after 4 hours Will keep "
     "trying until message is 8 hours old", "delayed", None, None,
     ("4.5.0", "expired", None, "delayed", "words")),
    ("A 5xx refusal behind a reset connection is no expiry (old Sendmail transcript)", None,
     "Remote protocol error: Connection reset by peer during result wait with example.edu "
     "(>>> DATA <<< 550 Your E-Mail is redundant.)", "failed", None, None,
     ("5.4.0", "networkerror", False, "failed", "words")),
]


@pytest.mark.parametrize("why, status, diag, action, reply, phase, want", ADJUSTED,
                         ids=[r[0] for r in ADJUSTED])
def test_adjustments(why, status, diag, action, reply, phase, want):
    v = decide(status, diag, action, reply, phase)
    assert (v.status, v.reason, v.hard, v.action, v.rule) == want


def test_reply_and_phase_are_reported():
    v = decide(None, "<a@b.example> 550 <a@b.example>: Recipient address rejected: User "
               "unknown in local recipient table")
    assert (v.reply_code, v.phase, v.reason, v.hard) == ("550", "rcpt", "userunknown", True)
    v = decide(None, "host mx.example.net[192.0.2.1] said: 550 5.1.1 <a@b>: user unknown "
               "(in reply to RCPT TO command)")
    assert (v.reply_code, v.phase) == ("550", "rcpt")
    v = decide(None, "Server mx.example.org[192.0.2.2] failed with: 550 <a@b> No such user")
    assert v.reply_code == "550"
    # A number in prose is no reply code, nor is a program's exit status.
    assert decide(None, "unable to deliver in 840 minutes").reply_code is None
    assert decide("5.0.0", "X-Unix; 255").reply_code is None


@pytest.mark.parametrize("phase", ["connect", "helo", "mail"])
def test_a_sender_phase_is_never_hard(phase):
    for text in ("550 5.1.1 User unknown", "550 5.1.2 Domain not found",
                 "551 5.1.6 User has moved", "550 5.1.10 null MX"):
        v = decide(None, text, "failed", None, phase)
        assert v.hard is False and c.SIDE[v.reason] != c.RECIPIENT, (text, v)


def test_a_temporary_failure_is_never_hard():
    v = decide("4.1.1", "450 4.1.1 <a@b>: Recipient address rejected: User unknown in "
               "local recipient table", "failed")
    assert (v.reason, v.hard) == ("userunknown", False)
    assert decide(None, "450 user unknown", "failed").hard is False


@pytest.mark.parametrize("reason", ["blocked", "spamdetected", "badreputation", "requireptr",
                                    "authfailure", "ratelimited", "policyviolation"])
def test_sender_side_blocks_are_soft_even_when_permanent(reason):
    text = {
        "blocked": "550 5.7.1 blocked using bl.spamcop.net",
        "spamdetected": "550 5.7.1 message looks like spam",
        "badreputation": "550 5.7.1 poor sender reputation",
        "requireptr": "550 5.7.25 reverse DNS lookup failed",
        "authfailure": "550 5.7.23 SPF check failed",
        "ratelimited": "550 5.7.0 rate limit exceeded",
        "policyviolation": "550 5.7.0 rejected by local policy",
    }[reason]
    _, got, hard = classify(None, text, "failed")
    assert (got, hard) == (reason, False)
    assert reason in SENDER_SIDE


def test_the_reason_table():
    assert len(REASONS) == len(set(REASONS))
    assert HARD_REASONS == {"userunknown", "hostunknown", "hasmoved", "notaccept"}
    assert {"vacation", "feedback", "delivered", "undefined", "onhold"} <= set(REASONS)
    for _reason, side, hard, meaning, todo in c.REASON_TABLE:
        assert side in (c.RECIPIENT, c.DESTINATION, c.UNKNOWN, c.SENDER, c.MESSAGE, c.NONE)
        assert hard in ("permanent", "never") and meaning.endswith(".") and todo.endswith(".")
        # What is about the sender or the message says nothing about the mailbox.
        assert side in (c.RECIPIENT, c.DESTINATION, c.UNKNOWN) or not meaning.startswith(
            "The mailbox")
        # Only a reason about the recipient can make it dead at once.
        assert hard == "never" or side == c.RECIPIENT


def test_every_table_reason_is_in_the_vocabulary():
    used = set(c.STATUS_REASON.values()) | set(c.GENERIC_DEFAULT.values())
    used |= {r for _, _, r in c.VENDOR_CODES} | set(c.REPLY_REASON.values())
    used |= {r for r, _ in c.STRONG_WORDS + c.WORDS + c.WEAK_WORDS} | set(c.REASON_STATUS)
    assert used <= set(REASONS), used - set(REASONS)
    assert set(c.LEGACY_NAMES.values()) <= set(REASONS)


def test_sender_side_is_what_never_counts():
    assert set(SENDER_SIDE) >= {"blocked", "spamdetected", "emailtoolarge", "rejected",
                                "norelaying", "feedback", "delivered", "vacation"}
    assert not set(SENDER_SIDE) & {"userunknown", "hostunknown", "hasmoved", "notaccept",
                                   "mailboxfull", "suspend", "filtered", "expired",
                                   "networkerror", "undefined", "onhold"}
    assert {"toomanyconn", "speeding", "mesgtoobig", "exceedlimit"} <= set(SENDER_SIDE)


def test_rules_are_named_once_and_documented():
    names = [n for n, _, _ in c.DECIDE + c.ADJUST]
    assert len(names) == len(set(names))
    assert all(len(doc) > 20 for _, doc, _ in c.DECIDE + c.ADJUST)


def test_hostile_diagnostics_are_bounded():
    """A megabyte of the words and codes the rules look for is read only MAX_TEXT deep."""
    pieces = ["550-5.1.1 ", "<<< 550 ", ">>> RCPT TO ", "in reply to ", "user unknown ",
              "spamhaus ", "5.7.6", "ts0", "(state 1", "rp-00", "-" * 50, "5.", "55"]
    for p in pieces:
        text = p * (1_000_000 // len(p))
        t0 = time.perf_counter()
        decide("5.0.0", text, "failed")
        assert time.perf_counter() - t0 < 2.0, p


def test_every_phrase_of_the_wording_tables_can_decide():
    # First match wins, strong words before the others: a phrase containing an earlier
    # one never decides anything (the change that added "tls required" to STRONG_WORDS
    # left its twin in WORDS as dead as a note).
    seen = []
    for table in (c.STRONG_WORDS, c.WORDS):
        for reason, phrases in table:
            for p in phrases:
                if isinstance(p, str):
                    assert not [q for q in seen if q in p], (reason, p)
                    seen.append(p)
