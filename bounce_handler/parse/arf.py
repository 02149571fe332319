"""RFC 5965 Abuse Reporting Format: feedback loops (complaints), never bounces.

Yahoo, AOL/Verizon, Outlook.com JMRP, Comcast, Fastmail and the rest of the feedback loops
send ``multipart/report; report-type=feedback-report`` with a ``message/feedback-report``
part such as::

    Feedback-Type: abuse
    User-Agent: Yahoo!-Mail-Feedback/2.0
    Version: 1
    Original-Mail-From: <bounces+token@relay.example>
    Original-Rcpt-To: <user@yahoo.com>

The complained-about recipient is Original-Rcpt-To, else the To: of the attached message.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, clean_address, find_address
from bounce_handler.parse.mime import Part, parse_headers
from bounce_handler.parse.model import Recipient

_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global",
                   "message/global-headers")


class ARF:
    """Feedback reports → kind complaint with the recipient who complained."""

    name = "arf"
    kind = "complaint"

    def match(self, s: Sniff) -> bool:
        """multipart/report with report-type=feedback-report (or such a part inside)."""
        return s.report_type == "feedback-report" or (
            s.ctype.startswith("multipart/")
            and any(p.ctype == "message/feedback-report" for p in s.msg.parts)
        )

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Read the feedback fields and the attached original."""
        report = None
        original = None
        for p in msg.walk():
            if report is None and p.ctype == "message/feedback-report":
                report = p
            elif original is None and p.ctype in _ORIGINAL_TYPES:
                original = p.parts[0] if p.parts else None
        if report is None:
            return None
        fields = {}
        for name, value in parse_headers(report.body):
            fields.setdefault(name, value)
        address = clean_address(fields.get("original-rcpt-to") or fields.get("removal-recipient"))
        if not address and original is not None:
            address = find_address(original.get("to") or "")
        recipients = []
        if address:
            ftype = (fields.get("feedback-type") or "abuse").strip().lower()
            recipients.append(
                Recipient(address=address, action=None, diagnostic=f"feedback-type: {ftype}")
            )
        return Hit(
            recipients,
            kind="complaint",
            reporting_mta=fields.get("reporting-mta"),
            arrival_date=fields.get("arrival-date") or fields.get("received-date"),
            sender=clean_address(fields.get("original-mail-from")),
            original=original,
        )


DETECTOR = ARF()
