"""OpenSMTPD mailer-daemon notices ("Delivery status notification: error/delay").

Matches::

    Hi!

    This is the MAILER-DAEMON, please DO NOT REPLY to this email.

    An error has occurred while attempting to deliver a message for
    the following list of recipients:

    user@example.net: 550 5.1.1 <user@example.net>: Recipient address rejected

    Below is a copy of the original message:

and the delay variant "A message is delayed for more than 4 hours for the following list
of recipients:".
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.textbounce import TextBounce


class OpenSMTPD(TextBounce):
    """OpenSMTPD: "address: reply" lines after "the following list of recipients"."""

    name = "opensmtpd"
    needles = ("this is the mailer-daemon, please do not reply",
               "following list of recipients")
    start = lazy(r"following\s+list of recipients:?[^\n]*\n", I)
    stop = lazy(r"^[ \t]*below is a copy of the original message", I | M)
    delayed = lazy(r"is delayed for more than|notification: delay", I)


DETECTOR = OpenSMTPD()
