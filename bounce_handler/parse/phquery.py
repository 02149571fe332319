"""CSO/ph "nameserver error report" (phquery, used by Yale and other universities).

Matches::

    Subject: Returned mail - nameserver error report

     --------Message not delivered to the following:

     userx    No matches to nameserver query

     --------Error Detail (phquery V4.1):

The names are aliases in the university's directory; the notice's own text says the
address tried was NAME@<domain> (and the department forms NAME@cs.<domain>), so both
are reported, with the domain taken from the notice's sender.
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, find_address, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

_NAME = lazy(r"^[ \t]*([A-Za-z0-9._-]+(?:@[\w.-]+)?)\s{2,}(.+)$", M)


class PhQuery(TextBounce):
    """phquery: names after "Message not delivered to the following:"."""

    name = "phquery"
    needles = ("nameserver error report", "phquery")
    where = ("text", "subject")
    start = lazy(r"(?<!-)-++ ?message not delivered to the following:?[^\n]*\n", I)
    stop = lazy(r"^[ \t]*-{4,}", M)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """NAME@domain and NAME@cs.domain for the notice's own domain."""
        sender = find_address(s.from_) or ""
        domain = sender.split("@", 1)[1] if "@" in sender else ""
        parts = domain.split(".")
        base = ".".join(parts[-2:]) if len(parts) >= 2 else domain
        out = []
        for name, why in _NAME.findall(section):
            if "@" in name:
                out.append(rcpt(name, why, action=action))
            elif base:
                out.append(rcpt(f"{name}@cs.{base}", why, action=action))
                out.append(rcpt(f"{name}@{base}", why, action=action))
        return out


DETECTOR = PhQuery()
