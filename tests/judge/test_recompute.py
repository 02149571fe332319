"""`bounces flags recompute` gives exactly the flags incremental evaluation gives."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

from bounce_handler.judge import lifecycle
from bounce_handler.judge.recompute import recompute
from bounce_handler.judge.rules import parse
from tests.judge.conftest import FMT, T0, minutes

YAHOO = "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume"
GMAIL = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP"


def history(s, seed: int = 7) -> None:
    """Three weeks of a small relay: noise, a spam run, dead and full mailboxes, throttling,
    forged backscatter, complaints, late-arriving DSNs and multi-recipient messages."""
    rnd = random.Random(seed)
    senders = [f"user{i}@relay.example" for i in range(8)]
    domains = ["example.org", "example.net", "gmail.com", "yahoo.com", "aol.com", "small.example"]
    reasons = [("userunknown", "5.1.1", 1), ("mailboxfull", "4.2.2", 0), ("undefined", "4.4.1", 0),
               ("spamdetected", "5.7.1", 1), ("blocked", "5.7.1", 1), ("hostunknown", "5.1.2", 1)]
    at = T0
    for _ in range(700):
        at += timedelta(minutes=rnd.choice((1, 5, 30, 90)))
        reason, status, hard = rnd.choice(reasons)
        rcpt = f"r{rnd.randrange(40)}@{rnd.choice(domains)}"
        kw = dict(sender=rnd.choice(senders), reason=reason, status=status, hard=hard)
        roll = rnd.random()
        if roll < 0.05:
            kw.update(kind="delay", reason="undefined", status="4.7.0", hard=0,
                      diagnostic=rnd.choice((YAHOO, GMAIL)))
        elif roll < 0.08:
            kw.update(verified=0)
        elif roll < 0.10:
            kw.update(kind="complaint", reason="feedback", status=None, hard=None)
        elif roll < 0.13:
            kw.update(occurred_at=(at - timedelta(hours=rnd.randrange(1, 30))).strftime(FMT))
        if roll > 0.97:
            s.record(at, dict(recipient=rcpt, **kw), dict(recipient="x" + rcpt, **kw))
        else:
            s.bounce(at, rcpt, **kw)
    # A spam run and a throttling burst in the middle of it all.
    for k in range(80):
        s.bounce(at + minutes(k * 0.05), f"v{k}@d{k % 30}.example", sender="user3@relay.example",
                 reason="spamdetected", status="5.7.1", hard=1)
    for k in range(8):
        s.bounce(at + minutes(10 + k), f"q{k}@yahoo.com", kind="delay", reason="undefined",
                 status="4.7.0", hard=0, diagnostic=YAHOO)


def snapshot(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        flags = conn.execute(
            "SELECT kind, subject, state, rule, raised_at, updated_at, acked_at, cleared_at, "
            "evidence, advice FROM flags ORDER BY kind, subject, raised_at").fetchall()
        evidence = conn.execute(
            "SELECT f.kind, f.subject, f.raised_at, x.event_id FROM flag_evidence x "
            "JOIN flags f ON f.id = x.flag_id ORDER BY 1, 2, 3, 4").fetchall()
        audit = conn.execute(
            "SELECT f.kind, f.subject, f.raised_at, e.action, e.at, e.detail FROM flag_events e "
            "JOIN flags f ON f.id = e.flag_id WHERE e.actor = 'judge' ORDER BY 1, 2, 3, e.id"
        ).fetchall()
    finally:
        conn.close()
    return {"flags": flags, "evidence": evidence, "audit": audit}


def test_recompute_equals_incremental(make_stream):
    s = make_stream()
    history(s)
    before = snapshot(s.path)
    kinds = {f[0] for f in before["flags"]}
    assert kinds == {"compromised-sender", "dead-recipient", "throttled-destination"}
    assert len(before["flags"]) > 20 and len(before["evidence"]) > len(before["flags"])
    stats = recompute(s.conn, s.rules)
    assert stats["events"] == s.query("SELECT count(*) FROM bounce_events")[0][0]
    assert stats["dropped"] == stats["raised"] == len(before["flags"])
    assert snapshot(s.path) == before


def test_recompute_after_a_rule_change_equals_incremental_under_the_new_rules(make_stream):
    new_rules = {
        "dead_recipient": {"hard_reasons": ["userunknown"], "hard_statuses": ["5.1.1"],
                           "soft_days": 2, "soft_span_days": 1},
        "compromised_sender": {"max_bounces": 10, "spam_share": 0.0, "complaints": 2},
        "throttled_destination": {"min_deferrals": 2, "providers": {"yahoo": ["yahoo.com"]}},
    }
    old = make_stream(name="old")
    history(old)
    new = make_stream(new_rules, name="new")
    history(new)
    expected = snapshot(new.path)
    assert snapshot(old.path)["flags"] != expected["flags"]  # the change matters
    recompute(old.conn, parse(new_rules))
    assert snapshot(old.path) == expected


def test_recompute_keeps_acks_and_cleared_flags(make_stream):
    s = make_stream()
    history(s)
    flags = lifecycle.list_flags(s.conn)
    acked = next(f for f in flags if f["kind"] == "dead-recipient")
    cleared = next(f for f in flags if f["kind"] == "compromised-sender")
    lifecycle.ack(s.conn, acked["id"], T0 + timedelta(days=30), "root", "suppressed")
    lifecycle.clear(s.conn, cleared["id"], T0 + timedelta(days=30), "root")
    before = snapshot(s.path)
    stats = recompute(s.conn, s.rules)
    assert stats["reacked"] == 1
    after = snapshot(s.path)
    assert after["flags"] == before["flags"]
    assert after["evidence"] == before["evidence"]
    trail = lifecycle.get(s.conn, s.query(
        "SELECT id FROM flags WHERE kind = ? AND subject = ? AND state = 'acked'",
        (acked["kind"], acked["subject"]))[0][0])["history"]
    assert trail[-1]["action"] == "acked" and trail[-1]["actor"] == "recompute"
    # The cleared flag is history: kept as it was, its audit trail included.
    assert lifecycle.get(s.conn, cleared["id"])["history"][-1]["actor"] == "root"


def test_recompute_on_a_store_without_flags_builds_them(make_stream):
    s = make_stream()
    s.bounce(T0, "gone@example.org", judge=False)
    for k in range(6):
        s.bounce(T0 + minutes(k), f"u{k}@yahoo.com", kind="delay", reason="undefined",
                 status="4.7.0", hard=0, diagnostic=YAHOO, judge=False)
    assert s.flags() == []
    progress = []
    recompute(s.conn, s.rules, progress.append)
    assert progress == [7]
    assert s.flags() == [("dead-recipient", "gone@example.org", "open", "R1"),
                         ("throttled-destination", "yahoo", "open", "R8")]
