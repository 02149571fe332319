"""A tiny JSON encoder for the flat evidence dicts, so the hot path never imports json.

``import json`` costs about a millisecond in a fresh process (a tenth of the pipe's whole
budget), and a compromised-sender flag is updated by every bounce of the spam run.  The
evidence is flat: str, int, float, bool, None and lists of those.  The output is standard
JSON (RFC 8259) that ``json.loads`` reads back; tests/judge/test_evidence.py checks that.
"""

from __future__ import annotations

# RFC 8259 section 7: quotation mark, reverse solidus and the control characters must be
# escaped; U+2028/U+2029 too, so the text is also safe to embed in JavaScript.  A
# str.translate table rather than a regex: compiling one would cost more at import than
# everything else in this module.
_TABLE: dict[int, str] = {}


def _table() -> dict[int, str]:
    # Built on first use (a flag raised), not at import: the pipe imports this module for
    # every bounce and most bounces raise nothing.
    if not _TABLE:
        _TABLE.update({i: f"\\u{i:04x}" for i in range(32)})
        _TABLE.update({0x2028: "\\u2028", 0x2029: "\\u2029", ord('"'): '\\"',
                       ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r",
                       ord("\t"): "\\t", ord("\b"): "\\b", ord("\f"): "\\f"})
        # Lone surrogates (bytes a decoder kept with surrogateescape) cannot be encoded as
        # UTF-8 by the database driver; JSON's \uXXXX form carries them, as json.dumps does.
        _TABLE.update({i: f"\\u{i:04x}" for i in range(0xD800, 0xE000)})
    return _TABLE


def _value(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return "null"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return dumps(v)
    return '"' + str(v).translate(_TABLE or _table()) + '"'


def dumps(obj: dict) -> str:
    """JSON text of a dict (keys as strings, values as above)."""
    return "{" + ", ".join(_value(str(k)) + ": " + _value(v) for k, v in obj.items()) + "}"
