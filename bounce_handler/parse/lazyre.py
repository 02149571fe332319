"""Regular expressions compiled on first use, from a precompiled table when there is one.

The pipe parses one message per process, so every pattern compiled at import is paid for
on every bounce even when that message never needs it (compiling the detectors' and
classify's patterns up front cost ~30 ms here).  ``lazy(pattern, flags)`` returns an
object with the ``re.Pattern`` methods the parser uses; it compiles once, when first asked.

Even one vendor-format bounce paid ~7 ms more than a standard DSN: ~4.5 ms to import
``re`` (enum and functools come with it) and ~2.5 ms for ``re``'s pure-Python parser and
code generator to compile the five or so patterns its detector uses.  Neither is needed
to *run* a pattern: the regex engine is the builtin C module ``_sre``, and
``_sre.compile(pattern, flags, code, groups, groupindex, indexgroup)`` is the last step of
every ``re.compile`` (CPython Lib/re/_compiler.py, ``compile``).  So ``bounces config
check`` and ``bounces db upgrade`` (via ``settings.write_cache``) store each pattern's
``code`` in a marshal table beside the configuration (``parse/precompile.py``), and here
a pattern found in it is handed straight to ``_sre``: no ``re`` import, no compiling.

Only an exact match is used: the key is the pattern text and flags, the table as a whole
is tied to the interpreter (``sys.hexversion``, ``_sre.MAGIC``, ``_sre.CODESIZE``), and
``precompile.build`` only stores code whose Pattern compares equal to ``re.compile``'s
(Pattern equality compares the code itself).  A missing, stale or foreign table costs
nothing but the ordinary ``re.compile``; ``_sre`` validates code it is given.
"""

from __future__ import annotations

import sys

# The table's format; bumped if the entries' shape changes.
TABLE_FORMAT = 1

# The struct format of one code word (``_sre.CODESIZE`` is 4 on every CPython today; the
# header ties a table to the interpreter that wrote it anyway).
CODE_FORMAT = "I"

# Every pattern made by ``lazy`` (precompile.build compiles them all).
ALL: list = []

_table_path: str | None = None
_table: dict | None = None


def header() -> tuple:
    """What a table must have been built with to be used by this interpreter."""
    import _sre

    return (TABLE_FORMAT, sys.hexversion, _sre.MAGIC, _sre.CODESIZE)


def use_table(path: str | None) -> None:
    """Take precompiled patterns from ``path`` (read on the first compile; None: none)."""
    global _table_path, _table
    _table_path, _table = path, None


def read_table(path: str | None) -> dict:
    """The table at ``path`` if this interpreter can use it, else {} (missing, foreign)."""
    if not path:
        return {}
    # The file format of the config cache it is written beside (settings.write_cache).
    from bounce_handler.settings import read_stamped

    table = read_stamped(path, header())
    return table if isinstance(table, dict) else {}


def _precompiled(pattern: str, flags: int):
    """The Pattern built from the table's code, or None (then ``re.compile`` it)."""
    global _table
    if _table is None:
        _table = read_table(_table_path)
    entry = _table.get((pattern, flags))
    if entry is None:
        return None
    import _sre

    try:
        return _sre.compile(pattern, *sre_args(entry))
    except Exception:  # noqa: BLE001 - code _sre refuses: compile it the ordinary way
        return None


def sre_args(entry: tuple) -> tuple:
    """A table entry as ``_sre.compile``'s arguments (the code words back to a list)."""
    flags, words, groups, groupindex, indexgroup = entry
    return flags, memoryview(words).cast(CODE_FORMAT).tolist(), groups, groupindex, indexgroup


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
        ALL.append(self)

    def compiled(self):
        """Return the real ``re.Pattern`` (compiled now if it was not yet)."""
        rx = self._rx
        if rx is None:
            rx = _precompiled(self.pattern, self.flags)
            if rx is None:
                import re

                rx = re.compile(self.pattern, self.flags)
            self._rx = rx
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
