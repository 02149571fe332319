"""What --since/--until/--older-than accept (reports/period.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bounce_handler.reports.period import BadPeriod, Period, parse_bound, parse_duration

NOW = datetime(2026, 11, 24, 10, 30, 15)


@pytest.mark.parametrize("text, expected", [
    ("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2)), ("1d12h", timedelta(hours=36)), ("1y", timedelta(days=365)),
    ("30s", timedelta(seconds=30)), ("1D 2H", timedelta(hours=26)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("24h", datetime(2026, 11, 23, 10, 30, 15)),
    ("now", NOW),
    ("today", datetime(2026, 11, 24)),
    ("yesterday", datetime(2026, 11, 23)),
    ("2026-11-01", datetime(2026, 11, 1)),
    ("2026-11-01T08:15", datetime(2026, 11, 1, 8, 15)),
    ("2026-11-01 08:15:30", datetime(2026, 11, 1, 8, 15, 30)),
    ("2026-11-01T08:15:00Z", datetime(2026, 11, 1, 8, 15)),
    ("2026-11-01T10:15:00+02:00", datetime(2026, 11, 1, 8, 15)),
])
def test_bounds(text, expected):
    assert parse_bound(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "h", "24", "24hours", "2026-13-01", "last week", "-1d"])
def test_bad_bounds(text):
    with pytest.raises(BadPeriod):
        parse_bound(text, NOW)


def test_period_and_its_hours():
    p = Period.parse("3h", None, NOW)
    assert (p.start, p.end) == (datetime(2026, 11, 24, 7, 30, 15), NOW)
    assert p.hours() == [datetime(2026, 11, 24, h) for h in (7, 8, 9, 10)]
    with pytest.raises(BadPeriod, match="empty period"):
        Period.parse("2026-11-24", "2026-11-23", NOW)


def test_a_since_duration_counts_back_from_until():
    """`--since 7d --until 2026-11-08` is the week before the 8th, not 7 days before now."""
    p = Period.parse("7d", "2026-11-08", NOW)
    assert (p.start, p.end) == (datetime(2026, 11, 1), datetime(2026, 11, 8))
    p = Period.parse("1h", "2h", NOW)  # the hour that ended two hours ago
    assert (p.start, p.end) == (NOW - timedelta(hours=3), NOW - timedelta(hours=2))
    # Calendar words and dates stay what they say, whatever --until is.
    p = Period.parse("yesterday", "2026-11-24T06:00", NOW)
    assert (p.start, p.end) == (datetime(2026, 11, 23), datetime(2026, 11, 24, 6))
