"""Notices whose only structured fact is the ``X-Failed-Recipients`` header.

Exim 4 sets it on every bounce it generates, and Google's mailer copies the idea: Google
Groups answers a post it refuses with a localised letter (English, German, Arabic,
Chinese …) that names the failed group only in that header::

    From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
    Subject: Delivery Status Notification (Failure)
    X-Failed-Recipients: group@googlegroups.com

    Hello sender@example.com,

    We're writing to let you know that the group you tried to contact (group) may not
    exist, or you may not have permission to post messages to the group.

    ----- Original message -----

The letter's own addresses are its reader (the sender, greeted by address); the header
is the failed recipient.  Asked after every named format (an Exim notice with its list
of failed addresses is read by ``exim``) and before the heuristics, which would take the
greeting for the failure.  The header is set on failures only (Exim's delay warnings
carry none), so every address is failed.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, before_original, failed_header, one_line, rcpt
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import returned_original


class XFailed:
    """X-Failed-Recipients: the addresses it lists, the notice text as the diagnostic."""

    name = "xfailed"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Only messages carrying the header."""
        return bool(s.failed)

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """One failed recipient per usable address of the header; None when none is."""
        addresses = failed_header(s)
        if not addresses:
            return None
        words = one_line(before_original(s.text))
        return Hit([rcpt(a, words) for a in addresses],
                   original=returned_original(msg, s.text))


DETECTOR = XFailed()
