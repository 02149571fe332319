"""KDDI au one net (ezweb.ne.jp / dion.ne.jp) mail-system notices.

Sent from ``no-reply@…dion.ne.jp`` with the plain subject "Mail", so neither the sender
nor the subject says "bounce"; the text does::

    Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900
         Could not be delivered to: <user@example.dion.ne.jp>
         As their mailbox is full.

The reason follows the address line ("As their mailbox is full.", "Due to the following
SMTP relay error").
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff
from bounce_handler.parse.lazyre import I, lazy
from bounce_handler.parse.textbounce import TextBounce


class KDDI(TextBounce):
    """au: "Could not be delivered to: <address>" and the reason lines after it."""

    name = "kddi"
    needles = ("your mail sent on:",)
    start = lazy(r"could not be delivered to:", I)
    inline = True
    from_line_start = True  # the start line names the address

    def match(self, s: Sniff) -> bool:
        """Both of its sentences."""
        return TextBounce.match(self, s) and "could not be delivered to:" in s.lower


DETECTOR = KDDI()
