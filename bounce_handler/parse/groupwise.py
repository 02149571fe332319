"""Novell/Micro Focus GroupWise Internet Agent (GWIA) notices.

Matches::

    Subject: Message status - undeliverable

    The message that you sent was undeliverable to the following:
            user@example.net (user not found)

    Possible alternatives:
"""

from __future__ import annotations

from bounce_handler.parse.lazyre import I, M, lazy
from bounce_handler.parse.textbounce import TextBounce


class GroupWise(TextBounce):
    """GWIA: address lines after "undeliverable to the following"."""

    name = "groupwise"
    needles = ("undeliverable to the following", "message status - undeliverable",
               "groupwise")
    where = ("text", "subject", "mailer")
    start = lazy(r"(?:was )?undeliverable to the following:?[^\n]*\n", I)
    stop = lazy(r"^[ \t]*(?:possible alternatives|-{3,}|original message)", I | M)


DETECTOR = GroupWise()
