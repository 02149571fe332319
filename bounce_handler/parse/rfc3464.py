r"""RFC 3464 delivery status notifications and RFC 6533 global (SMTPUTF8) DSNs.

Every modern MTA sends these (Postfix, Exim 4 with dsn, Sendmail 8, Exchange/Office 365,
Gmail, Yahoo, Amazon SES, OpenSMTPD, Courier …): a ``multipart/report;
report-type=delivery-status`` whose ``message/delivery-status`` (or
``message/global-delivery-status``) part reads::

    Reporting-MTA: dns; mail.example.com
    X-Postfix-Sender: rfc822; sender@example.com
    Arrival-Date: Tue, 24 Nov 2026 10:00:00 +0000 (UTC)

    Final-Recipient: rfc822; user@example.net
    Action: failed
    Status: 5.1.1
    Remote-MTA: dns; mx.example.net
    Diagnostic-Code: smtp; 550 5.1.1 <user@example.net>: Recipient address rejected

One group of per-message fields, then one group per recipient (groups are split on the
recipient fields too: some MTAs forget the blank line between them).  RFC 6533 addresses
are kept in UTF-8; its ``\x{HEX}`` escapes (utf-8-addr-xtext) and RFC 3461 ``+HH`` xtext
in Original-Recipient are undone.
"""

from __future__ import annotations

from bounce_handler.parse.base import (
    MAX_FIELD,
    Hit,
    Sniff,
    address_paragraphs,
    before_original,
    clean_address,
    failed_header,
    machine_made,
    one_line,
    rcpt,
    still_retrying,
    usable_address,
)
from bounce_handler.parse.lazyre import lazy
from bounce_handler.parse.mime import Part, parse_headers
from bounce_handler.parse.scan import (
    collapse_ws,
    find_phase,
    first_lines,
    last_command,
    split_blank,
)

_DS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = (
    "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers",
    "message/rfc822-headers",
)
_UTF8_XTEXT = lazy(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_XTEXT = lazy(r"\+([0-9A-F]{2})")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient")
# Fields that open a report's field blocks (the per-message one or a recipient's).
_FIELDS_START = ("reporting-mta", "original-envelope-id", "final-recipient", "original-recipient")
# Recipients completed from the notice text (each lookup is a scan of it), and the lines
# of one multi-line reply read (RFC 5321 sets no limit; real ones have a few).
_NOTICE_LOOKUPS = 50
_REPLY_LINES = 30
# Lines of a delivery-status part read: MAX_RECIPIENTS (1,000) groups of ~8 fields, a few
# folded, are ~10,000.  Its blocks are split line by line (split_blank); a report of
# folded blank lines (one field's "\n \n \n...", 1 MiB of it) was a quarter of a million
# separators, 10x a plain report's time.  The longest in the corpora has 68 lines.
MAX_REPORT_LINES = 20000


def _unescape(m) -> str:
    r"""One RFC 6533 \\x{HEX} escape; invalid code points and surrogates stay escaped."""
    cp = int(m.group(1), 16)
    if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        return m.group(0)
    return chr(cp)


def _addr(value: str | None, xtext: bool = False) -> str | None:
    if not value:
        return None
    # An address field is one address (RFC 5321 §4.5.3.1: 256 characters a path; a few
    # times that in RFC 6533 escapes): read in MAX_FIELD characters, as a header value
    # (64 KB of "<>" in Final-Recipient made find_angle walk 32,000 "<": 6x a plain report).
    kind, sep, rest = value[:MAX_FIELD].partition(";")
    if not sep:
        rest = kind
    if "\\x{" in rest:
        rest = _UTF8_XTEXT.sub(_unescape, rest)
    if xtext and "+" in rest:
        rest = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), rest)
    return clean_address(rest)


def _typed(value: str | None) -> str | None:
    """Return the value of a "type; value" field (Remote-MTA: dns; host → host)."""
    if not value:
        return None
    _, sep, rest = value.partition(";")
    return (rest if sep else value).strip() or None


def groups(text: str) -> tuple:
    """(per-message fields, [per-recipient fields]) as dicts of lower-cased names.

    Groups are the blank-line separated blocks of RFC 3464 §2.1; a block holding a second
    Final-Recipient (some MTAs omit the blank line) is split there too.
    """
    per_message = {}
    rcpts = []
    for block in split_blank(first_lines(text, MAX_REPORT_LINES).strip("\n")):
        if not block.strip():
            continue  # a run of blank lines: no fields (and 250,000 of them cost 1.3 s)
        fields = parse_headers(block.encode("utf-8", "surrogateescape"))
        if not fields:
            continue
        if not any(n in _RECIPIENT_FIELDS for n, _ in fields):
            if not rcpts:
                for n, v in fields:
                    per_message.setdefault(n, v)
            else:
                for n, v in fields:
                    rcpts[-1].setdefault(n, v)  # a stray blank line inside a group
            continue
        cur = None
        for name, value in fields:
            if cur is None or (name in _RECIPIENT_FIELDS and name in cur):
                cur = {}
                rcpts.append(cur)
            cur.setdefault(name, value)
    return per_message, rcpts


