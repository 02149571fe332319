"""Courier MTA delivery notices (text form, when the DSN part is missing).

Matches::

    This is a delivery status notification from mail.example.com,
    running the Courier mail server, version 1.1.

    The original message was received on Tue, 24 Nov 2026 10:00:00 +0000
    from localhost [127.0.0.1]

    ---------------------------------------------------------------------------

                               UNDELIVERABLE MAIL

    Your message to the following recipients cannot be delivered:

    <user@example.net>:
        mx.example.net [192.0.2.1]:
    >>> RCPT TO:<user@example.net>
    <<< 550 5.1.1 <user@example.net>... User unknown

Courier 1.0.16's other headings (its /etc/courier/dsn*.txt templates) say what the
addresses below them are: "DELAYS IN DELIVERING YOUR MESSAGE" ("... for the following
addresses only:"), and for a NOTIFY=SUCCESS receipt "MESSAGE DELIVERED SUCCESSFULLY" or
"MESSAGE DELIVERED TO A MAIL GATEWAY" (relayed, "250 2.0.0 Ok" under the address): those
addresses were delivered, never failed, even when the notice's DSN part is lost.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce, returned_original


class Courier(TextBounce):
    """Courier: "<address>:" paragraphs after "following recipients cannot be delivered"."""

    name = "courier"
    needles = ("running the courier mail server", "courier mail server")
    start = lazy(r"following (?:recipients (?:cannot be delivered|was delayed|"
                 r"has been delayed)|addresses(?: only)?:|[ \t]*\n[ \t]*addresses:)"
                 r"[^\n]*\n", I)
    stop = lazy(r"^-{20,}", M)
    delayed = lazy(r"delayed mail|has been delayed|delays? in delivering", I)
    # The heading of a delivery receipt (dsndelivered.txt, dsnrelayed.txt).
    delivered = lazy(r"^[ \t]*message delivered (?:successfully|to a mail gateway)", I | M)
    require_start = False

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """A delivery receipt's addresses as delivered/relayed; anything else as usual."""
        m = self.delivered.search(s.text[:4000])
        if not m:
            return super().scan(msg, s)
        section = self.section(s.text)
        action = "relayed" if m.group(0).lower().endswith("gateway") else "delivered"
        found = self.recipients(msg, s, section, action) if section else []
        if not found:
            return None
        return Hit(found, original=returned_original(msg, s.text),
                   reporting_mta=self.reporting_mta(s))


DETECTOR = Courier()
