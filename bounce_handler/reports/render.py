r"""Output shared by the report verbs: rich tables, the sparkline, JSON, CSV and times.

Colour only on a terminal: rich's Console decides from ``isatty()`` (and honours
``NO_COLOR`` and ``COLUMNS``), so ``bounces report | mail`` and cron output are plain text.
Tables fit the terminal: long cells (addresses, diagnostics) wrap or are ellipsised rather
than pushing the table wider.

Every byte of a bounce is hostile, and what the store holds came from bounces: a recipient,
a sender or a diagnostic can carry ESC sequences (``ESC[2J`` clears the screen, ``ESC]0;``
retitles the window, ``ESC]8;;URL`` makes a link) or bidi overrides that reorder what the
administrator reads.  So the output of these verbs passes through three functions, one per
kind of reader:

- ``visible``: text for a terminal (tables, text lines, messages on stderr): every
  character Python does not call printable is shown as its escape (``\x1b``, ``\u202e``),
  never sent as itself.  ``console()`` applies it to every string rich renders, so a
  table cell cannot forget it; plain ``print`` paths call it themselves.
- ``json_text``: JSON whose strings hold only printable characters (``json`` itself
  escapes C0 controls but leaves DEL, C1 controls and bidi overrides raw).
- ``csv_cell``: a CSV cell a spreadsheet cannot run (OWASP, "CSV Injection"): a text cell
  beginning with ``= + - @``, TAB or CR (or ``'``, so the rule can be undone exactly, see
  ``csv_value``) gets a leading ``'``, and every text cell is quoted.

And one for times: ``utc_text`` writes every machine-readable timestamp as RFC 3339 UTC
with ``Z`` (the store holds naive UTC datetimes: store/models.py).
"""

from __future__ import annotations

import csv
import json
import sys

# Eight block heights (U+2581..U+2588) plus a space for an empty bucket: the spark-line
# idiom (Tufte), readable in any UTF-8 terminal.
BARS = " ▁▂▃▄▅▆▇█"


# -- terminals ---------------------------------------------------------------------------


def visible(text, newlines: bool = False) -> str:
    r"""`text` with every non-printable character shown as its escape, for a terminal.

    Non-printable is Python's ``str.isprintable``: C0 and C1 controls (ESC, BEL, CR, and
    U+009B, an 8-bit CSI some terminals obey), DEL, format characters (the bidi overrides
    and isolates of "Trojan Source", CVE-2021-42574; zero-width characters), line and
    paragraph separators, lone surrogates (which would make ``print`` raise) and
    unassigned code points; a space is printable.  They become ``\x1b``, ``\u202e``,
    ``\U000e0001``: visible and unambiguous, as ``repr`` writes them.  With `newlines`
    (multi-line text: a diagnostic, an advice, a raw message) ``\n`` and TAB stay as they
    are.  Idempotent on its output; ``None`` becomes "".
    """
    if text is None:
        return ""
    text = str(text)
    if text.isprintable():
        return text
    keep = "\n\t" if newlines else ""
    return "".join(c if c.isprintable() or c in keep else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def console(file=None, **kw):
    """A rich Console on `file` (stdout by default); colour only when it is a TTY.

    Every string it renders (cells, titles, lines given to ``print``) goes through
    ``visible`` before rich lays it out, so widths stay right and no control character
    from the store reaches the terminal.  Rich itself only strips BEL, BS, VT, FF and CR
    (rich.control.strip_control_codes) and passes ESC, NUL, DEL, C1 and bidi controls
    through: tests/cli/test_terminal_safety.py checks both.
    """
    from rich.console import Console

    class SafeConsole(Console):
        def render_str(self, text: str, *args, **kwargs):
            return super().render_str(visible(text, newlines=True), *args, **kwargs)

    return SafeConsole(file=file or sys.stdout, highlight=False, soft_wrap=False, **kw)


def progress(console, description: str, total: int | None):
    """A rich progress bar when the console is a terminal, else a no-op stand-in.

    Use as ``with progress(con, "pruning", n) as advance: advance(k)``.
    """
    from contextlib import contextmanager

    @contextmanager
    def _bar():
        if not console.is_terminal:
            yield lambda _n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console, transient=True,
        ) as p:
            task = p.add_task(description, total=total)
            yield lambda n=1: p.advance(task, n)

    return _bar()


