"""Incremental evaluation on the pipe's hot path, through the DB-API.

``store/lean.py`` (SQLite) and the PostgreSQL daemon call ``on_recorded(conn, events, rules,
now)`` inside their open write transaction, right after inserting a message's bounce events,
so a flag commits together with the bounce that raised it.  For each event (in id order):

1. ``load``: the state of the event's subjects, by a few small queries on the
   bounce_events indexes ((recipient|sender|recipient_domain, occurred_at)) and on
   ix_flags_kind_subject;
2. ``core.evaluate``: the pure decision (raise / update);
3. ``apply``: insert or update the flag, its audit trail (flag_events) and its evidence
   links (flag_evidence).

``bounces flags recompute`` replays history through the very same ``process_event``, with
every column of the event's row read back (judge/recompute.py): a replay sees what the pipe
saw, trust and copy links included.

What an event may count for is trust.py's decision (``trust.admits`` here, ``trust.sql`` and
``trust.dedup_sql`` in the window queries): a duplicate copy of a failure or a replayed
token counts once.  When a decision is made on evidence that is not all verified, it is
re-judged on verified evidence alone (``_verify``); only a flag whose rule holds that way
is ``verified``, and only verified flags are exported.

Imports: the judge's own small modules only, no stdlib module at all: no json
(judge/evidence.py writes the evidence), no datetime (times are epoch microseconds,
judge/utc.py), no re, no SQLAlchemy, no dataclasses.  sqlite3 itself no longer drags
datetime in either (store/lean.py loads _sqlite3 directly), so each would be a cost of
its own in every pipe process.
"""

from __future__ import annotations

from bounce_handler import trust
from bounce_handler.judge.core import (
    FAMILY,
    RAISE,
    UPDATE,
    State,
    Subject,
    anchor,
    baseline_cap,
    dead_lookback,
    dead_mode,
    destination,
    evaluate,
    needs_baseline,
    sender_mode,
    settled,
)
from bounce_handler.judge.evidence import dumps
from bounce_handler.judge.rules import COMPROMISED, DEAD, THROTTLED, for_settings
from bounce_handler.judge.sql import Db, marks
from bounce_handler.judge.utc import DAY, HOUR, MINUTE, day_number, micros

# Bounce events linked to a flag when it is raised (the most recent of its window), and at
# most in all: enough for an administrator to see what happened without a spam run of
# 100,000 bounces copying itself into flag_evidence.
SAMPLES = 20
MAX_EVIDENCE = 100

def hook_for_settings(settings):
    """The writer's judge hook: ``judge(conn, events, now)``; None when every rule is off.

    Parses ``settings.rules`` once (ConfigError if they are invalid: the pipe then exits
    75 and Postfix keeps the bounce until the configuration is fixed).
    """
    rules = for_settings(settings)
    if not (rules.dead.enabled or rules.sender.enabled or rules.dest.enabled):
        return None

    def judge(conn, events, now):
        return on_recorded(conn, events, rules, now)

    return judge


def on_recorded(conn, events, rules, now) -> list:
    """Judge events just inserted (dicts with their ``id``); return the decisions applied.

    ``conn`` is a DB-API connection (sqlite3 or psycopg) inside an open transaction;
    ``now`` epoch seconds (the pipe's time.time()) or a datetime (naive UTC or aware).
    """
    db = Db(conn)
    now = micros(now)
    out = []
    for ev in sorted(events, key=_event_id):
        out.extend(process_event(db, ev, rules, now))
    return out


def _event_id(ev: dict) -> int:
    return ev["id"]


def process_event(db: Db, ev: dict, rules, now: int) -> list:
    """Load, evaluate, verify, apply for one event (``now`` in epoch microseconds)."""
    state = load(db, ev, rules, now)
    if not state.subjects:
        return []
    decisions = evaluate(state, ev, rules, now)
    if decisions:
        _verify(db, ev, rules, now, state, decisions)
    for d in decisions:
        apply(db, d, ev, rules)
    return decisions


def _verify(db: Db, ev: dict, rules, now: int, state: State, decisions: list) -> None:
    """Set each decision's ``verified``: whether its rule holds on verified evidence alone.

    Free when the flag is verified already (it stays so) or when the family counts
    verified rows only anyway ([verp] require_signed, no include_unverified); otherwise
    the subject is loaded again with trust.py's strict predicate and re-evaluated.
    """
    need = set()
    for d in decisions:
        s = next(x for x in state.subjects if x.kind == d.kind)
        if (s.flag_id is not None and s.verified) or not trust.lenient(rules, FAMILY[d.kind]):
            d.verified = True
        else:
            need.add(d.kind)
    if not need:
        return
    strict = load(db, ev, rules, now, strict=True, only=need)
    held = {(x.kind, x.subject) for x in evaluate(strict, ev, rules, now, settle=False)}
    for d in decisions:
        if d.kind in need:
            d.verified = (d.kind, d.subject) in held


