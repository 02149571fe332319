"""`bounces report`: bounces over a period, grouped, with the live flags and a per-hour series.

Every number comes from a range scan over a covering index, never from a row-by-row walk
of ``bounce_events`` (a million rows of it is ~400 MB; its indexes are a tenth of that):

- totals: one ``count(*)`` per (kind, hard) over ``ix_bounce_events_kind_hard_occurred_at``;
- the per-hour (or per-day) series, and ``--by day|hour``: one ``count(*)`` per bucket over
  ``ix_bounce_events_occurred_at`` (720 of them take ~0.1 s; one GROUP BY over a computed
  hour takes 0.4 s, it must evaluate a function per row and sort);
- ``--by sender|recipient|domain|reason|status``: GROUP BY over the (key, occurred_at)
  index, counting only; when the period is more than a small share of the table that
  index is scanned whole rather than the time index plus a lookup per row (see
  ``db.not_indexed``); first and last times are then two index probes per shown key.
  Given a second connection, this scan runs in a thread beside the totals and series.

Each failure counts once: a second copy (the DSN and Postfix's postmaster copy of one
failure, a redelivery) has ``duplicate_of`` set, and every count here takes rows where it
is NULL; the column trails each index above, so the counts stay index-only.

bench/report_bench.py measures it over 1,000,000 rows (0.1-0.4 s of CPU per report).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, case, desc, func, select

from bounce_handler.reports import GROUPINGS, KINDS, db
from bounce_handler.reports.period import Period

KEYS = {
    "sender": db.events.c.sender,
    "recipient": db.events.c.recipient,
    "domain": db.events.c.recipient_domain,
    "reason": db.events.c.reason,
    "status": db.events.c.status,
}
TIME_KEYS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
assert GROUPINGS == tuple(KEYS) + tuple(TIME_KEYS)

# Which flag kind speaks about a group's key (judge/rules.py's kinds): a sender row shows
# its compromised-sender flag, a recipient its dead-recipient flag, a domain its
# throttled-destination flag.
FLAG_FOR = {
    "sender": "compromised-sender",
    "recipient": "dead-recipient",
    "domain": "throttled-destination",
}

# A period holding at least this share of the table is grouped by scanning the whole
# (key, occurred_at) index (~0.08 s per million entries here) rather than the time index
# plus a table lookup per row (~3 us each): the scan wins from ~3 % of the rows on.  The
# share is estimated from time (the period against the store's oldest..newest event: two
# index probes), which undercounts recent periods on a growing relay: hence the margin.
COVER_SHARE = 0.02

# The chart's series has one bucket per hour for periods up to 8 days; longer periods get
# buckets of several whole hours, so that there are at most this many points (a terminal
# line shows ~80-200 of them anyway) and as many range counts.
MAX_POINTS = 192
# `--by hour` prints every hour of the period; past a quarter that is a wall of rows (and
# as many range counts), which --by day says better.
MAX_HOUR_ROWS = 24 * 93


class Group:
    """One row of the grouping."""

    __slots__ = ("key", "count", "share", "first", "last", "flag")

    def __init__(self, key, count, share, first=None, last=None, flag=None) -> None:
        self.key = key
        self.count = count
        self.share = share
        self.first = first
        self.last = last
        self.flag = flag  # {"id", "state", "rule"} of a live flag on this key, or None

    def as_dict(self) -> dict:
        """Plain values (JSON/CSV)."""
        return {
            "key": _iso(self.key) if isinstance(self.key, datetime) else self.key,
            "count": self.count,
            "share": round(self.share, 4),
            "first": _iso(self.first),
            "last": _iso(self.last),
            "flag": self.flag,
        }


class Report:
    """Everything `bounces report` prints, as plain values."""

    __slots__ = (
        "period", "by", "top", "kind", "total", "totals", "groups", "others", "group_count",
        "series", "bucket", "flags", "flags_live", "quarantined", "flags_by_kind",
        "dead_recipients",
    )

    def __init__(self, **kw) -> None:
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def as_dict(self) -> dict:
        """The JSON document (`bounces report --format json`)."""
        return {
            "period": self.period.as_dict(),
            "by": self.by,
            "top": self.top,
            "kind": self.kind,
            "total": self.total,
            "totals": self.totals,
            "quarantined": self.quarantined,
            "flags_live": self.flags_live,
            "flags_by_kind": self.flags_by_kind,
            "flags": self.flags,
            "dead_recipients": self.dead_recipients,
            "groups": [g.as_dict() for g in self.groups],
            "others": self.others,
            "series": {
                "bucket_seconds": int(self.bucket.total_seconds()),
                "points": [{"start": _iso(t), "count": n} for t, n in self.series],
            },
        }


def _iso(value):
    # RFC 3339 UTC with "Z" (render.utc_text), also for SQLite's text from an aggregate.
    from bounce_handler.reports.render import utc_text

    return utc_text(value)


def build(conn, period: Period, *, by: str = "reason", top: int = 20, kind: str | None = None,
          now: datetime | None = None, side=None, provider_of: dict | None = None,
          rules=None) -> Report:
    """Run every query of the report over `period` on an open Core connection.

    `side`, a second connection to the same store, lets the grouping (the one long scan)
    run in a thread while the totals and the series are counted on `conn`: SQLite
    releases the GIL while it steps through an index, so on two cores the report takes
    the time of the longer half rather than the sum.  `provider_of` (domain -> provider,
    the judge's rules.provider_of) lets a yahoo.com row show the flag raised on "yahoo".
    `rules` (the judge's Rules) lets the windowed flags show their evidence as it stands
    now (judge/current.py), not only as at their last refresh.
    """
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}")
    if by == "hour" and len(period.hours()) > MAX_HOUR_ROWS:
        from bounce_handler.reports.period import BadPeriod

        raise BadPeriod(f"--by hour lists every hour: at most {MAX_HOUR_ROWS // 24} days "
                        "of them (use --by day for longer periods)")
    keyed = by in KEYS
    worker = result = None
    if keyed:
        span = _span(conn)
        if side is not None:
            import threading

            result = {}

            def _work():
                try:
                    result["groups"] = _groups(side, period, by, top, kind, span)
                except BaseException as e:  # re-raised in the caller's thread
                    result["error"] = e

            worker = threading.Thread(target=_work, name="report-groups", daemon=True)
            worker.start()
    totals = _totals(conn, period, kind)
    total = sum(v["total"] for v in totals.values())
    bucket = timedelta(hours=max(1, -(-len(period.hours()) // MAX_POINTS)))
    series = _series(conn, period, bucket, kind)
    if keyed:
        if worker is not None:
            worker.join()
            if "error" in result:
                raise result["error"]
            groups = result["groups"]
        else:
            groups = _groups(conn, period, by, top, kind, span)
        for g in groups:
            g.share = g.count / total if total else 0.0
        others = total - sum(g.count for g in groups)
        _attach_flags(conn, by, groups, provider_of or {})
    else:
        step = TIME_KEYS[by]
        points = series if step == bucket else _series(conn, period, step, kind)
        groups = [Group(t, n, n / total if total else 0.0, None, None) for t, n in points]
        others = 0
    flags, live, by_kind = _live_flags(conn, top)
    if rules is not None:
        from bounce_handler.judge import current

        current.attach(conn.connection.driver_connection, flags, rules, limit=URGENT_CAP)
    return Report(
        period=period, by=by, top=top, kind=kind, total=total, totals=totals, groups=groups,
        others=others, series=series, bucket=bucket, flags=flags, flags_live=live,
        quarantined=_quarantined(conn, period), flags_by_kind=by_kind,
        dead_recipients=_dead_digest(conn, period, by_kind, flags),
    )


def _in_period(col, period: Period):
    return and_(col >= period.start, col < period.end)


def _totals(conn, period: Period, kind: str | None) -> dict[str, dict[str, int]]:
    """{kind: {"total", "hard", "soft", "other"}} via (kind, hard, occurred_at) range counts."""
    ev = db.events
    out = {}
    for k in (kind,) if kind else KINDS:
        row = {}
        for label, cond in (("hard", ev.c.hard.is_(True)), ("soft", ev.c.hard.is_(False)),
                            ("other", ev.c.hard.is_(None))):
            q = select(func.count()).select_from(ev).where(
                ev.c.kind == k, cond, _in_period(ev.c.occurred_at, period),
                ev.c.duplicate_of.is_(None),
            )
            row[label] = conn.execute(q).scalar_one()
        row["total"] = row["hard"] + row["soft"] + row["other"]
        out[k] = row
    return out


def _series(conn, period: Period, step: timedelta, kind: str | None):
    """[(bucket start, count)], buckets aligned to whole hours or days (UTC)."""
    ev = db.events
    if step >= timedelta(days=1):
        t = period.start.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        t = period.start.replace(minute=0, second=0, microsecond=0)
    out = []
    while t < period.end:
        lo, hi = max(t, period.start), min(t + step, period.end)
        q = select(func.count()).select_from(ev).where(ev.c.occurred_at >= lo,
                                                       ev.c.occurred_at < hi,
                                                       ev.c.duplicate_of.is_(None))
        if kind:
            q = q.where(ev.c.kind == kind)
        out.append((t, conn.execute(q).scalar_one()))
        t += step
    return out


def _span(conn):
    """(oldest, newest) occurred_at in the store, or (None, None): two index probes."""
    ev = db.events
    lo = conn.execute(select(func.min(ev.c.occurred_at))).scalar()
    hi = conn.execute(select(func.max(ev.c.occurred_at))).scalar()
    return _dt(lo), _dt(hi)


def _share_of_span(period: Period, span) -> float:
    """Roughly what share of the store's events the period holds (by time, not rows)."""
    lo, hi = span
    if lo is None:
        return 0.0
    if hi <= lo:
        return 1.0 if period.start <= lo < period.end else 0.0
    overlap = min(period.end, hi) - max(period.start, lo)
    return max(0.0, overlap / (hi - lo))


def _groups(conn, period: Period, by: str, top: int, kind: str | None, span):
    ev = db.events
    col = KEYS[by]
    occ = ev.c.occurred_at
    cover = conn.dialect.name == "sqlite" and _share_of_span(period, span) >= COVER_SHARE
    where_col = db.not_indexed(occ) if cover else occ
    n = func.count().label("n")
    # Only the count in the scan: min()/max() of a text column per row doubled its cost
    # (0.56 s against 0.24 s over a million rows); first and last are looked up below for
    # the top N keys only, two index probes each.
    q = (select(col.label("key"), n).where(ev.c.duplicate_of.is_(None))
         .group_by(col).order_by(desc("n"), col).limit(top))
    lo, hi = span
    if not (cover and lo is not None and period.start <= lo and hi < period.end):
        # (A period holding every event needs no test per row: ~15 % off the scan.)
        q = q.where(where_col >= period.start, where_col < period.end)
    if kind:
        q = q.where(ev.c.kind == kind)
    groups = [Group(r.key, r.n, 0.0) for r in conn.execute(q)]
    for g in groups:
        same = col.is_(None) if g.key is None else col == g.key
        base = select().where(same, _in_period(occ, period), ev.c.duplicate_of.is_(None))
        if kind:
            base = base.where(ev.c.kind == kind)
        g.first = _dt(conn.execute(base.add_columns(func.min(occ))).scalar())
        g.last = _dt(conn.execute(base.add_columns(func.max(occ))).scalar())
    return groups


def _dt(value):
    # min()/max() over a DateTime column come back as text on SQLite (the aggregate drops
    # the column type); parse them so every output path sees datetimes.
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _attach_flags(conn, by: str, groups: list[Group], provider_of: dict) -> None:
    kind = FLAG_FOR.get(by)
    if not kind:
        return
    # throttled-destination flags are raised per provider when the domain belongs to one
    # (judge/rules.py: providers), per domain otherwise.
    subject_of = {g.key: provider_of.get(g.key, g.key) if by == "domain" else g.key
                  for g in groups if g.key}
    if not subject_of:
        return
    fl = db.flags
    q = select(fl.c.id, fl.c.subject, fl.c.state, fl.c.rule).where(
        fl.c.kind == kind, fl.c.state.in_(db.LIVE_STATES),
        func.lower(fl.c.subject).in_(sorted({v.lower() for v in subject_of.values()})),
    )
    found = {r.subject.lower(): {"id": r.id, "state": r.state, "rule": r.rule}
             for r in conn.execute(q)}
    for g in groups:
        if g.key:
            g.flag = found.get(subject_of[g.key].lower())


# Compromised senders and throttled destinations are listed whatever --top says (they are
# what the administrator must act on now); a storm of this many is cut, and says so.
URGENT_CAP = 200
DIGEST_DOMAINS = 10


def _live_flags(conn, top: int) -> tuple[list[dict], int, dict]:
    """The live flags to show, most urgent first; how many are live; counts by kind.

    Order: compromised senders, throttled destinations, dead recipients (judge/rules.py
    SEVERITY); within a kind, open before acked, newest first.  Every urgent flag is
    listed (up to URGENT_CAP), dead recipients up to ``top`` (the rest: the digest).
    """
    from bounce_handler.judge.rules import DEAD, SEVERITY

    fl = db.flags
    live = fl.c.state.in_(db.LIVE_STATES)
    by_kind: dict[str, dict[str, int]] = {}
    for k, state, n in conn.execute(
        select(fl.c.kind, fl.c.state, func.count()).where(live).group_by(fl.c.kind, fl.c.state)
    ):
        by_kind.setdefault(k, {"open": 0, "acked": 0})[state] = n
    rank = {k: i for i, k in enumerate(SEVERITY)}
    by_kind = {k: by_kind[k] for k in sorted(by_kind, key=lambda k: rank.get(k, len(rank)))}
    count = sum(v["open"] + v["acked"] for v in by_kind.values())
    rows = []
    for k in by_kind:
        room = max(top, 1) if k == DEAD else URGENT_CAP
        for state in db.LIVE_STATES:  # open first; each an index range (kind, state, raised_at)
            if room <= 0:
                break
            q = (
                select(fl.c.id, fl.c.kind, fl.c.subject, fl.c.state, fl.c.rule,
                       fl.c.raised_at, fl.c.updated_at, fl.c.advice, fl.c.evidence)
                .where(fl.c.kind == k, fl.c.state == state)
                .order_by(desc(fl.c.raised_at), desc(fl.c.id))
                .limit(room)
            )
            got = [
                {
                    "id": r.id, "kind": r.kind, "subject": r.subject, "state": r.state,
                    "rule": r.rule, "raised_at": _iso(r.raised_at),
                    "updated_at": _iso(r.updated_at), "advice": r.advice,
                    "evidence": _evidence(r.evidence),
                }
                for r in conn.execute(q)
            ]
            rows.extend(got)
            room -= len(got)
    return rows, count, by_kind


def _evidence(text) -> dict:
    import json

    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"unparsed": text}
    return value if isinstance(value, dict) else {"unparsed": text}


def _dead_digest(conn, period: Period, by_kind: dict, flags: list[dict]) -> dict:
    """The dead recipients in numbers, for the digest under the listed ones.

    How many, by domain, how many raised in the period, how many the report lists, and
    the commands for all of them.
    """
    from bounce_handler.judge.rules import DEAD

    fl = db.flags
    live = and_(fl.c.state.in_(db.LIVE_STATES), fl.c.kind == DEAD)
    # Counted in the database, in one pass: a relay can have 300,000 dead recipients.
    at = (func.strpos if conn.dialect.name == "postgresql" else func.instr)(fl.c.subject, "@")
    recent = case((_in_period(fl.c.raised_at, period), 1), else_=0)
    per = select(func.lower(func.substr(fl.c.subject, at + 1)).label("d"),
                 recent.label("r")).where(live).subquery()
    rows = conn.execute(select(per.c.d, func.count(), func.sum(per.c.r)).group_by(per.c.d))
    totals = [(d, n, int(r or 0)) for d, n, r in rows]
    ranked = sorted(((d, n) for d, n, _ in totals), key=lambda kv: (-kv[1], kv[0]))
    new = sum(r for _, _, r in totals)
    counts = by_kind.get(DEAD, {"open": 0, "acked": 0})
    return {
        "live": counts["open"] + counts["acked"],
        "open": counts["open"],
        "acked": counts["acked"],
        "raised_in_period": new,
        "listed": sum(1 for f in flags if f["kind"] == DEAD),
        "domains": len(ranked),
        "by_domain": [{"domain": d, "count": n} for d, n in ranked[:DIGEST_DOMAINS]],
        "list_command": "bounces flags list --kind dead-recipient",
        "export_command": "bounces export dead-recipients -o /etc/postfix/dead_recipients",
    }


def _quarantined(conn, period: Period) -> int:
    q = db.quarantine
    return conn.execute(
        select(func.count()).select_from(q).where(_in_period(q.c.created_at, period))
    ).scalar_one()
