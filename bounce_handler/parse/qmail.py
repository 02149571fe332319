"""qmail (qmail-send, netqmail, vpopmail, Yahoo's and many ISPs' older front ends).

Matches the notice qmail-send writes::

    Hi. This is the qmail-send program at mail.example.com.
    I'm afraid I wasn't able to deliver your message to the following addresses.
    This is a permanent error; I've given up. Sorry it didn't work out.

    <user@example.net>:
    192.0.2.1 does not like recipient.
    Remote host said: 550 5.1.1 <user@example.net>: Recipient address rejected
    Giving up on 192.0.2.1.

    --- Below this line is a copy of the message.
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.textbounce import TextBounce


class Qmail(TextBounce):
    """qmail-send notices: "<address>:" paragraphs before "--- Below this line"."""

    name = "qmail"
    # "--- Below this line is a copy of the message." is qmail-send's own separator; ISPs
    # that rewrite the intro (GoDaddy's "We're sorry. There's a problem with the e-mail
    # address(es)", vpopmail front ends) keep it.
    needles = ("qmail-send program", "this is the qmail", "qmail-local", "qmail program",
               "below this line is a copy of the message")
    start = lazy(r"(?:following address(?:es)?|to the following|sorry it didn'?t work "
                       r"out|wasn't able to deliver)[^\n]*\n", I)
    stop = lazy(r"^-++ ?below this line|^--- (?:enclosed|original)", I | M)
    delayed = lazy(r"will (?:keep|continue) trying|temporary failure", I)
    require_start = False


DETECTOR = Qmail()
