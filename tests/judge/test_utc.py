"""judge/utc.py's datetime-free times give exactly what datetime gave the judge before.

The reference for each helper is the datetime expression the judge used until it went
without datetime (core.as_datetime, Db.ts's isoformat, str(t) in R1's evidence, date
.isoformat() in R2's, date.toordinal() for day numbers).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bounce_handler.judge import utc
from bounce_handler.judge.advice import transport_name

EPOCH = datetime(1970, 1, 1)
# The range the brief asks for (1970 to 2200), and datetime's whole range for the
# calendar arithmetic, which must not depend on the epoch being near.
RECENT = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31))
ANY = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
EDGE_MICROS = st.sampled_from([0, 1, 9, 10, 99_999, 100_000, 500_000, 999_998, 999_999])


def old_as_datetime(value):
    """core.as_datetime as it was: the reference."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, (int, float)):
        whole = int(value // 1)
        return datetime(1970, 1, 1) + timedelta(
            seconds=whole, microseconds=int((value % 1) * 1_000_000)
        )
    return datetime.fromisoformat(value.replace("T", " ").rstrip("Z"))


def us_of(dt: datetime) -> int:
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@given(st.dates())
def test_civil_days_are_date_ordinals(d):
    z = utc.days_from_civil(d.year, d.month, d.day)
    assert z + utc.EPOCH_ORDINAL == d.toordinal()
    assert utc.civil_from_days(z) == (d.year, d.month, d.day)
    assert utc.day_text(d.toordinal()) == d.isoformat()
    assert utc.day_number(d.isoformat()) == d.toordinal()
    assert utc.day_number(d) == d.toordinal()
    assert utc.day_start(d.toordinal()) == us_of(datetime(d.year, d.month, d.day))


@given(RECENT | ANY)
@example(datetime(1970, 1, 1))
@example(datetime(2000, 2, 29, 23, 59, 59, 999_999))
@example(datetime(2100, 3, 1, 0, 0, 0, 1))
def test_text_forms_equal_datetimes(dt):
    us = utc.micros(dt)
    assert us == us_of(dt)
    assert utc.text(us) == dt.isoformat(" ", "microseconds")
    assert utc.plain(us) == str(dt)
    assert utc.to_datetime(us) == dt
    assert utc.day_number(utc.text(us)) == dt.toordinal()
    for form in (str(dt), dt.isoformat(" ", "microseconds"), dt.isoformat() + "Z",
                 dt.isoformat("T", "microseconds")):
        assert utc.parse(form) == us, form
        assert utc.micros(form) == us_of(old_as_datetime(form)), form


@given(RECENT, EDGE_MICROS)
def test_microsecond_edges(dt, micro):
    dt = dt.replace(microsecond=micro)
    us = utc.micros(dt)
    assert utc.text(us) == dt.isoformat(" ", "microseconds")
    assert utc.plain(us) == str(dt)
    assert utc.plain(us).endswith(f":{dt.second:02d}") == (micro == 0)
    assert utc.text(us - 1) == (dt - timedelta(microseconds=1)).isoformat(" ", "microseconds")


@given(st.floats(min_value=-2_208_988_800.0, max_value=7_258_118_400.0))  # 1900 to 2200
@example(1795176000.9999996)
@example(1795176000.0)
@example(0.9999999999999999)
@example(-0.5)
@example(1793610000.123456)
def test_epoch_seconds_are_truncated_as_before(seconds):
    assert utc.micros(seconds) == us_of(old_as_datetime(seconds))
    assert utc.as_datetime(seconds) == old_as_datetime(seconds)


@given(st.integers(min_value=-10**9, max_value=7 * 10**9))
def test_integer_seconds(seconds):
    assert utc.micros(seconds) == us_of(old_as_datetime(seconds))


@given(RECENT, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_aware_datetimes_are_converted_to_utc(dt, offset_minutes):
    aware = dt.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    assert utc.micros(aware) == us_of(old_as_datetime(aware))
    assert utc.instant(aware) == utc.micros(aware)


@pytest.mark.parametrize("form", [
    "2026-11-02",                      # a date alone: midnight
    "2026-11-02 09:00",                # no seconds
    "2026-11-02 09:00:00.5",           # a short fraction
    "2026-11-02T09:00:00.123Z",
])
def test_other_iso_forms_still_read_as_datetime_read_them(form):
    assert utc.micros(form) == us_of(old_as_datetime(form))


@pytest.mark.parametrize("form", [
    "2026-13-02 09:00:00", "2026-02-29 09:00:00", "2026-11-02 24:00:00",
    "2026-11-02 09:60:00", "2026-11-02 09:00:60.000000", "0000-01-01 00:00:00",
    "2026-11-02 09:00:0x", "２０２６-11-02 09:00:00", "yesterday", "",
])
def test_invalid_text_is_still_a_value_error(form):
    with pytest.raises(ValueError):
        old_as_datetime(form)
    with pytest.raises(ValueError):
        utc.micros(form)


def test_day_numbers_from_every_form():
    assert utc.day_number("2026-11-02") == date(2026, 11, 2).toordinal()
    assert utc.day_number("2026-11-02 09:00:00.000000") == date(2026, 11, 2).toordinal()
    assert utc.day_number(datetime(2026, 11, 2, 23, 59)) == date(2026, 11, 2).toordinal()
    assert utc.day_number("20261102") == date.fromisoformat("20261102").toordinal()
    with pytest.raises(ValueError):
        utc.day_number("2026-02-30")


def test_the_caches_stay_bounded_and_right():
    start = datetime(2030, 1, 1)
    for k in range(utc._CACHE_SIZE + 50):
        dt = start + timedelta(minutes=k, seconds=k % 60, microseconds=k)
        form = dt.isoformat(" ", "microseconds")
        assert utc.parse(form) == us_of(dt)
        assert utc.text(us_of(dt)) == form
    assert len(utc._MINUTE_OF) <= utc._CACHE_SIZE
    assert len(utc._PREFIX_OF) <= utc._CACHE_SIZE


def test_not_a_time():
    with pytest.raises(TypeError):
        utc.micros(date(2026, 11, 2))
    with pytest.raises(TypeError):
        utc.micros(None)


def test_instant_keeps_microseconds_and_converts_the_rest():
    assert utc.instant(None) is None
    assert utc.instant(1_793_610_000_000_000) == 1_793_610_000_000_000
    assert utc.instant(datetime(2026, 11, 2, 9)) == utc.micros("2026-11-02 09:00:00")
    assert utc.instant(1793610000.0) == utc.micros("2026-11-02 09:00:00")


@given(st.text(max_size=30) | st.from_regex(r"[a-zA-Z0-9._\-]{0,20}", fullmatch=True))
@example("yahoo.co.uk")
@example("a_-b")
@example("_x_")
@example("Ünïcode.example")
def test_transport_name_is_the_regex_it_replaced(subject):
    expected = "slow_" + re.sub(r"[^a-z0-9_]+", "_", subject.lower()).strip("_")
    assert transport_name(subject, "slow_") == expected
