"""Throttling seen within minutes: rule R8 from Postfix's live queue (issue 13, item 7).

A private Postfix relays to fake receiving servers that refuse every attempt the way the
big providers throttle (tests/support/throttle_mx.py): Yahoo's ``421 4.7.0 [TSS04] ...
temporarily deferred due to unexpected volume`` in reply to MAIL FROM, Gmail's ``450
4.7.28 ... unusual rate of unsolicited mail`` in reply to RCPT TO.  The messages stay in
the deferred queue; with ``delay_warning_time = 4h`` Postfix writes nothing about them
for hours, so before this change R8 fired only when those notices came.  Now `bounces
daemon` (every ``[queue] scan_interval``) and `bounces queue --feed` read ``postqueue -j``
and record each deferred recipient once; the notices and final DSNs that follow for the
same recipients of the same messages count no second time.

Each test has a control domain, slow.test, with one deferral fewer than
``min_deferrals``: counted twice (a second scan, the delay notice, the final DSN, the
postmaster copy) it would be flagged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e.helpers import sqlite_query
from tests.support import postfix as pf
from tests.support.throttle_mx import ThrottlingMX

pytestmark = pytest.mark.postfix

MACRO = ["--client-address", "${client_address}", "--client-protocol", "${client_protocol}"]
SCAN = 2.0  # the daemon's [queue] scan_interval in these tests, seconds
RULES = """
[rules.throttled_destination]
min_deferrals = 3
providers = { yahoo = ["yahoo.test"], google = ["gmail.test"] }
"""
YAHOO = [f"u{i}@yahoo.test" for i in range(3)]
GMAIL = [f"g{i}@gmail.test" for i in range(3)]
SLOW = [f"s{i}@slow.test" for i in range(2)]  # the control: one under min_deferrals


@pytest.fixture
def throttled(make_relay, tmp_path_factory):
    """make(delay_warning_time) -> a relay routing yahoo.test and slow.test to a Yahoo-like
    throttler and gmail.test to a Gmail-like one, its store, and [queue] reading it."""
    made = []

    def make(delay_warning_time: str, name: str):
        yahoo, gmail = ThrottlingMX("yahoo").start(), ThrottlingMX("gmail").start()
        made.extend((yahoo, gmail))
        d = tmp_path_factory.mktemp("transport")
        os.chmod(d, 0o755)
        path = d / "throttled"
        path.write_text(f"yahoo.test {yahoo.nexthop}\nslow.test {yahoo.nexthop}\n"
                        f"gmail.test {gmail.nexthop}\n")
        path.chmod(0o644)
        os.chmod(d.parent, 0o755)
        relay = make_relay(
            name=name,
            pipe_args=MACRO,
            config_extra=RULES,
            extra_main={
                "transport_maps": f"texthash:{path}, texthash:$config_directory/transport",
                "delay_warning_time": delay_warning_time,
            },
        )
        with open(relay.config, "a") as fp:
            fp.write(f'[queue]\nscan_interval = {SCAN}\n'
                     f'postfix_config = "{relay.postfix.config_dir}"\n')
        return relay, yahoo, gmail

    yield make
    for mx in made:
        mx.stop()


def send_all(relay, recipients) -> None:
    for rcpt in recipients:
        local, _, domain = rcpt.partition("@")
        # An XVERP return path: the final DSN reaches the pipe too, beside the copy.
        relay.postfix.submit(f"bounces+{local}={domain}@{pf.BOUNCE_DOMAIN}", rcpt,
                             f"From: news@shop.example\nTo: {rcpt}\nSubject: offer\n\nhi\n")


def deferred_by_throttling(relay, n: int) -> None:
    def ready():
        q = relay.postfix.queue_json()
        reasons = [r.get("delay_reason") or "" for m in q for r in m["recipients"]]
        if sum(1 for r in reasons if "TSS04" in r or "4.7.28" in r) >= n:
            return True
        relay.postfix.flush()
        return False

    relay.postfix.wait_for(ready, timeout=90, what=f"{n} throttled recipients queued",
                           interval=0.5)


def rows(relay, sql: str, params: tuple = ()) -> list[tuple]:
    return sqlite_query(relay.db_path, sql, params)


def flags(relay) -> dict:
    out = {}
    for subject, rule, evidence, verified, raised_at in rows(
            relay, "SELECT subject, rule, evidence, verified, raised_at FROM flags "
                   "WHERE kind = 'throttled-destination'"):
        out[subject] = {"rule": rule, "evidence": json.loads(evidence), "verified": verified,
                        "raised_at": raised_at}
    return out


def bounces(relay, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(relay.bin_dir, "bounces"), "--config", relay.config, *args],
        capture_output=True, text=True, timeout=120,
    )


def utc_seconds(text: str) -> float:
    from bounce_handler.judge.utc import micros

    return micros(text) / 1e6


def queue_rows(relay) -> dict:
    """recipient -> (id, failure_key) of the live queue's rows; one row per recipient."""
    found = rows(relay, "SELECT id, recipient, failure_key FROM bounce_events "
                        "WHERE origin = 'queue'")
    out = {r: (i, k) for i, r, k in found}
    assert len(out) == len(found), found  # never two rows for one recipient's deferral
    return out


