"""A live flag's evidence as it stands now, for what the administrator reads.

Why the stored evidence goes stale: while a compromised-sender or throttled-destination
flag is live, the judge refreshes its window counts at most once per ``core.REFRESH``
(60 s) of the pipe's clock (``core.settled``); every bounce in between is recorded but
not recounted, because recounting a window of thousands of bounces on every bounce of a
spam run is quadratic.  A run that ends within a minute of the last refresh therefore
leaves the flag saying ``bounces=20`` after 60 arrived, for good: nothing ever triggers
the trailing refresh.

The fix costs the pipe nothing: reports, alerts and ``bounces flags list/show`` ask the
judge itself, at read time, what it would have written for the subject's newest bounce
it counts: ``lean.load`` + ``core.evaluate`` for that event, with a ``now`` past the
refresh interval.  So the numbers are the judge's own (same windows, same trust and
duplicate rules, whatever they become), counted over the rule's window ending at that
bounce (``as_of``): ``bounces`` is "in the last window_minutes up to as_of", a rate,
not a total since the flag was raised.  Only windowed flags go stale; dead-recipient
(R1, R2) and complaint (R7) evidence is rewritten by every bounce.

A few indexed queries per live windowed flag; reports cap how many they ask about.
"""

from __future__ import annotations

from bounce_handler.judge.core import REFRESH, destination, evaluate, sender_mode
from bounce_handler.judge.lean import load
from bounce_handler.judge.rules import COMPROMISED, THROTTLED
from bounce_handler.judge.sql import Db
from bounce_handler.judge.utc import micros, text

# How many of a subject's newest bounces are looked at to find the newest one the rule
# counts (the others are unverified, duplicates, another kind...).
LOOK_BACK = 50
WINDOWED = (COMPROMISED, THROTTLED)


def _fields() -> tuple[str, ...]:
    from bounce_handler.judge.recompute import event_fields

    return event_fields()


def _newest(db: Db, fields, column: str, values, accept) -> dict | None:
    """The newest (highest id) of the latest LOOK_BACK events per value that `accept`s."""
    cols = ", ".join(fields)
    best = None
    for value in values:
        for row in db.all(
            f"SELECT {cols} FROM bounce_events WHERE {column} = ? "
            "ORDER BY occurred_at DESC LIMIT ?",
            (value, LOOK_BACK),
        ):
            ev = dict(zip(fields, row, strict=True))
            if accept(ev) and (best is None or ev["id"] > best["id"]):
                best = ev
    return best


def now_evidence(conn, flag: dict, rules) -> dict | None:
    """{"evidence": ..., "as_of": "YYYY-MM-DD HH:MM:SS"} for a live windowed flag, or None.

    None when the flag is not windowed, or the judge would say nothing different from
    the stored evidence (nothing newer, or the window has emptied since: the stored
    numbers are then the last ones that held).  ``flag`` needs id, kind, subject and
    evidence (a dict); ``conn`` is a DB-API connection.
    """
    if flag.get("kind") not in WINDOWED:
        return None
    db = Db(conn)
    fields = _fields()
    subject = flag["subject"]
    if flag["kind"] == COMPROMISED:
        ev = _newest(db, fields, "sender", (subject,),
                     lambda e: sender_mode(e, rules) == "bounce")
    else:
        domains = (flag.get("evidence") or {}).get("domains") or [subject]

        def counts(e):
            d = destination(e, rules)
            return d is not None and d[0] == subject

        ev = _newest(db, fields, "recipient_domain", domains, counts)
    if ev is None:
        return None
    t = micros(ev["occurred_at"])
    # The stored time, to the microsecond (callers carry it rounded to the second): a
    # `now` a refresh interval past it is one the judge does not skip as settled.
    row = db.one("SELECT updated_at FROM flags WHERE id = ?", (flag["id"],))
    updated = micros(row[0]) if row and row[0] is not None else t
    now = max(t, updated + REFRESH)
    state = load(db, ev, rules, now)
    for d in evaluate(state, ev, rules, now):
        if d.kind == flag["kind"] and d.subject == subject:
            if d.evidence == flag.get("evidence"):
                return None
            return {"evidence": d.evidence, "as_of": text(d.t)[:19]}
    return None


def attach(conn, flags: list[dict], rules, limit: int = 200) -> None:
    """Set ``evidence_now`` on each flag dict (None where nothing changed).

    At most ``limit`` windowed flags are asked about (most urgent first, as the caller
    ordered them).
    """
    asked = 0
    for f in flags:
        f["evidence_now"] = None
        if f.get("kind") in WINDOWED and f.get("state") in ("open", "acked") and asked < limit:
            asked += 1
            f["evidence_now"] = now_evidence(conn, f, rules)
