"""Sendmail 8 (old style, without the DSN part) and its descendants (AOL, early ISPs).

Matches::

    The original message was received at Tue, 24 Nov 2026 10:00:00 GMT
    from localhost [127.0.0.1]

       ----- The following addresses had permanent fatal errors -----
    <user@example.net>
        (reason: 550 5.1.1 <user@example.net>... User unknown)

       ----- Transcript of session follows -----
    ... while talking to mx.example.net.:
    >>> RCPT To:<user@example.net>
    <<< 550 5.1.1 <user@example.net>... User unknown

and the delay warning's "----- The following addresses had transient non-fatal errors -----"
("Warning: could not send message for past 4 hours").
"""

from __future__ import annotations

from bounce_handler.parse.base import ADDRESS, Sniff, address_paragraphs, rcpt
from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.mime import Part
from bounce_handler.parse.scan import last_command
from bounce_handler.parse.textbounce import TextBounce

_TRANSCRIPT = lazy(r"(?<!-)-++ ?transcript of session follows ?-*", I)
_TALK = lazy(r"^(?:<<<|\d{3}[ -])\s*(.*)$", M)
_EXPANDED = lazy(r"\(expanded from:?\s*<?([^\s<>()]{1,200}@[^\s<>()]{1,255}?)>?\s*\)", I)
_RCPT = lazy(r"^>>> RCPT TO:\s*<?([^>\s]+)>?", I | M)
_DASHES = lazy(r"^[ \t]*-{3,}", M)


class Sendmail(TextBounce):
    """Sendmail notices: the "following addresses had ... errors" block + transcript."""

    name = "sendmail"
    needles = ("following addresses had", "transcript of session follows",
               "following addresses had permanent", "original message was received at")
    start = lazy(r"(?<!-)-*+ ?the following addresses had (?:permanent fatal|transient "
                       r"non-fatal|permanent|transient)? ?errors ?-*[^\n]*\n", I)
    stop = lazy(r"^[ \t]*-++ ?(?:transcript of session|original message|"
                      r"message header|returned message|the following addresses had)", I | M)
    delayed = lazy(r"transient non-fatal|warning: could not send|will keep trying|"
                         r"^warning:", I | M)

    def match(self, s: Sniff) -> bool:
        """Sendmail's block headings."""
        return "following addresses had" in s.lower or (
            "transcript of session follows" in s.lower and "postfix" not in s.lower
        )

    def recipients(self, msg: Part, s: Sniff, section: str, action: str) -> list:
        """Addresses of the block; the transcript supplies a missing reason."""
        own = s.own
        pairs = address_paragraphs(section, own)
        transcript = ""
        m = _TRANSCRIPT.search(s.text)
        if m:
            rest = s.text[m.end():]
            e = _DASHES.search(rest)
            transcript = rest[: e.start()] if e else rest[:4000]
        if not pairs and transcript:
            for a in _RCPT.findall(transcript):
                if ADDRESS.fullmatch(a):
                    pairs.append((a, ""))
        out = []
        for a, d in list(pairs):
            # Sendmail aliases: "a@host\n    (expanded from: b@domain)": the address the
            # sender used is b; both are reported.
            m = _EXPANDED.search(d or "")
            if m and m.group(1).lower() != a.lower():
                pairs.append((m.group(1), d))
        for a, d in pairs:
            phase = None
            if (not d or "reason" not in d.lower()) and transcript:
                # "<<< 550 5.1.1 <a>... User unknown" lines naming this address.
                lines = [x.strip() for x in transcript.split("\n") if a.lower() in x.lower()
                         and not x.lstrip().startswith(">>>")]
                lines = lines or [x.strip() for x in transcript.split("\n")
                                  if x.strip()[:3].isdigit() and x.strip()[0] in "45"]
                if lines:
                    d = (d + " " + lines[-1]).strip()
                    # The command sent last before that reply is the one it answered.
                    at = transcript.find(lines[-1])
                    phase = last_command(transcript[:at].lower()) if at > 0 else None
            d = d.replace("(reason:", "").rstrip(")") if d else d
            r = rcpt(a, d, action=action)
            out.append(r.replace(phase=phase) if phase else r)
        return out


DETECTOR = Sendmail()