def test_r8_from_the_live_queue_within_the_scan_interval_before_any_notice(throttled):
    relay, yahoo, gmail = throttled("4h", "throttle")  # the shipped delay_warning_time
    send_all(relay, YAHOO + GMAIL + SLOW)
    deferred_by_throttling(relay, 8)
    assert yahoo.attempts >= 5 and gmail.attempts >= 3  # really refused, every message
    assert rows(relay, "SELECT count(*) FROM messages") == [(0,)]  # no notice: 4h away
    assert flags(relay) == {}

    daemon = subprocess.Popen(
        [os.path.join(relay.bin_dir, "bounces"), "--config", relay.config, "daemon",
         "--socketmap", "", "--log-level", "debug"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    started = time.time()
    try:
        relay.postfix.wait_for(lambda: {"yahoo", "google"} <= set(flags(relay)), timeout=60,
                               what="R8 flags from the live queue", interval=0.2)
        live = flags(relay)
        for subject in ("yahoo", "google"):
            raised = utc_seconds(live[subject]["raised_at"])
            # The daemon reads at once, then every SCAN seconds; a generous guard for the
            # interpreter's start on a loaded machine, not a benchmark.
            assert raised - started < SCAN + 30, (subject, raised - started)
            ev = live[subject]["evidence"]
            assert (live[subject]["rule"], ev["deferrals"], ev["live_queue"]) == ("R8", 3, 3)
            assert live[subject]["verified"] == 1  # the relay's own state: verified evidence
        assert "[TSS04]" in live["yahoo"]["evidence"]["diagnostic"]
        assert "4.7.28" in live["google"]["evidence"]["diagnostic"]
        # The daemon keeps reading (many scans): each recipient stays one row.
        time.sleep(3 * SCAN)
    finally:
        daemon.send_signal(signal.SIGTERM)
        log = daemon.communicate(timeout=60)[0]
    assert log.count("live queue: ") >= 3, log
    queued = queue_rows(relay)
    assert sorted(queued) == sorted(YAHOO + GMAIL + SLOW)
    assert rows(relay, "SELECT count(*) FROM messages WHERE source = 'pipe'") == [(0,)]

    # Scanning again, twice, by hand (the cron job): nothing new.
    for _ in range(2):
        proc = bounces(relay, "queue", "--feed", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        feed = json.loads(proc.stdout)["feed"]
        assert (feed["deferred"], feed["recorded"], feed["known"]) == (8, 0, 8), feed
    assert bounces(relay, "queue", "--feed", "--quiet").stdout == ""
    assert queue_rows(relay) == queued
    assert set(flags(relay)) == {"yahoo", "google"}  # slow.test: 2 deferrals, counted once

    # Only R8 hears of it: no dead recipient, no compromised sender.
    assert rows(relay, "SELECT kind FROM flags WHERE kind != 'throttled-destination'") == []

    # The messages expire: Postfix writes the final DSN (to the XVERP return path) and the
    # postmaster copy of each.  They are bounces, recorded as such, but no second R8 count.
    p = relay.postfix
    p.extra_main.update(maximal_queue_lifetime="1s", bounce_queue_lifetime="1s")
    p.write_config()
    p.reload()
    p.wait_queue_empty(timeout=90)
    p.wait_for(lambda: rows(relay, "SELECT count(*) FROM bounce_events WHERE kind = 'bounce'")
               == [(16,)], timeout=90, what="16 final notices piped")
    finals = rows(relay, "SELECT recipient, origin, queued_of, duplicate_of, diagnostic "
                         "FROM bounce_events WHERE kind = 'bounce'")
    for recipient, origin, queued_of, _dup, diagnostic in finals:
        assert origin == "local"
        assert "TSS04" in diagnostic or "4.7.28" in diagnostic  # what R8 would count
        assert queued_of == queued[recipient][0], (recipient, queued_of)
    assert sum(1 for f in finals if f[3] is None) == 8  # DSN and copy: one failure each
    assert set(flags(relay)) == {"yahoo", "google"}, flags(relay)

    # A recompute replays the same history the same way.
    proc = bounces(relay, "flags", "recompute")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert set(flags(relay)) == {"yahoo", "google"}
    # Reports: 8 delays (seen in the queue) and 8 bounces, each failure once.
    report = json.loads(bounces(relay, "report", "--since", "1d", "--format", "json").stdout)
    assert (report["totals"]["delay"]["total"], report["totals"]["bounce"]["total"]) == (8, 8)


def test_delay_notices_that_follow_the_queue_count_no_second_time(throttled):
    relay, _, _ = throttled("60s", "warned")
    send_all(relay, YAHOO + SLOW)
    deferred_by_throttling(relay, 5)
    proc = bounces(relay, "queue", "--feed")
    assert proc.returncode == 0, proc.stderr
    assert "5 recorded now" in proc.stdout and "raised throttled-destination yahoo" in proc.stdout
    assert rows(relay, "SELECT count(*) FROM messages WHERE source = 'pipe'") == [(0,)]
    queued = queue_rows(relay)
    assert set(flags(relay)) == {"yahoo"}

    # delay_warning_time passes: Postfix writes the delay notice (to the XVERP return
    # path) and its postmaster copy for each message.  Same failure identity as the queue
    # row: linked to it, counted nowhere again.
    relay.postfix.wait_for(
        lambda: rows(relay, "SELECT count(*) FROM bounce_events WHERE origin = 'local'")
        == [(10,)], timeout=150, what="10 delay notices piped", interval=0.5)
    notices = rows(relay, "SELECT recipient, kind, failure_key, duplicate_of FROM bounce_events"
                          " WHERE origin = 'local'")
    for recipient, kind, key, duplicate_of in notices:
        assert kind == "delay"
        assert (duplicate_of, key) == queued[recipient], recipient
    assert set(flags(relay)) == {"yahoo"}, flags(relay)  # slow.test: still 2, not 6
    report = json.loads(bounces(relay, "report", "--since", "1d", "--format", "json").stdout)
    assert report["totals"]["delay"]["total"] == 5  # one per deferred recipient
    # A later reading finds them all known (the notice came after, not instead).
    proc = bounces(relay, "queue", "--feed", "--format", "json")
    assert json.loads(proc.stdout)["feed"]["recorded"] == 0


def test_the_daemon_says_when_it_cannot_read_the_queue_and_when_it_can_again(
        make_relay, caplog):
    """Nothing goes silent: R8 then waits for the notices, and the log says so, once."""
    import logging

    from bounce_handler import settings
    from bounce_handler.daemon.queuescan import QueueScanService

    relay = make_relay(name="scanlog")
    cfg = settings.load(relay.config)
    svc = QueueScanService(cfg, 60)
    svc.config_dir = os.path.join(relay.base, "no-such-instance")
    with caplog.at_level(logging.INFO, logger="bounce_handler.daemon.queuescan"):
        svc._one()
        svc._one()
        failing = [r for r in caplog.records if "live queue not read" in r.getMessage()]
        assert len(failing) == 1 and failing[0].levelno == logging.WARNING
        assert "R8 waits" in failing[0].getMessage()
        assert svc.failure and svc.readings == 0
        svc.config_dir = relay.postfix.config_dir  # the real instance, empty queue
        svc._one()
    assert svc.failure is None and svc.readings == 1
    assert any("readable again" in r.getMessage() for r in caplog.records)
