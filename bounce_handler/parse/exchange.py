"""Microsoft Exchange 5.5/2000/2003 and 2007+ notices (text when the DSN part is missing).

Exchange 2003 and older (and the Windows SMTP service)::

    Your message

      To:      user@example.net
      Subject: Hello
      Sent:    Tue, 24 Nov 2026 10:00:00 +0000

    did not reach the following recipient(s):

    user@example.net on Tue, 24 Nov 2026 10:00:05 +0000
        The e-mail account does not exist at the organization this message was sent to.
        <mail.example.net #5.1.1>

Exchange 2007+ ("Delivery has failed to these recipients or groups:" … "Diagnostic
information for administrators:" … "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##").
Also the IMS wording "Delivery to the following recipients failed." (Windows SMTP service).
"""

from __future__ import annotations

from bounce_handler.parse.base import Sniff, address_paragraphs, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

_X400 = lazy(r"^[ \t]*c=[^\n]*?dda:SMTP=", M | I)
_STOP = lazy(r"^[ \t]*(?:original message headers|-++ ?original message|"
                   r"received: from|-++ ?transcript of session)", I | M)


class Exchange(TextBounce):
    """Exchange: addresses after "did not reach the following recipient(s)"."""

    name = "exchange"
    needles = ("did not reach the following recipient", "delivery has failed to these recipients",
               "diagnostic information for administrators", "msexch")
    start = lazy(r"(?:did not reach the following recipient\(?s?\)?|delivery has failed "
                       r"to these recipients or (?:groups|distribution lists))[^\n]*\n", I)
    stop = _STOP
    delayed = lazy(r"has been delayed|delivery is delayed|still trying", I)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Address paragraphs; Exchange 2007's admin section adds the "#550 5.1.1" line."""
        own = s.own
        # Exchange 5.5 X.400 form: "c=US;a= ;p=ORG;o=SITE;dda:SMTP=user@example.com; on …"
        section = _X400.sub("", section)
        pairs = address_paragraphs(section, own, echo=s.echo)
        return [rcpt(a, d.replace("Diagnostic information for administrators:", ""),
                     action=action) for a, d in pairs]


DETECTOR = Exchange()
