"""UTC instants as integer epoch microseconds, and the store's text forms, without datetime.

The judge runs in the pipe, one fresh process per bounce, and ``import datetime`` costs
1.5-2.5 ms there (the pure-Python datetime.py runs, and imports operator and math, before
_datetime replaces it): a tenth of the pipe's whole budget, for a few comparisons.  So the
judge's times are plain ints: microseconds since 1970-01-01 00:00 UTC.  Integers, not
float seconds: a float near 2**31 seconds (year 2038) has a resolution of 0.24 us and
near 2**32 (2106) of 0.95 us, so window arithmetic and the text written back would drift
by a microsecond; ints are exact, like datetime, at every date.

Days are proleptic ordinals as ``date.toordinal()`` gives them (1970-01-01 is 719163).
The civil-date conversions are Howard Hinnant's days-from-civil / civil-from-days
algorithms ("chrono-Compatible Low-Level Date Algorithms"), on the proleptic Gregorian
calendar datetime uses.

Datetime objects (psycopg rows, SQLAlchemy code, tests) are still accepted: the branch
that reads them imports datetime, which whoever holds a datetime has loaded already.
"""

from __future__ import annotations

MICRO = 1_000_000
SECOND = MICRO
MINUTE = 60 * MICRO
HOUR = 3600 * MICRO
DAY = 86_400 * MICRO

# date(1970, 1, 1).toordinal(): the day number of the epoch.
EPOCH_ORDINAL = 719_163

