"""RFC 6533 global DSNs: SMTPUTF8 delivery reports with UTF-8 addresses.

Postfix 3 (smtputf8_enable), Exim 4.86+ and Office 365 send them when the message or an
address needed SMTPUTF8: ``multipart/report; report-type=global-delivery-status`` with a
``message/global-delivery-status`` part whose recipient fields may be typed utf-8::

    Final-Recipient: utf-8; δοκιμή@παράδειγμα.δοκιμή
    Action: failed
    Status: 5.1.1

The fields are RFC 3464's, so the parsing is ``rfc3464``'s; this module only claims these
reports first so that the result names the right standard.
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff
from bounce_handler.parse.rfc3464 import RFC3464


class RFC6533(RFC3464):
    """Global DSNs; same groups as RFC 3464, addresses kept in UTF-8."""

    name = "rfc6533"

    def match(self, s: Sniff) -> bool:
        """Match reports that declare or carry a global delivery status."""
        if not s.ctype.startswith("multipart/"):
            return False
        return "global-delivery-status" in s.report_type or any(
            p.ctype == "message/global-delivery-status" for p in s.msg.parts
        )


DETECTOR = RFC6533()
