"""`bounces queue`: qshape of a real Postfix queue holding deferred mail, and its arithmetic."""

from __future__ import annotations

import json
import subprocess
import tempfile

from bounce_handler.classify import classify
from bounce_handler.reports import qshape

YAHOO_TEXT = ("421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to "
              "unexpected volume or user complaints - 4.16.55.1")


def msg(queue_id, arrival, rcpts, sender="news@shop.example", queue="deferred"):
    return {"queue_name": queue, "queue_id": queue_id, "arrival_time": arrival,
            "message_size": 1000, "forced_expire": False, "sender": sender,
            "recipients": [{"address": a, "delay_reason": r} for a, r in rcpts]}


NOW = 1_800_000_000
YAHOO_REASON = ("host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages "
                "from 198.51.100.7 temporarily deferred due to unexpected volume or user "
                "complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes "
                "(in reply to MAIL FROM command)")
REFUSED = "connect to mx.example.net[192.0.2.9]:25: Connection refused"


def sample_queue():
    return [
        msg("A1", NOW - 60, [("a@yahoo.com", YAHOO_REASON), ("b@yahoo.com", YAHOO_REASON)]),
        msg("A2", NOW - 7 * 60, [("c@yahoo.com", YAHOO_REASON.replace("198.51.100.7",
                                                                       "198.51.100.8"))]),
        msg("A3", NOW - 2 * 86400, [("d@example.net", REFUSED)], sender="<>"),
        msg("A4", NOW - 30, [("e@example.net", None)], queue="active"),
    ]


def test_buckets_double_like_qshape():
    assert qshape.bucket_labels() == ["5", "10", "20", "40", "80", "160", "320", "640",
                                      "1280", "1280+"]


def test_shape_counts_recipients_by_domain_and_age():
    doc = qshape.shape(sample_queue(), NOW)
    assert doc["messages"] == 3  # the active message is not in the deferred queue
    rows = {r["domain"]: r for r in doc["domains"]}
    assert rows["yahoo.com"]["total"] == 3
    assert rows["yahoo.com"]["buckets"][:2] == [2, 1]  # 1 min old: <5; 7 min old: <10
    assert rows["example.net"]["buckets"][-1] == 1  # two days: older than 1280 minutes
    assert doc["total"] == {"total": 4, "buckets": [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]}
    assert [r["domain"] for r in doc["domains"]] == ["yahoo.com", "example.net"]


def test_reasons_are_classified_and_collapsed_to_one_signature():
    doc = qshape.shape(sample_queue(), NOW)
    top = doc["reasons"][0]
    # Two relay IPs in the text, one signature: the varying parts are starred out.
    assert top["count"] == 3 and top["domain"] == "yahoo.com"
    assert "[TSS04]" in top["signature"] and "198.51.100" not in top["signature"]
    assert "in reply to" not in top["signature"]
    status, reason, _ = classify(None, YAHOO_REASON.split("said: ", 1)[1], action="delayed",
                                 reply_code="421")
    assert (top["status"], top["reason"]) == (status, reason)
    refused = doc["reasons"][1]
    assert refused["reason"] == classify(None, REFUSED, action="delayed")[1]
    assert "192.0.2.9" not in refused["signature"]


def test_sender_grouping_and_other_queues():
    doc = qshape.shape(sample_queue(), NOW, by="sender")
    assert {r["domain"]: r["total"] for r in doc["domains"]} == {"shop.example": 3,
                                                                 "MAILER-DAEMON": 1}
    doc = qshape.shape(sample_queue(), NOW, queue="all")
    assert doc["messages"] == 4 and doc["total"]["total"] == 5


def test_throttled_flags_stand_beside_the_queue(populated, tmp_path):
    f = tmp_path / "q.json"
    f.write_text("\n".join(json.dumps(m) for m in sample_queue()) + "\n")
    doc = json.loads(populated.bounces("queue", "--input", str(f), "--format", "json").stdout)
    assert [(x["subject"], x["rule"]) for x in doc["throttled_flags"]] == [("yahoo", "R8")]
    table = populated.bounces("queue", "--input", str(f)).stdout.decode()
    assert "Throttled-destination flags" in table and "yahoo [open] rule R8" in table