# --- the windows, as SQL predicates (shared by the counts and the evidence samples) -----

def _trust(family: str, rules, sql: str, params: list, strict: bool) -> str:
    """trust.py's predicates: the rows this family admits, each failure and unit once."""
    sql += " AND " + trust.sql(family, rules, params, strict)
    return sql + " AND " + trust.dedup_sql(family, rules, params, strict)


class _Shadow:
    """The families for which an earlier copy of the event already counts (trust.py).

    Asked lazily by core's mode functions (``family in shadowed``): an event without a
    link costs nothing, a copy one indexed probe per family asked.
    """

    __slots__ = ("db", "ev", "rules", "strict", "known")

    def __init__(self, db: Db, ev: dict, rules, strict: bool) -> None:
        self.db = db
        self.ev = ev
        self.rules = rules
        self.strict = strict
        self.known: dict[str, bool] = {}

    def __contains__(self, family: str) -> bool:
        ev = self.ev
        if not (ev.get("duplicate_of") or ev.get("replay_of") or ev.get("queued_of")):
            return False
        hit = self.known.get(family)
        if hit is None:
            hit = self.known[family] = self._earlier(family)
        return hit

    def _earlier(self, family: str) -> bool:
        ev, db = self.ev, self.db
        if family == trust.DESTINATION and ev.get("queued_of"):
            return True  # the live queue showed this recipient of this message first
        if trust.token_shadows(ev, family):
            if family == trust.SENDER or db.one(
                "SELECT 1 FROM bounce_events p WHERE p.token_key = ? AND p.id < ? "
                "AND p.verify_reason IS NULL LIMIT 1",
                (ev["token_key"], ev["id"]),
            ):
                return True
        if not ev.get("duplicate_of"):
            return False
        params = [ev["failure_key"], ev["id"]]
        w = trust.sql(family, self.rules, params, self.strict, "p.")
        return db.one(
            "SELECT 1 FROM bounce_events p WHERE p.failure_key = ? AND p.id < ? AND "
            + w + " LIMIT 1",
            params,
        ) is not None


def _in(column: str, values, params: list, negate: bool = False) -> str:
    """`column IN (...)`; an empty list is always false (or, negated, always true)."""
    if not values:
        return "1 = 1" if negate else "1 = 0"
    params.extend(sorted(values))
    return f"{column} {'NOT IN' if negate else 'IN'} ({marks(len(values))})"


def _dead_where(db: Db, ev: dict, rules, lo, t, strict: bool = False):
    r = rules.dead
    params = [ev["recipient"], db.ts(lo), db.ts(t), ev["id"]]
    sql = "recipient = ? AND occurred_at > ? AND occurred_at <= ? AND id <= ? AND "
    sql += _in("kind", ("bounce", "delay") if r.count_delays else ("bounce",), params)
    sql += " AND " + _in("reason", r.sender_side_reasons, params, negate=True)
    return _trust(trust.RECIPIENT, rules, sql, params, strict), params


def _sender_where(db: Db, ev: dict, rules, lo, t, complaints: bool = False,
                  strict: bool = False):
    r = rules.sender
    params = [ev["sender"], db.ts(lo), db.ts(t), ev["id"]]
    sql = "sender = ? AND occurred_at > ? AND occurred_at <= ? AND id <= ? AND "
    if complaints:
        kinds = ("complaint",)
    else:
        kinds = ("bounce", "delay") if r.count_delays else ("bounce",)
    sql += _in("kind", kinds, params)
    return _trust(trust.SENDER, rules, sql, params, strict), params


def _dest_where(db: Db, ev: dict, rules, domains, lo, t, strict: bool = False):
    r = rules.dest
    params: list = []
    sql = _in("recipient_domain", domains, params)
    sql += " AND occurred_at > ? AND occurred_at <= ? AND id <= ? AND kind IN ('bounce', 'delay')"
    params += [db.ts(lo), db.ts(t), ev["id"]]
    # The same test as core.is_throttle: a throttling reason, or a known text.
    alternatives = [_in("reason", r.reasons, params)]
    for m in r.markers:
        m = m.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        alternatives.append("lower(coalesce(diagnostic, '')) LIKE ? ESCAPE '\\'")
        params.append("%" + m + "%")
    sql += " AND (" + " OR ".join(alternatives) + ")"
    return _trust(trust.DESTINATION, rules, sql, params, strict), params


