"""bounce_handler/livequeue.py: the live queue as evidence for R8, one count per deferral.

In process, on a real migrated store: ``livequeue.feed`` with ``postqueue -j`` lines as
Postfix 3.7 prints them (tests/e2e/test_postfix_live_queue.py has the real queue), and
notices as this relay's bounce daemon writes them (tests/support/notices.py) through the
real intake.  The control in every test is a count one under ``min_deferrals``: counted
twice, it would raise a flag.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib

import pytest

from bounce_handler import intake, livequeue, settings, trust
from bounce_handler.judge.recompute import recompute
from bounce_handler.judge.rules import parse
from bounce_handler.store.lean import SqliteWriter
from tests.support.notices import RELAY_HOST, bounce_daemon_notice

ARRIVAL = 1796138533  # Tue,  1 Dec 2026 15:22:13 +0000
SCAN = ARRIVAL + 300
YAHOO = ("host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from "
         "198.51.100.7 temporarily deferred due to unexpected volume or user complaints - "
         "4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM "
         "command)")
SUSPENDED = ("delivery temporarily suspended: host mta7.am0.yahoodns.net[67.195.204.72] "
             "refused to talk to me: 421 4.7.0 [TSS04] Messages from 198.51.100.7 "
             "temporarily deferred due to unexpected volume or user complaints")
GMAIL = ("host gmail-smtp-in.l.google.com[142.250.27.26] said: 450-4.7.28 Our system has "
         "detected an unusual rate of unsolicited mail originating from your IP address. "
         "450 4.7.28 https://support.google.com/mail/?p=UnsolicitedRateLimitError "
         "a1si123 - gsmtp (in reply to RCPT TO command)")
REFUSED = "connect to mx.example.net[192.0.2.9]:25: Connection refused"
FULL = ("host mx.example.org[192.0.2.8] said: 452 4.2.2 <x@example.org>: mailbox full "
        "(in reply to RCPT TO command)")


def entry(qid, rcpts, queue="deferred", arrival=ARRIVAL, sender="news@shop.example"):
    return {"queue_name": queue, "queue_id": qid, "arrival_time": arrival,
            "message_size": 900, "forced_expire": False, "sender": sender,
            "recipients": [{"address": a, "delay_reason": r} for a, r in rcpts]}


def listing(*entries) -> str:
    return "\n".join(json.dumps(e) for e in entries) + "\n"


def config(store, **rules):
    r = {"throttled_destination": {"min_deferrals": 3, **rules.pop("dest", {})}, **rules}
    return settings.from_dict({"database": {"url": store.url}, "intake": {"relay": "t"},
                               "rules": r})


def feed(cfg, text, at=SCAN):
    return livequeue.feed(cfg, text, at, mta=RELAY_HOST)


def rows(store, sql, params=()):
    return store.query(sql, params)


def r8(store) -> dict:
    return {s: json.loads(e) for s, e in rows(
        store, "SELECT subject, evidence FROM flags WHERE kind = 'throttled-destination'")}


def notice(rcpt, status, text, qid, *, kind_copy=False, arrival=None):
    """(raw, envelope) of a local notice about queued message `qid` (as pipe(8) hands it)."""
    local, _, domain = rcpt.partition("@")
    rp = f"bounces+{local}={domain}@relay.test"
    kw = {} if arrival is None else {"arrival": arrival}
    raw, own = bounce_daemon_notice([(rcpt, status, text)], original_queue_id=qid,
                                    return_path=rp, postmaster_copy=kind_copy, **kw)
    if kind_copy:
        env = intake.Envelope(extension="", sender=f"double-bounce@{RELAY_HOST}",
                              recipient="bounces@relay.test", client_address="",
                              client_protocol="", queue_id=own)
    else:
        env = intake.Envelope(extension=f"{local}={domain}", sender="", recipient=rp,
                              client_address="", client_protocol="", queue_id=own)
    return raw, env


def pipe(store, cfg, raw, env, at):
    out = intake.process(raw, env, cfg, at, writer=SqliteWriter(str(store.db), 5.0),
                         relay="t")
    assert out.name == "recorded", out.detail
    return out


# --- what is observed --------------------------------------------------------------------

def test_only_what_r8_counts_is_observed_from_the_live_queues():
    rules = parse({})
    found, malformed = livequeue.observe(livequeue.entries(listing(
        entry("A1", [("a@yahoo.com", YAHOO), ("b@Yahoo.COM", SUSPENDED),
                     ("c@example.net", REFUSED), ("d@example.org", FULL)]),
        entry("A2", [("g@gmail.com", GMAIL)], queue="active"),
        entry("A3", [("h@yahoo.com", YAHOO)], queue="hold"),  # the administrator's
        entry("A4", [("i@yahoo.com", None)], queue="incoming"),
        entry("bad id!", [("j@yahoo.com", YAHOO)]),
        entry("A5", [("k@yahoo.com", YAHOO)], arrival="yesterday"),
    )), RELAY_HOST, rules)
    assert malformed == 2
    got = {(c.queue_id, e["recipient"], e["reason"], e["status"]) for c in found
           for e in c.events}
    assert got == {("A1", "a@yahoo.com", "ratelimited", "4.7.0"),
                   ("A1", "b@yahoo.com", "ratelimited", "4.7.0"),
                   ("A2", "g@gmail.com", "ratelimited", "4.7.28")}
    ev = found[0].events[0]
    # A queue row is the relay's own state: evidence for R8, about no sender at all.
    assert (ev["kind"], ev["origin"], ev["sender"], ev["sender_source"], ev["verified"]) == (
        "delay", "queue", None, None, 0)
    assert ev["remote_mta"] == "mta7.am0.yahoodns.net" and ev["reply_code"] == "421"
    assert found[0].sender == "news@shop.example"
    # Nothing at all is observed for a destination R8 does not count.
    assert livequeue.observe(livequeue.entries(listing(entry("A1", [("a@yahoo.com", YAHOO)]))),
                             RELAY_HOST, parse({"throttled_destination": {
                                 "reasons": [], "markers": ["nothing like it"]}}))[0] == []


def test_an_observation_has_the_identity_of_the_delay_notice_postfix_will_write():
    """Postfix writes Arrival-Date in its bounce daemon's local zone; postqueue -j gives
    epoch seconds: the same instant is the same identity, whatever the zones."""
    from bounce_handler.parse import parse as parse_mail

    found, _ = livequeue.observe(livequeue.entries(listing(
        entry("8682A214CA2", [("Dave@Nowhere.test", YAHOO.replace("yahoodns.net", "x"))]))),
        RELAY_HOST, parse({"throttled_destination": {"markers": ["tss04"]}}))
    key = found[0].events[0]["failure_key"]
    for arrival in ("Tue,  1 Dec 2026 15:22:13 +0000 (UTC)",
                    "Tue, 1 Dec 2026 16:22:13 +0100 (CET)", "1 Dec 2026 10:22:13 EST"):
        raw, _ = notice("Dave@nowhere.test", "4.7.0", "421 4.7.0 [TSS04] deferred",
                        "8682A214CA2", arrival=arrival)
        r = parse_mail(raw)
        assert trust.failure_key("delay", "Dave@nowhere.test", True, r, "d") == key, arrival
    other = trust.failure_identity("delay", "dave@nowhere.test", True,
                                   trust.queue_reference(RELAY_HOST, "8682A214CA2", ARRIVAL + 1))
    assert other != key  # another arrival: another message (queue IDs are reused)
    assert trust.arrival_key("not a date  at all") == "not a date at all"


# --- recorded once, judged for R8 only ------------------------------------------------------

def test_r8_is_raised_from_the_queue_and_a_second_reading_counts_nothing(store):
    cfg = config(store)
    text = listing(entry("A1", [("a@yahoo.com", YAHOO), ("b@yahoo.com", YAHOO)]),
                   entry("A2", [("c@yahoo.com", SUSPENDED)]),
                   entry("B1", [("x@slow.example", YAHOO), ("y@slow.example", YAHOO)]))
    first = feed(cfg, text)
    assert (first.messages, first.deferred, first.recorded, first.known) == (3, 5, 5, 0)
    assert first.raised == [("throttled-destination", "yahoo", "R8")]
    for _ in range(3):
        again = feed(cfg, text, SCAN + 60)
        assert (again.deferred, again.recorded, again.known, again.raised) == (5, 0, 5, [])
    assert rows(store, "SELECT count(*) FROM bounce_events") == [(5,)]
    assert set(r8(store)) == {"yahoo"}  # slow.example: 2 deferrals, however often read
    ev = r8(store)["yahoo"]
    assert (ev["deferrals"], ev["live_queue"]) == (3, 3)
    assert rows(store, "SELECT verified FROM flags") == [(1,)]
    # The evidence is kept: the queue entry as postqueue printed it, on its messages row.
    m = rows(store, "SELECT m.id, m.source, m.queue_id, m.envelope_sender, m.kind, m.detector "
                    "FROM messages m ORDER BY id")
    assert [x[1:] for x in m] == [("queue", q, "news@shop.example", "delay", "postqueue")
                                  for q in ("A1", "A2", "B1")]
    raw = rows(store, "SELECT content FROM raw_messages WHERE message_id = ?", (m[0][0],))
    assert json.loads(zlib.decompress(raw[0][0]))["queue_id"] == "A1"
    # A new recipient of a message already seen is one more observation, not three.
    text2 = listing(entry("B1", [("x@slow.example", YAHOO), ("y@slow.example", YAHOO),
                                 ("z@slow.example", GMAIL)]))
    third = feed(cfg, text2, SCAN + 120)
    assert (third.recorded, third.known) == (1, 2)
    assert set(r8(store)) == {"yahoo", "slow.example"}


def test_a_queue_row_is_never_evidence_for_a_dead_recipient_or_a_sender(store):
    """Even where every unverified claim counts, delays count as soft failures, and R8 is
    set to count a reason that is the mailbox's (so only trust.py keeps it from R2)."""
    lenient = {"include_unverified": True, "count_delays": True}
    cfg = config(store, dead_recipient={**lenient, "soft_days": 1, "soft_span_days": 0},
                 compromised_sender={**lenient, "max_bounces": 1, "max_domains": 0},
                 dest={"reasons": ["mailboxfull"], "markers": []})
    full = [(f"{u}@example.org", FULL.replace("x@", f"{u}@")) for u in "abc"]
    stats = feed(cfg, listing(*(entry(f"A{i}", [f]) for i, f in enumerate(full))))
    assert stats.recorded == 3
    assert rows(store, "SELECT kind, subject FROM flags") == [
        ("throttled-destination", "example.org")]
    for family in (trust.RECIPIENT, trust.SENDER):
        r = {"origin": "queue", "verified": 0, "verify_reason": None}
        assert trust.strength(r, family) == trust.NONE
        assert not trust.admits(r, family, cfg_rules(cfg))
    # The control: the delay notice of one of them is a copy of its queue row, and still
    # counts for R2 here (the queue row it copies is no evidence for R2).
    raw, env = notice("a@example.org", "4.2.2", "452 4.2.2 <a@example.org>: mailbox full",
                      "A0")
    pipe(store, cfg, raw, env, SCAN + 60)
    (dup,) = rows(store, "SELECT duplicate_of FROM bounce_events WHERE origin = 'local'")[0]
    assert dup is not None
    dead = rows(store, "SELECT subject FROM flags WHERE kind = 'dead-recipient'")
    assert dead == [("a@example.org",)]


