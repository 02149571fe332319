"""Output shared by the report verbs: rich tables, the sparkline, JSON and CSV.

Colour only on a terminal: rich's Console decides from ``isatty()`` (and honours
``NO_COLOR`` and ``COLUMNS``), so ``bounces report | mail`` and cron output are plain text.
Tables fit the terminal: long cells (addresses, diagnostics) wrap or are ellipsised rather
than pushing the table wider.
"""

from __future__ import annotations

import csv
import json
import sys

# Eight block heights (U+2581..U+2588) plus a space for an empty bucket: the spark-line
# idiom (Tufte), readable in any UTF-8 terminal.
BARS = " ▁▂▃▄▅▆▇█"


def console(file=None, **kw):
    """A rich Console on `file` (stdout by default); colour only when it is a TTY."""
    from rich.console import Console

    return Console(file=file or sys.stdout, highlight=False, soft_wrap=False, **kw)


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


def write_json(obj, file=None) -> None:
    """Indented JSON and a newline (datetimes must already be strings)."""
    fp = file or sys.stdout
    json.dump(obj, fp, indent=2, ensure_ascii=False, default=str)
    fp.write("\n")


def write_csv(header: list[str], rows, file=None) -> None:
    """RFC 4180 CSV with a header row (CRLF line ends, as the RFC and spreadsheets expect)."""
    w = csv.writer(file or sys.stdout)
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])


def short_time(value) -> str:
    """``2026-11-24 10:15`` (a report's resolution) or ``-``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value.replace("T", " ")[:16]
    return value.strftime("%Y-%m-%d %H:%M")
