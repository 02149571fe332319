"""`bounces alert`: what changed about the flags since a channel's last run, reported once.

**What is reported.**  A flag's *notices* are the audit lines that change what an
administrator must know: ``raised`` (the judge raised it), ``withdrawn`` (`bounces flags
recompute` found that the current rules no longer support it) and ``restored`` (a
recompute found them supporting it again).  A channel ("sendmail:root",
"webhook:https://hooks.example/x", "stdout") keeps in ``alert_marks`` the flag_events id
of the newest notice it reported for each flag; a flag is pending while it has a newer
notice than its mark (or none).  Nothing depends on a global position in flag_events, so
neither a recompute (which rewrites flags and their trails, judge/recompute.py) nor
PostgreSQL handing out ids in one order and committing them in another can make a flag
skip its alert or come twice.  ``--kind`` picks flags of some kinds only; the others stay
pending for a run that includes them.

**Claims.**  A run takes the channel's ``alert_state`` row as a lock (SQLite: BEGIN
IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE), reads what is pending, moves the marks and
commits, then sends: of two cron runs racing each other, exactly one gets the flags.  If
delivery fails, the marks are moved back (only those still as this run left them) and the
next run retries: alerts are delayed, never dropped.  Only a crash between a successful
send and that hand-back could repeat one, and then nothing is lost either.

The first run of a channel reports the live flags (open or acked), not the history: the
flags already cleared or withdrawn are marked as reported without being sent.

**The mail** is plain text a person reads first: a short unfolded Subject, UTF-8 in 8bit
(or 7bit when ASCII), the most urgent kinds first (judge/rules.py SEVERITY: compromised
senders, throttled destinations, dead recipients), a digest instead of hundreds of lines
when many dead recipients come at once, and every bounce-derived text made harmless:
control characters shown as escapes, nothing bounce-derived in a header.
"""

from __future__ import annotations

import json
import unicodedata

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bounce_handler.judge.rules import COMPROMISED, DEAD, SEVERITY, THROTTLED
from bounce_handler.reports import db

# The audit actions an alert reports (models.FlagEvent); the rest ('updated', 'acked',
# 'cleared', 'recomputed') are the administrator's own doing or routine.
NOTICES = ("raised", "withdrawn", "restored")
NEW = ("raised", "restored")


class Claim:
    """What one run took: the pending flags, and each mark as it was before (to hand back)."""

    __slots__ = ("channel", "flags", "marks")

    def __init__(self, channel: str, flags: list[dict], marks: list[tuple]) -> None:
        self.channel = channel
        self.flags = flags
        self.marks = marks  # [(flag_id, old mark or None, new mark)]

    @property
    def new(self) -> list[dict]:
        """The flags raised (or restored) since the last run."""
        return [f for f in self.flags if f["notice"] in NEW]


def _pending(conn, channel: str, kinds) -> list:
    """Rows of flags with a notice newer than the channel's mark (severity order)."""
    fe, fl, m = db.flag_events, db.flags, db.alert_marks
    newest = (
        select(fe.c.flag_id, func.max(fe.c.id).label("notice"))
        .where(fe.c.action.in_(NOTICES))
        .group_by(fe.c.flag_id)
        .subquery()
    )
    note = fe.alias("note")
    q = (
        select(fl.c.id, fl.c.kind, fl.c.subject, fl.c.state, fl.c.rule, fl.c.raised_at,
               fl.c.updated_at, fl.c.cleared_at, fl.c.evidence, fl.c.advice,
               newest.c.notice, note.c.action.label("action"), note.c.at.label("notice_at"),
               note.c.detail.label("notice_detail"), m.c.flag_event_id.label("mark"))
        .join(newest, newest.c.flag_id == fl.c.id)
        .join(note, note.c.id == newest.c.notice)
        .outerjoin(m, and_(m.c.flag_id == fl.c.id, m.c.channel == channel))
        .where(or_(m.c.flag_event_id.is_(None), m.c.flag_event_id < newest.c.notice))
        .order_by(fl.c.id)
    )
    if kinds:
        q = q.where(fl.c.kind.in_(kinds))
    rows = list(conn.execute(q))
    return sorted(rows, key=lambda r: (_rank(r.kind), r.id))


def _rank(kind: str) -> int:
    return SEVERITY.index(kind) if kind in SEVERITY else len(SEVERITY)


def _live(row) -> bool:
    return row.state in db.LIVE_STATES


def _require_marks(conn) -> None:
    """StoreUnavailable (exit 75: cron retries) on a store not migrated to alert_marks."""
    from sqlalchemy import inspect

    from bounce_handler.errors import StoreUnavailable

    if not inspect(conn).has_table(db.alert_marks.name):
        raise StoreUnavailable("the store's schema predates per-flag alert bookkeeping "
                               "(no alert_marks table): run `bounces db upgrade`")


