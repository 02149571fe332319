"""A delivery report pasted whole into a text notice (a bounce forwarded as text).

Some providers relay the bounces their own relays receive to the original sender as plain
text: an explanation, a separator, then the whole report, headers and MIME parts, e.g.
NTT OCN::

    I'm sorry to have to inform you that the message returned
    below could not be delivered to one or more destinations.

    For further assistance, please contact <support@ocn.ad.jp>
    ---------------------------------
    From MAILER-DAEMON  Thu Apr 29 23:34:45 2015
    Return-Path: <>
    From: MAILER-DAEMON@relay.example.jp (Mail Delivery System)
    Content-Type: multipart/report; report-type=delivery-status;
            boundary="EBFE02596282.1532585958/relay.example.jp"

    --EBFE02596282.1532585958/relay.example.jp
    ...
    Final-Recipient: rfc822; user@example.com
    Action: failed

The pasted report is parsed as a message of its own and read by ``rfc3464``.  Asked
after every named format, only for what a mail system sent (``machine_made``: a person's
"Fwd:" of a bounce is a conversation about it), and only when the forwarding text names
no failed address itself: a notice that does (a bounce of a bounce, whose copy is an
older report) is about that address, not the ones of the report it returns.
"""

from __future__ import annotations

from bounce_handler.parse.base import ADDRESS, Hit, Sniff, address_paragraphs, machine_made
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part, parse_message

# A line that may start a pasted message: an mbox "From " line or its first headers.
_START = lazy(r"^(?:From [^\n]{1,200}|Return-Path:[^\n]{0,300}|Received: [^\n]{0,300})$", M | I)
# Contact addresses a forwarding text offers ("please contact <support@example.net>").
_CONTACT = ("postmaster@", "support@", "help@", "helpdesk@", "abuse@", "hostmaster@",
            "webmaster@", "noreply@", "no-reply@", "info@", "admin@")
MAX_TRIES = 20


class Forwarded:
    """The report inside a text notice's body."""

    name = "forwarded"
    kind = None

    def match(self, s: Sniff) -> bool:
        """A notice whose text holds a report's fields and its content type."""
        return ("final-recipient:" in s.lower and "multipart/report" in s.lower
                and machine_made(s))

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """The pasted report's recipients, or None."""
        from bounce_handler.parse.rfc3464 import DETECTOR as RFC3464

        text = s.text
        tries = 0
        for m in _START.finditer(text):
            tries += 1
            if tries > MAX_TRIES:
                break
            if m.start() and text[m.start() - 1] != "\n":
                continue
            inner = parse_message(text[m.start() :].encode("utf-8", "surrogateescape"))
            if inner.ctype != "multipart/report":
                continue
            if _names_a_failure(text[: m.start()], s):
                return None
            hit = RFC3464.scan(inner, Sniff(inner))
            if hit is not None:
                return hit
        return None


def _names_a_failure(outer: str, s: Sniff) -> bool:
    """Whether the forwarding text lists an address of its own (not a contact)."""
    if "@" not in outer or not ADDRESS.search(outer):
        return False
    for a, _ in address_paragraphs(outer, s.own, True, s.echo):
        if not a.lower().startswith(_CONTACT):
            return True
    return False


DETECTOR = Forwarded()
