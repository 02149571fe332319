"""Real Postfix relays writing a real PostgreSQL: one row per bounce, several relays, no dups.

The pipe runs in ``pg_mode = "direct"`` (each bounce-handler process connects itself); the
spool mode, where the daemon drains, has its own tests in tests/faults.
"""

from __future__ import annotations

import pytest

from tests.e2e.dsn import dsn, xverp_token
from tests.e2e.helpers import pg_query

pytestmark = [pytest.mark.postfix, pytest.mark.postgresql]


def events(url):
    return pg_query(
        url,
        "SELECT e.recipient, e.status, m.relay, m.envelope_recipient FROM bounce_events e"
        " JOIN messages m ON m.id = e.message_id ORDER BY e.id",
    )


def test_bounce_over_smtp_lands_in_postgresql(make_relay, pg_db):
    relay = make_relay(name="pg1", url=pg_db)
    pf = relay.postfix
    rcpt = "bob@example.org"
    to = pf.verp_address(xverp_token(rcpt))
    pf.send("", to, dsn(rcpt, bounce_to=to, status="5.2.2"))
    rows = pf.wait_for(lambda: events(pg_db), timeout=60, what="the bounce row in PostgreSQL")
    assert rows == [(rcpt, "5.2.2", "pg1", to)]
    pf.wait_queue_empty()


def test_two_relays_share_one_postgresql_without_duplicates(make_relay, pg_db):
    """Two "relays" (two Postfix instances, each with its own pipe processes) record 20
    bounces into one database at the same time: every bounce exactly once, each row
    naming the relay that received it. (Two racing deliveries of the *same* message are
    covered at the writer level: tests/e2e/test_pg_writer.py.)"""
    r1 = make_relay(name="relay-a", url=pg_db)
    r2 = make_relay(name="relay-b", url=pg_db)
    sent = []
    for i in range(10):
        for relay in (r1, r2):
            rcpt = f"user{i}-{relay.postfix.name}@example.com"
            to = relay.postfix.verp_address(xverp_token(rcpt))
            relay.postfix.send("", to, dsn(rcpt, bounce_to=to))
            sent.append((rcpt, relay.postfix.name))
    total = len(sent)
    r1.postfix.wait_for(
        lambda: len(events(pg_db)) >= total, timeout=90, what=f"{total} rows in PostgreSQL"
    )
    for relay in (r1, r2):
        relay.postfix.wait_queue_empty()
    got = sorted((rcpt, relay) for rcpt, _status, relay, _to in events(pg_db))
    assert got == sorted(sent)
    ((n, distinct),) = pg_query(pg_db, "SELECT count(*), count(DISTINCT digest) FROM messages")
    assert n == distinct == total


def test_two_relays_spool_mode_then_drain(make_relay, pg_db):
    """The default for PostgreSQL (pg_mode = "spool"): each relay's pipe writes a durable
    spool file and exits 0 -- Postfix deletes its copy with nothing in PostgreSQL yet --
    and `bounces daemon`'s drain moves every file into the shared database once."""
    from bounce_handler import settings as settings_mod
    from bounce_handler.daemon.drain import DrainService
    from bounce_handler.store import spool

    relays = [make_relay(name=f"spool-{c}", url=pg_db, pg_mode="spool") for c in "ab"]
    sent = []
    for i in range(6):
        for relay in relays:
            rcpt = f"s{i}-{relay.postfix.name}@example.net"
            to = relay.postfix.verp_address(xverp_token(rcpt))
            relay.postfix.send("", to, dsn(rcpt, bounce_to=to))
            sent.append((rcpt, relay.postfix.name))
    for relay in relays:
        relay.postfix.wait_queue_empty(timeout=60)
        assert len(spool.pending(relay.spool_dir)) == 6
    assert events(pg_db) == []  # nothing reached PostgreSQL yet: it is all in the spools
    for relay in relays:
        stats = DrainService(settings_mod.load(relay.config)).drain_all()
        assert (stats.drained, stats.error) == (6, None)
        assert spool.pending(relay.spool_dir) == []
    got = sorted((rcpt, relay) for rcpt, _status, relay, _to in events(pg_db))
    assert got == sorted(sent)
