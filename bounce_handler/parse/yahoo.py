"""Yahoo! Mail notices (also AOL and Verizon since they share Yahoo's mail platform).

Matches the current text::

    Sorry, we were unable to deliver your message to the following address.

    <user@example.net>:
    Remote host said: 550 5.1.1 <user@example.net>: Recipient address rejected [RCPT_TO]

    --- Below this line is a copy of the message.

and the older "Message from yahoo.com. / Unable to deliver message to the following
address(es)." form ("--- Original message follows.").
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.textbounce import TextBounce


class Yahoo(TextBounce):
    """Yahoo: "<address>:" paragraphs after "unable to deliver ... following address"."""

    name = "yahoo"
    needles = ("unable to deliver your message to the following address",
               "unable to deliver message to the following address", "message from yahoo")

    def match(self, s: Sniff) -> bool:
        """Its sentences, or a Yahoo mailer-daemon sender."""
        return "yahoo" in s.from_ or TextBounce.match(self, s)
    start = lazy(r"unable to deliver (?:your )?message to the following "
                       r"address(?:\(es\)|es)?\.?[^\n]*\n", I)
    stop = lazy(r"^[ \t]*-{2,}+ ?(?:below this line|original message)", I | M)
    delayed = lazy(r"will (?:keep|continue) (?:trying|to try)|still trying", I)


DETECTOR = Yahoo()
