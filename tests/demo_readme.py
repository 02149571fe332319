"""The demo's output as README.md shows it: run, normalise, compare or write.

    .venv/bin/python -m tests.demo_readme           # exit 1 and a diff when README differs
    .venv/bin/python -m tests.demo_readme --write   # put the current output into README.md

tests/test_demo.py runs the same comparison.  README holds a real run, times and all;
the comparison normalises both sides: dates and times (all to 2026-11-24 10:21, keeping
every width, so tables stay aligned), the peak and the line of the per-hour chart (a run
straddling an hour splits its bars), trailing blanks (rich pads titles), and the venv
set-up line a fresh clone prints once.  Everything else must be what `bash scripts/demo`
prints.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- begin: output of `bash scripts/demo` (tests/test_demo.py checks it) -->"
END = "<!-- end: output of `bash scripts/demo` -->"
COLUMNS = "100"  # the terminal width the README's tables are shown at

SPARK = re.compile(r"^[ \u2581-\u2588]+$")


def _time(m: re.Match) -> str:
    # Same shape and width: a date, a time, seconds, fractions, T and Z stay where they are.
    date, sep, hm, sec = m.group("date"), m.group("sep"), m.group("hm"), m.group("sec") or ""
    out = ("2026-11-24" if date and len(date) == 10 else "11-24" if date else "") + (sep or "")
    out += "10:21" if hm else ""
    out += ":07" if sec else ""
    return out + (m.group("tail") or "")


TIME = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d|(?<![\d-])\d\d-\d\d)(?P<sep>[T ])(?P<hm>\d\d:\d\d)"
    r"(?P<sec>:\d\d)?(?P<tail>Z?)"
)
DATE_ALONE = re.compile(r"\b\d{4}-\d\d-\d\d\b")


def normalise(text: str) -> str:
    """What may differ between two runs of the demo, made the same."""
    out = []
    for line in text.splitlines():
        if line.startswith("setting up .venv"):
            continue
        line = TIME.sub(_time, line)
        line = DATE_ALONE.sub("2026-11-24", line)
        line = re.sub(r"^Per (hour|\d+ hours), peak [\d,]+:", "Per hour, peak N:", line)
        if line.strip() and SPARK.match(line):
            line = "<chart>"
        out.append(line.rstrip())
    return "\n".join(out).strip("\n") + "\n"


def run_demo() -> str:
    """`bash scripts/demo`, as a user runs it (stdout and stderr, in order)."""
    env = dict(os.environ, COLUMNS=COLUMNS)
    env.pop("BOUNCE_HANDLER_CONFIG", None)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "demo")], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200)
    text = proc.stdout.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"bash scripts/demo exited {proc.returncode}:\n{text}")
    return text


def readme_block(text: str | None = None) -> str:
    """The demo output README.md shows (between the BEGIN and END markers, in a fence)."""
    text = README.read_text() if text is None else text
    start, end = text.index(BEGIN), text.index(END)
    block = text[start + len(BEGIN) : end].strip("\n")
    lines = block.splitlines()
    assert lines[0].startswith("```") and lines[-1] == "```", "the block is one fence"
    return "\n".join(lines[1:-1]) + "\n"


def shown(output: str) -> str:
    """The output as README shows it: a real run, without trailing blanks and set-up noise."""
    lines = [ln.rstrip() for ln in output.splitlines() if not ln.startswith("setting up .venv")]
    return "\n".join(lines).strip("\n") + "\n"


def write(output: str) -> None:
    """Put `output` (a real run: its own times) into README.md between the markers."""
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END)
    new = f"{BEGIN}\n```text\n{shown(output)}```\n"
    README.write_text(text[:start] + new + text[end:])


def diff(expected: str, actual: str) -> str:
    return "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                        "README.md", "bash scripts/demo"))


def main(argv: list[str]) -> int:
    output = run_demo()
    if "--write" in argv:
        write(output)
        return 0
    d = diff(normalise(readme_block()), normalise(output))
    sys.stdout.write(d)
    return 1 if d else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
