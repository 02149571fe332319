"""Raised once, updated, acked, cleared, raised again only when the condition returns."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bounce_handler.judge import lifecycle
from tests.judge.conftest import FMT, T0, minutes


def _blast(stream, start, n=60, sender="mallory@relay.example"):
    out = []
    for k in range(n):
        out += stream.bounce(start + minutes(k * 0.1), f"x{k}@d{k}.example", sender=sender,
                             reason="mailboxfull", status="4.2.2", hard=0)
    return out


def test_ack_keeps_the_flag_live_and_collecting(stream):
    _blast(stream, T0, 55)
    (fid,) = stream.query("SELECT id FROM flags WHERE kind = 'compromised-sender'")[0]
    assert lifecycle.ack(stream.conn, fid, T0 + minutes(30), "root", "on it")["changed"]
    assert lifecycle.ack(stream.conn, fid, T0 + minutes(31), "root")["changed"] is False
    out = _blast(stream, T0 + minutes(32), 55)
    assert {d.action for d in out if d.kind == "compromised-sender"} == {"update"}
    # 20 distinct domains come before 50 bounces: the domains rule (R4) raised it.
    assert stream.flags() == [("compromised-sender", "mallory@relay.example", "acked", "R4")]
    assert json.loads(stream.query("SELECT evidence FROM flags")[0][0])["bounces"] >= 50


def test_clear_then_no_reraise_from_old_bounces_but_reraise_when_it_returns(stream):
    _blast(stream, T0, 60)
    (fid,) = stream.query("SELECT id FROM flags")[0]
    lifecycle.clear(stream.conn, fid, T0 + minutes(7), "root", "password reset")
    # Bounces of the same run still arriving: within the window, but the old ones no longer
    # count, and a few new ones are below every threshold.
    for k in range(5):
        stream.bounce(T0 + minutes(8 + k * 0.1), f"late{k}@d{k}.example",
                      sender="mallory@relay.example", reason="mailboxfull", status="4.2.2", hard=0)
    assert stream.flags() == []
    # A bounce received late but dated before the clearing changes nothing either.
    late = stream.bounce(T0 + minutes(40), "old@d.example", sender="mallory@relay.example",
                         reason="mailboxfull", status="4.2.2", hard=0,
                         occurred_at=(T0 + minutes(6)).strftime(FMT))
    assert [d for d in late if d.kind == "compromised-sender"] == []
    assert stream.flags() == []
    # The condition returns an hour later: a new flag, a new id.
    _blast(stream, T0 + timedelta(hours=1), 60)
    rows = stream.query("SELECT id, state FROM flags ORDER BY id")
    assert rows[0] == (fid, "cleared") and rows[1][1] == "open" and len(rows) == 2


def test_cleared_flag_cannot_be_acked_or_cleared_again(stream):
    stream.bounce(T0, "gone@example.org")
    (fid,) = stream.query("SELECT id FROM flags")[0]
    lifecycle.clear(stream.conn, fid, T0, "root")
    with pytest.raises(lifecycle.FlagError, match="already cleared"):
        lifecycle.clear(stream.conn, fid, T0, "root")
    with pytest.raises(lifecycle.FlagError, match="already cleared"):
        lifecycle.ack(stream.conn, fid, T0, "root")
    with pytest.raises(lifecycle.FlagError, match="no flag 999"):
        lifecycle.ack(stream.conn, 999, T0, "root")


def test_audit_trail_is_queryable(stream):
    stream.bounce(T0, "gone@example.org", diagnostic="550 5.1.1 no such user")
    stream.bounce(T0 + minutes(5), "gone@example.org", diagnostic="550 5.1.1 still no such user")
    (fid,) = stream.query("SELECT id FROM flags")[0]
    lifecycle.ack(stream.conn, fid, T0 + minutes(10), "alice", "suppressing")
    lifecycle.clear(stream.conn, fid, T0 + minutes(20), "bob")
    f = lifecycle.get(stream.conn, fid)
    assert [(h["action"], h["actor"]) for h in f["history"]] == [
        ("raised", "judge"), ("updated", "judge"), ("acked", "alice"), ("cleared", "bob")]
    assert f["history"][0]["detail"]["rule"] == "R1"
    assert f["history"][0]["detail"]["diagnostic"] == "550 5.1.1 no such user"
    assert f["history"][2]["detail"] == {"from": "open", "note": "suppressing"}
    assert [e["diagnostic"] for e in f["events"]] == [
        "550 5.1.1 no such user", "550 5.1.1 still no such user"]
    assert f["raised_at"] == "2026-11-02T09:00:00Z" and f["cleared_at"] == "2026-11-02T09:20:00Z"
    assert json.loads(json.dumps(f))["evidence"]["status"] == "5.1.1"


def test_one_live_flag_per_kind_and_subject_is_enforced_by_the_store(stream):
    import sqlite3

    stream.bounce(T0, "gone@example.org")
    with pytest.raises(sqlite3.IntegrityError):
        stream.conn.execute(
            "INSERT INTO flags (kind, subject, state, rule, raised_at, updated_at, evidence) "
            "VALUES ('dead-recipient', 'gone@example.org', 'open', 'R1', '', '', '{}')")


def test_list_filters_by_state_and_kind(stream):
    stream.bounce(T0, "a@example.org")
    stream.bounce(T0, "b@example.org")
    _blast(stream, T0, 55)
    ids = {f["subject"]: f["id"] for f in lifecycle.list_flags(stream.conn)}
    lifecycle.clear(stream.conn, ids["a@example.org"], T0, "root")
    live = lifecycle.list_flags(stream.conn, kind="dead-recipient")
    assert [f["subject"] for f in live] == ["b@example.org"]
    assert [f["kind"] for f in lifecycle.list_flags(stream.conn)] == [
        "compromised-sender", "dead-recipient"]
    cleared = lifecycle.list_flags(stream.conn, ("cleared",))
    assert [(f["subject"], f["state"]) for f in cleared] == [("a@example.org", "cleared")]
    with pytest.raises(lifecycle.FlagError):
        lifecycle.list_flags(stream.conn, kind="dead-sender")


def test_evidence_links_are_capped(stream):
    from bounce_handler.judge.lean import MAX_EVIDENCE

    for k in range(MAX_EVIDENCE + 20):
        stream.bounce(T0 + minutes(k), "gone@example.org")
    assert stream.query("SELECT count(*) FROM flag_evidence") == [(MAX_EVIDENCE,)]
    assert stream.query("SELECT action, count(*) FROM flag_events GROUP BY 1 ORDER BY 1") == [
        ("raised", 1), ("updated", MAX_EVIDENCE - 1)]
    # The flag still tells the latest news.
    (evidence,) = stream.query("SELECT evidence FROM flags")[0]
    assert json.loads(evidence)["at"] == str(T0 + minutes(MAX_EVIDENCE + 19))


def test_a_flag_raised_meanwhile_by_another_writer_turns_the_raise_into_an_update(stream):
    from bounce_handler.judge import lean
    from bounce_handler.judge.sql import Db

    stream.bounce(T0, "gone@example.org")
    (fid,) = stream.query("SELECT id FROM flags")[0]
    # Replay the decision as if `load` had not seen the live flag (a concurrent relay).
    ev = dict(zip(("id", "occurred_at", "recipient"), stream.query(
        "SELECT id, occurred_at, recipient FROM bounce_events")[0], strict=True))
    from bounce_handler.judge.core import Decision, Subject

    d = Decision("raise", Subject("dead-recipient", "gone@example.org", "hard"), "R1", ["R1"],
                 {"rule": "R1"}, ev["id"], T0 + minutes(1), T0, T0)
    stream.conn.execute("BEGIN")
    assert lean.apply(Db(stream.conn), d, ev, stream.rules) == fid
    stream.conn.execute("COMMIT")
    assert d.action == "update"
    assert stream.query("SELECT count(*) FROM flags") == [(1,)]