def resample(values: list[int], width: int) -> list[int]:
    """Sum adjacent values so that at most `width` remain (keeps the total)."""
    if width <= 0 or len(values) <= width:
        return list(values)
    per = -(-len(values) // width)  # ceil
    return [sum(values[i : i + per]) for i in range(0, len(values), per)]


def sparkline(values: list[int]) -> str:
    """One character per value, height proportional to it; any non-zero value shows."""
    peak = max(values, default=0)
    if peak <= 0:
        return BARS[0] * len(values)
    out = []
    for v in values:
        if v <= 0:
            out.append(BARS[0])
        else:
            out.append(BARS[max(1, round(v / peak * (len(BARS) - 1)))])
    return "".join(out)


# -- JSON ----------------------------------------------------------------------------------


def json_text(obj, indent: int | None = 2) -> str:
    r"""`obj` as JSON (UTF-8 text kept readable) in which every string is printable.

    ``json.dumps(ensure_ascii=False)`` escapes C0 controls only; DEL, C1 controls, bidi
    overrides, lone surrogates and the like are written raw, which a terminal (``bounces
    report --format json`` without a pipe) would act on.  They are escaped as ``\uXXXX``
    (a surrogate pair above U+FFFF): the same JSON value, readable by any parser.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=str)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)


def _json_escape(c: str) -> str:
    n = ord(c)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


def write_json(obj, file=None) -> None:
    """Indented JSON and a newline (see ``json_text``; datetimes as ``utc_text``)."""
    fp = file or sys.stdout
    fp.write(json_text(obj) + "\n")


# -- CSV -----------------------------------------------------------------------------------

# OWASP "CSV Injection": a cell starting with one of these is a formula (or a DDE call) to
# Excel, LibreOffice and Google Sheets.  "'" is neutralised too, so that a value which
# really begins with "'" stays distinguishable from a neutralised one (csv_value).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value):
    """A CSV cell no spreadsheet evaluates: text starting with a formula character gets "'".

    Numbers stay numbers; None becomes "".  ``csv_value`` undoes it exactly.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_value(cell: str) -> str:
    """The value a ``csv_cell`` cell holds (`bounces suppress import` reads exports back)."""
    if len(cell) >= 2 and cell[0] == "'" and cell[1] in FORMULA_START:
        return cell[1:]
    return cell


def csv_writer(file):
    """A csv.writer that quotes every text cell; rows must go through ``csv_cell``.

    OWASP: a quoted cell stays one cell even where a spreadsheet splits on ';'.
    """
    return csv.writer(file, quoting=csv.QUOTE_NONNUMERIC)


def csv_text(header: list[str], rows) -> str:
    """RFC 4180 CSV with a header row, every cell through ``csv_cell``.

    CRLF line ends, as the RFC and spreadsheets expect.
    """
    import io

    buf = io.StringIO()
    w = csv_writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def write_csv(header: list[str], rows, file=None) -> None:
    """``csv_text`` to `file` (stdout by default), through ``write_data``."""
    write_data(csv_text(header, rows), file)


def write_data(text: str, file=None) -> None:
    """Write a document (CSV, an access map) exactly, unless `file` is a terminal.

    On a terminal it is for reading, and its cells are a stranger's: it goes through
    ``visible`` (CRLF line ends shown as line breaks).  Into a file or a pipe the bytes
    stay exact.
    """
    fp = file or sys.stdout
    isatty = getattr(fp, "isatty", None)
    if isatty is not None and isatty():
        text = visible(text.replace("\r\n", "\n"), newlines=True)
    fp.write(text)


# -- times ---------------------------------------------------------------------------------


def utc_text(value):
    """An RFC 3339 UTC timestamp, ``2026-11-24T10:15:00Z`` (microseconds when there are).

    `value` is a naive UTC datetime (the store's convention), an aware one (converted), or
    the text SQLite gives back for an aggregate (``2026-11-24 10:15:00.123456``); None
    stays None.
    """
    if value is None:
        return None
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value.strip().removesuffix("Z"))
    if value.tzinfo is not None:
        from datetime import UTC

        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def short_time(value) -> str:
    """``2026-11-24 10:15`` (a report's resolution) or ``-``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value.replace("T", " ")[:16]
    return value.strftime("%Y-%m-%d %H:%M")
