"""Novell/Micro Focus GroupWise Internet Agent (GWIA) notices.

Matches::

    Subject: Message status - undeliverable

    The message that you sent was undeliverable to the following:
            user@example.net (user not found)

    Possible alternatives:
"""

from __future__ import annotations

import re

from bounce_handler.parse.lazyre import lazy
from bounce_handler.parse.textbounce import TextBounce


class GroupWise(TextBounce):
    """GWIA: address lines after "undeliverable to the following"."""

    name = "groupwise"
    needles = ("undeliverable to the following", "message status - undeliverable",
               "groupwise")
    where = ("text", "subject", "mailer")
    start = lazy(r"(?:was )?undeliverable to the following:?[^\n]*\n", re.I)
    stop = lazy(r"^[ \t]*(?:possible alternatives|-{3,}|original message)", re.I | re.M)


DETECTOR = GroupWise()
