"""Issue 16: machine-readable output an administrator can feed to other programs.

- every timestamp in JSON and CSV is RFC 3339 UTC with "Z" (``flags list`` already was;
  ``report``, ``show``, ``suppress list`` and ``export`` wrote local-looking times with no
  zone);
- ``report --format csv`` keeps the ``(others)`` row the table shows, so the counts add up;
- ``show ADDRESS`` lays its table out readably on an 80-column terminal.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

from tests.cli.conftest import DEAD, DEFERRED, FULL, SPAMMER, on_terminal

# RFC 3339 section 5.6, as we write it: date "T" time, optional fraction, "Z".
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
ALL = len(DEAD) + len(DEFERRED) + len(FULL)


def utc(text: str) -> datetime:
    assert RFC3339_Z.match(text), text
    return datetime.fromisoformat(text)  # 3.11 reads "Z" as UTC


def all_times(obj, keys=("since", "until", "first", "last", "start", "raised_at",
                         "updated_at", "occurred_at", "received_at", "created_at",
                         "stored_at", "acked_at", "cleared_at")):
    """Every non-null value under one of `keys`, anywhere in `obj`."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys and isinstance(v, str):
                yield v
            else:
                yield from all_times(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_times(v, keys)


def test_report_json_times_are_rfc3339_utc(populated):
    for by in ("sender", "day"):
        proc = populated.bounces("report", "--since", "7d", "--by", by, "--format", "json")
        doc = json.loads(proc.stdout)
        times = list(all_times(doc))
        # period (2), live flags (2 each), groups (first/last or none), series points.
        assert len(times) > 2 + 2 * len(doc["flags"])
        for t in times:
            assert utc(t).tzinfo is not None
        if by == "day":
            assert all(RFC3339_Z.match(g["key"]) for g in doc["groups"])


def test_report_csv_times_and_the_others_row(populated):
    proc = populated.bounces("report", "--since", "7d", "--by", "recipient", "--top", "2",
                             "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode())))
    assert [r["key"] for r in rows][-1] == "(others)"
    # The rows add up to the total, as in the table: nothing is silently dropped.
    assert sum(int(r["count"]) for r in rows) == ALL
    assert abs(sum(float(r["share"]) for r in rows) - 1.0) < 0.001
    for r in rows[:-1]:
        assert utc(r["first"]) <= utc(r["last"])
    assert rows[-1]["first"] == rows[-1]["last"] == ""
    # All groups shown: no (others) row.
    proc = populated.bounces("report", "--since", "7d", "--by", "recipient", "--top", "50",
                             "--format", "csv")
    assert "(others)" not in proc.stdout.decode()


def test_show_json_times_are_rfc3339_utc(populated):
    (eid,) = populated.query("SELECT id FROM bounce_events WHERE recipient = ?", (DEAD[0],))[0]
    doc = json.loads(populated.bounces("show", str(eid), "--format", "json").stdout)
    utc(doc["occurred_at"]), utc(doc["message"]["received_at"]), utc(doc["flags"][0]["raised_at"])
    for t in all_times(doc):
        utc(t)
    rows = json.loads(populated.bounces("show", SPAMMER, "--format", "json").stdout)
    assert rows and all(utc(r["occurred_at"]) for r in rows)


def test_suppress_and_export_times_are_rfc3339_utc(populated):
    populated.bounces("suppress", "add", "recipient", "manual@example.org", "--note", "n")
    doc = json.loads(populated.bounces("suppress", "list", "--format", "json").stdout)
    assert doc and all(utc(r["created_at"]) for r in doc)
    rows = list(csv.DictReader(io.StringIO(
        populated.bounces("suppress", "list", "--format", "csv").stdout.decode())))
    assert rows and all(utc(r["since"]) for r in rows)
    doc = json.loads(populated.bounces("export", "dead-recipients", "--format", "json").stdout)
    assert len(doc["entries"]) == len(DEAD) + 1
    assert all(utc(e["since"]) for e in doc["entries"])
    rows = list(csv.DictReader(io.StringIO(
        populated.bounces("export", "dead-recipients", "--format", "csv").stdout.decode())))
    assert all(utc(r["since"]) for r in rows)


def test_show_address_is_readable_on_80_columns(populated, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # the terminal's width, for rich
    long = "averyveryverylongname.with.dots.and.more@example.net"
    from tests.cli.conftest import feed, user_unknown

    feed(populated, user_unknown(long), long)
    status, out = on_terminal(populated, "show", SPAMMER)
    assert status == 0, out
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode())  # rich's colours
    lines = text.replace("\r", "").splitlines()
    assert max(len(ln) for ln in lines) <= 80
    # One event per line: the short fields never wrap, so each event's id, time, status
    # and reason sit on one line; the queried address is not repeated on every row.
    ids = [r[0] for r in populated.query(
        "SELECT id FROM bounce_events WHERE sender = ? ORDER BY id DESC", (SPAMMER,))]
    for eid in ids:
        [line] = [ln for ln in lines if re.match(rf"^\s*{eid}\s", ln)]
        assert re.search(r"\d\d-\d\d \d\d:\d\d\s+bounce\s+5\.1\.1\s+userunknown", line), line
    assert "as sender" in lines[0] and SPAMMER in lines[0]
    assert sum(SPAMMER in ln for ln in lines) == 1
    # The long recipient folds within its own column (at most 2 lines), whole.
    text = "".join(ln.split()[-1] if ln.split() else "" for ln in lines)
    assert long in text