def test_cli_reads_saved_postqueue_output(store, tmp_path):
    f = tmp_path / "q.json"
    f.write_text("\n".join(json.dumps(m) for m in sample_queue()) + "\n")
    proc = store.bounces("queue", "--input", str(f), "--format", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["total"]["total"] == 4 and doc["domains"][0]["domain"] == "yahoo.com"
    table = store.bounces("queue", "--input", str(f)).stdout.decode()
    assert "TOTAL" in table and "yahoo.com" in table and "×3" in table
    bad = tmp_path / "bad.json"
    bad.write_text("{not json\n")
    proc = store.bounces("queue", "--input", str(bad))
    assert proc.returncode == 1 and "line 1" in proc.stderr.decode()


def test_real_postfix_queue_with_deferred_mail(store, tmp_path):
    from tests.support import postfix
    from tests.support.services import require

    why = postfix.unavailable_reason()
    if why:
        require("postfix", why)
    base = tempfile.mkdtemp(prefix="bh-queue-", dir="/tmp")  # Postfix's users traverse it
    transport = f"{base}/transport-yahoo"
    with open(transport, "w") as fp:
        # retry(8) defers with the text given here: a Yahoo-style throttling answer.
        fp.write(f"yahoo.test\tretry:4.7.0 {YAHOO_TEXT}\n"
                 f"{postfix.DEFER_DOMAIN}\tretry:4.4.1 deferred by the test relay\n")
    # Long backoff: the instance's usual 1-2 s retries move messages between the deferred
    # and active queues while the test reads them (the table below once saw one of four).
    inst = postfix.PostfixInstance(base, name="queue", extra_main={
        "transport_maps": f"texthash:{transport}",
        "queue_run_delay": "1h", "minimal_backoff_time": "1h", "maximal_backoff_time": "1h",
    })
    try:
        try:
            inst.start()
        except postfix.PostfixError as e:
            require("postfix", f"private instance does not start: {e}")
        for rcpts in (["a@yahoo.test", "b@yahoo.test"], ["c@yahoo.test"],
                      [f"d@{postfix.DEFER_DOMAIN}"]):
            # Through sendmail/pickup: smtpd would refuse a retry: destination at RCPT.
            subprocess.run(["/usr/sbin/sendmail", "-C", inst.config_dir, "-f",
                            "news@shop.example", "-i", "--", *rcpts],
                           input=b"Subject: queued\n\nhello\n", check=True, timeout=60)

        def deferred():
            q = [m for m in inst.queue_json() if m["queue_name"] == "deferred"]
            n = sum(1 for m in q for r in m["recipients"] if r.get("delay_reason"))
            return q if n == 4 else None

        inst.wait_for(deferred, timeout=60, what="four deferred recipients")
        proc = store.bounces("queue", "-c", inst.config_dir, "--format", "json")
        assert proc.returncode == 0, proc.stderr.decode()
        doc = json.loads(proc.stdout)
        rows = {r["domain"]: r for r in doc["domains"]}
        assert rows["yahoo.test"]["total"] == 3 and rows[postfix.DEFER_DOMAIN]["total"] == 1
        assert rows["yahoo.test"]["buckets"][0] == 3  # just queued: the first age bucket
        top = doc["reasons"][0]
        assert top["domain"] == "yahoo.test" and top["count"] == 3
        assert "[TSS04]" in top["signature"] and "192.0.2.1" not in top["signature"]
        assert top["reason"] == classify(None, YAHOO_TEXT, action="delayed",
                                         reply_code="421")[1]
        table = store.bounces("queue", "-c", inst.config_dir).stdout.decode()
        assert "yahoo.test" in table and "Deferral reasons" in table
    finally:
        inst.destroy()


# --- --feed: the live queue recorded for rule R8 (livequeue.py) ------------------------------

def test_feed_reads_the_live_queue_only_and_says_why_it_cannot(store, tmp_path):
    f = tmp_path / "q.json"
    f.write_text("\n".join(json.dumps(m) for m in sample_queue()) + "\n")
    proc = store.bounces("queue", "--feed", "--input", str(f))
    assert proc.returncode == 64 and "live queue" in proc.stderr.decode()
    # postqueue cannot run (no such instance): 69, one line, nothing recorded.
    proc = store.bounces("queue", "--feed", "--quiet", "-c", str(tmp_path / "nowhere"))
    assert proc.returncode == 69, proc.stderr.decode()
    assert proc.stderr.decode().startswith("bounces: ") and proc.stdout == b""
    assert store.query("SELECT count(*) FROM messages") == [(0,)]


def test_scan_interval_is_zero_or_at_least_a_second(store):
    from bounce_handler import settings
    from bounce_handler.cli.daemon import services_for

    store.write_config("[queue]\nscan_interval = 0.5\n")
    proc = store.bounces("config", "check")
    assert proc.returncode == 78 and "scan_interval" in proc.stderr.decode()
    proc = store.bounces("daemon", "--queue-scan", "0.2")
    assert proc.returncode == 2 and "0 (off)" in proc.stderr.decode()
    on = settings.from_dict({"database": {"url": store.url}, "queue": {"scan_interval": 60}})
    assert [s.name for s in services_for(on, socketmap="", lmtp="")] == ["queue-scan"]
    assert services_for(on, socketmap="", lmtp="", queue_scan=0) == []
    off = settings.from_dict({"database": {"url": store.url}})
    assert services_for(off, socketmap="", lmtp="") == []
