"""`bounces flags recompute` and `bounces alert` together, through the real processes.

A recompute must keep what the administrator and the alert mails already refer to: flag
ids (an alert mail says `bounces flags ack 6`), acks, and each channel's place, so that no
flag is skipped and none is sent twice; and a flag the rules no longer support is
withdrawn, visibly, not dropped.
"""

from __future__ import annotations

import json
import re

from tests.cli.conftest import DEAD, RULES, SPAMMER, USER_UNKNOWN, feed, user_unknown
from tests.cli.test_alert import configure, fake_sendmail, sent


def flag_lines(body: str) -> dict[str, int]:
    """{subject: id} of the flag paragraphs of an alert mail."""
    return {m.group(2): int(m.group(1))
            for m in re.finditer(r"^#(\d+) [a-z-]+: (\S+)  \[", body, re.M)}


def live(store) -> dict[str, tuple[int, str]]:
    flags = json.loads(store.bounces("flags", "list", "--format", "json").stdout)
    return {f["subject"]: (f["id"], f["state"]) for f in flags}


def test_alerting_and_ids_survive_a_recompute(populated, tmp_path):
    binary, box = fake_sendmail(tmp_path)
    configure(populated, binary)
    assert populated.bounces("alert").returncode == 2
    first = flag_lines(sent(box)[0][1].get_payload(decode=True).decode())
    assert set(first) == {SPAMMER, "yahoo", *DEAD}
    assert populated.bounces("flags", "ack", str(first[SPAMMER])).returncode == 0
    assert populated.bounces("flags", "clear", str(first[DEAD[0]])).returncode == 0
    feed(populated, user_unknown("pending@example.net"), "pending@example.net")
    before = live(populated)

    proc = populated.bounces("flags", "recompute")
    assert proc.returncode == 0, proc.stderr.decode()
    # Same rules, same history: the same flags under the same ids; acked stays acked.
    assert live(populated) == before
    assert "8 live flags kept" in proc.stdout.decode()
    assert "0 new, 0 withdrawn" in proc.stdout.decode()
    assert before[SPAMMER] == (first[SPAMMER], "acked")
    assert all(before[s][0] == i for s, i in first.items() if s != DEAD[0])

    feed(populated, user_unknown("fresh@example.net"), "fresh@example.net")
    again = populated.bounces("alert", "--quiet")
    assert again.returncode == 2, again.stderr.decode()
    assert again.stdout == b""
    mails = sent(box)
    assert len(mails) == 2
    second = flag_lines(mails[1][1].get_payload(decode=True).decode())
    fresh = live(populated)["fresh@example.net"][0]
    assert second == {"pending@example.net": before["pending@example.net"][0],
                      "fresh@example.net": fresh}
    assert populated.bounces("alert").returncode == 1
    assert len(sent(box)) == 2


def test_recompute_keeps_the_flags_of_unsigned_xverp_bounces(store):
    """The demo's case: default rules ([verp] require_signed = false), XVERP tokens."""
    store.write_config("")
    for rcpt in ("alice@example.net", "carl@example.net"):
        ext = rcpt.replace("@", "=")  # Postfix's XVERP: bounces+alice=example.net@
        raw = (b"Return-Path: <>\nDelivered-To: bounces+" + ext.encode() + b"@relay.example\n"
               + USER_UNKNOWN.replace(b"alice@example.net", rcpt.encode())
               .replace(b"alice=example.net", ext.encode()))
        proc = store.handler(ext, input=raw)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert store.query("SELECT DISTINCT verified, verify_reason FROM bounce_events") == [
        (0, "unsigned")]
    before = live(store)
    assert set(before) == {"alice@example.net", "carl@example.net"}
    assert store.bounces("flags", "recompute").returncode == 0
    assert live(store) == before


def test_a_withdrawn_flag_is_alerted_kept_and_restored(populated, tmp_path):
    binary, box = fake_sendmail(tmp_path)
    configure(populated, binary)
    assert populated.bounces("alert").returncode == 2
    ids = flag_lines(sent(box)[0][1].get_payload(decode=True).decode())
    dead_ids = sorted(ids[a] for a in DEAD)

    # The administrator switches the dead-recipient rules off and recomputes.
    populated.write_config(
        RULES.replace("[rules.dead_recipient]\n", "[rules.dead_recipient]\nenabled = false\n")
        + f'[alert]\nsendmail = "{binary}"\nto = "postmaster@ops.example"\n')
    proc = populated.bounces("flags", "recompute")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "6 withdrawn" in out and ", ".join(f"#{i}" for i in dead_ids) in out
    assert set(live(populated)) == {SPAMMER, "yahoo"}
    # Out of the exports, but still there under its id, saying why.
    export = populated.bounces("export", "dead-recipients")
    assert export.returncode == 0 and not any(a in export.stdout.decode() for a in DEAD)
    ack = populated.bounces("flags", "ack", str(dead_ids[0]))
    assert ack.returncode == 65 and "withdrawn by `bounces flags recompute`" in \
        ack.stderr.decode()
    shown = json.loads(populated.bounces("flags", "show", str(dead_ids[0]), "--format",
                                         "json").stdout)
    assert shown["withdrawn"] and shown["history"][-1]["action"] == "withdrawn"
    listed = populated.bounces("flags", "list", "--state", "all").stdout.decode()
    assert re.search(rf"^ +{dead_ids[0]}  withdrawn ", listed, re.M)

    # The alert says so, once; nothing new was raised, so the status is "open" (1).
    proc = populated.bounces("alert")
    assert proc.returncode == 1, proc.stderr.decode()
    assert "6 withdrawn" in proc.stdout.decode()
    msg = sent(box)[1][1]
    assert msg["Subject"] == "[bounce-handler] 6 flags withdrawn on test-relay: 6 withdrawn"
    body = msg.get_payload(decode=True).decode()
    assert "WITHDRAWN BY RECOMPUTE (6)" in body
    assert all(f"#{ids[a]} dead-recipient: {a}  (was open" in body for a in DEAD)
    assert populated.bounces("alert").returncode == 1 and len(sent(box)) == 2

    # Rules back: the same flags come back under the same ids, and are alerted again.
    configure(populated, binary)
    proc = populated.bounces("flags", "recompute")
    assert "6 restored" in proc.stdout.decode()
    assert {a: live(populated)[a][0] for a in DEAD} == {a: ids[a] for a in DEAD}
    assert populated.bounces("alert").returncode == 2
    body = sent(box)[2][1].get_payload(decode=True).decode()
    assert flag_lines(body) == {a: ids[a] for a in DEAD}
    assert "restored by `bounces flags recompute`" in body


def test_migration_carries_a_channel_position_over(populated, tmp_path):
    """A store alerted before alert_marks existed: what was alerted stays alerted."""
    binary, box = fake_sendmail(tmp_path)
    configure(populated, binary)
    assert populated.bounces("alert").returncode == 2
    assert populated.bounces("db", "downgrade", "0002").returncode == 0
    behind = populated.bounces("alert")
    assert behind.returncode == 75 and "run `bounces db upgrade`" in behind.stderr.decode()
    up = populated.bounces("db", "upgrade")
    assert up.returncode == 0, up.stderr.decode()
    # (The pipe writes 0004's queued_of, so the new flag is raised after the upgrade.)
    feed(populated, user_unknown("later@example.net"), "later@example.net")
    assert populated.bounces("alert").returncode == 2
    body = sent(box)[1][1].get_payload(decode=True).decode()
    assert list(flag_lines(body)) == ["later@example.net"]
