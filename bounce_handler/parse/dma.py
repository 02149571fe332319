"""DMA, the DragonFly Mail Agent (dma 0.13: DragonFly BSD's and Debian's).

Matches the one notice dma's bounce() writes, one failed recipient per notice::

    This is the DragonFly Mail Agent v0.13 at host.example.org.

    There was an error delivering your mail to <user@example.net>.

    mx.example.net [192.0.2.1] did not like our RCPT TO:
    550 5.1.1 <user@example.net>: Recipient address rejected: User unknown

    Message headers follow.

The paragraph between the two sentences is the error: the remote's reply after "did not
like our connect:" / "EHLO:" / "MAIL FROM:" / "RCPT TO:" / "DATA:" / "final DATA:" (the
phase it answered), or dma's own words ("DNS lookup failure: host example.net not
found", "Could not deliver for the last 432000 seconds. Giving up.").  The recipient is
the one named in "delivering your mail to <...>" (also in ``X-Original-To:``), never an
address inside the reply: a refused MAIL FROM names the sender there.  "Original message
follows." ends it instead when dma runs with FULLBOUNCE.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, clean_address, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import returned_original

# dma.c bounce(): "There was an error delivering your mail to <%s>.\n\n%s\n\n" then
# "Message headers follow." or "Original message follows.".  The address is bounded
# (RFC 5321 4.5.3.1.3: 256 octets for a path) so a hostile line stays linear.
_ERROR = lazy(r"^there was an error delivering your mail to <([^<>\s]{1,256})>\.[ \t]*\n",
              I | M)
_END = lazy(r"^(?:message headers follow|original message follows)\.", I | M)


class DMA:
    """DMA notices: "There was an error delivering your mail to <address>."."""

    name = "dma"
    kind = None

    def match(self, s: Sniff) -> bool:
        """The notice's own first line names the program."""
        return "dragonfly mail agent" in s.lower

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """The one recipient and the paragraph that says why; None when not dma's."""
        m = _ERROR.search(s.text)
        if not m:
            return None
        address = clean_address(m.group(1))
        if not address:
            return None
        rest = s.text[m.end():]
        end = _END.search(rest)
        diagnostic = " ".join(x.strip() for x in (rest[:end.start()] if end else rest[:2000])
                              .split("\n") if x.strip())
        return Hit([rcpt(address, diagnostic or None)],
                   original=returned_original(msg, s.text))


DETECTOR = DMA()
