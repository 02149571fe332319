"""Postfix's own bounce and delay notices reach the handler and are attributed to the sender.

``notify_classes = bounce, delay`` with ``bounce_notice_recipient`` and
``delay_notice_recipient`` set to the bounce address makes Postfix send the postmaster
copy of every bounce and delay warning it generates to the handler.  That copy carries the
original envelope sender (``X-Postfix-Sender:`` in the DSN and the original headers), so
mail that bounced *here* (never left the relay) is counted against its sender too.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import sqlite_query

pytestmark = pytest.mark.postfix

SENDER = "carol@sender.test"


def events(relay):
    return sqlite_query(
        relay.db_path,
        "SELECT e.kind, e.recipient, e.sender, e.status FROM bounce_events e ORDER BY e.id",
    )


def test_postfix_bounce_notice_is_recorded_for_the_original_sender(make_relay):
    relay = make_relay(name="notices")
    pf = relay.postfix
    # The relay's error transport bounces anything not for the bounce address at once
    # (submitted locally: smtpd would refuse an error: destination at RCPT time).
    pf.submit(
        SENDER,
        "dave@nowhere.test",
        f"From: {SENDER}\r\nTo: dave@nowhere.test\r\nSubject: hi\r\n\r\nhi\r\n",
    )
    rows = pf.wait_for(lambda: events(relay), timeout=60, what="the postmaster bounce copy")
    assert rows[0][:3] == ("bounce", "dave@nowhere.test", SENDER), rows
    assert rows[0][3].startswith("5.")


def test_postfix_delay_notice_is_recorded_as_a_delay(make_relay):
    # delay_warning_time 1s: the second attempt (1-2 s later) sends the warning.
    relay = make_relay(name="delays", extra_main={"delay_warning_time": "1s"})
    pf = relay.postfix
    pf.submit(
        SENDER,
        "erin@defer.test",
        f"From: {SENDER}\r\nTo: erin@defer.test\r\nSubject: hi\r\n\r\nhi\r\n",
    )
    rows = pf.wait_for(lambda: events(relay), timeout=60, what="the postmaster delay copy")
    assert rows[0][:3] == ("delay", "erin@defer.test", SENDER), rows
    assert rows[0][3].startswith("4.")
    # The message itself is still queued (deferred), waiting for defer.test.
    queued = pf.queue_json()
    # (The notice itself may not be removed from the queue yet: Postfix deletes it just
    # after the handler's exit 0, which is after the row was committed.)
    assert "erin@defer.test" in [r["address"] for q in queued for r in q["recipients"]]
