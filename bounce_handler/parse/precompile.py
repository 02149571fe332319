"""Build the table of precompiled patterns that ``parse/lazyre.py`` reads.

``cli/caches.py`` writes it beside the configuration when the administrator's ``bounces
config check`` / ``db upgrade`` run, never the pipe: building imports ``re`` and every
detector.  See lazyre's docstring for why, and for the digest each entry carries.
"""

from __future__ import annotations

from bounce_handler.parse import lazyre


def entry(pattern: str, flags: int) -> tuple:
    """The arguments after ``pattern`` that ``_sre.compile`` needs, and their digest.

    The same steps as CPython's ``re._compiler.compile``; the result is checked against
    ``re.compile`` itself (Pattern equality compares flags, pattern text and code), so a
    CPython whose internals moved on raises here instead of storing a wrong table.
    """
    import _sre
    import re
    from re import _compiler, _parser

    reference = re.compile(pattern, flags)
    parsed = _parser.parse(pattern, flags)
    code = _compiler._code(parsed, flags)
    groupindex = dict(reference.groupindex)
    indexgroup = [None] * (reference.groups + 1)
    for name, i in groupindex.items():
        indexgroup[i] = name
    # The code travels as the machine words _sre keeps it in (CODESIZE bytes each, native
    # order; the table is only read by this interpreter): a list of ints would make the
    # table ~100 KB of marshalled ints to decode on every vendor-format bounce.
    words = memoryview(bytearray(len(code) * _sre.CODESIZE)).cast(lazyre.CODE_FORMAT)
    for i, op in enumerate(code):
        words[i] = op
    args = (int(reference.flags), words.tobytes(), reference.groups, groupindex,
            tuple(indexgroup))
    if _sre.compile(pattern, *lazyre.sre_args(args)) != reference:
        raise ValueError(f"precompiled code differs from re.compile for {pattern[:60]!r}")
    return (*args, lazyre.digest(pattern, flags, args))


def build() -> dict:
    """{(pattern, flags): entry} for every pattern of every detector and of classify."""
    from bounce_handler import classify  # noqa: F401 - its patterns register on import
    from bounce_handler.parse import registry

    registry.detectors()
    return {(p.pattern, p.flags): entry(p.pattern, p.flags) for p in lazyre.ALL}
