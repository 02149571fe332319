"""Heuristics for the long tail: any notice from a mailer-daemon that lists addresses.

Used after every named format failed.  It needs both a system sender or a failure
subject *and* a failure sentence, e.g.::

    The following recipients did not receive your message:
         <user@example.net>

    Undeliverable Address: user@example.net
    Reason: ... over disk quota

    Delivery failed 20 attempts: user@example.net

and takes the addresses listed after that sentence, up to the returned message, skipping
the notice's own addresses and the postmaster/mailer-daemon contacts it mentions.
"""

from __future__ import annotations

from bounce_handler.parse.base import (
    Sniff,
    address_paragraphs,
    before_original,
    notice_like,
    rcpt,
    still_retrying,
)
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import TextBounce

# Addresses a notice offers for questions.  Not postmaster@: a postmaster address is
# as deliverable as any other, and bounces for it are real (BIGLOBE, Postfix aliases).
_CONTACT = lazy(r"^(?:mailer-daemon|abuse|hostmaster|webmaster|help|"
                      r"support|noreply|no-reply)@", I)


class Simple(TextBounce):
    """Addresses after any common failure sentence."""

    name = "simple"
    start = lazy(
        r"(?:following (?:recipients?|address(?:\(es\)|es)?|users?|destinations?)|"
        r"undeliverable (?:address|to)|could not be delivered|couldn't be delivered|"
        r"not be delivered|unable to deliver|delivery (?:has )?failed|was not delivered|"
        r"delivery to|failed (?:to deliver|recipient)|permanent (?:error|failure)|"
        r"undeliverable|not reach|invalid (?:recipient|address)|unknown (?:user|recipient)|"
        r"did not receive|returned|bad address|user unknown|recipient:|addressed to|"
        r"message to|failed address(?:es)?)"
        r"[^\n]*?(?=[<\w.+-]{1,200}@|\n)",
        I,
    )
    inline = True
    from_line_start = True  # "Delivery failed 20 attempts: a@b" is one line
    # MDaemon titles permanent failures "Warning: a@b - User unknown!": a "warning"
    # subject is a delay only when it says so.
    delayed = lazy(r"^warning:.*delay|^delayed|delivery delayed|delivery warning|will (?:keep|"
                   r"continue) (?:trying|to try)|continue to try|still trying|not yet been "
                   r"delivered|warning only|will retry|postponed", I | M)
    require_start = False

    def match(self, s: Sniff) -> bool:
        """Match a system sender, a failure subject, or a report no standard detector could read."""
        return notice_like(s)

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Report listed addresses minus the notice's own and the contacts it names."""
        own = s.own
        pairs = [(a, d) for a, d in address_paragraphs(section, own, True, s.echo)
                 if not _CONTACT.match(a)]
        return [rcpt(a, d or (_words_before(section, a) if n < _LOOKUPS else ""),
                     action=action) for n, (a, d) in enumerate(pairs)]

    def section(self, text: str) -> str | None:
        """After the first failure sentence; the whole notice when that names nobody.

        ("User's mailbox is full: <a@b>" comes before "Unable to deliver mail.")
        """
        sec = TextBounce.section(self, text)
        if sec is not None and address_paragraphs(sec, None, True):
            return sec
        return before_original(text)

    def is_delayed(self, s: Sniff, section: str) -> bool:
        """Delay wording only counts in the subject or the first lines."""
        return still_retrying(self.delayed, s.subject, s.text[:600])


# Addresses whose reason is looked for above them (each lookup is a scan of the section).
_LOOKUPS = 50


def _words_before(section: str, address: str) -> str:
    """The lines just above an address that has no text after it (at most three).

    Lotus Notes puts the reason on the line above ("------- Failure Reasons --------" /
    reason / address); KDDI's and other notices say why before "The following recipients
    did not receive this message:".  Lines naming another address end the search.
    """
    i = section.find(address)  # as address_paragraphs took it from the section
    if i < 0:
        return ""
    out = []
    for line in reversed(section[max(0, i - 1000) : i].split("\n")[-8:]):
        line = line.strip(" \t<>\"'")
        if "@" in line:
            break
        if line.strip("-=*_ "):
            out.append(line)
            if len(out) == 3:
                break
    return " ".join(reversed(out))


DETECTOR = Simple()
