"""SMTP in → Postfix queue → pipe(8) → bounce-handler → a row in SQLite, with a real Postfix."""

from __future__ import annotations

import pytest

from tests.e2e.dsn import dsn, xverp_token
from tests.e2e.helpers import sqlite_query

pytestmark = pytest.mark.postfix


def events(relay):
    return sqlite_query(
        relay.db_path,
        "SELECT e.recipient, e.status, e.verp_token, m.envelope_recipient, m.queue_id, m.relay"
        " FROM bounce_events e JOIN messages m ON m.id = e.message_id ORDER BY e.id",
    )


def test_bounce_over_smtp_is_one_row(postfix_relay):
    pf = postfix_relay.postfix
    rcpt = "alice@example.net"
    token = xverp_token(rcpt)
    to = pf.verp_address(token)
    pf.send("", to, dsn(rcpt, bounce_to=to))
    rows = pf.wait_for(lambda: events(postfix_relay), timeout=60, what="the bounce row")
    assert len(rows) == 1
    recipient, status, verp_token, env_rcpt, _qid, relay_name = rows[0]
    assert (recipient, status, verp_token) == (rcpt, "5.1.1", token)
    # flags=D (Delivered-To) told the handler which address it was delivered to.
    assert env_rcpt == to
    assert relay_name == "relay"
    pf.wait_queue_empty()
    assert "status=sent (delivered via verpbounce service" in pf.log_text()