def cfg_rules(cfg):
    from bounce_handler.judge.rules import for_settings

    return for_settings(cfg)


# --- against the notices that follow (or came first) ----------------------------------------

def test_the_delay_notice_and_final_dsn_that_follow_do_not_count_again(store):
    cfg = config(store)
    feed(cfg, listing(entry("B1", [("x@slow.example", YAHOO)]),
                      entry("B2", [("y@slow.example", YAHOO)])))
    queued = dict(rows(store, "SELECT recipient, id FROM bounce_events"))
    at = SCAN + 30
    for rcpt, qid in (("x@slow.example", "B1"), ("y@slow.example", "B2")):
        for copy in (False, True):  # the delay DSN and its postmaster copy
            raw, env = notice(rcpt, "4.7.0", "421 4.7.0 [TSS04] temporarily deferred", qid,
                              kind_copy=copy)
            at += 1
            pipe(store, cfg, raw, env, at)
    delays = rows(store, "SELECT recipient, duplicate_of, origin FROM bounce_events "
                         "WHERE origin = 'local'")
    assert sorted(delays) == sorted((r, queued[r], "local") for r in queued for _ in (0, 1))
    assert r8(store) == {}  # 2 deferrals, not 6
    # Gmail-style escalation to a permanent refusal: the final DSN of the same recipients.
    for rcpt, qid in (("x@slow.example", "B1"), ("y@slow.example", "B2")):
        raw, env = notice(rcpt, "5.7.28", "550-5.7.28 Our system has detected an unusual "
                          "rate of unsolicited mail originating from your IP address", qid)
        at += 1
        pipe(store, cfg, raw, env, at)
    finals = rows(store, "SELECT recipient, queued_of, duplicate_of FROM bounce_events "
                         "WHERE kind = 'bounce'")
    assert sorted(finals) == sorted((r, queued[r], None) for r in queued)
    assert r8(store) == {}  # still 2: the bounces count as bounces, not as deferrals again
    # ... and a recompute replays exactly that.
    conn = sqlite3.connect(store.db, isolation_level=None)
    try:
        recompute(conn, cfg_rules(cfg))
    finally:
        conn.close()
    assert r8(store) == {}
    # A third queued recipient at the destination is the third deferral: now R8 holds.
    feed(cfg, listing(entry("B3", [("z@slow.example", YAHOO)])), at + 1)
    assert r8(store)["slow.example"]["deferrals"] == 3