def claim(settings, channel: str, now, kinds=None) -> Claim:
    """Take what this channel has not reported yet (possibly nothing), for these kinds."""
    st = db.alert_state
    with db.connect(settings, write=True) as conn:
        _require_marks(conn)
        first = False
        if conn.execute(select(st.c.channel).where(st.c.channel == channel)).first() is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(st).values(channel=channel, last_flag_event_id=0,
                                                   last_run_at=None))
                first = True
            except IntegrityError:  # a concurrent first run inserted it: use its state
                pass
        # The channel's lock (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises).
        top = conn.execute(
            select(st.c.last_flag_event_id).where(st.c.channel == channel).with_for_update()
        ).scalar_one()
        rows = _pending(conn, channel, kinds)
        if first:
            # History is not news: flags already cleared or withdrawn are marked, of every
            # kind; live ones of other kinds stay pending for a run that asks for them.
            rows_all = rows if not kinds else _pending(conn, channel, None)
            silent = [r for r in rows_all if not _live(r)]
            sent = [r for r in rows if _live(r)]
        else:
            silent, sent = [], rows
        marks = [(r.id, r.mark, r.notice) for r in silent + sent]
        _move(conn, channel, marks, now)
        newest = max([top or 0] + [n for _, _, n in marks])
        conn.execute(update(st).where(st.c.channel == channel)
                     .values(last_flag_event_id=newest, last_run_at=now))
        flags = [_flag(r) for r in sent]
    ids = {f["id"] for f in flags}
    return Claim(channel, flags, [mark for mark in marks if mark[0] in ids])


def _move(conn, channel: str, marks: list[tuple], now) -> None:
    m = db.alert_marks
    fresh = [{"channel": channel, "flag_id": i, "flag_event_id": new, "alerted_at": now}
             for i, old, new in marks if old is None]
    if fresh:
        conn.execute(insert(m), fresh)
    for i, old, new in marks:
        if old is not None:
            conn.execute(update(m).where(m.c.channel == channel, m.c.flag_id == i)
                         .values(flag_event_id=new, alerted_at=now))


def release(settings, claim_: Claim) -> bool:
    """Hand a claim back after a failed delivery (True if every mark was still ours)."""
    m = db.alert_marks
    if not claim_.marks:
        return True
    ours = 0
    with db.connect(settings, write=True) as conn:
        for flag_id, old, new in claim_.marks:
            mine = and_(m.c.channel == claim_.channel, m.c.flag_id == flag_id,
                        m.c.flag_event_id == new)
            if old is None:
                ours += conn.execute(m.delete().where(mine)).rowcount
            else:
                ours += conn.execute(update(m).where(mine).values(flag_event_id=old)).rowcount
    return ours == len(claim_.marks)


def peek(conn, channel: str, kinds=None) -> list[dict]:
    """What the next run would report, without claiming it (--dry-run)."""
    _require_marks(conn)
    st = db.alert_state
    first = conn.execute(select(st.c.channel).where(st.c.channel == channel)).first() is None
    return [_flag(r) for r in _pending(conn, channel, kinds) if not first or _live(r)]


def _flag(r) -> dict:
    try:
        evidence = json.loads(r.evidence or "{}")
    except ValueError:
        evidence = {"raw": r.evidence}
    try:
        detail = json.loads(r.notice_detail or "{}")
    except ValueError:
        detail = {}
    return {
        "id": r.id, "kind": r.kind, "subject": r.subject, "state": r.state,
        "rule": r.rule, "raised_at": _iso(r.raised_at), "updated_at": _iso(r.updated_at),
        "evidence": evidence, "advice": r.advice,
        "withdrawn": r.state == "cleared" and r.cleared_at is None,
        "notice": r.action, "notice_at": _iso(r.notice_at),
        "notice_from": detail.get("from") if isinstance(detail, dict) else None,
        "alerted_before": r.mark is not None,
    }


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace(" ", "T")
    return value.isoformat()


def open_counts(conn, kinds=None) -> dict[str, dict[str, int]]:
    """{kind: {"open": n, "acked": n}} over the live flags (of these kinds), by severity."""
    fl = db.flags
    out: dict[str, dict[str, int]] = {}
    q = (
        select(fl.c.kind, fl.c.state, func.count())
        .where(fl.c.state.in_(db.LIVE_STATES))
        .group_by(fl.c.kind, fl.c.state)
    )
    if kinds:
        q = q.where(fl.c.kind.in_(kinds))
    for kind, state, n in conn.execute(q):
        out.setdefault(kind, {"open": 0, "acked": 0})[state] = n
    return {k: out[k] for k in sorted(out, key=_rank)}


