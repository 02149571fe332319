"""`bounces alert`: the flags raised since the last run, claimed once per channel.

A channel ("sendmail:root", "webhook:https://hooks.example/x", "stdout") remembers in
``alert_state`` the id of the last ``flag_events`` row it reported.  A run *claims* the
range (last, newest] with a compare-and-swap UPDATE (``WHERE last_flag_event_id = old``)
before sending: of two cron runs racing each other, exactly one gets the range, the other
finds nothing new; so a flag is never alerted twice.  If delivery then fails, the claim
is handed back (the same swap, reversed) and the next run retries: alerts are delayed,
never dropped.  Only a crash between a successful send and nothing at all could repeat
one, and then nothing is lost either.

The first run of a channel reports the flags raised at any time that are still live
(open or acked), not the whole history of cleared ones.
"""

from __future__ import annotations

import json

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bounce_handler.reports import db


class Claim:
    """What one run took: the raised flags in (old, new] for `channel`."""

    __slots__ = ("channel", "old", "new", "flags")

    def __init__(self, channel: str, old: int, new: int, flags: list[dict]) -> None:
        self.channel = channel
        self.old = old
        self.new = new
        self.flags = flags


def _state(conn, channel: str) -> int | None:
    st = db.alert_state
    return conn.execute(
        select(st.c.last_flag_event_id).where(st.c.channel == channel)
    ).scalar_one_or_none()


def claim(settings, channel: str, now) -> Claim:
    """Take the raised flags this channel has not reported yet (possibly none)."""
    st, fe = db.alert_state, db.flag_events
    with db.connect(settings, write=True) as conn:
        old = _state(conn, channel)
        first = old is None
        if first:
            try:
                with conn.begin_nested():
                    conn.execute(insert(st).values(channel=channel, last_flag_event_id=0,
                                                   last_run_at=None))
            except IntegrityError:  # a concurrent first run inserted it: use its state
                pass
            old = _state(conn, channel) or 0
        newest = conn.execute(
            select(func.max(fe.c.id)).where(fe.c.id > old, fe.c.action == "raised")
        ).scalar_one()
        if newest is None:
            conn.execute(update(st).where(st.c.channel == channel).values(last_run_at=now))
            return Claim(channel, old, old, [])
        done = conn.execute(
            update(st)
            .where(st.c.channel == channel, st.c.last_flag_event_id == old)
            .values(last_flag_event_id=newest, last_run_at=now)
        ).rowcount
        if done != 1:  # another run claimed it between our read and our update
            return Claim(channel, old, old, [])
        flags = raised_between(conn, old, newest, live_only=first)
    return Claim(channel, old, newest, flags)


def release(settings, claim_: Claim) -> bool:
    """Hand a claim back after a failed delivery (True if it was still ours)."""
    st = db.alert_state
    if claim_.new == claim_.old:
        return True
    with db.connect(settings, write=True) as conn:
        return conn.execute(
            update(st)
            .where(st.c.channel == claim_.channel, st.c.last_flag_event_id == claim_.new)
            .values(last_flag_event_id=claim_.old)
        ).rowcount == 1


def peek(conn, channel: str) -> list[dict]:
    """What the next run would report, without claiming it (--dry-run)."""
    old = _state(conn, channel)
    fe = db.flag_events
    newest = conn.execute(
        select(func.max(fe.c.id)).where(fe.c.id > (old or 0), fe.c.action == "raised")
    ).scalar_one()
    if newest is None:
        return []
    return raised_between(conn, old or 0, newest, live_only=old is None)


def raised_between(conn, old: int, new: int, *, live_only: bool = False) -> list[dict]:
    """The flags raised by flag_events rows old < id <= new, with their current state."""
    fe, fl = db.flag_events, db.flags
    q = (
        select(fe.c.id.label("event_id"), fe.c.at, fe.c.detail, fl.c.id, fl.c.kind,
               fl.c.subject, fl.c.state, fl.c.rule, fl.c.raised_at, fl.c.evidence,
               fl.c.advice)
        .join(fl, fl.c.id == fe.c.flag_id)
        .where(fe.c.id > old, fe.c.id <= new, fe.c.action == "raised")
        .order_by(fe.c.id)
    )
    if live_only:
        q = q.where(fl.c.state.in_(db.LIVE_STATES))
    out = []
    for r in conn.execute(q):
        try:
            evidence = json.loads(r.evidence or "{}")
        except ValueError:
            evidence = {"raw": r.evidence}
        out.append({
            "id": r.id, "kind": r.kind, "subject": r.subject, "state": r.state,
            "rule": r.rule, "raised_at": r.raised_at.isoformat(), "evidence": evidence,
            "advice": r.advice,
        })
    return out


def open_counts(conn) -> dict[str, dict[str, int]]:
    """{kind: {"open": n, "acked": n}} over the live flags."""
    fl = db.flags
    out: dict[str, dict[str, int]] = {}
    q = (
        select(fl.c.kind, fl.c.state, func.count())
        .where(fl.c.state.in_(db.LIVE_STATES))
        .group_by(fl.c.kind, fl.c.state)
    )
    for kind, state, n in conn.execute(q):
        out.setdefault(kind, {"open": 0, "acked": 0})[state] = n
    return out


def rule_text(rule: str) -> str:
    """The numbered rule's one-line description (judge/rules.py), or ''."""
    try:
        from bounce_handler.judge.rules import RULES
    except ImportError:  # pragma: no cover - the judge is part of the package
        return ""
    for number, _kind, text in RULES:
        if number == rule:
            return text
    return ""


def compose(flags: list[dict], counts: dict, relay: str) -> tuple[str, str]:
    """(subject, body) of the alert: one paragraph per new flag, then what is open."""
    n = len(flags)
    kinds = sorted({f["kind"] for f in flags})
    subject = f"[bounce-handler] {n} new flag{'s' if n != 1 else ''} on {relay}: " + ", ".join(
        kinds
    )
    lines = [f"bounce-handler on {relay} raised {n} flag{'s' if n != 1 else ''} "
             "since the last alert.", ""]
    for f in flags:
        lines.append(f"#{f['id']} {f['kind']}: {f['subject']}  [{f['state']}]")
        lines.append(f"  rule {f['rule']}: {rule_text(f['rule'])}")
        lines.append(f"  raised {f['raised_at'].replace('T', ' ')[:19]} UTC")
        if f["evidence"]:
            facts = ", ".join(f"{k}={v}" for k, v in f["evidence"].items()
                              if not isinstance(v, (list, dict)))
            if facts:
                lines.append(f"  evidence: {facts}")
        if f["advice"]:
            lines.append(f"  advice: {f['advice']}")
        lines.append(f"  details: bounces flags show {f['id']}; when handled: "
                     f"bounces flags ack {f['id']}")
        lines.append("")
    live = ", ".join(f"{k}: {v['open']} open, {v['acked']} acked"
                     for k, v in sorted(counts.items()))
    lines.append(f"Live flags now: {live or 'none'}.")
    return subject, "\n".join(lines) + "\n"