def test_a_notice_recorded_first_is_not_recorded_again_from_the_queue(store):
    cfg = config(store)
    raw, env = notice("x@slow.example", "4.7.0", "421 4.7.0 [TSS04] deferred", "B1")
    pipe(store, cfg, raw, env, SCAN)
    stats = feed(cfg, listing(entry("B1", [("x@slow.example", YAHOO)]),
                              entry("B2", [("y@slow.example", YAHOO)])), SCAN + 30)
    assert (stats.deferred, stats.recorded, stats.known) == (2, 1, 1)
    assert rows(store, "SELECT origin, recipient FROM bounce_events ORDER BY id") == [
        ("local", "x@slow.example"), ("queue", "y@slow.example")]
    assert r8(store) == {}


def test_recompute_gives_the_flags_the_readings_gave(store):
    cfg = config(store)
    for i in range(4):
        feed(cfg, listing(*(entry(f"A{i}{j}", [(f"u{i}{j}@yahoo.com", YAHOO)])
                            for j in range(2))), SCAN + 120 * i)
    before = rows(store, "SELECT id, kind, subject, rule, raised_at, evidence FROM flags")
    assert [b[2] for b in before] == ["yahoo"]
    conn = sqlite3.connect(store.db, isolation_level=None)
    try:
        recompute(conn, cfg_rules(cfg))
    finally:
        conn.close()
    after = rows(store, "SELECT kind, subject, rule, raised_at, evidence FROM flags")
    assert after == [b[1:] for b in before]


