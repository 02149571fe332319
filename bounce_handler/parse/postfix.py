"""Postfix notices without a usable DSN part: pre-2.3 Postfix and stripped copies.

Postfix 2.3+ bounces, delay warnings ("Delayed Mail (still being retried)") and postmaster
copies ("Postmaster Copy: Undelivered Mail", "Postmaster Warning: Delayed Mail") carry an
RFC 3464 part and are read by ``rfc3464``; this module reads the text when that part is
missing::

    This is the Postfix program at host mail.example.com.
    ...
            --- Delivery error report follows ---

    <user@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1
        <user@example.net>: Recipient address rejected: User unknown (in reply to
        RCPT TO command)

            --- Undelivered message follows ---

and the 2.3+ text ("This is the mail system at host mail.example.com." … "The mail
system" followed by the same "<address>: reason" paragraphs).
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, clean_address, usable_address
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.scan import find_angle
from bounce_handler.parse.textbounce import TextBounce

_EXPANDED = "(expanded from"


class Postfix(TextBounce):
    """Postfix's human-readable report: "<address>: reason" paragraphs."""

    name = "postfix"
    needles = ("this is the postfix program", "this is the mail system at host",
               "delivery error report follows", "the mail system\n")
    start = lazy(r"(?:--- delivery (?:error )?report follows ---|^[ \t]*the mail system\s*$|"
                       r"^[ \t]*the postfix program\s*$)[^\n]*\n", I | M)
    stop = lazy(r"^[ \t]*--- (?:undelivered message|enclosed are|delivery report)|"
                      r"^--[^\n]{6,}$", I | M)
    delayed = lazy(r"delayed mail|this is a warning only|still being retried", I)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """The paragraphs' addresses; "<a@b> (expanded from <list@x>):" keeps list@x beside.

        As for a DSN: the address that failed is reported, the alias or list the sender
        wrote is its ``original_address``.
        """
        out = []
        for r in TextBounce.recipients(self, msg, s, section, action):
            d = r.diagnostic or ""
            if d.startswith(_EXPANDED):
                o = find_angle(d[: len(_EXPANDED) + 260])
                o = clean_address(o) if o else None
                if usable_address(o):
                    r = r.replace(original_address=o)
            out.append(r)
        return out


DETECTOR = Postfix()