# --- load ----------------------------------------------------------------------------------

def _subject(db: Db, kind: str, subject: str, mode: str, domains=()) -> Subject:
    """The live flag (if any) and the last clearing time for (kind, subject)."""
    s = Subject(kind, subject, mode, domains=domains, verified=False)
    # A cleared row without cleared_at is a flag `bounces flags recompute` withdrew (the
    # rules no longer support it): not live, and no administrator's clearing to count
    # from either, so it must not take one of the two rows (judge/recompute.py).
    for fid, state, cleared_at, updated_at, verified in db.all(
        "SELECT id, state, cleared_at, updated_at, verified FROM flags "
        "WHERE kind = ? AND subject = ? "
        "AND (state != 'cleared' OR cleared_at IS NOT NULL) ORDER BY id DESC LIMIT 2",
        (kind, subject),
    ):
        if state != "cleared":
            if s.flag_id is None:
                s.flag_id = fid
                s.updated_at = micros(updated_at)
                s.verified = bool(verified)
        elif cleared_at is not None:
            s.since = micros(cleared_at)
            break
    return s


def _after(lo, since):
    return since if since is not None and since > lo else lo


def load(db: Db, ev: dict, rules, now: int, strict: bool = False, only=None) -> State:
    """The state of the subjects this event touches, with the counts its rules need.

    ``strict``: count verified evidence only (trust.py), for the kinds in ``only``.
    """
    t = anchor(ev, now)
    subjects = []
    shadowed = _Shadow(db, ev, rules, strict)

    def wanted(kind: str, s: Subject) -> bool:
        # REFRESH does not apply to the strict pass: it re-judges a decision just made.
        s.event_verified = trust.admits(ev, FAMILY[kind], rules, strict=True)
        return (s.since is None or t > s.since) and (strict or not settled(s, now))

    mode = dead_mode(ev, rules, strict, shadowed) if only is None or DEAD in only else None
    if mode is not None:
        s = _subject(db, DEAD, ev["recipient"], mode)
        s.event_verified = trust.admits(ev, trust.RECIPIENT, rules, strict=True)
        if mode == "soft" and (s.since is None or t > s.since):
            lo = _after(t - dead_lookback(rules), s.since)
            w, p = _dead_where(db, ev, rules, lo, t, strict)
            rows = db.all("SELECT DISTINCT date(occurred_at) FROM bounce_events WHERE " + w, p)
            s.counts["days"] = [day_number(r[0]) for r in rows]
        subjects.append(s)

    mode = None
    if only is None or COMPROMISED in only:
        mode = sender_mode(ev, rules, strict, shadowed)
    if mode is not None:
        r = rules.sender
        s = _subject(db, COMPROMISED, ev["sender"], mode)
        if wanted(COMPROMISED, s):
            if mode == "complaint":
                lo = _after(t - r.complaint_window_hours * HOUR, s.since)
                w, p = _sender_where(db, ev, rules, lo, t, complaints=True, strict=strict)
                s.counts["complaints"] = db.one(
                    "SELECT count(*) FROM bounce_events WHERE " + w, p
                )[0]
            else:
                window = r.window_minutes * MINUTE
                lo = _after(t - window, s.since)
                w, p = _sender_where(db, ev, rules, lo, t, strict=strict)
                sp: list = []
                spam = _in("reason", r.spam_reasons, sp)
                row = db.one(
                    "SELECT count(*), count(DISTINCT recipient_domain), "
                    f"coalesce(sum(CASE WHEN {spam} THEN 1 ELSE 0 END), 0) "
                    "FROM bounce_events WHERE " + w,
                    sp + p,
                )
                s.counts.update(bounces=row[0], domains=row[1], spam=int(row[2]))
                if needs_baseline(s.counts, rules):
                    hi = t - window
                    blo = _after(t - r.baseline_days * DAY, s.since)
                    base = 0
                    if hi > blo:
                        # Everything recorded for the sender (any kind, verified or not),
                        # so the count reads ix_bounce_events_sender_occurred_at alone
                        # (id is the rowid, in the index), and only up to the number
                        # beyond which R5 cannot fire: a steady big sender costs a bounded
                        # index range per bounce, not a week of table rows.
                        base = db.one(
                            "SELECT count(*) FROM (SELECT 1 FROM bounce_events WHERE "
                            "sender = ? AND occurred_at > ? AND occurred_at <= ? AND id <= ? "
                            "AND duplicate_of IS NULL LIMIT ?) AS b",
                            (ev["sender"], db.ts(blo), db.ts(hi), ev["id"],
                             baseline_cap(s.counts, rules)),
                        )[0]
                    s.counts["baseline"] = base
        subjects.append(s)

    dst = None
    if only is None or THROTTLED in only:
        dst = destination(ev, rules, strict, shadowed)
    if dst is not None:
        subject, domains = dst
        s = _subject(db, THROTTLED, subject, "deferral", domains)
        if wanted(THROTTLED, s):
            lo = _after(t - rules.dest.window_minutes * MINUTE, s.since)
            w, p = _dest_where(db, ev, rules, domains, lo, t, strict)
            row = db.one(
                "SELECT count(*), coalesce(sum(CASE WHEN origin = ? THEN 1 ELSE 0 END), 0) "
                "FROM bounce_events WHERE " + w,
                [trust.QUEUE, *p],
            )
            # How many of them the live queue showed (livequeue.py): where the flag's
            # evidence came from, for whoever reads the alert.
            s.counts.update(deferrals=row[0], queued=int(row[1]))
        subjects.append(s)

    return State(subjects)


