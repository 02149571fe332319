"""Prometheus text-format metrics, for node_exporter's textfile collector.

node_exporter reads every ``*.prom`` file in its --collector.textfile.directory on each
scrape, so the file is written whole to a temporary name in the same directory and
renamed over the old one (its documentation asks for exactly that: a scrape must never
see half a file).

Counts are over a sliding window (default 24 h) rather than since the beginning of time:
``bounces prune`` deletes rows, so an all-time "total" would go down, which a Prometheus
counter must never do.  They are gauges; alert on them directly.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from sqlalchemy import func, select

from bounce_handler.reports import KINDS, db

WINDOW = timedelta(hours=24)


def _escape(value: str) -> str:
    # Exposition format: backslash, double quote and newline are escaped in label values.
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def collect(conn, now) -> list[str]:
    """The metric lines (without the trailing newline)."""
    ev, fl, q = db.events, db.flags, db.quarantine
    start = now - WINDOW
    lines = [
        "# HELP bounce_handler_events_24h Bounce events recorded in the last 24 hours.",
        "# TYPE bounce_handler_events_24h gauge",
    ]
    for kind in KINDS:
        # reason within kind: the (reason, occurred_at) index, one range per kind.
        rows = conn.execute(
            select(ev.c.reason, func.count())
            .where(ev.c.kind == kind, ev.c.occurred_at >= start, ev.c.occurred_at < now,
                   ev.c.duplicate_of.is_(None))  # each failure once (trust.py)
            .group_by(ev.c.reason)
            .order_by(ev.c.reason)
        ).all()
        for reason, n in rows:
            lines.append(
                f'bounce_handler_events_24h{{kind="{kind}",reason="{_escape(reason)}"}} {n}'
            )
    lines += [
        "# HELP bounce_handler_flags Flags by kind and state (open, acked).",
        "# TYPE bounce_handler_flags gauge",
    ]
    counts = {}
    for kind, state, n in conn.execute(
        select(fl.c.kind, fl.c.state, func.count())
        .where(fl.c.state.in_(db.LIVE_STATES))
        .group_by(fl.c.kind, fl.c.state)
    ):
        counts[(kind, state)] = n
    from bounce_handler.judge.rules import KINDS as FLAG_KINDS

    for kind in FLAG_KINDS:
        for state in db.LIVE_STATES:
            lines.append(f'bounce_handler_flags{{kind="{kind}",state="{state}"}} '
                         f'{counts.get((kind, state), 0)}')
    quarantined = conn.execute(
        select(func.count()).select_from(q).where(q.c.created_at >= start,
                                                  q.c.created_at < now)
    ).scalar_one()
    lines += [
        "# HELP bounce_handler_quarantined_24h Messages quarantined (not understood) in the "
        "last 24 hours.",
        "# TYPE bounce_handler_quarantined_24h gauge",
        f"bounce_handler_quarantined_24h {quarantined}",
        "# HELP bounce_handler_metrics_generated_seconds When this file was written "
        "(Unix time): a stale file means the cron job stopped.",
        "# TYPE bounce_handler_metrics_generated_seconds gauge",
        f"bounce_handler_metrics_generated_seconds {time.time():.0f}",
    ]
    return lines


def write(path: str, lines: list[str]) -> None:
    """Write the file atomically (temp file in the same directory, then rename)."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as fp:
        fp.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