_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to the proleptic Gregorian date y-m-d (negative before)."""
    # Hinnant: count years from March, so the leap day is the last day of its year.
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400                                   # [0, 399]
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1  # [0, 365]
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy         # [0, 146096]
    return era * 146_097 + doe - 719_468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """(year, month, day) of the day ``z`` days after 1970-01-01."""
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _valid_date(y: int, m: int, d: int) -> bool:
    return 1 <= y and 1 <= m <= 12 and 1 <= d <= (29 if m == 2 and _leap(y) else _MONTH_DAYS[m])


# --- in ------------------------------------------------------------------------------------

def micros(value) -> int:
    """Epoch microseconds from epoch seconds (int or float), the store's text or a datetime.

    Seconds are truncated to the microsecond exactly as intake.utc_text truncates them,
    so the flag times of an incremental run and of a recompute (which reads received_at
    back as text) are equal.
    """
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, (int, float)):
        return int(value // 1) * MICRO + int((value % 1) * MICRO)
    return _from_datetime(value)


# Bounded caches for the two conversions a recompute does several times per replayed
# event: by the minute, since a replay walks through time in order.  Plain Python digit
# arithmetic is ~10x slower than datetime's C parser and formatter; with the caches the
# common case is a slice, a dict lookup and one int() or one f-string.
_CACHE_SIZE = 4096
_MINUTE_OF: dict[str, int | None] = {}
_PREFIX_OF: dict[int, str] = {}


def _minute(prefix: str) -> int | None:
    """Epoch microseconds of 'YYYY-MM-DD HH:MM', or None if it is not that."""
    if len(_MINUTE_OF) >= _CACHE_SIZE:
        _MINUTE_OF.clear()
    us = None
    s = prefix
    if len(s) == 16 and s[4] == "-" and s[7] == "-" and s[10] == " " and s[13] == ":":
        digits = s[:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16]
        # isascii too: str.isdigit accepts other scripts' digits, and int() would read them.
        if digits.isascii() and digits.isdigit():
            y, m, d, hh, mm = int(s[:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:])
            if _valid_date(y, m, d) and hh < 24 and mm < 60:
                us = ((days_from_civil(y, m, d) * 24 + hh) * 60 + mm) * MINUTE
    _MINUTE_OF[prefix] = us
    return us


def parse(text: str) -> int:
    """Epoch microseconds of 'YYYY-MM-DD HH:MM:SS[.ffffff]' (also with 'T' and a final 'Z')."""
    s = text.replace("T", " ").rstrip("Z")
    n = len(s)
    if (n == 26 and s[19] == ".") or n == 19:
        prefix = s[:16]
        base = _MINUTE_OF[prefix] if prefix in _MINUTE_OF else _minute(prefix)
        if base is not None and s[16] == ":":
            rest = s[17:19] + s[20:]  # SS, or SSffffff: microseconds into the minute
            if rest.isascii() and rest.isdigit():
                if n == 26:
                    us = int(rest)
                    if us < MINUTE:
                        return base + us
                elif int(rest) < 60:
                    return base + int(rest) * SECOND
    # Any other ISO 8601 form (a hand-written '2026-11-02', '09:00:00.5'), or the
    # ValueError for a text that is no time: datetime decides, as it always did.
    from datetime import datetime

    return _from_datetime(datetime.fromisoformat(s))


_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
# RFC 5322 section 4.3: the obsolete zone names, in hours east of UTC.
_ZONES = {"ut": 0, "gmt": 0, "z": 0, "est": -5, "edt": -4, "cst": -6, "cdt": -5,
          "mst": -7, "mdt": -6, "pst": -8, "pdt": -7}


def mail_date_seconds(text: str | None) -> int | None:
    """Epoch seconds of an RFC 5322 date-time (``Tue,  1 Dec 2026 15:22:13 +0000 (UTC)``).

    None for anything else.  Postfix writes a DSN's ``Arrival-Date`` in its own local
    time zone (mail_date(3)), and ``postqueue -j`` gives the same instant as epoch
    seconds: read as an instant, the two compare equal whatever zone either side runs in
    (trust.arrival_key).  Hostile text: split once, bounded by the caller (a DSN field is
    one line of at most 500 characters).
    """
    if not text or len(text) > 500:
        return None
    words = text.replace(",", " ").split()
    if words and words[0][:3].lower() in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        words = words[1:]
    if len(words) < 4:
        return None
    day, month, year, clock = words[:4]
    zone = words[4] if len(words) > 4 else "-0000"  # RFC 5322 4.3: no zone, "unknown"
    m = _MONTHS.get(month[:3].lower()) if len(month) >= 3 else None
    if m is None or not (day.isascii() and day.isdigit() and year.isascii() and year.isdigit()):
        return None
    d, y = int(day), int(year)
    if len(year) == 2:  # RFC 5322 4.3: obsolete two-digit years
        y += 2000 if y < 50 else 1900
    parts = clock.split(":")
    if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() and len(p) <= 2
                                            for p in parts):
        return None
    hh, mm, ss = int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 0
    if not _valid_date(y, m, d) or hh > 23 or mm > 59 or ss > 60:
        return None
    if zone[:1] in "+-" and len(zone) == 5 and zone[1:].isascii() and zone[1:].isdigit():
        offset = (int(zone[1:3]) * 60 + int(zone[3:])) * (1 if zone[0] == "+" else -1)
    elif zone.lower() in _ZONES:
        offset = _ZONES[zone.lower()] * 60
    else:
        return None
    return ((days_from_civil(y, m, d) * 24 + hh) * 60 + mm - offset) * 60 + ss


def _from_datetime(value) -> int:
    from datetime import UTC, datetime

    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta = value - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * MICRO + delta.microseconds


def instant(value):
    """None, or epoch microseconds: an int already is; anything else goes through micros().

    For the judge's own records (Subject, Decision) and ``evaluate``'s ``now``, which the
    loader fills with ints and tests with datetimes.
    """
    if value is None or type(value) is int:
        return value
    return micros(value)


def day_number(value) -> int:
    """Proleptic ordinal of a UTC day from 'YYYY-MM-DD...' text, a date or a datetime."""
    if isinstance(value, str):
        s = value[:10]
        if len(s) == 10 and s[4] == "-" and s[7] == "-":
            digits = s[:4] + s[5:7] + s[8:10]
            if digits.isascii() and digits.isdigit():
                y, m, d = int(s[:4]), int(s[5:7]), int(s[8:10])
                if _valid_date(y, m, d):
                    return days_from_civil(y, m, d) + EPOCH_ORDINAL
    else:
        # PostgreSQL's date() comes back from psycopg as a datetime.date.
        toordinal = getattr(value, "toordinal", None)
        if toordinal is not None:
            return toordinal()
    from datetime import date

    return date.fromisoformat(str(value)[:10]).toordinal()


def day_start(day: int) -> int:
    """Epoch microseconds of 00:00 UTC of the day with this ordinal."""
    return (day - EPOCH_ORDINAL) * DAY


# --- out -----------------------------------------------------------------------------------

def _fields(us: int) -> tuple[int, int, int, int, int, int, int]:
    days, rest = divmod(us, DAY)
    y, m, d = civil_from_days(days)
    seconds, micro = divmod(rest, MICRO)
    hh, seconds = divmod(seconds, 3600)
    mm, ss = divmod(seconds, 60)
    return y, m, d, hh, mm, ss, micro


def text(us: int) -> str:
    """'YYYY-MM-DD HH:MM:SS.ffffff': the form SQLAlchemy's SQLite DateTime stores.

    SQLite compares these columns as text, so the judge's bounds must be exactly this
    form (datetime.isoformat(" ", "microseconds")), microseconds always written.
    """
    minute, rest = divmod(us, MINUTE)
    prefix = _PREFIX_OF.get(minute)
    if prefix is None:
        if len(_PREFIX_OF) >= _CACHE_SIZE:
            _PREFIX_OF.clear()
        y, m, d, hh, mm, _, _ = _fields(minute * MINUTE)
        prefix = _PREFIX_OF[minute] = f"{y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:"
    return f"{prefix}{rest // MICRO:02d}.{rest % MICRO:06d}"


def plain(us: int) -> str:
    """What str(datetime) gives: as text() but without '.000000' on a whole second."""
    y, m, d, hh, mm, ss, micro = _fields(us)
    out = f"{y:04d}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}"
    return f"{out}.{micro:06d}" if micro else out


def day_text(day: int) -> str:
    """'YYYY-MM-DD' of a day ordinal, as date.fromordinal(day).isoformat()."""
    y, m, d = civil_from_days(day - EPOCH_ORDINAL)
    return f"{y:04d}-{m:02d}-{d:02d}"


def to_datetime(us: int):
    """A naive UTC datetime (for psycopg, and callers off the pipe that want one)."""
    from datetime import datetime, timedelta

    return datetime(1970, 1, 1) + timedelta(microseconds=us)


def as_datetime(value):
    """A naive UTC datetime from a datetime, epoch seconds or the store's text form.

    Off the pipe only (judge/lifecycle.py, tests): it imports datetime.
    """
    from datetime import UTC, datetime

    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    return to_datetime(micros(value))