def rule_text(rule: str) -> str:
    """The numbered rule's one-line description (judge/rules.py), or ''."""
    from bounce_handler.judge.rules import RULES

    for number, _kind, text in RULES:
        if number == rule:
            return text
    return ""


# --- the text ------------------------------------------------------------------------------

# RFC 5322 2.1.1: a line is at most 998 octets; the subject line should stay within 78 so
# no mail client or MTA folds it (`Subject: ` takes 9 of them).
MAX_LINE = 990
MAX_SUBJECT = 78 - len("Subject: ")
# More dead-recipient flags than this in one alert become a digest (counts by domain, the
# newest few, the commands for the full list) rather than a paragraph each.
DIGEST_AT = 10
DIGEST_SHOW = 10
DIGEST_DOMAINS = 10

HEADINGS = {
    COMPROMISED: ("COMPROMISED SENDERS",
                  "mail under these local senders bounces like a spam run: hold their "
                  "mail, reset their credentials"),
    THROTTLED: ("THROTTLED DESTINATIONS",
                "these providers are refusing the relay's mail for its rate or "
                "reputation: slow down delivery to them (advice below)"),
    DEAD: ("DEAD RECIPIENTS",
           "these addresses do not exist (or have failed for days): stop sending to them"),
}
SHORT = {COMPROMISED: "compromised", THROTTLED: "throttled", DEAD: "dead"}

# Unicode categories shown as escapes in alert text: control characters (C0, DEL, C1),
# format characters (bidi overrides such as U+202E, zero-width characters), line and
# paragraph separators, and lone surrogates (bytes a decoder kept with surrogateescape).
_HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs")


def visible(value, limit: int = 300) -> str:
    r"""Bounce-derived text made harmless for a plain-text mail.

    One line, no control character (each shown as a \xNN / \uNNNN escape), at most
    ``limit`` characters.
    """
    text = "" if value is None else str(value)
    out = []
    for ch in text[: limit * 2]:
        if unicodedata.category(ch) in _HIDDEN:
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(evidence: dict) -> str:
    """``k=v`` pairs of an evidence dict; None values left out (nothing to say)."""
    parts = []
    for k, v in evidence.items():
        if v is None or isinstance(v, dict):
            continue
        if isinstance(v, list):
            v = ",".join(str(x) for x in v[:10]) + (",…" if len(v) > 10 else "")
        parts.append(f"{visible(k, 40)}={visible(v, 300)}")
    return ", ".join(parts)


def _when(iso: str | None) -> str:
    return (iso or "?").replace("T", " ")[:19] + " UTC"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _subject(new: list[dict], gone: list[dict], relay: str) -> str:
    """A short subject, only from counts and the relay's name (never bounce-derived text)."""
    by_kind = {}
    for f in new:
        by_kind[f["kind"]] = by_kind.get(f["kind"], 0) + 1
    summary = ", ".join(f"{by_kind[k]} {SHORT.get(k, k)}"
                        for k in sorted(by_kind, key=_rank))
    if gone:
        summary += (", " if summary else "") + f"{len(gone)} withdrawn"
    count = _plural(len(new), "new flag") if new else _plural(len(gone), "flag") + " withdrawn"
    # The relay's name comes from the configuration or the host name; ASCII and one line
    # all the same, so the header never needs encoded-words nor folding.
    relay = "".join(c if " " < c < "\x7f" else "?" for c in str(relay)) or "?"
    # The first form that fits: the count is implied by the summary in the second, and
    # only then is the relay's name shortened.
    forms = [f"[bounce-handler] {count} on {relay}: {summary}",
             f"[bounce-handler] {relay}: {summary}"]
    for text in forms:
        if len(text) <= MAX_SUBJECT:
            return text
    room = MAX_SUBJECT - len(forms[1]) + len(relay)
    text = f"[bounce-handler] {relay[: max(room - 1, 8)]}~: {summary}"
    return text[:MAX_SUBJECT]


