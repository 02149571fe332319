"""Google Groups: a post to a group refused (sent as Gmail's mailer-daemon, in any language).

Matches the notice Google Groups sends when a message to a group address is not accepted,
"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>" with
"X-Failed-Recipients: group@googlegroups.com" and, translated into the sender's language::

    Hello sender@example.com,

    We're writing to let you know that the group you tried to contact (group) may not
    exist, or you may not have permission to post messages to the group. A few more
    details on why you weren't able to post:

     * You might have spelled or formatted the group name incorrectly.
     * The owner of the group may have removed this group.
     * You may need to join the group before receiving permission to post.
     * This group may not be open to posting.

    If you have questions related to this or any other Google Group, visit the Help
    Center at https://groups.google.com/support/.

    Thanks,

    Google Groups

The notice carries no code and its words are translated, so the diagnostic is the
template's English meaning: the *sender* may not post (or the group is gone), which says
nothing about a mailbox.
"""

from __future__ import annotations

from bounce_handler.parse.base import Hit, Sniff, clean_address, rcpt
from bounce_handler.parse.mime import Part
from bounce_handler.parse.textbounce import returned_original

DIAGNOSTIC = ("Google Groups: the group may not exist, or the sender may not have permission "
              "to post messages to the group")


class GoogleGroups:
    """A Google Groups refusal: the group named in X-Failed-Recipients."""

    name = "googlegroups"
    kind = None

    def match(self, s: Sniff) -> bool:
        """X-Failed-Recipients naming a googlegroups.com address and the Groups help link."""
        return "googlegroups.com" in s.failed.lower() and "groups.google.com" in s.lower

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """One failed recipient per X-Failed-Recipients address."""
        out = []
        for value in s.failed.split(",")[:100]:
            address = clean_address(value)
            if address and "@" in address:
                out.append(rcpt(address, DIAGNOSTIC))
        if not out:
            return None
        return Hit(out, original=returned_original(msg, s.text))


DETECTOR = GoogleGroups()
