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
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.textbounce import TextBounce


class Courier(TextBounce):
    """Courier: "<address>:" paragraphs after "following recipients cannot be delivered"."""

    name = "courier"
    needles = ("running the courier mail server", "courier mail server")
    start = lazy(r"following recipients (?:cannot be delivered|was delayed|"
                       r"has been delayed)[^\n]*\n", I)
    stop = lazy(r"^-{20,}", M)
    delayed = lazy(r"delayed mail|has been delayed|delays? in delivering", I)
    require_start = False


DETECTOR = Courier()
