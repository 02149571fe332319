"""`bounces report`: every grouping, format and kind of period, on a store the pipe filled."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import timedelta

import pytest

from bounce_handler.reports import GROUPINGS
from tests.cli.conftest import (
    DAYS_BACK,
    DEAD,
    DEFERRED,
    FULL,
    FULL_SENDER,
    SPAMMER,
    on_terminal,
    utcnow,
)
from tests.conftest import script

RECENT = len(DEAD) + len(DEFERRED)  # events within the last 24 h
ALL = RECENT + len(FULL)


def report(store, *args: str) -> dict:
    proc = store.bounces("report", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def groups(doc: dict) -> dict:
    return {g["key"]: g["count"] for g in doc["groups"]}


# -- periods -----------------------------------------------------------------------------

def test_default_period_is_the_last_24_hours(populated):
    doc = report(populated)
    assert doc["total"] == RECENT
    assert doc["totals"]["bounce"] == {"hard": len(DEAD), "soft": 0, "other": 0,
                                       "total": len(DEAD)}
    assert doc["totals"]["delay"]["total"] == len(DEFERRED)
    assert doc["quarantined"] == 1
    since = doc["period"]["since"]
    until = doc["period"]["until"]
    from datetime import datetime

    span = datetime.fromisoformat(until) - datetime.fromisoformat(since)
    assert span == timedelta(hours=24)


def test_longer_relative_period_reaches_the_backdated_bounces(populated):
    doc = report(populated, "--since", f"{DAYS_BACK + 1}d")
    assert doc["total"] == ALL
    assert groups(doc)["mailboxfull"] == len(FULL)


def test_absolute_dates_select_exactly_that_day(populated):
    day = (utcnow() - timedelta(days=DAYS_BACK)).date()
    doc = report(populated, "--since", day.isoformat(),
                 "--until", (day + timedelta(days=1)).isoformat(), "--by", "sender")
    # Backdating keeps the time of day, so the day before or after may hold them only if
    # the test runs within seconds of midnight; they are all on one side of it.
    assert groups(doc) == {FULL_SENDER: len(FULL)}
    assert doc["period"]["since"].startswith(day.isoformat())


def test_until_before_everything_gives_an_empty_report(populated):
    doc = report(populated, "--since", "30d", "--until", "10d")
    assert doc["total"] == 0 and doc["groups"] == [] and doc["others"] == 0
    assert all(p["count"] == 0 for p in doc["series"]["points"])


def test_iso_datetime_with_offset_is_converted_to_utc(populated):
    now = utcnow()
    start = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    doc = report(populated, "--since", start + "+00:00")
    assert doc["total"] == RECENT
    doc = report(populated, "--since", start + "+01:00")  # one hour earlier in UTC terms
    # RFC 3339 UTC, "Z" (issue 16: report --format json times carried no zone).
    assert doc["period"]["since"] == (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--since", "lastweek"), "neither a duration"),
        (("--since", "today", "--until", "yesterday"), "empty period"),
        (("--since", "12x"), "neither a duration"),
        (("--since", "1y", "--by", "hour"), "use --by day"),
    ],
)
def test_bad_periods_are_usage_errors(populated, args, message):
    proc = populated.bounces("report", *args)
    assert proc.returncode == 64
    assert message in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


# -- groupings ---------------------------------------------------------------------------

EXPECTED = {
    "sender": {SPAMMER: len(DEAD), "mallory": len(DEFERRED), FULL_SENDER: len(FULL)},
    "recipient": {**{a: 1 for a in DEAD}, **{a: 1 for a in FULL}, **{a: 1 for a in DEFERRED}},
    "domain": {"example.net": 4, "example.com": 2, "example.org": 3, "yahoo.com": 2},
    "reason": {"userunknown": len(DEAD), "mailboxfull": len(FULL), "ratelimited": len(DEFERRED)},
    "status": {"5.1.1": len(DEAD), "5.2.2": len(FULL), "4.7.0": len(DEFERRED)},
}


@pytest.mark.parametrize("by", GROUPINGS)
def test_every_grouping(populated, by):
    doc = report(populated, "--since", "7d", "--by", by, "--top", "50")
    assert doc["by"] == by
    assert doc["total"] == ALL
    if by in EXPECTED:
        assert groups(doc) == EXPECTED[by]
        counts = [g["count"] for g in doc["groups"]]
        assert counts == sorted(counts, reverse=True)  # busiest first
        assert doc["others"] == 0
    else:
        # Time buckets: every bucket of the period in order, summing to the total.
        keys = [g["key"] for g in doc["groups"]]
        assert keys == sorted(keys)
        assert all(k.endswith(":00:00Z") and "T" in k for k in keys)  # RFC 3339 UTC starts
        assert sum(g["count"] for g in doc["groups"]) == ALL
        assert len(keys) == (8 if by == "day" else 7 * 24 + 1)
        busy = [g for g in doc["groups"] if g["count"]]
        assert sum(g["count"] for g in busy) == ALL and len(busy) in (2, 3, 4)


def test_top_n_keeps_the_busiest_and_counts_the_rest(populated):
    doc = report(populated, "--since", "7d", "--by", "sender", "--top", "1")
    assert groups(doc) == {SPAMMER: len(DEAD)}
    assert doc["others"] == ALL - len(DEAD)
    # --top applies to the dead recipients on top; the urgent kinds are always all there.
    assert [f["kind"] for f in doc["flags"]] == [
        "compromised-sender", "throttled-destination", "dead-recipient"]
    assert doc["flags_live"] == 8
    assert doc["dead_recipients"]["live"] == len(DEAD)
    assert doc["dead_recipients"]["listed"] == 1


def test_groups_carry_their_live_flag(populated):
    doc = report(populated, "--by", "sender")
    flagged = {g["key"]: g["flag"] for g in doc["groups"]}
    assert flagged[SPAMMER]["state"] == "open" and flagged[SPAMMER]["rule"] == "R3"
    assert flagged["mallory"] is None
    doc = report(populated, "--by", "recipient")
    assert all(g["flag"] and g["flag"]["rule"] == "R1"
               for g in doc["groups"] if g["key"] in DEAD)
    # The throttling flag is raised on the provider ("yahoo"), shown on its domains.
    doc = report(populated, "--by", "domain")
    flagged = {g["key"]: g["flag"] for g in doc["groups"]}
    assert flagged["yahoo.com"]["rule"] == "R8" and flagged["example.net"] is None


def test_kind_filter(populated):
    doc = report(populated, "--kind", "delay", "--by", "domain")
    assert doc["total"] == len(DEFERRED)
    assert groups(doc) == {"yahoo.com": len(DEFERRED)}
    assert list(doc["totals"]) == ["delay"]


def test_live_flags_are_listed_by_severity_then_open_first_newest_first(populated):
    populated.bounces("flags", "ack", "1")
    doc = report(populated)
    kinds = [f["kind"] for f in doc["flags"]]
    assert kinds == ["compromised-sender", "throttled-destination"] + ["dead-recipient"] * 6
    dead = [f for f in doc["flags"] if f["kind"] == "dead-recipient"]
    states = [f["state"] for f in dead]
    assert states == ["open"] * 5 + ["acked"]
    opened = [f["raised_at"] for f in dead if f["state"] == "open"]
    assert opened == sorted(opened, reverse=True)
    assert doc["flags_by_kind"] == {"compromised-sender": {"open": 1, "acked": 0},
                                    "throttled-destination": {"open": 1, "acked": 0},
                                    "dead-recipient": {"open": 5, "acked": 1}}
    assert list(doc["flags_by_kind"]) == kinds[:2] + ["dead-recipient"]


def test_series_is_hourly_for_a_day(populated):
    doc = report(populated)
    pts = doc["series"]["points"]
    assert doc["series"]["bucket_seconds"] == 3600
    assert len(pts) in (24, 25)  # the hours the 24 h period touches
    assert sum(p["count"] for p in pts) == RECENT


# -- formats -----------------------------------------------------------------------------

def test_csv_is_the_grouping_with_a_header(populated):
    proc = populated.bounces("report", "--since", "7d", "--by", "domain", "--format", "csv")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
    assert rows[0] == ["key", "count", "share", "first", "last", "flag"]
    got = {r[0]: int(r[1]) for r in rows[1:]}
    assert got == EXPECTED["domain"]
    assert abs(sum(float(r[2]) for r in rows[1:]) - 1.0) < 0.001


@pytest.mark.parametrize("by", ["day", "hour"])
def test_csv_time_groupings(populated, by):
    proc = populated.bounces("report", "--since", "7d", "--by", by, "--format", "csv")
    rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
    assert sum(int(r[1]) for r in rows[1:]) == ALL
    assert rows[1][0] < rows[-1][0]


def test_table_shows_flags_on_top_then_totals_chart_and_grouping(populated):
    proc = populated.bounces("report", "--by", "sender")
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "\x1b[" not in out  # not a terminal: no colour
    flags_at = out.index("Live flags: 8")
    total_at, by_at = out.index("Total:"), out.index("By sender")
    assert flags_at < total_at < by_at
    assert "news@shop.example" in out and "compromised-sender" in out
    assert f"{len(DEAD)} bounce ({len(DEAD)} hard, 0 soft)" in out
    assert "Quarantined (not understood): 1" in out
    chart = out[out.index("Per hour"):by_at].splitlines()[1]
    assert chart.strip() and set(chart) <= set(" ▁▂▃▄▅▆▇█")
    assert "█" in chart  # the busiest hour is a full bar


@pytest.mark.parametrize("by", ["day", "hour", "status"])
def test_table_for_other_groupings(populated, by):
    proc = populated.bounces("report", "--since", "7d", "--by", by)
    out = proc.stdout.decode()
    assert proc.returncode == 0
    assert f"By {by}" in out
    if by == "status":
        assert "5.2.2" in out and "5.1.1" in out
    else:
        assert "█" in out.split(f"By {by}")[1]  # the per-bucket bars


def test_table_fits_a_narrow_terminal(populated):
    env = populated.env()
    env["COLUMNS"] = "60"
    proc = subprocess.run([script("bounces"), "report", "--by", "recipient"],
                          capture_output=True, env=env)
    lines = proc.stdout.decode().splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "user0@ex" in proc.stdout.decode()  # addresses fold inside their column


def test_colour_only_on_a_terminal(populated):
    status, out = on_terminal(populated, "report")
    assert status == 0
    assert b"\x1b[" in out  # a terminal gets colour
    assert b"Live flags" in out


def test_missing_store_is_a_clear_error(empty_store):
    proc = empty_store.bounces("report")
    assert proc.returncode == 75
    assert "does not exist" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
