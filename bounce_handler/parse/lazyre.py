"""Regular expressions compiled on first use.

The pipe parses one message per process, so every pattern compiled at import is paid for
on every bounce even when that message never needs it (compiling the detectors' and
classify's patterns up front cost ~30 ms here).  ``lazy(pattern, flags)`` returns an
object with the ``re.Pattern`` methods the parser uses; it compiles once, when first asked.
"""

from __future__ import annotations

# re.I, re.M, re.S, re.X (tests/parse/test_scanners.py checks they are): importing re
# costs ~4.5 ms, so modules name flags from here and re loads only when a pattern is used.
I = 2  # noqa: E741 - the name re gives this flag
M = 8
S = 16
X = 64


class LazyPattern:
    """A ``re.Pattern`` stand-in that compiles itself on first use."""

    __slots__ = ("pattern", "flags", "_rx")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._rx = None

    def compiled(self):
        """Return the real ``re.Pattern`` (compiled now if it was not yet)."""
        rx = self._rx
        if rx is None:
            import re

            rx = self._rx = re.compile(self.pattern, self.flags)
        return rx

    def search(self, *a):
        """``re.Pattern.search``."""
        return (self._rx or self.compiled()).search(*a)

    def match(self, *a):
        """``re.Pattern.match``."""
        return (self._rx or self.compiled()).match(*a)

    def fullmatch(self, *a):
        """``re.Pattern.fullmatch``."""
        return (self._rx or self.compiled()).fullmatch(*a)

    def finditer(self, *a):
        """``re.Pattern.finditer``."""
        return (self._rx or self.compiled()).finditer(*a)

    def findall(self, *a):
        """``re.Pattern.findall``."""
        return (self._rx or self.compiled()).findall(*a)

    def sub(self, *a):
        """``re.Pattern.sub``."""
        return (self._rx or self.compiled()).sub(*a)

    def split(self, *a):
        """``re.Pattern.split``."""
        return (self._rx or self.compiled()).split(*a)


def lazy(pattern: str, flags: int = 0) -> LazyPattern:
    """Return a pattern compiled when first used."""
    return LazyPattern(pattern, flags)
