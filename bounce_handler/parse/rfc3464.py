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
    Hit,
    Sniff,
    address_paragraphs,
    before_original,
    clean_address,
    one_line,
    rcpt,
)
from bounce_handler.parse.lazyre import lazy
from bounce_handler.parse.mime import Part, parse_headers
from bounce_handler.parse.scan import split_blank

_DS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = (
    "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers",
    "message/rfc822-headers",
)
_UTF8_XTEXT = lazy(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_XTEXT = lazy(r"\+([0-9A-F]{2})")
_RECIPIENT_FIELDS = ("final-recipient", "original-recipient")


def _unescape(m) -> str:
    r"""One RFC 6533 \\x{HEX} escape; invalid code points and surrogates stay escaped."""
    cp = int(m.group(1), 16)
    if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
        return m.group(0)
    return chr(cp)


def _addr(value: str | None, xtext: bool = False) -> str | None:
    if not value:
        return None
    kind, sep, rest = value.partition(";")
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
    for block in split_blank(text.strip("\n")):
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


def _with_notice_text(recipients: list, s: Sniff) -> list:
    """Borrow the human-readable notice's words for recipients the report gives none.

    ("Your message was not delivered to userx@example.be / This mail message has exceeded
    the maximum incoming message size.": the words are only in the text part.)
    """
    notice = before_original(s.text)
    said = {a.lower(): d for a, d in address_paragraphs(notice, s.own, True)}
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


class RFC3464:
    """Standard DSNs: the per-recipient groups of the delivery-status part."""

    name = "rfc3464"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Any message carrying a delivery-status part (usually multipart/report)."""
        return s.ctype.startswith("multipart/") or s.ctype in _DS_TYPES

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Recipients of the first delivery-status part, None when there is none."""
        ds, original = _find(msg, False)
        if ds is None:
            # A forwarded bounce: the report sits inside an attached message.
            ds, original = _find(msg, True)
            if ds is None:
                return None
        per_message, rcpt_fields = groups(ds.text())
        recipients = []
        seen = set()
        for f in rcpt_fields:
            # Original-Recipient is the address as the sender wrote it (ORCPT, RFC 3461);
            # Final-Recipient may be an internal rewrite ("userx@sims-ms-daemon",
            # PMDF's "HAASM@host"): the sender's address is the one flags must key on.
            final = _addr(f.get("final-recipient"))
            orig = _addr(f.get("original-recipient"), xtext=True)
            if orig and "@" not in orig:
                orig = None
            address = orig or final
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
            diag = _typed(f.get("diagnostic-code"))
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
            recipients = _with_notice_text(recipients, s)
        return Hit(
            recipients,
            reporting_mta=_typed(per_message.get("reporting-mta")),
            arrival_date=one_line(per_message.get("arrival-date")),
            sender=_addr(per_message.get("x-postfix-sender")),
            original=original,
        )


DETECTOR = RFC3464()