# --- hostile and broken input ---------------------------------------------------------------

def test_a_huge_or_odd_listing_is_bounded_and_never_crashes(store):
    cfg = config(store)
    huge = "421 4.7.0 [TSS04] " + "x" * (4 * 1024 * 1024)
    odd = [
        {"queue_name": "deferred", "queue_id": "C1", "arrival_time": ARRIVAL,
         "recipients": [{"address": "a@yahoo.com", "delay_reason": huge}, "nonsense",
                        {"address": 5, "delay_reason": YAHOO},
                        {"address": "no-at-sign", "delay_reason": YAHOO},
                        {"address": "b@yahoo.com", "delay_reason": ["list"]}]},
        {"queue_name": "deferred", "queue_id": "C2", "arrival_time": True, "recipients": []},
        ["not", "an", "object"],
    ]
    text = "\n".join(json.dumps(x) for x in odd)
    t = time.perf_counter()
    stats = feed(cfg, text)
    assert time.perf_counter() - t < 10  # a guard against reading it all, not a benchmark
    assert (stats.recorded, stats.malformed) == (1, 3)
    (diag,) = rows(store, "SELECT diagnostic FROM bounce_events")[0]
    assert len(diag) <= 2000
    with pytest.raises(ValueError, match="line 1"):
        feed(cfg, "{not json\n")


