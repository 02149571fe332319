"""Postfix SMTP server error notices (notify_classes = protocol, policy, resource, software).

When ``notify_classes`` includes these classes Postfix mails the postmaster a transcript of
the SMTP session it refused, subject "Postfix SMTP server: errors from host[addr]"::

    Transcript of session follows.

     Out: 220 relay.example.com ESMTP Postfix
     In:  EHLO client.example.org
     Out: 250-relay.example.com
     In:  MAIL FROM:<sender@example.org>
     Out: 250 2.1.0 Ok
     In:  RCPT TO:<user@example.net>
     Out: 554 5.7.1 <user@example.net>: Relay access denied

Each refused RCPT TO is a failed recipient, and so is every accepted one when the DATA
that follows is refused ("In:  DATA" ... "Out: 550 5.7.1 Message content rejected");
MAIL FROM is the envelope sender.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, rcpt, session_failures
from bounce_handler.parse.lazyre import M, lazy
from bounce_handler.parse.mime import Part

_LINE = lazy(r"^[ \t]*(In|Out):[ \t]*([^\n]*)$", M)


class PostfixTranscript:
    """The session transcript: RCPT TO followed by a 4xx/5xx reply."""

    name = "postfix_transcript"
    kind = None

    def match(self, s: Sniff) -> bool:
        """Postfix's subject for these notices and its transcript lines."""
        return "postfix smtp server" in s.subject or (
            "transcript of session follows" in s.lower and " in:  " in s.lower
        )

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Refused RCPT TO commands, and the recipients of a refused DATA."""
        dialogue = [(way.lower(), line) for way, line in _LINE.findall(s.text)]
        sender, failed = session_failures(dialogue)
        out = [rcpt(a, reply, action="failed" if reply[0] == "5" else "delayed")
               for a, reply in failed if a]
        if not out:
            return None
        return Hit(out, sender=sender)


DETECTOR = PostfixTranscript()
