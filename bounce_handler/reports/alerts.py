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


# What one alert shows in full; beyond, counts (and, for dead recipients, the digest).
# A first run on a store with 300,000 live flags must not hold them all in memory (nor
# POST them to a webhook): only ids and marks are kept for every flag claimed.
URGENT_SHOW = 200
CHUNK = 5000
WITHDRAWN_SHOW = 50
# More dead-recipient flags than this in one alert become a digest (counts by domain, the
# newest few, the commands for the full list) rather than a paragraph each.
DIGEST_AT = 10
DIGEST_SHOW = 10


class Claim:
    """What one run took, and how to hand it back.

    ``ids``: every flag reported; ``flags``: those shown in full (dicts, severity order);
    ``summary``: the counts the text needs (``new`` by kind, ``withdrawn``, ``domains``
    of the new dead recipients); ``marks``: (flag ids, marks before, marks now) arrays.
    """

    __slots__ = ("channel", "flags", "ids", "summary", "marks")

    def __init__(self, channel: str, flags: list[dict], ids, summary: dict, marks) -> None:
        self.channel = channel
        self.flags = flags
        self.ids = ids
        self.summary = summary
        self.marks = marks

    @property
    def new(self) -> list[dict]:
        """The flags shown as raised (or restored) since the last run."""
        return [f for f in self.flags if f["notice"] in NEW]

    @property
    def any_new(self) -> bool:
        """Whether anything was raised (or restored) since the last run."""
        return bool(self.summary["new"])


def _pending(conn, channel: str, kinds=None, other_kinds=None):
    """The flags with a notice newer than the channel's mark, streamed.

    Rows of (id, kind, subject, state, notice, action, mark): most severe kind first,
    then by id.
    """
    from sqlalchemy import case

    fe, fl, m = db.flag_events, db.flags, db.alert_marks
    newest = (
        select(fe.c.flag_id, func.max(fe.c.id).label("notice"))
        .where(fe.c.action.in_(NOTICES))
        .group_by(fe.c.flag_id)
        .subquery()
    )
    # Pending first, from the two indexes alone (notices, marks); the flag and its notice
    # are then read for the pending ones only, not for every flag there is.
    p = (
        select(newest.c.flag_id, newest.c.notice, m.c.flag_event_id.label("mark"))
        .select_from(newest.outerjoin(m, and_(m.c.flag_id == newest.c.flag_id,
                                               m.c.channel == channel)))
        .where(or_(m.c.flag_event_id.is_(None), m.c.flag_event_id < newest.c.notice))
        .subquery()
    )
    note = fe.alias("note")
    q = (
        select(fl.c.id, fl.c.kind, fl.c.subject, fl.c.state, p.c.notice, note.c.action,
               p.c.mark)
        .join(p, p.c.flag_id == fl.c.id)
        .join(note, note.c.id == p.c.notice)
        .order_by(case({k: i for i, k in enumerate(SEVERITY)}, value=fl.c.kind,
                       else_=len(SEVERITY)), fl.c.id)
    )
    if kinds:
        q = q.where(fl.c.kind.in_(kinds))
    if other_kinds:
        q = q.where(fl.c.kind.not_in(other_kinds))
    return conn.execute(q)


def _rank(kind: str) -> int:
    return SEVERITY.index(kind) if kind in SEVERITY else len(SEVERITY)


class _Collect:
    """Walks the pending rows once: marks for all, counts, and which to show in full."""

    def __init__(self) -> None:
        from array import array
        from collections import deque

        self.ids, self.old, self.new = array("q"), array("q"), array("q")
        self.reported = array("b")  # 1: sent, 0: marked only (history on a first run)
        self.show: list[int] = []
        self.per_kind: dict[str, int] = {}
        self.withdrawn = 0
        self.domains: dict[str, int] = {}
        self.dead_first: list[int] = []
        self.dead_last = deque(maxlen=DIGEST_SHOW)

    def mark(self, r, reported: bool) -> None:
        self.ids.append(r.id)
        self.old.append(-1 if r.mark is None else r.mark)  # -1: there was no mark
        self.new.append(r.notice)
        self.reported.append(1 if reported else 0)
        if reported:
            self.report(r)

    def report(self, r) -> None:
        if r.action == "withdrawn":
            self.withdrawn += 1
            if self.withdrawn <= WITHDRAWN_SHOW:
                self.show.append(r.id)
            return
        n = self.per_kind[r.kind] = self.per_kind.get(r.kind, 0) + 1
        if r.kind != DEAD:
            if n <= URGENT_SHOW:
                self.show.append(r.id)
            return
        d = r.subject.rpartition("@")[2].lower() or "(none)"
        self.domains[d] = self.domains.get(d, 0) + 1
        if n <= DIGEST_AT:
            self.dead_first.append(r.id)
        self.dead_last.append(r.id)

    def shown(self) -> list[int]:
        dead = self.per_kind.get(DEAD, 0)
        return self.show + (self.dead_first if dead <= DIGEST_AT else list(self.dead_last))

    def summary(self) -> dict:
        return {"new": dict(self.per_kind), "withdrawn": self.withdrawn,
                "domains": dict(self.domains)}


