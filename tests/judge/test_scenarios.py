"""The issue's scenarios: simulated bounce streams, a controlled clock, a real SQLite store."""

from __future__ import annotations

from datetime import timedelta

from tests.judge.conftest import T0, minutes

DAY = timedelta(days=1)


def test_spam_blast_raises_exactly_one_compromised_sender_flag(stream):
    # Background: three ordinary senders, a couple of bounces each, spread over the day.
    for i, sender in enumerate(("ann@relay.example", "ben@relay.example", "cat@relay.example")):
        for j in range(3):
            stream.bounce(T0 + minutes(5 * i + 60 * j), f"typo{j}@example.{i}.org",
                          sender=sender, reason="userunknown", status="5.1.1")
    # The blast: 200 bounces in 5 minutes to 80 domains, a mix of unknown users and
    # spam refusals, all for one stolen account.
    for k in range(200):
        stream.bounce(T0 + minutes(120 + k * 0.025), f"victim{k}@dom{k % 80}.example",
                      sender="mallory@relay.example",
                      reason="spamdetected" if k % 3 else "userunknown",
                      status="5.7.1" if k % 3 else "5.1.1", hard=1)
    compromised = [f for f in stream.flags() if f[0] == "compromised-sender"]
    # Two thirds spam refusals: the spam-share rule (R6) fires at its 10-bounce minimum.
    assert compromised == [("compromised-sender", "mallory@relay.example", "open", "R6")]
    # Raised once (with the 10 bounces of its window as evidence), and the audit trail
    # says so once; during the run the live flag's numbers were refreshed once a minute
    # (core.REFRESH), each refresh linking that bounce and writing one audit line.
    assert stream.query(
        "SELECT action, count(*) FROM flag_events e JOIN flags f ON f.id = e.flag_id "
        "WHERE f.kind = 'compromised-sender' GROUP BY action ORDER BY action"
    ) == [("raised", 1), ("updated", 4)]
    evidence = stream.query("SELECT evidence FROM flags WHERE kind = 'compromised-sender'")[0][0]
    import json

    e = json.loads(evidence)
    assert e["bounces"] > 150 and e["domains"] == 80 and e["window_minutes"] == 10
    assert e["rules"] == ["R3", "R4", "R6"]
    assert stream.query("SELECT count(*) FROM flag_evidence x JOIN flags f ON f.id = x.flag_id "
                        "WHERE f.kind = 'compromised-sender'") == [(14,)]


def test_spam_blast_trips_the_volume_rule_when_reasons_are_plain(stream):
    decisions = []
    for k in range(60):
        decisions += stream.bounce(T0 + minutes(k * 0.1), f"u{k}@same.example",
                                   sender="bob@relay.example", reason="mailboxfull",
                                   status="4.2.2", hard=0)
    raised = [d for d in decisions if d.action == "raise" and d.kind == "compromised-sender"]
    assert [(d.rule, d.evidence["bounces"]) for d in raised] == [("R3", 50)]


def test_sender_jumping_over_its_own_baseline(make_stream):
    s = make_stream({"compromised_sender": {"max_bounces": 0, "max_domains": 0}})
    # A week of 1 bounce an hour: baseline ~0.17 per 10-minute window.
    for h in range(24 * 6):
        s.bounce(T0 + timedelta(hours=h), f"r{h}@d.example", sender="news@relay.example",
                 reason="mailboxfull", status="4.2.2", hard=0)
    assert s.flags() == []
    start = T0 + timedelta(days=6, hours=1)
    out = []
    for k in range(25):
        out += s.bounce(start + minutes(k * 0.2), f"j{k}@d.example", sender="news@relay.example",
                        reason="mailboxfull", status="4.2.2", hard=0)
    raised = [d for d in out if d.action == "raise"]
    assert [(d.rule, d.evidence["bounces"]) for d in raised] == [("R5", 20)]
    assert raised[0].evidence["baseline_per_window"] < 1


def test_any_complaint_raises_a_flag(stream):
    out = stream.bounce(T0, "reader@example.org", kind="complaint", reason="feedback",
                        status=None, hard=None, sender="promo@relay.example")
    assert [(d.kind, d.subject, d.rule) for d in out] == [
        ("compromised-sender", "promo@relay.example", "R7")]


def test_mailbox_full_for_two_days_is_not_dead_but_5_1_1_is(stream):
    for day in range(2):
        for hour in (8, 14, 20):
            stream.bounce(T0 + day * DAY + timedelta(hours=hour), "full@example.org",
                          reason="mailboxfull", status="4.2.2", hard=0,
                          diagnostic="452 4.2.2 Mailbox full")
    assert stream.flags() == []
    out = stream.bounce(T0 + 2 * DAY, "gone@example.org", reason="userunknown", status="5.1.1",
                        hard=1, diagnostic="550 5.1.1 <gone@example.org>: user unknown")
    assert [(d.action, d.kind, d.subject, d.rule) for d in out] == [
        ("raise", "dead-recipient", "gone@example.org", "R1")]
    assert stream.flags() == [("dead-recipient", "gone@example.org", "open", "R1")]


