"""RFC 8098 (ex-3798) disposition notifications: Sieve/Dovecot rejects vs read receipts.

Dovecot's LDA and Sieve ``reject`` answer with an MDN instead of a DSN::

    Your message to <user@example.net> was automatically rejected:
    Quota exceeded

    Reporting-UA: mail; Dovecot Mail Delivery Agent
    Final-Recipient: rfc822; user@example.net
    Disposition: automatic-action/MDN-sent-automatically; deleted

"deleted"/"denied"/"failed" dispositions are failures of the Final-Recipient; "displayed",
"dispatched" and "processed" are read receipts (kind delivery).
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, before_original, clean_address, rcpt
from bounce_handler.parse.lazyre import I, S, lazy
from bounce_handler.parse.mime import Part, parse_headers

_REJECTED = lazy(r"was automatically rejected:?\s*(.+)", I | S)


class MDN:
    """Disposition notifications with a failure disposition."""

    name = "mdn"
    kind = None

    def match(self, s: Sniff) -> bool:
        """report-type=disposition-notification."""
        return s.report_type == "disposition-notification"

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Report the Final-Recipient with the notice text as diagnostic."""
        part = next((p for p in msg.walk() if p.ctype == "message/disposition-notification"),
                    None)
        if part is None:
            return None
        fields = dict(reversed(parse_headers(part.body)))
        address = clean_address(fields.get("final-recipient") or fields.get("original-recipient"))
        if not address:
            return None
        disposition = (fields.get("disposition") or "").lower()
        failed = any(w in disposition for w in ("deleted", "denied", "failed", "error"))
        m = _REJECTED.search(before_original(s.text))
        diag = ("automatically rejected: " + m.group(1)) if m else disposition
        if not failed:
            return Hit([], kind="delivery")  # a read receipt: nobody failed
        return Hit([rcpt(address, diag)],
                   reporting_mta=(fields.get("reporting-ua") or "").split(";")[-1].strip() or None)


DETECTOR = MDN()
