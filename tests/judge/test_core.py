"""evaluate(state, event, rules, now) as a pure function: hand-built state, no database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bounce_handler.judge.core import (
    State,
    Subject,
    dead_mode,
    destination,
    evaluate,
    sender_mode,
)
from bounce_handler.judge.rules import defaults, parse
from bounce_handler.judge.utc import as_datetime, micros, to_datetime

NOW = datetime(2026, 11, 20, 12, 0)
R = defaults()


def ev(**kw):
    e = {"id": 1, "occurred_at": NOW, "kind": "bounce", "recipient": "a@example.org",
         "recipient_domain": "example.org", "reason": "mailboxfull", "status": "4.2.2",
         "hard": 0, "verified": 1, "sender": "s@relay.example"}
    e.update(kw)
    return e


def days(*offsets):
    return [date(2026, 11, 20).toordinal() - o for o in offsets]


def test_soft_run_needs_enough_days_and_span_and_resets_after_a_quiet_gap():
    def decide(day_list):
        s = Subject("dead-recipient", "a@example.org", "soft", counts={"days": day_list})
        return evaluate(State([s]), ev(), R, NOW)

    assert decide(days(0, 1)) == []                       # two days
    assert decide(days(0, 1, 2, 3)) == []                 # four days, span 3 < 7
    assert [d.rule for d in decide(days(0, 3, 5, 7))] == ["R2"]
    assert decide(days(0, 2, 4, 12, 14)) == []            # 8-day gap: run is days 0, 2, 4
    out = decide(days(0, 7, 14, 21))                      # gaps of exactly 7 do not reset
    assert [(d.evidence["days"], d.evidence["span_days"]) for d in out] == [(4, 21)]


def test_modes():
    assert dead_mode(ev(reason="userunknown", status="5.1.1", hard=1), R) == "hard"
    assert dead_mode(ev(reason="undefined", status="5.1.10", hard=None), R) == "hard"
    assert dead_mode(ev(reason="userunknown", status="4.1.1", hard=0), R) == "soft"
    assert dead_mode(ev(reason="blocked", status="5.1.1", hard=1), R) is None
    assert dead_mode(ev(kind="delay"), R) is None
    assert dead_mode(ev(verified=0), R) is None
    assert sender_mode(ev(kind="complaint"), R) == "complaint"
    assert sender_mode(ev(kind="delay"), R) is None
    assert sender_mode(ev(sender=None), R) is None
    assert destination(ev(kind="delay", diagnostic="451 4.7.500 Server busy (S3150)",
                          recipient_domain="Hotmail.com"), R) == (
        "microsoft", ("outlook.com", "hotmail.com", "live.com", "msn.com"))
    assert destination(ev(kind="delay", reason="ratelimited"), R) == (
        "example.org", ("example.org",))
    assert destination(ev(kind="delay", diagnostic="452 4.2.2 mailbox full"), R) is None


def test_sender_thresholds_and_the_first_matching_rule_names_the_flag():
    def decide(**counts):
        s = Subject("compromised-sender", "s@relay.example", "bounce", counts=counts)
        return evaluate(State([s]), ev(), R, NOW)

    assert decide(bounces=49, domains=19, spam=0) == []
    assert [(d.rule, d.matched) for d in decide(bounces=50, domains=25, spam=0)] == [
        ("R3", ["R3", "R4"])]
    assert [d.rule for d in decide(bounces=12, domains=1, spam=6)] == ["R6"]
    assert decide(bounces=9, domains=1, spam=9) == []     # below spam_min
    # R5: 20 in the window against a baseline of 3,021 a week (3 per window): not 10x.
    assert decide(bounces=20, domains=1, spam=0, baseline=3021) == []
    assert decide(bounces=30, domains=1, spam=0, baseline=3021)[0].rule == "R5"
    assert decide(bounces=19, domains=1, spam=0, baseline=1)[0:] == []  # below jump_min
    assert decide(bounces=20, domains=1, spam=0, baseline=0) == []  # no history: not a jump


def test_live_flag_means_update_and_cleared_subject_ignores_older_events():
    s = Subject("dead-recipient", "a@example.org", "hard", flag_id=7)
    (d,) = evaluate(State([s]), ev(reason="userunknown", status="5.1.1", hard=1), R, NOW)
    assert (d.action, d.flag_id) == ("update", 7)
    s = Subject("dead-recipient", "a@example.org", "hard", since=NOW)
    assert evaluate(State([s]), ev(reason="userunknown", status="5.1.1", hard=1), R, NOW) == []


def test_windows_end_at_now_for_events_dated_in_the_future():
    s = Subject("compromised-sender", "s@relay.example", "bounce",
                counts={"bounces": 60, "domains": 1, "spam": 0})
    (d,) = evaluate(State([s]), ev(occurred_at=NOW + timedelta(days=3)), R, NOW)
    assert d.t == micros(NOW) and d.lo == micros(NOW - timedelta(minutes=10))
    assert to_datetime(d.at) == NOW


def test_times_in_every_form_the_store_gives():
    assert as_datetime("2026-11-20 12:00:00.000000") == NOW
    assert as_datetime(1795176000.0) == NOW
    assert as_datetime(1795176000.9999996) == datetime(2026, 11, 20, 12, 0, 0, 999999)


def test_throttle_advice_uses_the_configured_numbers():
    r = parse({"throttled_destination": {"concurrency_limit": 1, "rate_delay": "5s"}})
    s = Subject("throttled-destination", "example.org", "deferral", counts={"deferrals": 9},
                domains=("example.org",))
    (d,) = evaluate(State([s]), ev(kind="delay", reason="ratelimited"), r, NOW)
    assert "slow_example_org_destination_concurrency_limit = 1" in d.advice
    assert "slow_example_org_destination_rate_delay = 5s" in d.advice


def test_a_baseline_counted_up_to_its_cap_never_fires_r5():
    from bounce_handler.judge.core import baseline_cap

    for bounces in (20, 35, 200):
        counts = {"bounces": bounces, "domains": 1, "spam": 0}
        cap = baseline_cap(counts, R)
        below = Subject("compromised-sender", "s", "bounce", counts=dict(counts, baseline=cap - 1))
        at_cap = Subject("compromised-sender", "s", "bounce", counts=dict(counts, baseline=cap))
        fired = [d.matched for d in evaluate(State([below]), ev(), R, NOW)]
        assert any("R5" in m for m in fired), bounces
        assert all("R5" not in d.matched for d in evaluate(State([at_cap]), ev(), R, NOW))