def _live(row) -> bool:
    return row.state in db.LIVE_STATES


def _require_marks(conn) -> None:
    """StoreUnavailable (exit 75: cron retries) on a store not migrated to alert_marks."""
    from sqlalchemy import inspect

    from bounce_handler.errors import StoreUnavailable

    if not inspect(conn).has_table(db.alert_marks.name):
        raise StoreUnavailable("the store's schema predates per-flag alert bookkeeping "
                               "(no alert_marks table): run `bounces db upgrade`")


def _walk(conn, channel: str, kinds, first: bool) -> _Collect:
    c = _Collect()
    for r in _pending(conn, channel, kinds):
        c.mark(r, reported=not first or _live(r))  # a first run: history is not news
    if first and kinds:
        # Flags already cleared or withdrawn are marked of every kind; live ones of the
        # other kinds stay pending for a run that asks for them.
        for r in _pending(conn, channel, other_kinds=kinds):
            if not _live(r):
                c.mark(r, reported=False)
    return c


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
        c = _walk(conn, channel, kinds, first)
        _move(conn, channel, c.ids, c.old, c.new, now)
        newest = max([top or 0, *c.new]) if c.new else (top or 0)
        conn.execute(update(st).where(st.c.channel == channel)
                     .values(last_flag_event_id=newest, last_run_at=now))
        flags = _details(conn, c.shown())
    # Only what was reported is handed back on failure (marked history stays marked).
    from array import array
    from itertools import compress

    marks = tuple(array("q", compress(a, c.reported)) for a in (c.ids, c.old, c.new))
    return Claim(channel, flags, marks[0], c.summary(), marks)


def _move(conn, channel: str, ids, old, new, now) -> None:
    """Write the marks, CHUNK rows a statement (a first run may mark 300,000 flags)."""
    from itertools import islice

    from sqlalchemy import bindparam

    m = db.alert_marks
    fresh = ({"channel": channel, "flag_id": i, "flag_event_id": n, "alerted_at": now}
             for i, o, n in zip(ids, old, new, strict=True) if o < 0)
    moved = ({"c": channel, "f": i, "n": n, "t": now}
             for i, o, n in zip(ids, old, new, strict=True) if o >= 0)
    move = (update(m).where(m.c.channel == bindparam("c"), m.c.flag_id == bindparam("f"))
            .values(flag_event_id=bindparam("n"), alerted_at=bindparam("t")))
    for rows, stmt in ((fresh, insert(m)), (moved, move)):
        while chunk := list(islice(rows, CHUNK)):
            conn.execute(stmt, chunk)


def release(settings, claim_: Claim) -> bool:
    """Hand a claim back after a failed delivery (True if every mark was still ours)."""
    from sqlalchemy import bindparam

    m = db.alert_marks
    ids, old, new = claim_.marks
    if not ids:
        return True
    mine = and_(m.c.channel == claim_.channel, m.c.flag_id == bindparam("f"),
                m.c.flag_event_id == bindparam("n"))
    ours = 0
    with db.connect(settings, write=True) as conn:
        gone = [{"f": i, "n": n} for i, o, n in zip(ids, old, new, strict=True) if o < 0]
        back = [{"f": i, "n": n, "o": o} for i, o, n in zip(ids, old, new, strict=True)
                if o >= 0]
        if gone:
            ours += conn.execute(m.delete().where(mine), gone).rowcount
        if back:
            ours += conn.execute(update(m).where(mine).values(flag_event_id=bindparam("o")),
                                 back).rowcount
    return ours == len(ids)


def peek(conn, channel: str, kinds=None) -> tuple[list[dict], dict]:
    """What the next run would report, without claiming it (--dry-run): (flags, summary)."""
    _require_marks(conn)
    st = db.alert_state
    first = conn.execute(select(st.c.channel).where(st.c.channel == channel)).first() is None
    c = _walk(conn, channel, kinds, first)
    return _details(conn, c.shown()), c.summary()


def _details(conn, ids: list[int]) -> list[dict]:
    """The flags to show in full, in the order given, with their newest notice."""
    if not ids:
        return []
    fe, fl = db.flag_events, db.flags
    newest = (
        select(fe.c.flag_id, func.max(fe.c.id).label("notice"))
        .where(fe.c.action.in_(NOTICES), fe.c.flag_id.in_(ids))
        .group_by(fe.c.flag_id)
        .subquery()
    )
    note = fe.alias("note")
    q = (
        select(fl.c.id, fl.c.kind, fl.c.subject, fl.c.state, fl.c.rule, fl.c.raised_at,
               fl.c.updated_at, fl.c.cleared_at, fl.c.evidence, fl.c.advice,
               note.c.action, note.c.at.label("notice_at"),
               note.c.detail.label("notice_detail"))
        .join(newest, newest.c.flag_id == fl.c.id)
        .join(note, note.c.id == newest.c.notice)
    )
    rows = {r.id: _flag(r) for r in conn.execute(q)}
    return [rows[i] for i in ids if i in rows]


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


