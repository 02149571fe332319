"""fml (the Japanese mailing-list manager, 4.x/8.x) refusing a post.

fml answers a post it will not distribute with a letter from the list's admin address,
marked with its ``X-MLServer: fml [fml 4.0.3 release ...]`` header, e.g.::

    Subject: You sender@example.org are not member (listname ML)
    X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]

    You are not a member of this mailing list <list@example.org>.

The failed recipient is the list itself (it refused the sender); it is named in the
"mailing list <address>" sentence.  Other fml letters (help, command results) name no
list address in such a sentence and are not failures.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, before_original, clean_address, one_line, rcpt
from bounce_handler.parse.mime import Part
from bounce_handler.parse.scan import find_angle

# fml's refusals: "You are not a member", "rejected", "not allowed to post", "denied".
_REFUSALS = ("not a member", "are not member", "rejected", "not allowed", "denied")


class FML:
    """fml refusals: the list address of "this mailing list <address>"."""

    name = "fml"
    kind = None

    def match(self, s: Sniff) -> bool:
        """The X-MLServer header of fml and a refusal word in the subject or text."""
        if not (s.msg.get("x-mlserver") or "").lower().startswith("fml"):
            return False
        return any(w in s.subject or w in s.lower[:2000] for w in _REFUSALS)

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """The list named by the refusal sentence; None when no sentence names it."""
        text = before_original(s.text)[:2000]
        for line in text.split("\n"):
            low = line.lower()
            i = low.find("mailing list")
            if i < 0 or not any(w in low for w in _REFUSALS):
                continue
            a = find_angle(line[i:])
            a = clean_address(a) if a else None
            if a:
                return Hit([rcpt(a, one_line(line))])
        return None


DETECTOR = FML()
