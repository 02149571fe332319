"""What detectors share: the sniffed view of a message, the ``Hit`` they return, text helpers.

A detector gets the parsed message and one ``Sniff`` computed once per message (a few
lower-cased headers and the human-readable text), decides cheaply in ``match`` whether
the message can be its format, and returns a ``Hit`` from ``scan`` (or None: "not mine").
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, LazyPattern, M, lazy
from bounce_handler.parse.mime import Part, decode_words
from bounce_handler.parse.model import Recipient
from bounce_handler.parse.scan import (
    Address,
    collapse_ws,
    find_angle,
    find_reply,
    find_status,
    first_lines,
    odd_dots,
    replace_tags,
    strip_blocks,
)

# An address as bounces print it: local@domain, UTF-8 allowed on both sides (RFC 6531).
# The regex it stands for is in scan.Address; as a regex it scanned 200 characters ahead
# from every position of a run of letters (a 10 MiB To: header took minutes).
ADDRESS = Address()
# <local@domain>, RFC 3463 status codes, reply codes and blank runs are read by
# parse.scan's hand-written scanners: a standard DSN then never imports re.

# Where the human-readable part of a bounce stops and the returned message starts.
# The leading run of decoration is possessive (Python 3.11 "*+"): with a plain "*" a long
# line of dashes backtracked quadratically against the alternatives below.
# Sendmail's "----- Transcript of session follows -----" is not one: it *starts* the
# error lines ("554 <a@b>... Host unknown"), the copy comes after "Unsent message follows".
# "--- Unterhalb dieser Zeile ist eine Kopie der Nachricht." is qmail-send's separator in
# its German translation.
# The last alternatives are the first header of a copy pasted inline without a marker
# ("Received: from ..." at the start of a line, EZweb, X6, Zoho): a notice's own text
# never starts a line with them.
ORIGINAL_MARKER = lazy(
    r"^[ \t|*=-]*+(?:"
    r"original message follows|below this line is a copy of the message|"
    r"this is a copy of (?:the|your) message|the original message (?:headers? )?(?:is|was|are) "
    r"(?:included|attached)|unsent message|"
    r"undelivered message follows|"
    r"(?:original|returned|undelivered) message|returned mail|below this line|"
    r"original message header|original message details|start of returned message|"
    r"message text follows|message headers follow|the first \d+ lines of your|"
    r"old message:|original message as received|the header of the original message|"
    r"the header and top \d+ lines|ursprüngliche nachricht|unterhalb dieser zeile|"
    r"message original|"
    r"mensaje original|messaggio originale|mensagem original|oorspronkelijk bericht|"
    r"исходное сообщение|原始邮件|元のメッセージ|"
    r"a copy of the original message|copy of (?:the|your) message|"
    r"headers of the original message|the headers of your message|"
    r"original mail info|bounced e-?mail:|content-type: message/(?:rfc822|global)\b"
    r")|^(?:received:[ \t]+(?:from|by)[ \t]|return-path:[ \t]*<)",
    I | M,
)


# Subjects of delivery-failure notices (English and the common translations).
FAILURE_SUBJECT = lazy(
    r"undeliver|undelivered|returned mail|returned to sender|delivery (?:status|fail|"
    r"failure|problem|notification|report)|failure notice|mail delivery|could not be "
    r"delivered|non-?deliver|nondeliverable|delayed mail|warning: could not|message status|"
    r"mail system error|delivery has failed|not delivered|failed delivery|failure delivery|"
    r"permanent (?:delivery )?(?:error|failure)|unzustellbar|nicht zustellbar|"
    r"non recapitabile|non remis|no entregado|no se pudo entregar|"
    r"niet afgeleverd|mail returned|delivery failed|bounce|delayed \d+ hours|"
    r"message .* delayed|error sending message|unable to deliver|undeliverable",
    I,
)


# Words saying the retries ran out: the notice is final even when it calls itself a
# delay (OpenSMTPD: "Delivery status notification: delayed" / "A message is delayed for
# more than 0 seconds ..." / "user@example.net: Envelope expired").  Delay warnings
# never use them: Postfix "This is a warning only", Sendmail "Will keep trying until
# message is 5 days old", Exim "Eventually the mail delivery software will give up".
# Plain substrings (and one "for N days" test), not a pattern: a standard DSN's
# "Action: delayed" is checked too, and that path does not import re.
RETRIES_OVER = (
    "envelope expired", "retry timeout exceeded",
    "retry time not reached for any host after a long failure period", "giving up",
    "gave up", "retries exhausted", "message expired", "delivery time expired",
    "has expired", "will be deleted from queue", "will be deleted from the queue",
    "too long in the queue", "too long on the queue", "in the queue too long",
    "on the queue too long",
)
_FOR_N = "could not be delivered for "


def retries_over(text: str) -> bool:
    """Whether the words say the retries ran out.

    ``RETRIES_OVER``, or "could not be delivered for N days/hours" (Sendmail's return).
    """
    low = text.lower()
    for w in RETRIES_OVER:
        if w in low:
            return True
    i = low.find(_FOR_N)
    while i >= 0:
        j = i + len(_FOR_N)
        k = j
        while k < len(low) and k - j < 4 and low[k].isdigit():
            k += 1
        if k > j and low.startswith((" day", " hour"), k):
            return True
        i = low.find(_FOR_N, j)
    return False


def still_retrying(delay: LazyPattern | bool | None, subject: str, opening: str) -> bool:
    """Delay or final, from a notice's words: the one place that decides it.

    ``delay`` is the format's own "still retrying" wording, searched in the subject and
    the opening of the notice (or one recipient's diagnostic), or True when a structured
    field already says so (a DSN's "Action: delayed"); words saying the retries ran out
    (``retries_over``) override it.  A notice with neither is final.
    """
    if delay is None or delay is False:
        return False
    if delay is not True and not (delay.search(subject) or delay.search(opening)):
        return False
    return not (retries_over(subject) or retries_over(opening))


# A text notice reporting success, not failure (RFC 3461 NOTIFY=SUCCESS answered
# without a DSN part, or its text read before it): Postfix "Successful Mail Delivery
# Report" / "Your message was successfully delivered to the destination(s)"; Exchange
# and Office 365 "Delivered: ..." / "Your message has been delivered to the following
# recipients:" and "Relayed: ..." / "Delivery to these recipients or groups is complete,
# but no delivery notification was sent by the destination server"; the IIS SMTP
# service's "Delivery Status Notification (Success)" / "(Relay)".  Sendmail's return
# receipt ("had successful delivery notifications") lists no errors at all.
_DELIVERED_SUBJECTS = ("delivered:", "successful mail delivery report",
                       "delivery status notification (success)", "return receipt")
_RELAYED_SUBJECTS = ("relayed:", "delivery status notification (relay)")
_DELIVERED_WORDS = ("successfully delivered to", "has been delivered to the following",
                    "had successful delivery notifications")
_RELAYED_WORDS = ("successfully relayed to", "is complete, but no delivery notification",
                  "is complete, but delivery notification was not sent")
# ... unless the opening also says something failed.
_FAILED_WORDS = ("could not be delivered", "couldn't be delivered", "failed",
                 "undeliverable", "not delivered", "not be delivered", "unable to deliver")


def success_action(subject: str, opening: str) -> str | None:
    """Return "delivered" or "relayed" when a text notice reports success, else None.

    ``subject`` and ``opening`` lower-cased.  The one place a text notice is read as a
    success report: its recipients are then never failures.
    """
    for w in _FAILED_WORDS:
        if w in opening:
            return None
    if subject.startswith(_RELAYED_SUBJECTS) or any(w in opening for w in _RELAYED_WORDS):
        return "relayed"
    if subject.startswith(_DELIVERED_SUBJECTS) or any(w in opening for w in _DELIVERED_WORDS):
        return "delivered"
    return None


_HUMAN = ("re:", "fw:", "fwd:", "aw:", "wg:", "tr:", "rv:", "sv:")


def machine_made(s: Sniff) -> bool:
    """Tell whether a mail system, not a person, wrote the message.

    A mailer-daemon/postmaster sender, a report, or Auto-Submitted (RFC 3834).  Stricter
    than ``notice_like``: a person's "Why did this bounce?" quoting a report is not one.
    """
    return (s.from_daemon or s.ctype == "multipart/report"
            or s.auto.startswith(("auto-generated", "auto-replied", "auto-notified")))


def notice_like(s: Sniff) -> bool:
    """Tell whether a message may be a delivery notice (for the heuristics and fallback).

    A system sender or a report always may; otherwise a failure subject that is not a
    person's reply or forward ("Re: Undelivered Mail ..." is a conversation about one).
    """
    if s.from_daemon or s.ctype == "multipart/report":
        return True
    subject = s.subject.lstrip()
    return not subject.startswith(_HUMAN) and bool(FAILURE_SUBJECT.search(subject))


class Hit:
    """What a detector found: recipients and the per-message facts it could read.

    kind           force a kind ("complaint", "autoreply"); None: derived from actions
    recipients     list of Recipient (reason/hard/detector are filled by parse)
    reporting_mta  Reporting-MTA, or the host the text names
    arrival_date   Arrival-Date as written
    sender         the original envelope sender, when the notice names it
    original       the Part holding the returned message or its headers, if known
    queue_id       the reporting Postfix's queue ID of the original (X-Postfix-Queue-ID)
    """

    __slots__ = (
        "kind", "recipients", "reporting_mta", "arrival_date", "sender", "original", "queue_id",
    )

    def __init__(
        self,
        recipients: list,
        kind: str | None = None,
        reporting_mta: str | None = None,
        arrival_date: str | None = None,
        sender: str | None = None,
        original: Part | None = None,
        queue_id: str | None = None,
    ) -> None:
        self.recipients = recipients
        self.kind = kind
        self.reporting_mta = reporting_mta
        self.arrival_date = arrival_date
        self.sender = sender
        self.original = original
        self.queue_id = queue_id


MAX_TEXT = 65536  # notice text read by detectors; a longer one is a returned message inline
# ... and its lines: detectors read it line by line (address_paragraphs, the stop markers'
# "^" searches), so a notice of MAX_TEXT line breaks cost 10-16x the same size of prose
# (~900 lines).  The longest notice text in the development corpora has ~310 lines (AOL's
# HTML notice reduced to text); past 2,000 lines it is a returned message or a flood.
MAX_TEXT_LINES = 2000
# A header value read by detectors: RFC 5322 §2.1.1 lines are at most 998 characters, and a
# Subject of RFC 2047 words (a CJK subject) unfolds to a few times that.
MAX_FIELD = 4096
_DAEMON_WORDS = (
    "mailer-daemon", "mailer_daemon", "postmaster", "mail delivery", "mailerdaemon",
    "mail administrator", "mdaemon", "mail system", "nobody@", "root@", "daemon@",
    "bounce", "notification", "mail-daemon", "mailadmin", "system administrator", "delivery",
)
# The notice's author: never the failed recipient.  Not To:/Cc:/Reply-To: — a sender who
# wrote to themselves (or a list that lists itself) is bounced at the notice's own To:.
_OWN_HEADERS = frozenset(("from", "sender", "return-path", "errors-to"))


class Sniff:
    """The few things dispatch looks at, computed once per message.

    from_       From: header, lower-cased
    subject     Subject: decoded and lower-cased
    ctype       top-level content type; ``report_type`` its report-type parameter
    mailer      X-Mailer, lower-cased
    auto        Auto-Submitted, lower-cased ("" when absent)
    failed      X-Failed-Recipients (Exim), raw
    text        the human-readable notice (first text/plain parts outside any attached
                message), decoded, at most MAX_TEXT characters and MAX_TEXT_LINES lines;
                ``lower`` is its lower-cased copy
    """

    __slots__ = (
        "msg", "from_", "subject", "ctype", "report_type", "mailer", "auto", "failed",
        "text", "lower", "_daemon", "raw", "_own", "_echo",
    )

    def __init__(self, msg: Part, raw: bytes | None = None) -> None:
        self.msg = msg
        self.raw = raw
        # Header values cut at MAX_FIELD before any pattern (FAILURE_SUBJECT's
        # "message .* delayed" is quadratic in the length of the line it searches).
        self.from_ = (msg.get("from") or "")[:MAX_FIELD].lower()
        self.subject = decode_words((msg.get("subject") or "")[:MAX_FIELD]).lower()
        self.ctype = msg.ctype
        self.report_type = (msg.params.get("report-type") or "").lower()
        self.mailer = (msg.get("x-mailer") or "")[:MAX_FIELD].lower()
        self.auto = (msg.get("auto-submitted") or "")[:MAX_FIELD].lower()
        self.failed = msg.get("x-failed-recipients") or ""
        text = first_lines(notice_text(msg)[:MAX_TEXT], MAX_TEXT_LINES)
        if not text.endswith("\n"):
            # Always a line end after the last line: detectors' "WORDS[^\n]*\n" patterns
            # then match at the first WORDS, where on a last line without one they failed
            # and rescanned to the end from each repetition (quadratic: 10 s for 64 KB
            # of "address failed   ...", tests/hostile/test_adversarial.py).
            text += "\n"
        self.text = text
        self.lower = text.lower()
        self._daemon = None
        self._own = None
        self._echo = None

    @property
    def from_daemon(self) -> bool:
        """From: is a mailer-daemon/postmaster style system address."""
        if self._daemon is None:
            f = self.from_
            self._daemon = False
            for w in _DAEMON_WORDS:
                if w in f:
                    self._daemon = True
                    break
        return self._daemon

    @property
    def own(self) -> set:
        """Addresses of the notice's author (From, Sender…): never a failed recipient."""
        if self._own is None:
            own = set()
            # Not Delivered-To/X-Original-To: forwarders put the failed recipient there.
            for name, value in self.msg.headers:
                if name in _OWN_HEADERS and "@" in value:
                    for m in ADDRESS.finditer(value):
                        own.add(m.group(0).lower())
            self._own = own
        return self._own

    @property
    def echo(self) -> set:
        """The notice's own To:/Cc: addresses and the returned message's sender.

        Both are addresses a notice repeats in its explanations, not failed recipients
        (see ``address_paragraphs``): a postmaster copy (Postfix notify_classes, Exim
        errors_copy) is addressed to the postmaster, and its "<a@b>: host x said: 553
        5.7.1 / <sender@x>: Sender address rejected" names the sender of the returned
        message (Return-Path, From, Sender), not the notice's To:.
        """
        if self._echo is None:
            echo = set()
            for name, value in self.msg.headers:
                if name in ("to", "cc") and "@" in value:
                    for m in ADDRESS.finditer(value[:2000]):
                        echo.add(m.group(0).lower())
            # Imported here: textbounce imports this module.
            from bounce_handler.parse.textbounce import returned_original

            copy = returned_original(self.msg, self.text)
            if copy is not None:
                for name in ("return-path", "from", "sender"):
                    value = (copy.get(name) or "")[:2000]
                    if "@" in value:
                        for m in ADDRESS.finditer(value):
                            echo.add(m.group(0).lower())
            self._echo = echo
        return self._echo


def notice_text(msg: Part) -> str:
    """Text of the notice itself: text parts that are not inside an attached message."""
    if not msg.parts and msg.ctype.startswith("multipart/"):
        return msg.text()  # declared multipart but no boundary found: read it raw
    if not msg.ctype.startswith(("multipart/", "message/")):
        return msg.text()
    out = []
    stack = [msg]
    while stack:
        p = stack.pop(0)
        if p.ctype.startswith("multipart/"):
            if p.parts or p is msg:
                stack[:0] = p.parts
            else:
                out.append(p.text())  # a nested multipart whose boundary was lost
        elif p.ctype in ("text/plain", "text/html", "text/enriched") or p.ctype == "text":
            if out and (p.get("content-disposition") or "").lower().startswith("attachment"):
                # A text attachment after the notice is the returned message's headers
                # ("mailheaders-NNN.txt", X6), not more of the notice.
                continue
            t = p.text()
            if p.ctype == "text/html":
                t = html_to_text(t)
            out.append(t[:MAX_TEXT])  # Sniff keeps MAX_TEXT of the whole anyway
        if len(out) >= 3:
            break
    return "\n".join(out)


_ENTITY = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "&nbsp;": " ", "&quot;": '"', "&#39;": "'"}


_BREAKS = ("br", "p ", "p>", "di", "tr", "li")
# HTML read per part: markup is bulkier than the text it gives (MAX_TEXT of that is kept).
MAX_HTML = 16 * MAX_TEXT


def html_to_text(html: str) -> str:
    """Rough text of an HTML notice (Office 365, Gmail send HTML-only parts sometimes).

    Two linear scans (parse/scan.py: script/style blocks out, then tags to line breaks or
    nothing) over at most MAX_HTML characters: the regexes they replace were quadratic on
    unclosed tags (issue 14: repeated "<script>", 114 s at 600 KB).
    """
    text = replace_tags(strip_blocks(html[:MAX_HTML]), _BREAKS)
    for k, v in _ENTITY.items():
        text = text.replace(k, v)
    return text


def one_line(text: str | None, limit: int = 500) -> str | None:
    """Collapse whitespace; bound the length (diagnostics end up in a database row)."""
    if not text:
        return None
    text = collapse_ws(text)
    return text[:limit] or None


def clean_address(addr: str | None) -> str | None:
    """Strip the decoration bounces put around an address ("rfc822;", <>, quotes, dots).

    A quoted local part keeps its quotes (RFC 5321 §4.1.2: ``"a..b"@example.org`` is an
    address, and only quoted may it hold doubled dots).
    """
    if not addr:
        return None
    a = addr.strip()
    if ";" in a[:12]:
        a = a.split(";", 1)[1].strip()
    angle = find_angle(a)
    if angle:
        a = angle
    a = a.strip()
    if a.startswith('"'):
        q = a.find('"@', 1)
        if q > 1:
            domain = a[q + 2 :].strip().strip("<>\"'()[],:;").rstrip(".")
            return a[: q + 1] + "@" + domain if domain else None
    a = a.strip("<>\"'()[],:;").rstrip(".")
    if a.lower().startswith("mailto:"):
        a = a[7:]
    return a or None


_DAEMON_LOCALS = frozenset(("mailer-daemon", "mailer_daemon", "mailerdaemon"))


def usable_address(a: str | None) -> bool:
    """Tell whether a value can be a failed recipient's address at all.

    Not a pipe or file delivery ("|/usr/bin/procmail", "/var/mail/x": Exim, Postfix
    local(8)), nothing holding blanks, a local part and a domain around the "@" (not an
    RFC 821 source route "@relay:user@host", Sun Messaging Server), no
    mailer-daemon (the notice's author), no obfuscation ("david...@gmail.com": doubled
    or edge dots are only valid quoted), at most 320 characters (RFC 5321 §4.5.3.1).
    """
    if not a or len(a) > 320 or a[0] in "|/@":
        return False
    at = a.rfind("@")
    if at <= 0 or at == len(a) - 1 or a.split() != [a]:
        return False
    local = a[:at]
    if local.lower() in _DAEMON_LOCALS:
        return False
    if local[0] == '"' and local[-1] == '"' and len(local) > 2:
        return True
    # "@relay:user@host" (an RFC 821 source route) has no local part of its own.
    return "@" not in local and not odd_dots(a)


def failed_header(s: Sniff) -> list:
    """The usable addresses of X-Failed-Recipients (Exim, Google), in order."""
    out = []
    for item in s.failed[:4000].split(","):
        a = clean_address(item)
        if usable_address(a) and a not in out:
            out.append(a)
    return out


def find_address(text: str) -> str | None:
    """Return the first address in a piece of text (angle brackets preferred)."""
    angle = find_angle(text)
    if angle:  # always holds an "@"
        return clean_address(angle)
    m = ADDRESS.search(text)
    return clean_address(m.group(0)) if m else None


def before_original(text: str) -> str:
    """Return the notice up to the marker that introduces the returned message."""
    m = ORIGINAL_MARKER.search(text)
    return text[: m.start()] if m else text


def rcpt(
    address: str,
    diagnostic: str | None = None,
    status: str | None = None,
    action: str = "failed",
    remote_mta: str | None = None,
    reply_code: str | None = None,
) -> Recipient:
    """Make a Recipient as a detector reports it (classification comes later)."""
    return Recipient(
        address=address,
        action=action,
        status=status,
        diagnostic=one_line(diagnostic),
        remote_mta=remote_mta,
        reply_code=reply_code,
    )


def blocks_after(
    text: str, start: LazyPattern, stop: LazyPattern | None = None
) -> str | None:
    """Return the text between a start marker and a stop marker (or the returned message)."""
    m = start.search(text)
    if not m:
        return None
    rest = text[m.end() :]
    s = (stop or ORIGINAL_MARKER).search(rest)
    return rest[: s.start()] if s else rest


# Words that, right before an address in mid-sentence, say it is the failed recipient:
# "addressed to 'a@b'", "Local mailbox a@b is unavailable", "Quota violation for a@b".
_INLINE = lazy(
    r"(?:(?:addressed to|message to|mailbox|recipient|address|user|userid|for|to|an|"
    r"destinataire|empf[äa]nger|adresse)\s*:?|addressed,|:|smtp:)\s*['\"<\[(]?$",
    I,
)
# Words that, right before an address (or ending the line above it), say whom to ask,
# not who failed: "Please reply to Postmaster@vzwpix.com if you feel this message to be
# in error" (Verizon, EZweb: "Please reply to\n<postmaster@ezweb.ne.jp>"), "contact the
# postmaster at: postmaster@x", "send mail to postmaster@x" (Postfix's intro, reworded by
# site templates), "please email help@x", "report this to abuse@x".  A postmaster
# address can fail (kept when listed as one), but not when the notice offers it as the
# one to write to.  The verb and its "to"/"at" must both be there: "The remote server's
# reply: <a@b> 550 ..." names the failed one, and so does "There was an error
# delivering your mail to <a@b>" (DragonFly dma).
_CONTACT_BEFORE = lazy(
    r"(?:(?:reply |write |please send (?:\w+ ){0,3}|send (?:e-?mail|mail|questions) |"
    r"questions |inquiries |complaints |report (?:this|it|the problem) )to|"
    r"please e-?mail|contact(?: us| the \w+| your \w+)?(?: at)?)"
    r"\s*:?\s*['\"<(\[]?$",
    I,
)


def address_paragraphs(
    section: str, own: set | None = None, inline: bool = False, echo: set | None = None
) -> list:
    """[(address, diagnostic)] from a section listing failed addresses.

    Handles the shapes most non-DSN notices use: an address line ("<a@b>:", "a@b",
    "RCPT To:<a@b>", "  a@b  reason") followed by indented or plain explanation lines,
    up to the next address line or a blank-line-separated paragraph that names none.

    own   addresses never taken (the notice's author, ``Sniff.own``)
    echo  addresses not taken from a "To:"/"Cc:" line (``Sniff.echo``: the notice's own
          recipients, whose header block some notices repeat); named anywhere else they
          are taken — people do write to themselves
    """
    out = []
    seen = {}
    cur = None
    cur_indent = 0
    diag = []
    in_header = False
    copied = False  # in a paragraph that quotes a message's header fields
    aside = False  # in the paragraph of a contact sentence ("Please reply to x@y if ...")
    reply = ""  # the code of an unfinished multi-line reply ("550-...") in the diagnostic
    prev = ""  # the last non-blank line before this one
    for line in section.split("\n"):
        stripped = line.strip()
        above = prev
        if stripped:
            prev = stripped
        addr = None
        if in_header and line[:1] in (" ", "\t"):
            continue  # a folded "Received: ... for <a@b>;" line
        in_header = False
        if cur and stripped[:3] == ">>>":
            # A transcript's command under a failed address ("Recipient: <a@b>" /
            # ">>> MAIL FROM:<s@x>" / "<<< 550 SC-004 ..."): part of its explanation (it
            # names the SMTP phase), never a recipient, and the indented "<<<" reply
            # after it is no folded header line.
            diag.append(stripped)
            continue
        label = _header_label(stripped.lstrip("<> "))
        if not stripped:
            copied = False
        elif label in _COPY_LABELS:
            copied = True
        elif copied and label in ("to", "cc", "bcc"):
            # "Date: ... / From: s@x / To: a@b, c@d / Cc: e@f" pasted without a marker:
            # the returned message's own header block; its To: lists every recipient
            # the message had, not who failed.
            in_header = True
            continue
        if label and _names_no_recipient(label):
            # "Message-ID: <x@host>", "From: sender@x", "Received: ... for <a@b>",
            # ">>> MAIL FROM:<s@x>": a quoted header or command names the message, its
            # author or a hop, never who failed; "System Contact: postmaster@x" (HotPOP)
            # whom to ask.
            in_header = True
            continue
        indent = len(line) - len(line.lstrip())
        if cur and stripped and _in_reply(stripped, reply):
            # A line of a multi-line reply ("550-F=[sender@x] T=[a@b]"): the explanation
            # of the address before it, whatever it names.
            diag.append(stripped)
            reply = stripped[:3] if stripped[3:4] == "-" else ""
            continue
        reply = ""
        contact = False
        if aside:
            if not stripped:
                aside = False
            elif "@" not in stripped:
                continue
        if "@" in stripped:
            m = ADDRESS.search(stripped)
            if m and (m.start() < 12 or stripped.startswith(("<", "'", '"'))):
                if m.start() < 12 and _CONTACT_BEFORE.search(above[-40:]):
                    # "Please reply to" / "<postmaster@x>" / "if you feel ...": the
                    # contact offered on its own line.
                    aside = True
                    continue
                addr = clean_address(m.group(0))
            elif m and inline:
                # Only the words just before each address matter, and only the first
                # few addresses of a line: a hostile line of thousands stays linear.
                for n, m in enumerate(ADDRESS.finditer(stripped)):
                    if n >= 20:
                        break
                    before = stripped[max(0, m.start() - 40) : m.start()]
                    if _INLINE.search(before):
                        if _CONTACT_BEFORE.search(before):
                            contact = True
                            continue
                        addr = clean_address(m.group(0))
                        break
                if contact and not addr:
                    # The notice's "write to postmaster@x if ..." sentence (to the end of
                    # its paragraph): neither a failed address nor part of the
                    # explanation of the one above.
                    aside = True
                    continue
        if addr and echo is not None and addr.lower() in echo and (
            label in ("to", "cc") or (cur and indent > cur_indent)
        ):
            # The notice's own recipient (the bounced sender) in its echoed header
            # block, or in the explanation indented under a failed address (Exim:
            # "  a@b\n    550 5.2.0 <sender@x> From: domain is invalid").
            if cur and indent > cur_indent:
                diag.append(stripped)
            continue
        if addr and own is not None and addr.lower() in own:
            addr = None
        if addr:
            if cur:
                _merge(out, seen, cur, diag)
            cur = addr
            cur_indent = indent
            rest = stripped[m.end() :].lstrip(" >:\"'.;,-)]").rstrip()
            head = stripped[: m.start()].strip(" <:\"'[(*-")
            if len(head) > 12 and not rest and not head.lower().endswith(_ADDRESS_LABELS):
                # "User's mailbox is full: <a@b>", "Delivery failed 20 attempts: a@b":
                # the reason comes before the address.
                rest = head
            elif head and (find_status(head) or find_reply(head)):
                # "550 5.7.0 <a@b>: Recipient address rejected: ..." (DragonFly dma,
                # Sendmail's "<<< 550 5.1.1 <a@b>... User unknown"): the codes stand
                # before the address and belong to the reason.
                rest = (head + " " + rest) if rest else head
            diag = [rest] if rest else []
        elif cur and stripped.strip("-=*#_~+ "):
            diag.append(stripped)  # not a separator line ("-----", "#####")
        elif cur and diag and len(stripped) >= 10:
            # A rule under an explained address ends its explanation: Courier 1.0.16
            # follows the last reply with a rule and "If your message was also sent to
            # additional recipients ... follows as a separate attachment", which is
            # boilerplate, not the remote's words (its "attachment" read as a policy).
            _merge(out, seen, cur, diag)
            cur, diag = None, []
    if cur:
        _merge(out, seen, cur, diag)
    return out


# The end of a label naming the address on its line ("target mail address: a@b",
# "Undeliverable recipient: a@b"): words before such an address are no reason, so the
# lines above it are read for one ("reject reason: Mailbox full" / "target mail
# address: a@b").
_ADDRESS_LABELS = ("address", "addresses", "recipient", "recipients", "addressee")


def session_failures(dialogue: list) -> tuple:
    """(sender, [(address, reply)]) from an SMTP dialogue of ("in"|"out", line) pairs.

    A RCPT TO answered 4xx/5xx failed that recipient.  A 4xx/5xx answer to DATA (or to
    the end of the data, after "354") failed every recipient accepted in that transaction:
    the message, not the addresses, was refused, and nobody got it.  MAIL FROM and RSET
    start a new transaction.
    """
    sender = None
    out = []
    failed = set()
    accepted = []
    pending = None
    in_data = False
    for way, line in dialogue:
        up = line[:12].upper()
        if way == "in":
            pending = None
            if up.startswith("MAIL FROM:"):
                sender = clean_address(line[10:].split(" ", 1)[0]) or None
                accepted, in_data = [], False
            elif up.startswith("RCPT TO:"):
                pending = clean_address(line[8:].split(" ", 1)[0])
            elif up.startswith(("DATA", "BDAT")):
                in_data = True
            elif up.startswith("RSET"):
                accepted, in_data = [], False
            continue
        code = line[:1]
        if pending:
            if code in ("4", "5"):
                out.append((pending, line))
                failed.add(pending)
            elif code == "2":
                accepted.append(pending)
            pending = None
        elif in_data and code in ("4", "5"):
            for a in accepted:
                if a not in failed:
                    out.append((a, line))
                    failed.add(a)
            accepted, in_data = [], False
    return sender, out


# Header fields a notice quotes from the returned message (or an SMTP transcript's MAIL
# FROM) whose addresses are never the failed recipient.  Cc/Bcc: the copy's other
# recipients (a notice lists what failed on lines of its own, never as "Cc:").
_NOT_RECIPIENT_FIELDS = frozenset((
    "cc", "bcc", "message-id", "references", "in-reply-to", "received", "from", "sender",
    "reply-to",
    "return-path", "mail from", "envelope-from", "errors-to", "resent-from",
    "resent-message-id", "x-original-message-id", "list-id", "list-unsubscribe",
    "original-envelope-id", "envelope-id", "x-envelope-id",
))


# The same, as notices label them in prose or other languages: the sender ("Original
# sender:", "Envelope sender:", German "Absender:"/"Von:", French "Expéditeur :"/"De :",
# Spanish "Remitente:", Italian "Mittente:"/"Da:", Dutch "Afzender:"/"Van:", Polish
# "Nadawca:"/"Od:", Russian "Отправитель:"/"От:", Japanese "差出人:"/"送信者:", Chinese
# "发件人:"/"寄件者:") and the message ("Message ID:", "Original Message ID:").
_SENDER_LABELS = frozenset((
    "absender", "von", "expéditeur", "expediteur", "de", "remitente", "remetente",
    "mittente", "da", "afzender", "van", "nadawca", "od", "отправитель", "от", "差出人",
    "送信者", "送信元", "发件人", "寄件人", "寄件者",
))


# Fields that open or belong to a message's header block, not a notice's own lines.
_COPY_LABELS = frozenset((
    "date", "from", "subject", "message-id", "mime-version", "content-type", "return-path",
    "received", "sender", "reply-to", "x-mailer", "user-agent", "in-reply-to", "references",
))


def _names_no_recipient(label: str) -> bool:
    """Whether a "Label:" line names the message, its sender, a hop or a contact."""
    if label in _NOT_RECIPIENT_FIELDS or label in _SENDER_LABELS or "contact" in label:
        return True
    # Not every "... from:": "(expanded from: a@b)" (Sendmail) names the alias that failed.
    norm = label.replace(" ", "-").replace("_", "-")
    return norm in _NOT_RECIPIENT_FIELDS or norm.endswith(("message-id", "sender"))


def _in_reply(line: str, code: str) -> bool:
    """Whether a line continues an SMTP reply: "550-..." or the "550 ..." that ends one."""
    head = line[:4]
    if len(head) == 4 and head[:3].isdigit() and head[3] == "-":
        return True
    return bool(code) and head[:3] == code


def _header_label(line: str) -> str:
    """The lower-cased "Name" of a "Name: value" line ("" when it is not one)."""
    i = line.find(":", 0, 24)
    return line[:i].rstrip().lower() if i > 0 else ""


def _merge(out: list, seen: dict, addr: str, diag: list) -> None:
    """Add (addr, diagnostic); a second mention (Exchange's admin section) adds its text."""
    key = addr.lower()
    text = " ".join(diag)
    if key in seen:
        i = seen[key]
        if text and text not in out[i][1]:
            out[i] = (out[i][0], (out[i][1] + " " + text).strip())
        return
    seen[key] = len(out)
    out.append((addr, text))
