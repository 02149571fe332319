"""Exim 3/4 bounce and delay messages (Debian's and cPanel's default MTA).

Matches::

    This message was created automatically by mail delivery software.

    A message that you sent could not be delivered to one or more of its
    recipients. This is a permanent error. The following address(es) failed:

      user@example.net
        SMTP error from remote mail server after RCPT TO:<user@example.net>:
        host mx.example.net [192.0.2.1]: 550 5.1.1 <user@example.net>: User unknown

    ------ This is a copy of the message, including all the headers. ------

and the warning "A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue" / "The address to which the message has
not yet been delivered is:".  Exim also sets ``X-Failed-Recipients``.
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

# Exim: "  an undisclosed address\n    (generated from user@example.com)" — the alias
# the sender used is the only address the notice gives.
_GENERATED = lazy(r"\(generated from\s+<?([^\s<>()]{1,200}@[^\s<>()]{1,255}?)>?\s*\)", I)


class Exim(TextBounce):
    """Exim notices: indented address lines after "address(es) failed:"."""

    name = "exim"
    needles = ("created automatically by mail delivery software", "address(es) failed",
               "has not yet been delivered to", "delivery software")
    start = lazy(
        r"(?:address(?:\(es\)|es)?\s+failed|has not yet been delivered\s+(?:is|are)|"
        r"not yet been delivered to the following\s+address(?:\(es\)|es)?|"
        r"failed to the following\s+address(?:es)?)\s*:?[^\n]*\n", I)
    stop = lazy(r"^-{2,}+ ?this is a copy|^-{2,}+ ?the (?:body|header)|"
                      r"^no action is required|^the message identifier is", I | M)
    silent = lazy(r"^this message was created automatically by mail delivery software", I | M)
    delayed = lazy(r"has not yet been delivered|delivery attempts will continue|"
                         r"^warning: message", I | M)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Address paragraphs; "an undisclosed address (generated from a@b)" gives a@b."""
        found = TextBounce.recipients(self, msg, s, section, action)
        if not found:
            found = [rcpt(a, section, action=action) for a in _GENERATED.findall(section)]
        return found

    def match(self, s: Sniff) -> bool:
        """Exim's wording, or its X-Failed-Recipients header."""
        return bool(s.failed) or TextBounce.match(self, s)


DETECTOR = Exim()
