"""Office 365 / Exchange Online non-delivery reports (text when the DSN part is missing).

Matches the HTML/text of Exchange Online's NDR::

    Your message to user@example.net couldn't be delivered.
    user wasn't found at example.net.
    ...
    Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
    found by SMTP address lookup'
"""

from __future__ import annotations

from bisect import bisect_left

from bounce_handler.parse.base import Hit, Sniff, clean_address, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import returned_original

_TO = lazy(r"your message to\s+<?([^\s<>]{1,200}@[^\s<>]{1,255}?)>?\s+couldn'?t be delivered", I)
_REMOTE = lazy(r"remote server returned '(.+?)'\s*$", I | M)
_LINE = lazy(r"^[ \t]*([^\n]*(?:wasn'?t found|doesn'?t exist|couldn'?t|blocked|"
                   r"isn'?t|is full|rejected)[^\n]*)$", I | M)


class Office365:
    """Exchange Online: "Your message to X couldn't be delivered." + Remote Server text."""

    name = "office365"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Its sentence, or the RESOLVER/Remote Server wording."""
        return "couldn't be delivered" in s.lower or "couldn\u2019t be delivered" in s.lower

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Report the addressee of the sentence, with the remote server's reply."""
        text = s.text.replace("\u2019", "'")
        out = []
        # Once per message, not per sentence: searched again for each of 1,400 sentences
        # in a 64 KB notice they took 4 s (tests/hostile).  _LINE's matches are whole
        # lines, so "the first at or after a position" is a bisection of all of them.
        remote = _REMOTE.search(text)
        lines = None
        seen = set()
        for m in _TO.finditer(text):
            a = clean_address(m.group(1))
            if a and a.lower() not in seen:
                seen.add(a.lower())
                if remote:
                    diag = remote.group(1)
                else:
                    if lines is None:
                        lines = [(x.start(), x.group(1)) for x in _LINE.finditer(text)]
                    i = bisect_left(lines, (m.end(),))
                    diag = lines[i][1] if i < len(lines) else None
                out.append(rcpt(a, diag))
        if not out:
            return None
        return Hit(out, original=returned_original(msg, s.text))


DETECTOR = Office365()
