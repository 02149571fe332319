"""The flags in `bounces report` and `bounces flags`: the urgent one on top, the evidence current.

Issue 13 item 6: `bounces report` and its JSON listed the 20 newest flags, so a
compromised-sender flag raised before 44 dead recipients sat under "... and 44 more";
and a flag's evidence stayed as at its raise (`bounces=20` after 60 arrived).
"""

from __future__ import annotations

import json
from datetime import timedelta

from bounce_handler.judge import current, lifecycle
from bounce_handler.judge.rules import parse
from tests.cli.conftest import utcnow
from tests.cli.test_alert import fake_sendmail, sent
from tests.judge.conftest import Stream

STORM_RULES = {"compromised_sender": {"max_bounces": 20, "max_domains": 0, "jump_factor": 0,
                                      "spam_share": 0.0}}
STORM_TOML = ("[rules.compromised_sender]\nmax_bounces = 20\nmax_domains = 0\n"
              "jump_factor = 0\nspam_share = 0.0\n")


START = utcnow().replace(microsecond=0) - timedelta(hours=6)


def recent(minutes: float = 0.0):
    """A time within the report's default 24 hours, `minutes` after a fixed start."""
    return START + timedelta(minutes=minutes)


def storm(store, n: int = 60, dead: int = 0) -> Stream:
    """A spam run of `n` bounces in n/2 seconds from one sender (raised at the 20th), then
    `dead` dead recipients raised afterwards, newer than the spam run's flag."""
    s = Stream(store.db, STORM_RULES)
    for k in range(n):
        s.bounce(recent(k / 120), f"v{k}@d{k}.example", sender="spam@relay.example",
                 reason="spamdetected", status="5.7.1")
    for k in range(dead):
        s.bounce(recent(10 + k), f"gone{k}@{('example.net', 'example.org')[k % 2]}",
                 sender=f"shop{k % 3}@relay.example")
    return s


def report(store, *args) -> dict:
    proc = store.bounces("report", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_the_compromised_sender_is_on_top_however_many_dead_recipients_follow(store):
    storm(store, dead=45).close()
    doc = report(store)
    assert doc["flags_live"] == 46
    assert doc["flags"][0]["kind"] == "compromised-sender"
    assert doc["flags"][0]["subject"] == "spam@relay.example"
    assert len(doc["flags"]) == 21  # the urgent one and the 20 newest dead recipients
    digest = doc["dead_recipients"]
    assert (digest["live"], digest["listed"], digest["raised_in_period"]) == (45, 20, 45)
    assert digest["by_domain"] == [{"domain": "example.net", "count": 23},
                                   {"domain": "example.org", "count": 22}]
    assert digest["list_command"] == "bounces flags list --kind dead-recipient"

    proc = store.bounces("report")
    out = proc.stdout.decode()
    assert out.index("spam@relay.example") < out.index("gone44@example.net")
    assert "Live flags: 46 (1 compromised sender, 45 dead recipients)" in out
    assert "... and 25 more dead recipients (45 live, 45 raised in the period; by domain: " \
        "example.net 23, example.org 22)" in " ".join(out.split())
    assert "bounces flags list --kind dead-recipient" in out


def test_windowed_evidence_is_shown_as_it_stands_now(store, tmp_path):
    binary, box = fake_sendmail(tmp_path)
    store.write_config(STORM_TOML + f'[alert]\nsendmail = "{binary}"\nto = "root@ops.example"\n')
    s = storm(store, n=60)
    (flag,) = lifecycle.list_flags(s.conn, kind="compromised-sender")
    # What the judge stored: the numbers at the raise (every later bounce came within a
    # minute of it, core.REFRESH, so none of them recounted the window).
    assert flag["evidence"]["bounces"] == 20
    s.close()

    doc = report(store)
    (f,) = [f for f in doc["flags"] if f["kind"] == "compromised-sender"]
    assert f["evidence"]["bounces"] == 20
    assert f["evidence_now"]["evidence"]["bounces"] == 60
    assert f["evidence_now"]["as_of"] == (recent(59 / 120)).strftime("%Y-%m-%d %H:%M:%S")

    listed = json.loads(store.bounces("flags", "list", "--format", "json").stdout)
    assert listed[0]["evidence_now"]["evidence"]["bounces"] == 60
    assert "bounces=60" in store.bounces("flags", "list").stdout.decode()
    shown = store.bounces("flags", "show", str(flag["id"])).stdout.decode()
    assert "evidence now (window to" in shown and "bounces=60" in shown

    assert store.bounces("alert").returncode == 2
    body = sent(box)[0][1].get_payload(decode=True).decode()
    assert "evidence now (window to" in body and "bounces=60" in body


def test_current_evidence_is_the_judges_own(store):
    """Once the refresh interval has passed, the judge stores what current showed."""
    s = storm(store, n=60)
    rules = parse(STORM_RULES)
    (flag,) = lifecycle.list_flags(s.conn, kind="compromised-sender")
    shown = current.now_evidence(s.conn, flag, rules)
    assert shown["evidence"]["bounces"] == 60
    # A dead-recipient flag is rewritten by every bounce: nothing to add.
    s.bounce(recent(1), "gone@example.net")
    (dead,) = lifecycle.list_flags(s.conn, kind="dead-recipient")
    assert current.now_evidence(s.conn, dead, rules) is None
    # Two minutes on, one more bounce of the run: the judge recounts and stores 61.
    s.bounce(recent(2), "v60@d60.example", sender="spam@relay.example",
             reason="spamdetected", status="5.7.1")
    (flag,) = lifecycle.list_flags(s.conn, kind="compromised-sender")
    assert flag["evidence"]["bounces"] == 61
    assert current.now_evidence(s.conn, flag, rules) is None  # the stored one is current
    # Hours later the window is empty but for a stray bounce: the stored numbers (the
    # last that held) stand, rather than a "1" that would read as all clear.
    s.bounce(recent(300), "late@d1.example", sender="spam@relay.example",
             reason="spamdetected", status="5.7.1")
    (flag,) = lifecycle.list_flags(s.conn, kind="compromised-sender")
    assert flag["evidence"]["bounces"] == 61
    assert current.now_evidence(s.conn, flag, rules) is None
    s.close()
