"""Zoho Mail notices.

Matches::

    This message was created automatically by mail delivery software.
    A message that you sent could not be delivered to one or more of its recipients.
    This is a permanent error. The following address(es) failed:

    user@example.net, ERROR CODE :550 - The email account that you tried to reach does
    not exist.

and the delay "This is a temporary error. The following address(es) deferred:"; the
older form writes "user@example.net Error, ERROR_CODE :421, ERROR_CODE :, Host not
reachable." with the returned headers right after.
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

# "a@b, ERROR CODE :550 - text" and the older "a@b Error, ERROR_CODE :421, ..., text".
# One way to split each line (no "@" in either half, no overlapping blank runs): linear.
_LINE = lazy(r"^[ \t]*<?([^\s,<>@]{1,200}@[^\s,<>@]{1,255})>?(?:[ \t]+error)?[ \t]*,"
             r"[ \t]*ERROR[ _]CODE[ \t]*:[ \t]*([^\n]+)$", M | I)


class Zoho(TextBounce):
    """Zoho: "address, ERROR CODE :NNN - text" lines."""

    name = "zoho"
    needles = ("error code :", "error_code :", "zoho")
    where = ("text", "from_")
    start = lazy(r"address(?:\(es\)|es)? (?:failed|deferred)\s*:?[^\n]*\n", I)
    delayed = lazy(r"address(?:\(es\)|es)? deferred|temporary error", I)
    require_start = False

    def match(self, s: Sniff) -> bool:
        """Its "ERROR CODE :" (older: "ERROR_CODE :") lines."""
        return "error code :" in s.lower or "error_code :" in s.lower

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """One recipient per "ERROR CODE" line."""
        return [rcpt(a, d, action=action) for a, d in _LINE.findall(section)]


DETECTOR = Zoho()
