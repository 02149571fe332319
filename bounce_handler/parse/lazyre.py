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
check`` and ``bounces db upgrade`` (cli/caches.py) store each pattern's ``code`` in a
marshal table beside the configuration (built by ``parse/precompile.py``), and here a
pattern found in it is handed straight to ``_sre``: no ``re`` import, no compiling.

Only an exact, intact entry is used.  The key is the pattern text and flags; the table as
a whole is tied to the interpreter (``header()``: ``sys.hexversion``, ``_sre.MAGIC``,
``_sre.CODESIZE``); ``precompile.build`` only stores code whose Pattern compares equal to
``re.compile``'s (Pattern equality compares the code itself); and each entry carries a
SHA-256 of its key and its code (``digest``), checked when the entry is first used.
``_sre`` validates that code is well formed, not that it is *this* pattern's: a table
with a valid header and swapped or altered entries ran another pattern's code (a bounce
recorded with status "-" and reason "undefined", issue 14).  An entry whose digest does
not match makes the whole table unusable for the process; a missing, stale, foreign or
damaged table costs nothing but the ordinary ``re.compile`` (and ``bounces doctor`` says
so).  The check costs ~7 µs a pattern used, nothing for a standard DSN (which uses none).

This module opens no file: the edge that knows where the table lives (the pipe, beside
its configuration) hands ``use_table`` a function that reads it, called once, on the
first compile.
"""

from __future__ import annotations

import sys

# The table's format; bumped if the entries' shape changes (2: entries carry a digest).
TABLE_FORMAT = 2

# The struct format of one code word (``_sre.CODESIZE`` is 4 on every CPython today; the
# header ties a table to the interpreter that wrote it anyway).
CODE_FORMAT = "I"

# Every pattern made by ``lazy`` (precompile.build compiles them all).
ALL: list = []

_loader = None
_table: dict | None = None


def header() -> tuple:
    """What a table must have been built with to be used by this interpreter."""
    import _sre

    return (TABLE_FORMAT, sys.hexversion, _sre.MAGIC, _sre.CODESIZE)


def use_table(loader) -> None:
    """Take precompiled patterns from the dict ``loader()`` returns (None: no table).

    ``loader`` is called at most once, when a pattern is first compiled (a standard DSN
    compiles none, so it never pays for reading the table); anything but a dict, or an
    exception, means no table.
    """
    global _loader, _table
    _loader, _table = loader, None


def _entries() -> dict:
    global _table
    if _table is None:
        table = None
        if _loader is not None:
            try:
                table = _loader()
            except Exception:  # noqa: BLE001 - an unreadable table is no table
                table = None
        _table = table if isinstance(table, dict) else {}
    return _table


def _sha256():
    try:
        from _sha256 import sha256  # CPython 3.11's builtin: no OpenSSL load on the pipe path
    except ImportError:  # pragma: no cover - 3.12+ names it _sha2
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256
    return sha256


def digest(pattern: str, flags: int, args: tuple) -> bytes:
    """SHA-256 of a pattern's key (text, flags) and its ``_sre.compile`` arguments."""
    eflags, words, groups, groupindex, indexgroup = args
    h = _sha256()(repr((pattern, flags, eflags, groups, groupindex, indexgroup)).encode(
        "utf-8", "surrogatepass"))
    h.update(words)
    return h.digest()


def checked(pattern: str, flags: int, entry) -> tuple | None:
    """The ``_sre.compile`` arguments of a table entry if it is intact and this key's."""
    if type(entry) is not tuple or len(entry) != 6:
        return None
    args = entry[:5]
    try:
        ok = digest(pattern, flags, args) == entry[5]
    except (TypeError, ValueError):  # fields of the wrong types
        return None
    return args if ok else None


def verify(table) -> bool:
    """Whether every entry of a table is intact and filed under its own key (doctor)."""
    if not isinstance(table, dict) or not table:
        return False
    for key, entry in table.items():
        if type(key) is not tuple or len(key) != 2 or checked(*key, entry) is None:
            return False
    return True


def _precompiled(pattern: str, flags: int):
    """The Pattern built from the table's code, or None (then ``re.compile`` it)."""
    global _table
    entry = _entries().get((pattern, flags))
    if entry is None:
        return None
    args = checked(pattern, flags, entry)
    if args is None:
        # Swapped or altered: nothing else in this table can be trusted either.
        _table = {}
        return None
    import _sre

    try:
        return _sre.compile(pattern, *sre_args(args))
    except Exception:  # noqa: BLE001 - code _sre refuses: compile it the ordinary way
        _table = {}
        return None


def sre_args(entry: tuple) -> tuple:
    """A table entry as ``_sre.compile``'s arguments (the code words back to a list)."""
    flags, words, groups, groupindex, indexgroup = entry[:5]
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