def _find(msg: Part, into_messages: bool) -> tuple:
    """Find the first delivery-status part and the returned message after it."""
    ds = None
    for p in msg.walk(into_messages):
        if ds is None:
            if p.ctype in _DS_TYPES:
                ds = p
        elif p.ctype in _ORIGINAL_TYPES:
            return ds, (p.parts[0] if p.parts else None)
    return ds, None


def _with_notice_text(recipients: list, s: Sniff, raw: bool = False) -> list:
    """Borrow the human-readable notice's words for recipients the report gives none.

    ("Your message was not delivered to userx@example.be / This mail message has exceeded
    the maximum incoming message size.": the words are only in the text part.)  When the
    report's fields are themselves in that text (``raw``), only the words before them.
    """
    notice = before_original(s.text)
    if raw:
        low = "\n" + notice.lower()
        cut = [i for i in (low.find("\n" + f + ":") for f in _FIELDS_START) if i >= 0]
        notice = notice[: min(cut)] if cut else notice
    said = {a.lower(): d for a, d in address_paragraphs(notice, s.own, True, s.echo)}
    out = []
    for r in recipients:
        if r.diagnostic is None:
            words = said.get(r.address.lower())
            if not words:
                # The address alone on its line, the reason after it.
                i = notice.lower().find(r.address.lower())
                words = notice[i + len(r.address) : i + len(r.address) + 300] if i >= 0 else ""
            words = one_line(words.strip(" >:\n"))
            if words:
                r = r.replace(diagnostic=words)
        out.append(r)
    return out


def _raw_fields(lower: str) -> bool:
    """Whether the notice text itself holds DSN recipient fields (the MIME was broken)."""
    for name in ("final-recipient:", "original-recipient:"):
        if lower.startswith(name) or ("\n" + name) in lower:
            return True
    return False


def _raw_groups(s: Sniff) -> tuple:
    """DSN field blocks written into the notice's text, up to the returned message.

    For reports whose MIME is broken — a boundary that never occurs or is indented
    (PMDF, old Sendmail "--AAA"), no Content-Type at all (Sendmail with a stripped
    header) — so the delivery-status part is only text.  Only blocks holding a recipient
    field and an Action or Status count, and only in what an MTA sent (``machine_made``):
    a person quoting a report's fields in a mail about it is not reporting a failure.
    """
    if not _raw_fields(s.lower) or not machine_made(s):
        return {}, []
    per_message, rcpts = groups(before_original(s.text))
    return per_message, [f for f in rcpts if "action" in f or "status" in f]


def _diagnostic(value: str | None) -> str | None:
    """Diagnostic-Code's text; the type is kept when it is not "smtp" (RFC 3464 §2.3.6).

    "X-Unix; 255" (Sendmail's prog mailer exit code) says a local program failed, which
    the bare "255" does not; "smtp;" adds nothing to a reply.
    """
    if not value:
        return None
    kind, sep, rest = value.partition(";")
    if not sep:
        return value.strip() or None
    if kind.strip().lower() in ("smtp", "x-smtp", "x-postfix", "x-local") or not rest.strip():
        return rest.strip() or None
    return f"{kind.strip()}; {rest.strip()}"


def _from_notice(recipients: list, s: Sniff) -> list:
    """Complete each recipient's reply and SMTP phase from the notice's human-readable part.

    Postfix's Diagnostic-Code is the bare reply; its text part adds "(in reply to RCPT TO
    command)".  Courier's text has ">>> DATA" / "<<< 550 Unknown user" beside
    "Diagnostic-Code: smtp; 550 Unknown user".  Sendmail copies only the first line of a
    multi-line reply into Diagnostic-Code ("552-5.7.0 This message was blocked because its
    content presents a potential"); its transcript has the rest.  Only the first
    _NOTICE_LOOKUPS recipients, bounded windows, and no re (a standard DSN never loads it).
    """
    text = s.text
    low = s.lower
    out = []
    looked = 0
    for r in recipients:
        diag = r.diagnostic or ""
        if looked >= _NOTICE_LOOKUPS or (r.phase is not None and not _continued(diag)):
            out.append(r)
            continue
        looked += 1
        at = -1
        if _continued(diag):
            at, diag = _whole_reply(text, diag)
        said = r.phase or find_phase(collapse_ws(diag).lower())
        if said is None and at >= 0:
            # A transcript: the command sent last before the reply is the one it answered.
            said = last_command(low[max(0, at - 400) : at])
        if said is None:
            i = low.find(r.address.lower())
            if i >= 0:
                end = low.find("\n\n", i, i + 1000)
                said = find_phase(collapse_ws(low[i : end if end >= 0 else i + 1000]))
        if said or diag != (r.diagnostic or ""):
            r = r.replace(phase=said, diagnostic=one_line(diag) if diag else r.diagnostic)
        out.append(r)
    return out