def test_nothing_is_recorded_when_r8_is_off(store):
    cfg = config(store, dest={"enabled": False})
    stats = feed(cfg, listing(entry("A1", [("a@yahoo.com", YAHOO)])))
    assert stats.disabled and "disabled" in stats.summary()
    assert rows(store, "SELECT count(*) FROM bounce_events") == [(0,)]


def test_the_store_down_is_a_tempfail_and_loses_nothing(store, tmp_path):
    from bounce_handler.errors import StoreUnavailable

    cfg = settings.from_dict({"database": {"url": f"sqlite:///{tmp_path}/missing.db"}})
    with pytest.raises(StoreUnavailable):
        feed(cfg, listing(entry("A1", [("a@yahoo.com", YAHOO)])))


# --- the same on PostgreSQL -----------------------------------------------------------------

@pytest.mark.postgresql
def test_postgres_records_once_and_links_the_final_dsn(pg_server, request):
    import psycopg

    from bounce_handler.store import engine
    from bounce_handler.store.pg import PgWriter

    name = "lq_" + request.node.name.lower()[:30]
    url = pg_server.create_database(name)
    base = {"database": {"url": url, "pg_mode": "direct"}, "intake": {"relay": "t"},
            "rules": {"throttled_destination": {"min_deferrals": 3}}}
    cfg = settings.from_dict(base)
    engine.upgrade(cfg)
    text = listing(entry("A1", [("a@yahoo.com", YAHOO), ("b@yahoo.com", YAHOO)]),
                   entry("A2", [("c@yahoo.com", GMAIL)]),
                   entry("B1", [("x@slow.example", YAHOO)]))
    assert feed(cfg, text).recorded == 4
    assert feed(cfg, text, SCAN + 60).known == 4
    raw, env = notice("x@slow.example", "5.7.28", "550-5.7.28 unusual rate of unsolicited "
                      "mail", "B1")
    out = intake.process(raw, env, cfg, SCAN + 90, writer=PgWriter(url), relay="t")
    assert out.name == "recorded"
    with psycopg.connect(pg_server.dsn(name)) as conn:
        flags = conn.execute("SELECT subject FROM flags").fetchall()
        links = conn.execute("SELECT e.kind, e.queued_of = q.id FROM bounce_events e JOIN "
                             "bounce_events q ON q.recipient = e.recipient AND "
                             "q.origin = 'queue' WHERE e.origin = 'local'").fetchall()
    assert flags == [("yahoo",)] and links == [("bounce", True)]
