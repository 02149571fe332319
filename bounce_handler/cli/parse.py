"""Show what the parser sees in bounce messages (files, directories, mbox files, stdin).

Each message goes through the same parse → classify path the pipe uses and prints one
result.  PATH is a message file, a directory (walked, sorted), an mbox file (split on its
"From " lines; "index" is the message's position) or "-" for stdin (the default).

Formats:
  jsonl  one JSON object per message (default; a stable, public shape):
         {"source", "index", "kind", "recipients": [{"address", "action", "status",
          "reason", "hard", "diagnostic", "remote_mta", "detector", "reply_code",
          "phase"}],
          "original": {"sender", "message_id", "from", "subject", "sasl_login"},
          "error"}
  json   the same objects as one JSON array
  table  one line per recipient, for people

Exit status: 0 when every input was read (unparseable messages still get their line, with
"error" set), 1 when a path could not be read.

Example:
  bounces parse /var/spool/bounces/ --format table
  bounces parse ~/mail/bounces.mbox | jq -c 'select(.kind == "bounce") | .recipients[]'

"""

from __future__ import annotations

import os
import re
import sys

from bounce_handler.cli import verb_parser

FORMATS = ("jsonl", "json", "table")
RECIPIENT_KEYS = ("address", "action", "status", "reason", "hard", "diagnostic",
                  "remote_mta", "detector", "reply_code", "phase")
ORIGINAL_KEYS = ("sender", "message_id", "from", "subject", "sasl_login")

# An mbox "From " separator: "From sender@example.com Tue Nov 24 10:00:00 2026"
# (the sender may be MAILER-DAEMON or anything without blanks; then a day name).
_MBOX_FROM = re.compile(rb"^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ", re.M)


def register(subparsers) -> None:
    """Add `bounces parse`."""
    p = verb_parser(subparsers, "parse", __doc__)
    p.add_argument("paths", nargs="*", metavar="PATH", default=["-"],
                   help="message file, directory, mbox file or - for stdin (default -)")
    p.add_argument("--format", choices=FORMATS, default="jsonl",
                   help="output format (default jsonl)")
    p.set_defaults(func=run)


def split_mbox(data: bytes) -> list:
    """Split an mbox file into messages; a single message (even with a "From " line) is one."""
    starts = [m.start() for m in _MBOX_FROM.finditer(data)]
    if len(starts) <= 1:
        return [data]
    if starts[0] != 0:
        starts.insert(0, 0)
    out = []
    for i, s in enumerate(starts):
        chunk = data[s : starts[i + 1] if i + 1 < len(starts) else len(data)]
        # mboxrd/mboxo quoting: ">From " at the start of a body line was "From ".
        out.append(chunk.replace(b"\n>From ", b"\nFrom "))
    return out


def inputs(paths: list):
    """(source, index, bytes or None, error) for every message under the given paths."""
    for path in paths:
        if path == "-":
            data = sys.stdin.buffer.read()
            for i, msg in enumerate(split_mbox(data)):
                yield "-", i, msg, None
            continue
        if os.path.isdir(path):
            files = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names))
        else:
            files = [path]
        for f in files:
            try:
                with open(f, "rb") as fp:
                    data = fp.read()
            except OSError as e:
                yield f, 0, None, f"cannot read: {e.strerror or e}"
                continue
            for i, msg in enumerate(split_mbox(data)):
                yield f, i, msg, None


def record(source: str, index: int, result, error: str | None = None) -> dict:
    """Build the public JSON shape of one message's result."""
    if result is None:
        return {"source": source, "index": index, "kind": "unknown", "recipients": [],
                "original": dict.fromkeys(ORIGINAL_KEYS), "error": error}
    o = result.original
    return {
        "source": source,
        "index": index,
        "kind": result.kind,
        "recipients": [{k: getattr(r, k) for k in RECIPIENT_KEYS} for r in result.recipients],
        "original": {
            "sender": o.sender,
            "message_id": o.message_id,
            "from": o.from_,
            "subject": o.subject,
            "sasl_login": o.sasl_login,
        },
        "error": result.error,
    }


def _table_lines(rec: dict):
    from bounce_handler.reports.render import visible

    where = rec["source"] if not rec["index"] else f"{rec['source']}:{rec['index']}"
    if rec["error"]:
        yield f"{visible(where)}\t{rec['kind']}\terror: {visible(rec['error'])}"
        return
    if not rec["recipients"]:
        yield f"{where}\t{rec['kind']}\t-"
    for r in rec["recipients"]:
        hard = {True: "hard", False: "soft", None: "-"}[r["hard"]]
        # Fields from the message itself: shown, never obeyed, by the terminal.
        yield "\t".join(visible(v) for v in (
            where, rec["kind"], r["address"] or "-", r["status"] or "-", r["reason"] or "-",
            hard, r["detector"] or "-"))


def run(args, settings) -> int:
    """Parse every input and print the results in the chosen format."""
    from bounce_handler.parse import parse
    from bounce_handler.reports.render import json_text

    fmt = getattr(args, "format", "jsonl") or "jsonl"
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        # UTF-8 addresses (RFC 6533) are printed as they are, whatever the locale says.
        out.reconfigure(encoding="utf-8", errors="backslashreplace")
    unreadable = 0
    collected = []
    if fmt == "table":
        out.write("source\tkind\taddress\tstatus\treason\thard\tdetector\n")
    for source, index, data, error in inputs(args.paths or ["-"]):
        if data is None:
            unreadable += 1
            rec = record(source, index, None, error)
            print(f"bounces parse: {source}: {error}", file=sys.stderr)
        else:
            rec = record(source, index, parse(data))
        if fmt == "jsonl":
            out.write(json_text(rec, indent=None) + "\n")
        elif fmt == "json":
            collected.append(rec)
        else:
            for line in _table_lines(rec):
                out.write(line + "\n")
    if fmt == "json":
        out.write(json_text(collected) + "\n")
    out.flush()
    return 1 if unreadable else 0
