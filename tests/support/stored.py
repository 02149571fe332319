"""What a one-line text column holds for a given input: the spec, written out for tests.

store/rows.py ``clean_text`` is the implementation; this is the rule it must follow, said
independently (so a test comparing the two is not comparing the code with itself): in a
one-line column every white-space character becomes " ", every other character that is
not printable (C0/C1 controls, ESC, DEL, NUL, lone surrogates, format characters)
becomes U+FFFD, and a value longer than the column ends in "…".
"""

from __future__ import annotations

import unicodedata


def one_line(text: str, limit: int = 512) -> str:
    """`text` as a one-line column of `limit` characters stores it."""
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if c == " " or not (cat.startswith(("C", "Z"))):
            out.append(c)
        elif c.isspace():
            out.append(" ")
        else:
            out.append("\ufffd")
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 1] + "…"
