"""The shared engine of the plain-text (non-DSN) formats; not a detector itself.

Most non-DSN notices say the same thing in their own words: an intro, a list of failed
addresses each followed by the reason, then the returned message.  A format module gives
``TextBounce`` its data — the substrings that identify it (checked against the sniffed
text, From and Subject), where the address list starts and stops, and which wording means
"still retrying" — and gets a detector.  Formats that need more override ``recipients``.
"""

from __future__ import annotations

from bounce_handler.parse.base import (
    ORIGINAL_MARKER,
    Hit,
    Sniff,
    address_paragraphs,
    before_original,
    clean_address,
    find_address,
    rcpt,
    still_retrying,
    success_action,
)
from bounce_handler.parse.lazyre import LazyPattern
from bounce_handler.parse.mime import Part, parse_headers, split_head

_ORIGINAL_TYPES = ("message/rfc822", "text/rfc822-headers", "message/global",
                   "message/global-headers")


def returned_original(msg: Part, text: str) -> Part | None:
    """Find the returned message: an attached message part, else the headers after the marker."""
    for p in msg.walk():
        if p.ctype in _ORIGINAL_TYPES and p.parts:
            return p.parts[0]
    m = ORIGINAL_MARKER.search(text)
    if not m:
        return None
    rest = text[m.end():]
    nl = rest.find("\n")
    rest = rest[nl + 1:].lstrip("\n") if nl >= 0 else ""
    head, _ = split_head(rest.encode("utf-8", "surrogateescape"))
    headers = parse_headers(head)
    if not headers:
        return None
    return Part(headers, b"", [0])


class TextBounce:
    """A plain-text bounce format described by data.

    name      detector name
    needles   lower-case substrings; any one in the text/From/Subject makes ``match`` true
    start     regex after which the failed addresses are listed (None: the whole notice)
    stop      regex where the list ends (None: the returned-message marker)
    delayed   regex on subject+text meaning "not yet failed, still retrying"
    """

    name = "text"
    kind = None
    needles: tuple = ()
    where: tuple = ("text",)
    start: LazyPattern | None = None
    stop: LazyPattern | None = None
    delayed: LazyPattern | None = None
    require_start = True
    inline = False  # also take addresses named mid-sentence ("mailbox a@b is unavailable")
    silent = None  # wording that identifies the format even when it names no address
    from_line_start = False  # the start line itself may name the address and the reason

    def match(self, s: Sniff) -> bool:
        """Cheap substring tests over the sniffed fields."""
        for w in self.where:
            hay = s.lower if w == "text" else getattr(s, w)
            for n in self.needles:
                if n in hay:
                    return True
        return False

    def section(self, text: str) -> str | None:
        """Return the part of the notice that lists the failed addresses."""
        if self.start is not None:
            m = self.start.search(text)
            if not m:
                if self.require_start:
                    return None
                rest = text
            elif self.from_line_start:
                rest = text[text.rfind("\n", 0, m.start()) + 1 :]
            else:
                rest = text[m.end():]
        else:
            rest = text
        end = len(rest)
        for rx in (self.stop, ORIGINAL_MARKER):
            m = rx.search(rest) if rx is not None else None
            if m and m.start() < end:
                end = m.start()
        return rest[:end]

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """[Recipient] from the section; formats with odd layouts override this."""
        own = s.own
        return [rcpt(a, d, action=action)
                for a, d in address_paragraphs(section, own, self.inline, s.echo)]

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Recipients listed in the section, None when there is none."""
        section = self.section(s.text)
        found = None
        if section is not None:
            action = "delayed" if self.is_delayed(s, section) else "failed"
            if action == "failed":
                action = success_action(s.subject, before_original(s.lower[:2000])) or action
            found = self.recipients(msg, s, section, action)
        if not found:
            if self.silent is not None and self.silent.search(s.text[:2000]):
                # The format's own wording, but no address named (Exim: "One or more of
                # the recipients are not a valid user"): a bounce naming nobody.
                return Hit([], kind="bounce", original=returned_original(msg, s.text))
            return None
        return Hit(found, original=returned_original(msg, s.text),
                   reporting_mta=self.reporting_mta(s))

    def is_delayed(self, s: Sniff, section: str) -> bool:
        """Tell whether the notice says "still retrying" (``base.still_retrying``)."""
        return still_retrying(self.delayed, s.subject, s.text[:2000])

    def reporting_mta(self, s: Sniff) -> str | None:
        """Return the host the notice comes from (the domain of its From: address)."""
        a = clean_address(find_address(s.from_) or "")
        return a.split("@", 1)[1] if a and "@" in a else None