def _paragraph(f: dict, lines: list[str]) -> None:
    tag = f"[{f['state']}]"
    if f["notice"] == "restored":
        tag += " (restored by `bounces flags recompute`: the current rules support it again)"
    lines.append(f"#{f['id']} {f['kind']}: {visible(f['subject'])}  {tag}")
    lines.append(f"  rule {f['rule']}: {rule_text(f['rule'])}")
    lines.append(f"  raised {_when(f['raised_at'])}")
    now = f.get("evidence_now")
    if f["evidence"]:
        facts = _facts(f["evidence"])
        if facts:
            label = f"evidence at {_when(f.get('updated_at'))}" if now else "evidence"
            lines.append(f"  {label}: {facts}")
    if now:
        lines.append(f"  evidence now (window to {visible(now['as_of'], 19)} UTC): "
                     f"{_facts(now['evidence'])}")
    if f["advice"]:
        advice = [ln for ln in str(f["advice"]).splitlines() if ln.strip()]
        lines.append(f"  advice: {visible(advice[0], 500) if advice else ''}")
        lines.extend(f"    {visible(ln, 500)}" for ln in advice[1:20])
    lines.append(f"  details: bounces flags show {f['id']}; when handled: "
                 f"bounces flags ack {f['id']}")
    lines.append("")


def _digest(flags: list[dict], lines: list[str]) -> None:
    domains: dict[str, int] = {}
    for f in flags:
        d = f["subject"].rpartition("@")[2].lower() or "(none)"
        domains[d] = domains.get(d, 0) + 1
    ranked = sorted(domains.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{visible(d, 80)} {n}" for d, n in ranked[:DIGEST_DOMAINS])
    more = len(ranked) - DIGEST_DOMAINS
    lines.append(f"{len(flags)} new dead-recipient flags, by domain: {shown}"
                 + (f" (and {more} more domains)" if more > 0 else ""))
    newest = sorted(flags, key=lambda f: f["id"], reverse=True)[:DIGEST_SHOW]
    lines.append(f"The {len(newest)} newest:")
    for f in newest:
        e = f["evidence"] or {}
        why = " ".join(visible(x, 40) for x in (e.get("status"), e.get("reason")) if x)
        lines.append(f"  #{f['id']} {visible(f['subject'])}  {f['rule']} {why}  "
                     f"[{f['state']}] raised {_when(f['raised_at'])}")
    lines.append("All of them: bounces flags list --kind dead-recipient")
    lines.append("As a Postfix access map: bounces export dead-recipients --format postfix "
                 "-o FILE")
    lines.append("")


def compose(flags: list[dict], counts: dict, relay: str) -> tuple[str, str]:
    """(subject, body) of the alert: the flags by severity, withdrawals, what is live now."""
    new = [f for f in flags if f["notice"] in NEW]
    gone = [f for f in flags if f["notice"] == "withdrawn"]
    subject = _subject(new, gone, relay)
    relay_text = visible(relay, 100)
    lines = []
    if new:
        kinds = {}
        for f in new:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
        what = ", ".join(_plural(kinds[k], _noun(k)) for k in sorted(kinds, key=_rank))
        lines += [f"bounce-handler on {relay_text} raised {_plural(len(new), 'flag')} since "
                  f"the last alert, the most urgent first ({what}).", ""]
    for kind in sorted({f["kind"] for f in new}, key=_rank):
        mine = [f for f in new if f["kind"] == kind]
        heading, why = HEADINGS.get(kind, (kind.upper(), ""))
        lines += [f"{heading} ({len(mine)}): {why}", ""]
        if kind == DEAD and len(mine) > DIGEST_AT:
            _digest(mine, lines)
        else:
            for f in mine:
                _paragraph(f, lines)
    if gone:
        lines += [f"WITHDRAWN BY RECOMPUTE ({len(gone)}): `bounces flags recompute` found "
                  "that the current [rules] no longer support these flags; they left the "
                  "live set and the exports. Nothing to do, unless the rules are wrong.", ""]
        for f in gone[:50]:
            was = f.get("notice_from") or "live"
            never = "" if f["alerted_before"] else "; not alerted before"
            lines.append(f"  #{f['id']} {f['kind']}: {visible(f['subject'])}  (was {was}, "
                         f"rule {f['rule']}, raised {_when(f['raised_at'])}{never})")
        if len(gone) > 50:
            lines.append(f"  ... and {len(gone) - 50} more: bounces flags list --state cleared")
        lines.append("")
    live = ", ".join(f"{k}: {v['open']} open, {v['acked']} acked" for k, v in counts.items())
    lines.append(f"Live flags now: {live or 'none'}.")
    body = "\n".join(_fit(ln) for ln in lines) + "\n"
    return subject, body


def _noun(kind: str) -> str:
    return {COMPROMISED: "compromised sender", THROTTLED: "throttled destination",
            DEAD: "dead recipient"}.get(kind, kind)


def _fit(line: str) -> str:
    """A body line within RFC 5322's 998 octets (the 8bit/7bit transfer encodings need it)."""
    raw = line.encode("utf-8", "replace")
    if len(raw) <= MAX_LINE:
        return line
    return raw[: MAX_LINE - 3].decode("utf-8", "ignore") + "…"