# --- apply ---------------------------------------------------------------------------------

def _sample_where(db: Db, d, ev: dict, rules):
    if d.rule == "R2":
        return _dead_where(db, ev, rules, d.lo, d.t)
    if d.rule == "R7":
        return _sender_where(db, ev, rules, d.lo, d.t, complaints=True)
    if d.kind == COMPROMISED:
        return _sender_where(db, ev, rules, d.lo, d.t)
    if d.kind == THROTTLED:
        return _dest_where(db, ev, rules, d.domains, d.lo, d.t)
    return None  # R1: the event itself is the evidence


def apply(db: Db, d, ev: dict, rules) -> int:
    """Write one decision; return the flag id."""
    at = db.ts(d.at)
    evidence = dumps(d.evidence)
    verified = bool(d.verified)
    if d.action == RAISE:
        # ON CONFLICT on the live-flag index: with PostgreSQL and several relays, another
        # transaction may have raised the same flag since `load` looked (SQLite's BEGIN
        # IMMEDIATE serialises writers, so there it cannot happen). Then this is an update.
        rows = db.all(
            "INSERT INTO flags (kind, subject, state, rule, raised_at, updated_at, evidence, "
            "advice, verified) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, subject) WHERE state != 'cleared' DO NOTHING RETURNING id",
            (d.kind, d.subject, d.rule, at, at, evidence, d.advice, verified),
        )
        if not rows:
            d.action = UPDATE
            d.flag_id = db.one(
                "SELECT id FROM flags WHERE kind = ? AND subject = ? AND state != 'cleared'",
                (d.kind, d.subject),
            )[0]
            return apply(db, d, ev, rules)
        fid = rows[0][0]
        _audit(db, fid, at, "raised", d)
        sample = _sample_where(db, d, ev, rules)
        if sample is None:
            db.run("INSERT INTO flag_evidence (flag_id, event_id) VALUES (?, ?)", (fid, d.event_id))
        else:
            w, p = sample
            db.run(
                "INSERT INTO flag_evidence (flag_id, event_id) SELECT ?, id FROM bounce_events "
                "WHERE " + w + " ORDER BY id DESC LIMIT ?",
                [fid, *p, SAMPLES],
            )
        return fid
    fid = d.flag_id
    was = db.one("SELECT verified FROM flags WHERE id = ?", (fid,))
    became_verified = verified and not (was and was[0])
    # Once verified, a flag stays so (it is exported) until it is cleared.
    db.run(
        "UPDATE flags SET updated_at = ?, evidence = ?, verified = (verified OR ?) WHERE id = ?",
        (at, evidence, verified, fid),
    )
    cur = db.run(
        "INSERT INTO flag_evidence (flag_id, event_id) SELECT ?, ? "
        "WHERE (SELECT count(*) FROM flag_evidence WHERE flag_id = ?) < ? "
        "ON CONFLICT DO NOTHING",
        (fid, d.event_id, fid, MAX_EVIDENCE),
    )
    if cur.rowcount == 1 or became_verified:
        # One audit line per new piece of evidence (bounded by MAX_EVIDENCE), not one per
        # bounce of a 100,000-bounce spam run; and the one that made the flag verified.
        _audit(db, fid, at, "updated", d)
    return fid


def _audit(db: Db, fid: int, at, action: str, d) -> None:
    """The flag's audit line: the judge's evidence and the event that caused it."""
    detail = dict(d.evidence)
    detail["event_id"] = d.event_id
    detail["verified"] = bool(d.verified)
    db.run(
        "INSERT INTO flag_events (flag_id, at, action, actor, detail) "
        "VALUES (?, ?, ?, 'judge', ?)",
        (fid, at, action, dumps(detail)),
    )
