"""Periods: what `--since 24h`, `--until 2026-11-24` and `--older-than 180d` mean.

Every time in the store is a naive UTC datetime (store/models.py), so every bound computed
here is one too.  A bound is either a duration back from ``now`` (``90m``, ``24h``,
``7d``, ``2w``, combinable: ``1d12h``; a --since duration counts back from --until when
one is given, so ``--since 7d --until 2026-11-08`` is the week before the 8th), a
calendar word (``now``, ``today``, ``yesterday``: midnight UTC) or an ISO 8601 date or
date-time (``2026-11-24``, ``2026-11-24T10:00``, ``2026-11-24 10:00:00``); a date-time
with an offset or ``Z`` is converted to UTC, one without is taken as UTC already (the
store's convention).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bounce_handler.errors import EX_USAGE, BounceHandlerError

# A year is 365 days here: "1y" is how people write a retention, not a calendar span.
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"(\d+)\s*([smhdwy])", re.IGNORECASE)


class BadPeriod(BounceHandlerError):
    """A --since/--until/--older-than value that is neither a duration nor a date."""

    exit_code = EX_USAGE


def parse_duration(text: str) -> timedelta:
    """``24h``, ``7d``, ``1d12h``, ``90m``, ``1y`` -> timedelta. Raises BadPeriod."""
    s = text.strip().replace(" ", "")
    parts = _DURATION.findall(s)
    if not s or "".join(n + u for n, u in parts).lower() != s.lower():
        raise BadPeriod(
            f"{text!r} is not a duration (use e.g. 90m, 24h, 7d, 2w, 1y or 1d12h)"
        )
    return timedelta(seconds=sum(int(n) * _UNITS[u.lower()] for n, u in parts))


def parse_bound(text: str, now: datetime, back_from: datetime | None = None) -> datetime:
    """A point in time: a duration, a calendar word or an ISO date.

    A duration counts back from `back_from` (default `now`); calendar words are relative
    to `now`.
    """
    s = text.strip()
    low = s.lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if low == "now":
        return now
    if low == "today":
        return midnight
    if low == "yesterday":
        return midnight - timedelta(days=1)
    try:
        return (now if back_from is None else back_from) - parse_duration(s)
    except BadPeriod:
        pass
    return _parse_iso(s)


def _parse_iso(s: str) -> datetime:
    try:
        # Python 3.11's fromisoformat takes "2026-11-24", "...T10:00", "... 10:00:00Z", offsets.
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise BadPeriod(
            f"{s!r} is neither a duration (24h, 7d) nor a date (2026-11-24, "
            "2026-11-24T10:00, 'today', 'yesterday')"
        ) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


class Period:
    """A half-open UTC interval [start, end)."""

    __slots__ = ("start", "end")

    def __init__(self, start: datetime, end: datetime) -> None:
        if end <= start:
            raise BadPeriod(f"empty period: until ({end:%Y-%m-%d %H:%M}) is not after "
                            f"since ({start:%Y-%m-%d %H:%M})")
        self.start = start
        self.end = end

    @classmethod
    def parse(cls, since: str | None, until: str | None, now: datetime,
              default_since: str = "24h") -> Period:
        """The period `--since`/`--until` name (until defaults to now).

        A duration in `since` counts back from the end of the period: an administrator
        asking for `--since 7d --until 2026-11-08` means the week before the 8th.
        """
        end = parse_bound(until, now) if until else now
        start = parse_bound(since or default_since, now, back_from=end)
        return cls(start, end)

    def hours(self) -> list[datetime]:
        """The start of every hour the period touches, oldest first."""
        h = self.start.replace(minute=0, second=0, microsecond=0)
        out = []
        while h < self.end:
            out.append(h)
            h += timedelta(hours=1)
        return out

    def as_dict(self) -> dict[str, str]:
        """RFC 3339 UTC strings (JSON output): ``2026-11-24T10:15:00Z``."""
        from bounce_handler.reports.render import utc_text

        return {"since": utc_text(self.start), "until": utc_text(self.end)}

    def __repr__(self) -> str:
        return f"Period({self.start.isoformat()} .. {self.end.isoformat()})"


def utcnow() -> datetime:
    """Now, as the store's naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)
