"""AOL's own notices (before AOL moved to Yahoo's platform), which name screen names.

Matches::

    Your mail to the following recipients could not be delivered because they are not
    accepting mail from sender@example.com:
        screenname

A bare screen name is an AOL address: ``screenname@aol.com``.
"""

from __future__ import annotations

from bounce_handler.parse.base import ADDRESS, Sniff, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

_NAME = lazy(r"^[ \t]+([A-Za-z0-9._-]+(?:@[\w.-]+)?)\s*$", M)


class AOL(TextBounce):
    """AOL: indented screen names (or addresses) after "following recipients"."""

    name = "aol"
    needles = ("recipients could not be delivered because they are not accepting mail",)
    start = lazy(r"your mail to the following recipients could not be delivered"
                       r"[^\n]*(?:\n[^\n]*?:[ \t]*)?\n", I)
    stop = lazy(r"^[ \t]*$\n^[ \t]*$|^-", M)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Screen names get @aol.com; the sentence's reason is the diagnostic."""
        m = self.start.search(s.text)
        diag = m.group(0) if m else None
        out = []
        for name in _NAME.findall(section):
            address = name if ADDRESS.fullmatch(name) else name + "@aol.com"
            out.append(rcpt(address, diag, action=action))
        return out


DETECTOR = AOL()
