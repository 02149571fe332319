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
        """The notice starts with dma's own first line (not a copy quoting one)."""
        return s.lower.lstrip().startswith("this is the dragonfly mail agent")

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """The one recipient and the paragraph that says why; None when not dma's.

        Read only before dma's "Message headers follow." / "Original message follows.":
        what comes after is the returned message, which may quote anything.
        """
        end = _END.search(s.text)
        notice = s.text[: end.start()] if end else s.text[:4000]
        m = _ERROR.search(notice)
        if not m:
            return None
        address = clean_address(m.group(1))
        if not address:
            return None
        diagnostic = " ".join(x.strip() for x in notice[m.end():].split("\n") if x.strip())
        return Hit([rcpt(address, diagnostic or None, status=_dns_status(diagnostic, address))],
                   original=returned_original(msg, s.text))


def _dns_status(diagnostic: str, address: str) -> str | None:
    """5.1.2 when dma could not resolve the recipient's own domain, else None.

    dma 0.13 says "DNS lookup failure: host X not found" in a final notice only for a
    permanent lookup failure, but X is the host it looked up: the recipient's domain, or
    an MX host, or the SMARTHOST it relays through.  Only the first says the recipient's
    domain has no address (X.1.2, hostunknown); the others say nothing about it, and are
    left to the words (a DNS failure, soft).
    """
    low = diagnostic.lower()
    if not low.startswith(_DNS_FAILURE):
        return None
    host, _, rest = low[len(_DNS_FAILURE):].partition(" ")
    domain = address.rpartition("@")[2].lower()
    return "5.1.2" if rest.startswith("not found") and host.rstrip(".") == domain else None


_DNS_FAILURE = "dns lookup failure: host "


DETECTOR = DMA()
