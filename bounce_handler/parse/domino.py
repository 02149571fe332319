"""IBM/HCL (Lotus) Domino non-delivery reports.

Matches::

    Your message

      Subject: Hello

    was not delivered to:

      user@example.net

    because:

      User user@example.net (user@example.net) not listed in Domino Directory
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, address_paragraphs, rcpt
from bounce_handler.parse.lazyre import I, M, S, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

_BECAUSE = lazy(r"^[ \t]*because:\s*\n(.+?)(?:\n\s*\n|$)", I | M | S)


class Domino(TextBounce):
    """Domino: addresses after "was not delivered to:", reason after "because:"."""

    name = "domino"
    needles = ("was not delivered to:", "domino directory", "lotus domino")
    start = lazy(r"was not delivered to:\s*\n", I)
    stop = lazy(r"^[ \t]*because:", I | M)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Addresses with the "because:" paragraph as diagnostic."""
        m = _BECAUSE.search(s.text)
        why = m.group(1) if m else None
        return [rcpt(a, d or why, action=action)
                for a, d in address_paragraphs(section, s.own, echo=s.echo)]


DETECTOR = Domino()
