"""Gmail's notices (the pre-2013 plain-text form and the text of the current DSN).

Matches::

    Delivery to the following recipient failed permanently:

         user@example.net

    Technical details of permanent failure:
    Google tried to deliver your message, but it was rejected by the server for the
    recipient domain example.net by mx.example.net. [192.0.2.1].

    The error that the other server returned was:
    550 5.1.1 <user@example.net>: Recipient address rejected: User unknown

and "Delivery to the following recipient has been delayed:" ("Message will be retried for
2 more day(s)").  The current form ("Address not found", "Your message wasn't delivered
to user@example.net because the address couldn't be found") comes with a DSN part.
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, address_paragraphs, rcpt
from bounce_handler.parse.lazyre import I, M, S, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

# "The error that the other server returned was:" (2009-2013), "The response from the
# remote server was:" (the "Address not found" / "Message blocked" notices since 2013).
_ERROR = lazy(r"(?:the error that the other server returned was|the response from the "
              r"remote server was|technical details of (?:permanent|temporary) "
              r"failure):?\s*(.+?)(?:\n\s*\n|$)", I | S)
_REMOTE_ERROR = lazy(r"(?:the error that the other server returned was|the response from "
                     r"the remote server was):?\s*(.+?)(?:\n\s*\n|$)", I | S)
_WASNT = lazy(r"your message wasn'?t delivered to\s+<?([^\s<>]{1,200}@[^\s<>]{1,255}?)>?\s", I)


class Gmail(TextBounce):
    """Gmail: address list after "Delivery to the following recipient ..."."""

    name = "gmail"
    needles = ("delivery to the following recipient", "google tried to deliver your message",
               "your message wasn't delivered to")
    start = lazy(r"delivery to the following recipients? (?:failed permanently|"
                       r"has been delayed|failed temporarily|failed)\s*:?[^\n]*\n", I)
    stop = lazy(r"^[ \t]*(?:technical details|-++ ?original message|the error that)",
                      I | M)
    delayed = lazy(r"has been delayed|will be retried|failed temporarily", I)
    require_start = False

    def section(self, text: str) -> str | None:
        """Return the list after the heading; "wasn't delivered to X" sentences otherwise."""
        if self.start.search(text):
            return TextBounce.section(self, text)
        m = _WASNT.search(text)
        return m.group(1) if m else None

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Report listed addresses with the remote server's error as diagnostic."""
        m = _ERROR.search(s.text)
        if m and not m.group(0).lower().startswith(("the error", "the response")):
            # Prefer the remote server's own words to Google's summary sentence.
            m = _REMOTE_ERROR.search(s.text) or m
        diag = m.group(1) if m else None
        return [rcpt(a, d or diag, action=action)
                for a, d in address_paragraphs(section, s.own, echo=s.echo)]


DETECTOR = Gmail()
