"""The ``Detector`` Protocol every format module's ``DETECTOR`` meets.

Kept out of the hot path (the pipe never imports this module; ``typing`` costs import time):
``tests/parse/test_registry.py`` checks every registered detector against it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bounce_handler.parse.base import Hit, Sniff
from bounce_handler.parse.mime import Part


@runtime_checkable
class Detector(Protocol):
    """One bounce format.

    name   short identifier recorded in ``Recipient.detector`` ("rfc3464", "qmail", …)
    kind   the kind every hit has ("complaint", "autoreply"), or None: from the actions
    match  cheap test on the sniffed headers/text: may this message be mine?
    scan   the full read: a ``Hit`` (possibly with no recipients), or None: not mine
    """

    name: str
    kind: str | None

    def match(self, s: Sniff) -> bool:
        """Cheap: headers and substring tests only."""
        ...

    def scan(self, msg: Part, s: Sniff) -> Hit | None:
        """Full read of a message ``match`` accepted."""
        ...
