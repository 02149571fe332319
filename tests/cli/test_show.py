"""`bounces show`: one event or message, its flags, and the kept raw bytes."""

from __future__ import annotations

import json

from tests.cli.conftest import DEAD, NOT_A_BOUNCE, SPAMMER, user_unknown, with_pipe_headers


def event_id(store, recipient: str) -> int:
    return store.query("SELECT id FROM bounce_events WHERE recipient = ?", (recipient,))[0][0]


def test_event_json_has_parsed_fields_message_and_flags(populated):
    eid = event_id(populated, DEAD[0])
    proc = populated.bounces("show", str(eid), "--format", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert (doc["recipient"], doc["status"], doc["reason"], doc["hard"]) == (
        DEAD[0], "5.1.1", "userunknown", True)
    assert doc["sender"] == SPAMMER
    assert doc["message"]["disposition"] == "recorded" and doc["message"]["raw_kept"] is True
    kinds = {(f["kind"], f["subject"]) for f in doc["flags"]}
    # It is the evidence of its own dead-recipient flag and of the sender's flag.
    assert kinds == {("dead-recipient", DEAD[0]), ("compromised-sender", SPAMMER)}


def test_event_table(populated):
    eid = event_id(populated, DEAD[0])
    out = populated.bounces("show", str(eid)).stdout.decode()
    assert f"Bounce event #{eid}" in out
    assert "User unknown in virtual mailbox table" in out
    assert "Flags it is evidence for:" in out and "compromised-sender" in out
    assert f"{SPAMMER} [open] rule R3" in out


def test_raw_prints_the_message_exactly_as_received(populated):
    eid = event_id(populated, DEAD[2])
    proc = populated.bounces("show", str(eid), "--raw")
    assert proc.returncode == 0
    assert proc.stdout == user_unknown(DEAD[2])


def test_quarantined_message_by_message_id(populated):
    (mid,) = populated.query("SELECT message_id FROM quarantine")[0]
    doc = json.loads(populated.bounces("show", "--message", str(mid), "--format", "json").stdout)
    assert doc["disposition"] == "quarantined" and doc["events"] == []
    assert doc["quarantine"]["reason"] == "unparseable"
    raw = populated.bounces("show", "--message", str(mid), "--raw").stdout
    assert raw == with_pipe_headers(NOT_A_BOUNCE, "frank@example.com")
    out = populated.bounces("show", "--message", str(mid)).stdout.decode()
    assert "Quarantined: unparseable" in out


def test_address_lists_its_events_newest_first(populated):
    # Domains are case-insensitive (RFC 5321 2.4): the store keeps them lower-cased.
    proc = populated.bounces("show", "<news@Shop.EXAMPLE>", "--format", "json")
    rows = json.loads(proc.stdout)
    assert {r["recipient"] for r in rows} == set(DEAD)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    table = populated.bounces("show", DEAD[1]).stdout.decode()
    assert "Latest events for" in table and "userunknown" in table


def test_unknown_id_and_pruned_raw_are_clear_errors(populated):
    proc = populated.bounces("show", "99999")
    assert proc.returncode == 65 and "no bounce event #99999" in proc.stderr.decode()
    import sqlite3

    conn = sqlite3.connect(populated.db)
    conn.execute("DELETE FROM raw_messages")  # what prune does after the retention
    conn.commit()
    conn.close()
    proc = populated.bounces("show", str(event_id(populated, DEAD[0])), "--raw")
    assert proc.returncode == 65 and "not kept" in proc.stderr.decode()
    proc = populated.bounces("show", "nobody")
    assert proc.returncode == 64
