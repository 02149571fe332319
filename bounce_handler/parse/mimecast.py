"""Mimecast's own delivery-failure notices ("[Postmaster] Email Delivery Failure").

Sent as plain text (sometimes beside a delivery-status part whose fields Mimecast writes
"Name : value", which RFC 3464 does not allow), each fact on a "-- " line::

    This is a delivery failure notification message indicating that
    an email sender@example.org addressed to email address :
    -- user@example.com

    could not be delivered. The problem appears to be :
    -- Recipient email address is possibly incorrect

    Additional information follows :
    -- 5.1.1 <user@example.com>: Recipient address rejected

or "An email that you attempted to send to the following address could not be
delivered:" before the "-- address" line.  The sender named in the first sentence is
not a recipient; the "-- " lines after the intro, up to "The problem appears to be", are.
"""

from __future__ import annotations

from bounce_handler.parse.base import ADDRESS, Hit, Sniff, clean_address, one_line, rcpt
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import returned_original


class Mimecast:
    """Mimecast: the "-- address" lines before "The problem appears to be"."""

    name = "mimecast"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Its two fixed sentences."""
        return "the problem appears to be" in s.lower and "-- " in s.lower

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """The listed addresses, the problem and the additional information as reason."""
        text = s.text[:20000]
        low = text.lower()
        end = low.find("the problem appears to be")
        out = []
        for line in text[:end].split("\n"):
            t = line.strip()
            if not t.startswith("-- "):
                continue
            m = ADDRESS.search(t)
            a = clean_address(m.group(0)) if m and m.start() <= 4 else None
            if a and all(a.lower() != b.lower() for b in out):
                out.append(a)
        if not out:
            return None
        why = [x.strip()[3:] for x in text[end:].split("\n")[:40] if x.strip().startswith("-- ")]
        diag = one_line(" ".join(why))
        return Hit([rcpt(a, diag) for a in out], original=returned_original(msg, s.text))


DETECTOR = Mimecast()
