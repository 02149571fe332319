"""`bounces alert`: new flags reported once and only once, by every channel; exit codes.

Channels are exercised with real processes: sendmail is a script that records its argv
and stdin (the unit level), or Postfix's own /usr/sbin/sendmail submitting into a private
Postfix instance (tests/support/postfix.py) when that can run here; the webhook is a real
HTTP server on loopback.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.cli.conftest import DEAD, SPAMMER, feed, user_unknown
from tests.conftest import script

FAKE_SENDMAIL = """#!/bin/sh
# Records one submission per file: argv on the first line, the message after it.
n=$(date +%s%N)
out="{dir}/mail.$n.$$"
printf '%s\\n' "$*" > "$out.tmp"
cat >> "$out.tmp"
mv "$out.tmp" "$out"
exit {status}
"""


def fake_sendmail(tmp_path, status: int = 0):
    box = tmp_path / "outbox"
    box.mkdir(exist_ok=True)
    path = tmp_path / f"sendmail-{status}"
    path.write_text(FAKE_SENDMAIL.format(dir=box, status=status))
    path.chmod(0o755)
    return path, box


def sent(box) -> list[tuple[str, email.message.Message]]:
    out = []
    for f in sorted(box.glob("mail.*")):
        if f.name.endswith(".tmp"):
            continue
        argv, _, msg = f.read_bytes().partition(b"\n")
        out.append((argv.decode(), email.message_from_bytes(msg)))
    return out


def configure(store, sendmail, extra: str = "") -> None:
    from tests.cli.conftest import RULES

    store.write_config(
        RULES + f'[alert]\nsendmail = "{sendmail}"\nto = "postmaster@ops.example"\n' + extra
    )


def test_sendmail_alert_goes_once_and_only_once(populated, tmp_path):
    binary, box = fake_sendmail(tmp_path)
    configure(populated, binary)
    first = populated.bounces("alert")
    assert first.returncode == 2, first.stderr.decode()  # new flags alerted
    assert "alerted 8 new flag(s) via sendmail:postmaster@ops.example" in first.stdout.decode()
    mails = sent(box)
    assert len(mails) == 1
    argv, msg = mails[0]
    assert argv == "-i -- postmaster@ops.example"
    assert msg["To"] == "postmaster@ops.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    # Short enough never to be folded; the count of each kind, the most urgent first.
    assert msg["Subject"] == "[bounce-handler] test-relay: 1 compromised, 1 throttled, 6 dead"
    body = msg.get_payload(decode=True).decode()
    assert f"compromised-sender: {SPAMMER}" in body and "rule R3" in body
    assert all(f"dead-recipient: {a}" in body for a in DEAD)
    assert "bounces flags ack 6" in body

    second = populated.bounces("alert")
    assert second.returncode == 1  # still open, already alerted
    assert "nothing new" in second.stdout.decode()
    assert len(sent(box)) == 1

    # A new flag: the next run reports it, and only it.
    feed(populated, user_unknown("fresh@example.net"), "fresh@example.net")
    third = populated.bounces("alert")
    assert third.returncode == 2
    mails = sent(box)
    assert len(mails) == 2
    body = mails[1][1].get_payload(decode=True).decode()
    assert "dead-recipient: fresh@example.net" in body
    assert DEAD[0] not in body
    assert "1 new flag " in mails[1][1]["Subject"]


def test_failed_delivery_keeps_the_flags_pending(populated, tmp_path):
    (tmp_path / "broken").mkdir()
    broken, _ = fake_sendmail(tmp_path / "broken", status=75)
    configure(populated, broken)
    proc = populated.bounces("alert")
    assert proc.returncode == 75
    assert "exited 75" in proc.stderr.decode()
    working, box = fake_sendmail(tmp_path)
    configure(populated, working)
    assert populated.bounces("alert").returncode == 2
    assert len(sent(box)) == 1  # nothing was lost to the failure
    missing = populated.bounces("alert", "--to", "other@ops.example")
    assert missing.returncode == 2  # another channel has its own place


def test_concurrent_runs_never_double_alert(populated, tmp_path):
    binary, box = fake_sendmail(tmp_path)
    configure(populated, binary)
    procs = [
        subprocess.Popen([script("bounces"), "alert", "--quiet"], env=populated.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes == [1, 1, 1, 2], [p.stderr.read() for p in procs]
    assert len(sent(box)) == 1


def test_stdout_channel_and_dry_run(populated):
    dry = populated.bounces("alert", "--via", "stdout", "--dry-run")
    assert dry.returncode == 2 and "Would send to stdout" in dry.stdout.decode()
    proc = populated.bounces("alert", "--via", "stdout")
    assert proc.returncode == 2
    out = proc.stdout.decode()
    assert out.startswith("Subject: [bounce-handler] test-relay: 1 compromised, 1 throttled, "
                          "6 dead\n\nbounce-handler on test-relay raised 8 flags")
    assert "Live flags now: compromised-sender: 1 open, 0 acked" in out
    again = populated.bounces("alert", "--via", "stdout")
    assert again.returncode == 1 and again.stdout == b""


def test_nothing_open_exits_0(store):
    proc = store.bounces("alert", "--via", "stdout")
    assert proc.returncode == 0 and proc.stdout == b""


def test_acked_flags_are_not_open(populated):
    populated.bounces("alert", "--via", "stdout")
    for fid in range(1, 9):
        populated.bounces("flags", "ack", str(fid))
    # Acked flags are being handled: nothing is open any more.
    assert populated.bounces("alert", "--via", "stdout").returncode == 0


class _Sink(BaseHTTPRequestHandler):
    posts: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((self.path, self.headers["Content-Type"], body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_sink():
    _Sink.posts = []
    _Sink.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server, _Sink
    server.shutdown()


def test_webhook_channel(populated, webhook_sink):
    server, sink = webhook_sink
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/bounces"
    from tests.cli.conftest import RULES

    populated.write_config(RULES + f'[alert]\nwebhook_url = "{url}"\n')
    sink.status = 500
    assert populated.bounces("alert", "--via", "webhook").returncode == 75
    sink.status = 204
    proc = populated.bounces("alert", "--via", "webhook")
    assert proc.returncode == 2, proc.stderr.decode()
    assert len(sink.posts) == 2
    path, ctype, body = sink.posts[-1]
    assert path == "/hooks/bounces" and ctype == "application/json"
    doc = json.loads(body)
    assert len(doc["flags"]) == 8 and "raised 8 flags since the last alert" in doc["text"]
    assert [f["kind"] for f in doc["flags"]][:2] == ["compromised-sender",
                                                    "throttled-destination"]
    assert populated.bounces("alert", "--via", "webhook").returncode == 1
    assert len(sink.posts) == 2


def test_metrics_textfile(populated, tmp_path):
    prom = tmp_path / "bounces.prom"
    proc = populated.bounces("alert", "--via", "stdout", "--metrics", str(prom))
    assert proc.returncode == 2
    lines = prom.read_text().splitlines()
    values = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
              for ln in lines if ln and not ln.startswith("#")}
    assert values['bounce_handler_flags{kind="dead-recipient",state="open"}'] == len(DEAD)
    assert values['bounce_handler_flags{kind="compromised-sender",state="open"}'] == 1
    assert values['bounce_handler_events_24h{kind="bounce",reason="userunknown"}'] == len(DEAD)
    assert values['bounce_handler_events_24h{kind="delay",reason="ratelimited"}'] == 2
    assert values["bounce_handler_quarantined_24h"] == 1
    assert abs(values["bounce_handler_metrics_generated_seconds"] - time.time()) < 120
    assert "# TYPE bounce_handler_flags gauge" in lines
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- the real Postfix sendmail -------------------------------------------------------------

def test_alert_through_real_postfix_sendmail(populated, tmp_path):
    from tests.support import postfix
    from tests.support.services import require

    why = postfix.unavailable_reason()
    if why or not os.path.exists("/usr/sbin/sendmail"):
        require("postfix", why or "/usr/sbin/sendmail missing")
    import tempfile

    # Postfix's own users must traverse to the queue: not under pytest's 0700 tmp dirs.
    inst = postfix.PostfixInstance(tempfile.mkdtemp(prefix="bh-alert-", dir="/tmp"),
                                   name="alerts")
    try:
        inst.start()
    except postfix.PostfixError as e:
        require("postfix", f"private instance does not start: {e}")
    try:
        configure(populated, "/usr/sbin/sendmail")
        env = populated.env()
        # Postfix's sendmail submits to the instance named by MAIL_CONFIG (sendmail(1)).
        env["MAIL_CONFIG"] = inst.config_dir
        run = lambda: subprocess.run([script("bounces"), "alert"], env=env,  # noqa: E731
                                     capture_output=True, timeout=120)
        first = run()
        assert first.returncode == 2, first.stderr.decode()
        second = run()
        assert second.returncode == 1, second.stderr.decode()

        def submitted():
            log = inst.log_text()
            return [ln for ln in log.splitlines()
                    if "to=<postmaster@ops.example>" in ln and "status=" in ln]

        lines = inst.wait_for(submitted, timeout=60, what="the alert in the maillog")
        time.sleep(2)  # a second submission, were there one, would be logged by now
        lines = submitted()
        assert len(lines) == 1, lines
        assert "uid=" in inst.log_text() or "from=<" in inst.log_text()
    finally:
        inst.destroy()
