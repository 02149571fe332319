"""`bounces flags recompute` gives exactly the flags incremental evaluation gives."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import pytest

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


def snapshot(path, live_only: bool = False, ids: bool = False) -> dict:
    """Flags, their evidence links and the judge's audit lines, keyed by (kind, subject,
    raised_at); with ``ids`` the flag id too (identity), with ``live_only`` live flags only."""
    conn = sqlite3.connect(path)
    where = "WHERE f.state IN ('open', 'acked')" if live_only else ""
    key = "f.id, " if ids else ""
    try:
        flags = conn.execute(
            f"SELECT {key}kind, subject, state, rule, raised_at, updated_at, acked_at, "
            f"cleared_at, evidence, advice FROM flags f {where} "
            "ORDER BY kind, subject, raised_at").fetchall()
        evidence = conn.execute(
            f"SELECT {key}f.kind, f.subject, f.raised_at, x.event_id FROM flag_evidence x "
            f"JOIN flags f ON f.id = x.flag_id {where} ORDER BY 1, 2, 3, 4").fetchall()
        audit = conn.execute(
            f"SELECT {key}f.kind, f.subject, f.raised_at, e.action, e.at, e.detail "
            "FROM flag_events e JOIN flags f ON f.id = e.flag_id WHERE e.actor = 'judge' "
            + (where.replace("WHERE", "AND") if where else "") + " ORDER BY 1, 2, 3, e.id"
        ).fetchall()
    finally:
        conn.close()
    return {"flags": flags, "evidence": evidence, "audit": audit}


def test_recompute_equals_incremental_and_changes_nothing(make_stream):
    s = make_stream()
    history(s)
    before = snapshot(s.path, ids=True)
    kinds = {f[1] for f in before["flags"]}
    assert kinds == {"compromised-sender", "dead-recipient", "throttled-destination"}
    assert len(before["flags"]) > 20 and len(before["evidence"]) > len(before["flags"])
    trail = s.query("SELECT * FROM flag_events ORDER BY id")
    stats = recompute(s.conn, s.rules)
    assert stats["events"] == s.query("SELECT count(*) FROM bounce_events")[0][0]
    assert stats["kept"] == len(before["flags"])
    assert (stats["raised"], stats["withdrawn"], stats["restored"], stats["changed"]) == (
        0, 0, 0, 0)
    # Same rules, same history: the same flags under the same ids, nothing added to the
    # audit trail (recomputing is not an event in a flag's life when nothing changed).
    assert snapshot(s.path, ids=True) == before
    assert s.query("SELECT * FROM flag_events ORDER BY id") == trail
    recompute(s.conn, s.rules)
    assert snapshot(s.path, ids=True) == before


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
    live_before = {(k, subj): fid for fid, k, subj in old.query(
        "SELECT id, kind, subject FROM flags WHERE state IN ('open', 'acked')")}
    stats = recompute(old.conn, parse(new_rules))
    # Every live flag, and its evidence, is what incremental evaluation under the new
    # rules gives (the judge's audit lines of a kept flag stay those it had: history).
    after = snapshot(old.path, live_only=True)
    assert after["flags"] == expected["flags"]
    assert after["evidence"] == expected["evidence"]
    live_after = {(k, subj): fid for fid, k, subj in old.query(
        "SELECT id, kind, subject FROM flags WHERE state IN ('open', 'acked')")}
    # A subject flagged under both rule sets keeps its flag id; the others are new ids
    # (above every old one) or withdrawn (the old id, out of the live set).
    both = set(live_before) & set(live_after)
    assert both and all(live_before[k] == live_after[k] for k in both)
    top = max(live_before.values())
    assert all(live_after[k] > top for k in set(live_after) - both)
    gone = sorted(live_before[k] for k in set(live_before) - set(live_after))
    assert gone and stats["withdrawn_ids"] == gone
    assert stats["raised"] == len(set(live_after) - both)
    for fid in gone:
        state, cleared_at = old.query("SELECT state, cleared_at FROM flags WHERE id = ?",
                                      (fid,))[0]
        assert (state, cleared_at) == ("cleared", None)
        trail = lifecycle.get(old.conn, fid)
        assert trail["withdrawn"] and trail["history"][-1]["action"] == "withdrawn"
        assert trail["history"][-1]["actor"] == "recompute"
    # Recomputing again under the new rules changes nothing; back under the old rules
    # the withdrawn flags come back under their old ids.
    again = snapshot(old.path, ids=True)
    recompute(old.conn, parse(new_rules))
    assert snapshot(old.path, ids=True) == again
    stats = recompute(old.conn, old.rules)
    assert stats["restored_ids"] == gone
    restored = {(k, subj): fid for fid, k, subj in old.query(
        "SELECT id, kind, subject FROM flags WHERE state IN ('open', 'acked')")}
    assert restored == live_before


def test_recompute_keeps_acks_and_cleared_flags(make_stream):
    s = make_stream()
    history(s)
    flags = lifecycle.list_flags(s.conn)
    acked = next(f for f in flags if f["kind"] == "dead-recipient")
    cleared = next(f for f in flags if f["kind"] == "compromised-sender")
    lifecycle.ack(s.conn, acked["id"], T0 + timedelta(days=30), "root", "suppressed")
    lifecycle.clear(s.conn, cleared["id"], T0 + timedelta(days=30), "root")
    before = snapshot(s.path, ids=True)
    trail = lifecycle.get(s.conn, acked["id"])["history"]
    stats = recompute(s.conn, s.rules)
    assert stats["withdrawn"] == stats["raised"] == 0
    after = snapshot(s.path, ids=True)
    assert after == before
    # The acked flag is the same flag, still acked, its trail untouched.
    same = lifecycle.get(s.conn, acked["id"])
    assert (same["state"], same["subject"]) == ("acked", acked["subject"])
    assert same["history"] == trail and trail[-1]["actor"] == "root"
    # The cleared flag is history: kept as it was, its audit trail included.
    assert lifecycle.get(s.conn, cleared["id"])["history"][-1]["actor"] == "root"


def test_recompute_keeps_flags_raised_from_unsigned_xverp_bounces(make_stream):
    """[verp] require_signed = false (the default): XVERP rows count, on replay too."""
    s = make_stream()
    for k in range(300):
        s.bounce(T0 + minutes(k), f"noise{k % 50}@example.org", reason="mailboxfull",
                 status="4.2.2", hard=0, sender=f"user{k % 7}@relay.example")
    s.bounce(T0 + minutes(400), "alice@example.net", verified=0, verify_reason="unsigned")
    s.bounce(T0 + minutes(401), "bob@example.net", verified=0, verify_reason="no-token")
    s.bounce(T0 + minutes(402), "forged@example.net", verified=0, verify_reason="bad-tag")
    before = s.query("SELECT id, kind, subject, state FROM flags ORDER BY id")
    assert [f[2] for f in before] == ["alice@example.net", "bob@example.net"]
    stats = recompute(s.conn, s.rules)
    assert s.query("SELECT id, kind, subject, state FROM flags ORDER BY id") == before
    assert (stats["kept"], stats["withdrawn"]) == (2, 0)


def test_recompute_replays_every_column_of_the_model(make_stream, monkeypatch):
    """A column another change adds to bounce_events reaches the judge on replay."""
    from bounce_handler.judge import recompute as mod
    from bounce_handler.store.models import BounceEvent

    s = make_stream()
    s.bounce(T0, "gone@example.org", original_message_id="<m1@relay.example>",
             sasl_login="alice")
    seen = []
    real = mod.process_event

    def spy(db, ev, rules, now):
        seen.append(dict(ev))
        return real(db, ev, rules, now)

    monkeypatch.setattr(mod, "process_event", spy)
    recompute(s.conn, s.rules)
    assert set(seen[0]) == {c.name for c in BounceEvent.__table__.columns}
    assert seen[0]["sasl_login"] == "alice" and seen[0]["verify_reason"] is None


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


@pytest.mark.parametrize("change", ["same rules", "stricter rules"])
def test_alerting_continues_across_a_recompute(make_stream, change):
    """Several hundred bounces: alert, acks and a clearing, a flag raised and left
    pending, recompute, a new flag, alert again: exactly the pending and the new flag
    (and, after a rule change, the withdrawn ones), under ids that did not move."""
    from bounce_handler import settings
    from bounce_handler.reports import alerts

    s = make_stream()
    history(s)
    assert s.query("SELECT count(*) FROM bounce_events")[0][0] > 700
    cfg = settings.from_dict({"database": {"url": f"sqlite:///{s.path}"}})
    end = T0 + timedelta(days=40)
    first = alerts.claim(cfg, "stdout", end)
    live = {(f["kind"], f["subject"]): f["id"] for f in lifecycle.list_flags(s.conn)}
    assert sorted(first.ids) == sorted(live.values())
    dead = sorted(fid for (kind, _), fid in live.items() if kind == "dead-recipient")
    for fid in dead[:3]:
        lifecycle.ack(s.conn, fid, end, "root")
    lifecycle.clear(s.conn, dead[3], end, "root")
    del live[next(k for k, v in live.items() if v == dead[3])]

    s.bounce(end + minutes(1), "pending@example.org")  # raised, not alerted yet
    (pending,) = s.query("SELECT id FROM flags WHERE subject = 'pending@example.org'")[0]
    live[("dead-recipient", "pending@example.org")] = pending
    rules = s.rules if change == "same rules" else parse({
        "compromised_sender": {"max_bounces": 70, "max_domains": 0, "spam_share": 0.0,
                               "jump_factor": 0, "complaints": 0},
        "throttled_destination": {"enabled": False},
    })
    stats = recompute(s.conn, rules)
    after = {(k, subj): fid for fid, k, subj in s.query(
        "SELECT id, kind, subject FROM flags WHERE state IN ('open', 'acked')")}
    assert all(live[k] == fid for k, fid in after.items())  # no flag changed its id
    gone = sorted(fid for k, fid in live.items() if k not in after)
    assert bool(gone) == (change == "stricter rules")
    assert s.query(f"SELECT state FROM flags WHERE id IN ({dead[0]}, {dead[1]}, {dead[2]})") \
        == [("acked",)] * 3

    s.rules = rules
    s.bounce(end + minutes(2), "fresh@example.org")  # raised after the recompute
    (fresh,) = s.query("SELECT id FROM flags WHERE subject = 'fresh@example.org'")[0]
    second = alerts.claim(cfg, "stdout", end + minutes(3))
    raised = [f["id"] for f in second.flags if f.get("notice", "raised") != "withdrawn"]
    assert sorted(raised) == sorted([pending, fresh])
    assert sorted(f["id"] for f in second.flags if f["notice"] == "withdrawn") == gone
    assert stats["withdrawn_ids"] == gone
    assert alerts.claim(cfg, "stdout", end + minutes(4)).flags == []
    # Another channel's first run: every live flag, once; the withdrawn ones are history.
    other = alerts.claim(cfg, "sendmail:root", end + minutes(5))
    assert sorted(other.ids) == sorted([*after.values(), fresh])