def test_mailbox_full_for_weeks_is_dead_and_a_quiet_week_resets(stream):
    def full(day):
        return stream.bounce(T0 + day * DAY, "old@example.org", reason="mailboxfull",
                             status="4.2.2", hard=0)

    # Days 0, 3, 5: three days only. Then 9 quiet days: the count starts again.
    for day in (0, 3, 5):
        full(day)
    for day in (15, 17, 19):
        full(day)
    assert stream.flags() == []  # 6 days in all, but never 4 in one run spanning a week
    out = full(22)
    assert [(d.action, d.rule, d.evidence["days"], d.evidence["span_days"]) for d in out] == [
        ("raise", "R2", 4, 7)]


def test_sender_side_blocks_never_make_a_recipient_dead(stream):
    for day in range(30):
        stream.bounce(T0 + day * DAY, "fine@example.org", reason="blocked", status="5.1.1", hard=1,
                      diagnostic="550 5.1.1 blocked using zen.spamhaus.org")
        stream.bounce(T0 + day * DAY, "fine@example.org", reason="badreputation", status="5.7.1",
                      hard=1, sender="bob@relay.example")
    assert [f for f in stream.flags() if f[0] == "dead-recipient"] == []


def test_yahoo_ts03_deferrals_raise_a_throttling_flag_with_advice(stream):
    text = ("421 4.7.0 [TS03] All messages from 192.0.2.25 will be permanently deferred; "
            "Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes")
    out = []
    for k in range(6):
        out += stream.bounce(T0 + minutes(k), f"user{k}@{('yahoo.com', 'aol.com')[k % 2]}",
                             kind="delay", reason="undefined", status="4.7.0", hard=0,
                             diagnostic=text, remote_mta="mta5.am0.yahoodns.net",
                             sender=f"s{k}@relay.example")
    assert [(d.action, d.kind, d.subject) for d in out if d.action == "raise"] == [
        ("raise", "throttled-destination", "yahoo")]
    assert stream.flags() == [("throttled-destination", "yahoo", "open", "R8")]
    advice = stream.query("SELECT advice FROM flags")[0][0]
    assert "slow_yahoo unix" in advice
    assert "slow_yahoo_destination_concurrency_limit = 2" in advice
    assert "slow_yahoo_destination_rate_delay = 1s" in advice
    assert "transport_maps = hash:/etc/postfix/transport" in advice
    assert "\nyahoo.com       slow_yahoo:\n" in advice and "aol.com" in advice


def test_throttling_of_an_unknown_domain_is_per_domain(stream):
    for k in range(5):
        stream.bounce(T0 + minutes(k), f"u{k}@small.example", kind="delay", reason="ratelimited",
                      status="4.7.1", hard=0, diagnostic="421 too fast")
    assert stream.flags() == [("throttled-destination", "small.example", "open", "R8")]
    advice = stream.query("SELECT advice FROM flags")[0][0]
    assert "slow_small_example_destination_rate_delay = 1s" in advice


def test_forged_bounces_change_nothing(stream):
    text = "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred"
    for k in range(300):
        stream.bounce(T0 + minutes(k * 0.01), f"v{k}@yahoo.com", verified=0,
                      sender="ceo@relay.example", reason="userunknown", status="5.1.1", hard=1,
                      diagnostic=text)
        stream.bounce(T0 + minutes(k * 0.01), "boss@example.org", kind="complaint", verified=0,
                      reason="feedback", sender="ceo@relay.example")
    assert stream.flags(live=False) == []
    assert stream.query("SELECT count(*) FROM flag_events") == [(0,)]
    assert stream.query("SELECT count(*) FROM bounce_events") == [(600,)]


def test_unverified_bounces_count_when_a_rule_says_so(make_stream):
    s = make_stream({"dead_recipient": {"include_unverified": True}})
    out = s.bounce(T0, "gone@example.org", verified=0)
    assert [(d.kind, d.rule) for d in out] == [("dead-recipient", "R1")]


def test_exempt_list_sender_is_not_flagged_for_volume(make_stream):
    s = make_stream({"compromised_sender": {"exempt_senders": ["List@relay.example"]}})
    for k in range(100):
        s.bounce(T0 + minutes(k * 0.05), f"m{k}@d{k}.example", sender="list@relay.example",
                 reason="mailboxfull", status="4.2.2", hard=0)
    assert [f for f in s.flags() if f[0] == "compromised-sender"] == []


def test_one_message_with_many_recipients_is_judged_event_by_event(stream):
    events = [dict(recipient=f"u{k}@d{k}.example", sender="bulk@relay.example",
                   reason="userunknown", status="5.1.1") for k in range(60)]
    out = stream.record(T0, *events)
    assert sum(1 for d in out if d.kind == "compromised-sender" and d.action == "raise") == 1
    assert sum(1 for d in out if d.kind == "dead-recipient" and d.action == "raise") == 60
