"""Apache James (2.x ``NotifySender``/``Bounce`` mailets) and the gateways built on it.

Verizon Wireless's vtext.com SMS gateway and others answer with James's notice, which
names the failed recipient only in its "Message details" block::

    Error: Invalid user address

    Error message below:
    550 - Requested action not taken: no such user here

    Message details:
      Subject: Hello
      Sent date: Wed Jun 12 02:21:53 GMT 2013
      MAIL FROM: sender@example.com
      RCPT TO: 5555550100@vtext.example.com
      From: sender@example.com
      Size (in bytes): 39
      Number of lines: 2

"RCPT TO" may list several recipients, one per line (continuation lines indented deeper).
"""

from __future__ import annotations

from bounce_handler.parse.base import ADDRESS, Hit, Sniff, clean_address, one_line, rcpt
from bounce_handler.parse.mime import Part


class James:
    """James notices: RCPT TO of "Message details", "Error message below" as the reason."""

    name = "james"
    kind = None

    def match(self, s: Sniff) -> bool:
        """The "Message details:" block with its RCPT TO line."""
        return "message details:" in s.lower and "rcpt to:" in s.lower

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """The RCPT TO addresses; None when the block names none."""
        text = s.text
        low = s.lower
        start = low.find("message details:")
        lines = text[start:].split("\n")[1:60]
        addresses = []
        sender = None
        depth = None
        for line in lines:
            stripped = line.strip()
            label = stripped.split(":", 1)[0].lower() if ":" in stripped else ""
            indent = len(line) - len(line.lstrip())
            if label == "mail from":
                sender = clean_address(stripped.split(":", 1)[1])
            if label == "rcpt to":
                depth = indent
                stripped = stripped.split(":", 1)[1]
            elif depth is None or not stripped or indent <= depth:
                depth = None  # the next field: the recipient list is over
                continue
            for m in ADDRESS.finditer(stripped[:2000]):
                a = clean_address(m.group(0))
                if a and a not in addresses:
                    addresses.append(a)
        if not addresses:
            return None
        why = low.find("error message below:")
        if why >= 0 and why < start:
            diag = text[why + len("error message below:") : start]
        else:
            diag = text[:start]
        diag = one_line(diag)
        return Hit([rcpt(a, diag) for a in addresses], sender=sender)


DETECTOR = James()
