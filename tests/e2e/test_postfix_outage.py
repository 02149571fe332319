"""Database down → Postfix keeps the bounce (deferred, reason in `postqueue -j`) → database
back → the retry records it exactly once.  The durability contract, end to end."""

from __future__ import annotations

import os

import pytest

from tests.e2e.dsn import dsn, xverp_token
from tests.e2e.helpers import pg_query, sqlite_query

SQL = "SELECT count(*) FROM bounce_events WHERE recipient = ?"


def deferred_reasons(pf) -> list[str]:
    # With 1 s retries the message moves between the deferred and active queues; what
    # marks it deferred is the recipient's delay_reason (the handler's output line).
    return [
        r["delay_reason"] for q in pf.queue_json() for r in q["recipients"] if r.get("delay_reason")
    ]


def send_bounce(pf, rcpt):
    to = pf.verp_address(xverp_token(rcpt))
    pf.send("", to, dsn(rcpt, bounce_to=to))


@pytest.mark.postfix
def test_sqlite_unwritable_defers_then_records_once(make_relay):
    relay = make_relay(name="outage")
    pf = relay.postfix
    db = relay.db_path
    # The store becomes unwritable for the pipe user (root-owned, 0644): every write fails.
    os.chown(db, 0, 0)
    try:
        send_bounce(pf, "frank@example.com")
        reasons = pf.wait_for(lambda: deferred_reasons(pf), timeout=60, what="a deferral")
        # The handler's one line is the reason an administrator reads in mailq.
        assert "bounces.db" in reasons[0], reasons
        assert sqlite_query(db, SQL, ("frank@example.com",)) == [(0,)]
        pf.wait_retries(2)
    finally:
        from tests.support.postfix import give_to_pipe_user

        give_to_pipe_user(db)
    pf.flush()
    pf.wait_queue_empty(timeout=60)
    # Tried at least three times, recorded once.
    assert sqlite_query(db, SQL, ("frank@example.com",)) == [(1,)]


@pytest.mark.postfix
@pytest.mark.postgresql
def test_postgresql_down_defers_then_records_once(make_relay, pg_server, pg_db):
    relay = make_relay(name="pg-outage", url=pg_db)
    pf = relay.postfix
    pg_server.stop(mode="immediate")
    try:
        send_bounce(pf, "grace@example.com")
        reasons = pf.wait_for(lambda: deferred_reasons(pf), timeout=60, what="a deferral")
        assert "PostgreSQL" in reasons[0], reasons
        # Let Postfix retry against the dead server a few times (1-2 s backoff).
        pf.wait_retries(2)
    finally:
        pg_server.start()
    pf.flush()
    pf.wait_queue_empty(timeout=60)
    assert pg_query(pg_db, SQL.replace("?", "%s"), ("grace@example.com",)) == [(1,)]