def _subject(by_kind: dict, gone: int, relay: str) -> str:
    """A short subject, only from counts and the relay's name (never bounce-derived text)."""
    new = sum(by_kind.values())
    summary = ", ".join(f"{by_kind[k]} {SHORT.get(k, k)}"
                        for k in sorted(by_kind, key=_rank))
    if gone:
        summary += (", " if summary else "") + f"{gone} withdrawn"
    count = _plural(new, "new flag") if new else _plural(gone, "flag") + " withdrawn"
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


def _digest(total: int, domains: dict, newest: list[dict], lines: list[str]) -> None:
    ranked = sorted(domains.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{visible(d, 80)} {n}" for d, n in ranked[:DIGEST_DOMAINS])
    more = len(ranked) - DIGEST_DOMAINS
    lines.append(f"{total} new dead-recipient flags, by domain: {shown}"
                 + (f" (and {more} more domains)" if more > 0 else ""))
    newest = sorted(newest, key=lambda f: f["id"], reverse=True)
    lines.append(f"The {len(newest)} newest:")
    for f in newest:
        e = f["evidence"] or {}
        why = " ".join(visible(x, 40) for x in (e.get("status"), e.get("reason")) if x)
        lines.append(f"  #{f['id']} {visible(f['subject'])}  {f['rule']} {why}  "
                     f"[{f['state']}] raised {_when(f['raised_at'])}")
    lines.append("All of them: bounces flags list --kind dead-recipient")
    lines.append("As a Postfix access map: bounces export dead-recipients -o FILE")
    lines.append("")


def summarize(flags: list[dict]) -> dict:
    """The summary of a list of flag dicts shown in full (what claim and peek count)."""
    out: dict = {"new": {}, "withdrawn": 0, "domains": {}}
    for f in flags:
        if f["notice"] == "withdrawn":
            out["withdrawn"] += 1
            continue
        out["new"][f["kind"]] = out["new"].get(f["kind"], 0) + 1
        if f["kind"] == DEAD:
            d = f["subject"].rpartition("@")[2].lower() or "(none)"
            out["domains"][d] = out["domains"].get(d, 0) + 1
    return out


def compose(flags: list[dict], counts: dict, relay: str,
            summary: dict | None = None) -> tuple[str, str]:
    """(subject, body) of the alert: the flags by severity, withdrawals, what is live now.

    ``flags`` are those shown in full; ``summary`` (Claim.summary) counts all of them,
    shown or not (default: the ``flags`` themselves).
    """
    if summary is None:
        summary = summarize(flags)
    by_kind, gone = summary["new"], summary["withdrawn"]
    subject = _subject(by_kind, gone, relay)
    relay_text = visible(relay, 100)
    lines = []
    new = sum(by_kind.values())
    if new:
        what = ", ".join(_plural(by_kind[k], _noun(k)) for k in sorted(by_kind, key=_rank))
        lines += [f"bounce-handler on {relay_text} raised {_plural(new, 'flag')} since "
                  f"the last alert, the most urgent first ({what}).", ""]
    for kind in sorted(by_kind, key=_rank):
        total = by_kind[kind]
        mine = [f for f in flags if f["kind"] == kind and f["notice"] in NEW]
        heading, why = HEADINGS.get(kind, (kind.upper(), ""))
        lines += [f"{heading} ({total}): {why}", ""]
        if kind == DEAD and total > DIGEST_AT:
            _digest(total, summary["domains"], mine, lines)
            continue
        for f in mine:
            _paragraph(f, lines)
        if total > len(mine):
            lines += [f"... and {total - len(mine)} more: bounces flags list --kind {kind}",
                      ""]
    if gone:
        lines += [f"WITHDRAWN BY RECOMPUTE ({gone}): `bounces flags recompute` found "
                  "that the current [rules] no longer support these flags; they left the "
                  "live set and the exports. Nothing to do, unless the rules are wrong.", ""]
        shown = [f for f in flags if f["notice"] == "withdrawn"]
        for f in shown:
            was = f.get("notice_from") or "live"
            lines.append(f"  #{f['id']} {f['kind']}: {visible(f['subject'])}  (was {was}, "
                         f"rule {f['rule']}, raised {_when(f['raised_at'])})")
        if gone > len(shown):
            lines.append(f"  ... and {gone - len(shown)} more: "
                         "bounces flags list --state cleared")
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