def _continued(diag: str) -> bool:
    """Whether a diagnostic is the first line of a multi-line reply ("552-5.7.0 ...")."""
    return len(diag) > 4 and diag[3] == "-" and diag[:3].isdigit() and diag[0] in "45"


def _whole_reply(text: str, first: str) -> tuple:
    """(where the reply starts in text, the reply with its continuation lines) or (-1, first).

    Looks for the first line as a transcript prints it ("<<< 552-5.7.0 ...") and takes the
    lines after it while they carry the same code ("552-" continues, "552 " ends).
    """
    head = first[:60]
    at = text.find("<<< " + head)
    if at < 0:
        return -1, first
    code = first[:3]
    lines = []
    for line in text[at : at + 4000].split("\n")[:_REPLY_LINES]:
        line = line.strip()
        if line.startswith("<<< "):
            line = line[4:].lstrip()
        if not (line.startswith(code + "-") or line.startswith(code + " ")):
            break
        lines.append(line)
        if line[3] == " ":
            break
    return at, (" ".join(lines) if lines else first)


class RFC3464:
    """Standard DSNs: the per-recipient groups of the delivery-status part."""

    name = "rfc3464"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Any message carrying a delivery-status part (usually multipart/report).

        Or DSN fields in its text: a report whose MIME structure is broken.
        """
        return (s.ctype.startswith("multipart/") or s.ctype in _DS_TYPES
                or _raw_fields(s.lower))

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Recipients of the first delivery-status part, None when there is none."""
        ds, original = _find(msg, False)
        if ds is None:
            # A forwarded bounce: the report sits inside an attached message.
            ds, original = _find(msg, True)
        if ds is not None:
            per_message, rcpt_fields = groups(ds.text())
        else:
            per_message, rcpt_fields = _raw_groups(s)
            original = None
        recipients = []
        seen = set()
        spare = None  # X-Failed-Recipients, for a group naming no usable address
        for f in rcpt_fields:
            # Final-Recipient is who the reporting MTA failed to deliver to; the
            # Original-Recipient (ORCPT, RFC 3461) the address the sender wrote, kept
            # beside it.  They differ after an alias or a list expanded: the list address
            # is alive, the member it expanded to is what failed.  A Final-Recipient
            # at a bare host name is the MTA's internal routing, not an address anyone
            # writes to (Sun Messaging Server's "user@sims-ms-daemon", "user@mailhub0"):
            # the Original-Recipient is then the address.
            final = _addr(f.get("final-recipient"))
            orig = _addr(f.get("original-recipient"), xtext=True)
            if not usable_address(orig):
                orig = None
            address = final if usable_address(final) else orig
            if orig and address == final and "." not in final.rsplit("@", 1)[1]:
                address = orig
            if not address:
                # "Final-Recipient: rfc822;|/usr/bin/procmail" (Exim pipe) or a bare
                # local part: the address the sender used is in X-Failed-Recipients.
                if spare is None:
                    spare = failed_header(s)
                address = next((a for a in spare if a.lower() not in
                                {k for k, _ in seen}), None)
                if not address:
                    continue
            status = f.get("status")
            action = (f.get("action") or "").strip().lower().split(" ", 1)[0]
            if not action:
                action = {"2": "delivered", "4": "delayed"}.get((status or "5")[:1], "failed")
            key = (address.lower(), action)
            if key in seen:
                continue
            seen.add(key)
            diag = _diagnostic(f.get("diagnostic-code"))
            if not diag and status and "(" in status:
                diag = status  # "Status: 5.0.0 (recipient reached disk quota)" (iPlanet)
            r = rcpt(
                address,
                diagnostic=diag,
                status=(status or "").split(" ", 1)[0].strip() or None,
                action=action,
                remote_mta=_typed(f.get("remote-mta")),
            )
            if orig:
                r = r.replace(original_address=orig)
            if final and final != address:
                r = r.replace(final_address=final)
            recipients.append(r)
        if not recipients:
            return None
        if any(r.diagnostic is None for r in recipients):
            recipients = _with_notice_text(recipients, s, raw=ds is None)
        # "Action: delayed" for an envelope whose retries ran out (OpenSMTPD, "Status:
        # 4.4.7" / "Envelope expired"): the words decide, it is final.
        recipients = [r.replace(action="failed") if r.action == "delayed"
                      and not still_retrying(True, "", r.diagnostic or "") else r
                      for r in recipients]
        recipients = _from_notice(recipients, s)
        return Hit(
            recipients,
            reporting_mta=_typed(per_message.get("reporting-mta")),
            arrival_date=one_line(per_message.get("arrival-date")),
            sender=_addr(per_message.get("x-postfix-sender")),
            original=original,
            # Postfix names the original's queue file: what its DSN to the sender and its
            # postmaster copy (notify_classes) share, the failure identity (trust.py).
            queue_id=one_line(per_message.get("x-postfix-queue-id"), 64),
        )


DETECTOR = RFC3464()
