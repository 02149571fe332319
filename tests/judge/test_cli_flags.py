"""`bounces flags` through the real console script."""

from __future__ import annotations

import json

from tests.judge.conftest import T0, Stream, minutes


def bounces(store, *args):
    """Run the real `bounces` CLI; (exit code, stdout, stderr) as text."""
    out = store.bounces(*args)
    return out.returncode, out.stdout.decode(), out.stderr.decode()


def _seed(store):
    s = Stream(store.db)
    s.bounce(T0, "gone@example.org", diagnostic="550 5.1.1 user unknown")
    for k in range(6):
        s.bounce(T0 + minutes(k), f"u{k}@yahoo.com", kind="delay", reason="undefined",
                 status="4.7.0", hard=0, diagnostic="421 4.7.0 [TS03] permanently deferred")
    s.close()


def test_list_json_has_the_contract_fields(store):
    _seed(store)
    rc, stdout, stderr = bounces(store, "flags", "list", "--format", "json")
    assert rc == 0, stderr
    flags = json.loads(stdout)
    assert [(f["kind"], f["subject"], f["state"]) for f in flags] == [
        ("throttled-destination", "yahoo", "open"), ("dead-recipient", "gone@example.org", "open")]
    for f in flags:
        assert {"id", "kind", "subject", "state", "raised_at", "evidence"} <= set(f)
        assert isinstance(f["id"], int) and f["raised_at"].endswith("Z")
    assert flags[0]["evidence"]["deferrals"] == 6
    assert "slow_yahoo_destination_rate_delay" in flags[0]["advice"]


def test_ack_clear_and_show_with_audit_trail(store):
    _seed(store)
    fid = json.loads(store.bounces("flags", "list", "--format", "json",
                                   "--kind", "dead-recipient").stdout)[0]["id"]
    assert bounces(store, "flags", "ack", str(fid), "--note", "ticket 4711")[:2] == (
        0, f"flag {fid} acked\n")
    assert bounces(store, "flags", "ack", str(fid))[:2] == (0, f"flag {fid} already acked\n")
    assert bounces(store, "flags", "clear", str(fid))[:2] == (0, f"flag {fid} cleared\n")
    rc, _, stderr = bounces(store, "flags", "clear", str(fid))
    assert rc == 65 and "already cleared" in stderr
    assert json.loads(store.bounces("flags", "list", "--format", "json",
                                    "--kind", "dead-recipient").stdout) == []
    shown = json.loads(store.bounces("flags", "show", str(fid), "--format", "json").stdout)
    assert [h["action"] for h in shown["history"]] == ["raised", "acked", "cleared"]
    assert shown["history"][1]["detail"]["note"] == "ticket 4711"
    text = bounces(store, "flags", "show", str(fid))[1]
    assert "audit trail:" in text and "ticket 4711" in text
    assert "gone@example.org 5.1.1 userunknown" in text.split("bounce events")[1]


def test_list_text_and_unknown_flag(store):
    _seed(store)
    rc, stdout, _ = bounces(store, "flags", "list")
    assert rc == 0
    assert "throttled-destination" in stdout and "deferrals=6" in stdout
    rc, _, stderr = bounces(store, "flags", "show", "999")
    assert rc == 65 and "no flag 999" in stderr


def test_recompute_prints_counts_and_rebuilds(store):
    _seed(store)
    import sqlite3

    conn = sqlite3.connect(store.db)
    conn.execute("DELETE FROM flag_evidence")
    conn.execute("DELETE FROM flag_events")
    conn.execute("DELETE FROM flags")
    conn.commit()
    conn.close()
    rc, stdout, stderr = bounces(store, "flags", "recompute")
    assert rc == 0, stderr
    assert "replayed 7 bounce events" in stdout and "2 new" in stdout
    assert len(json.loads(store.bounces("flags", "list", "--format", "json").stdout)) == 2


def test_rules_prints_the_numbered_rules_and_bad_rules_exit_78(store):
    rc, stdout, _ = bounces(store, "flags", "rules")
    assert rc == 0
    assert stdout.startswith("R1  dead-recipient")
    assert "max_bounces = 50" in stdout
    store.write_config("[rules.compromised_sender]\nmax_bounce = 5\n")
    rc, _, stderr = bounces(store, "flags", "rules")
    assert rc == 78 and "unknown key 'max_bounce'" in stderr


def test_help_has_an_example(store):
    rc, stdout, _ = bounces(store, "flags", "--help")
    assert rc == 0 and "bounces flags list --kind" in stdout
