"""`bounces doctor` as the administrator's safety net (issue 16): each gap, on a live relay.

Every test starts from a relay doctor passes on (a private Postfix, running, wired to the
real bounce-handler; tests/support/postfix.py), plants one mistake that loses or
defers bounces, and checks that

  1. doctor exits 1 and names it;
  2. the fix it prints, run literally as printed (every command line, then the `then:`
     reload), makes doctor pass again -- and, where the mistake can be shown with a real
     bounce, the bounce is refused/deferred/lost before and recorded after.

Each of these passed ("no problems found") on the code before issue 16.
"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import tempfile
import time

import pytest

from bounce_handler import settings as settings_mod
from tests.conftest import script
from tests.e2e.dsn import dsn, xverp_token
from tests.e2e.helpers import sqlite_query
from tests.support import postfix as pfmod

pytestmark = pytest.mark.postfix


def printed_commands(out: str) -> list[str]:
    """Every line doctor printed under a `fix:` of a finding that is not ok, then `then:`."""
    cmds = []
    for line in out.splitlines():
        if line.startswith(" " * 9 + "fix: ") or line.startswith(" " * 14):
            cmds.append(line[14:])
        elif line.startswith("then:    "):
            cmds.append(line[9:])
    return cmds


def send_as_remote(pf, to: str, data: bytes) -> None:
    """Submit as a host of the internet would: XCLIENT (RFC-less, Postfix's own) makes
    smtpd treat the session as coming from 192.0.2.1, outside mynetworks, so relay
    restrictions apply as to a remote MTA."""
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as smtp:
        smtp.ehlo("test.local")
        code, msg = smtp.docmd("XCLIENT", "ADDR=192.0.2.1 NAME=mx.remote.example")
        assert code == 220, msg
        smtp.ehlo("mx.remote.example")
        refused = smtp.sendmail("", [to], data)
    assert not refused


def sh(command: str) -> None:
    proc = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode}: {proc.stderr}"


# The end of deploy/postfix/master.cf's argv.
SHIPPED_MACROS = ["--client-address", "${client_address}", "--", "${extension}"]


class Live:
    """A relay doctor passes on: Postfix running, caches written."""

    def __init__(self, pipe_bin: str, template: str | None, **kw) -> None:
        self.base = tempfile.mkdtemp(prefix="bh-doctor-", dir="/tmp")
        if template is not None:
            kw.setdefault("sqlite_template", template)
        kw.setdefault("handler_macros", SHIPPED_MACROS)
        self.relay = pfmod.Relay(self.base, pipe_bin, **kw)
        self.pf = self.relay.postfix
        self.config = self.relay.config

    def start(self, wrap=None) -> Live:
        """Start Postfix (through `wrap`, e.g. without /dev/log), write the caches."""
        if wrap is None:
            self.relay.start()
        else:
            self.pf.write_config()
            proc = subprocess.run(wrap([pfmod.POSTFIX, "-c", self.pf.config_dir, "start"]),
                                  capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            self.pf.wait_for(self.pf._smtp_ready, what="smtpd")
        self.config_check()
        return self

    def handler_as_pipe_user(self, extension: str, data: bytes):
        """Run the pipe's argv as the pipe user, as pipe(8) does (but without Postfix)."""
        argv = [*self.pf.handler_argv, "--", extension]
        return subprocess.run(["runuser", "-u", pfmod.PIPE_USER, "--", *argv], input=data,
                              capture_output=True, timeout=120, cwd="/")

    def config_check(self) -> None:
        proc = subprocess.run(
            [script("bounces"), "--config", self.config, "config", "check"],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr

    def doctor(self, *extra: str, wrap=None) -> tuple[int, str]:
        argv = [script("bounces"), "--config", self.config, "doctor", "-c", self.pf.config_dir,
                *extra]
        proc = subprocess.run(
            (wrap or list)(argv), capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, proc.stdout + proc.stderr

    def doctor_json(self, wrap=None) -> dict:
        code, out = self.doctor("--format", "json", wrap=wrap)
        report = json.loads(out)
        assert report["exit"] == code
        return report

    def fails_then_fixed(self, needle: str, wrap=None) -> tuple[str, dict]:
        """doctor fails naming `needle`; run its printed fix; doctor passes. (text, json)."""
        code, out = self.doctor(wrap=wrap)
        assert code == 1, out
        assert any(needle in ln for ln in out.splitlines() if ln.startswith("PROBLEM")), out
        report = self.doctor_json(wrap=wrap)
        # What is printed under fix: is each finding's sentence (if any), then its
        # commands; the JSON tells which lines are sentences.  The rest, in order, are the
        # commands, and the reload last.
        fixes = [f for f in report["findings"] if f["status"] != "ok"]
        printed = printed_commands(out)
        assert printed == [
            line for f in fixes for line in ([f["fix"]] if f["fix"] else []) + f["commands"]
        ] + ([report["reload"]] if report["reload"] else []), out
        sentences = {f["fix"] for f in fixes if f["fix"]}
        commands = [line for line in printed if line not in sentences]
        assert commands, out
        for command in commands:
            sh(command)
        code, after = self.doctor(wrap=wrap)
        assert code == 0, f"{out}\n--- after the printed fixes ---\n{after}"
        assert "PROBLEM" not in after
        return out, report

    def rows(self, sql: str) -> list[tuple]:
        return sqlite_query(self.relay.db_path, sql)

    def destroy(self) -> None:
        self.relay.destroy()


@pytest.fixture
def live(pipe_bin, _migrated_template):
    made = []

    def factory(wrap=None, config_edit=None, **kw) -> Live:
        lv = Live(pipe_bin, str(_migrated_template), **kw)
        made.append(lv)
        if config_edit:
            with open(lv.config) as fp:
                text = config_edit(fp.read())
            with open(lv.config, "w") as fp:
                fp.write(text)
        return lv.start(wrap)

    yield factory
    for lv in made:
        lv.destroy()


def test_a_correct_relay_passes_with_nothing_to_fix(live):
    lv = live()
    code, out = lv.doctor()
    assert code == 0, out
    assert "warning" not in out and "PROBLEM" not in out
    assert "relay.test is a relay domain" in out
    assert "no bounce deferred or on hold in Postfix's queue" in out  # Postfix is running
    report = lv.doctor_json()
    assert report["status"] == "ok" and report["problems"] == 0 and report["reload"] is None
    assert report["intakes"] == [
        {"kind": "pipe", "address": "bounces@relay.test", "service": "verpbounce",
         "route": "verpbounce:", "routed": True, "config": lv.config, "user": "nobody",
         "store": "sqlite"}
    ]
    checks = {f["check"] for f in report["findings"]}
    assert {"routing.transport", "routing.argv", "accept.domain", "access.key-file",
            "store.schema", "log.target", "backlog.queue"} <= checks
    for f in report["findings"]:
        assert set(f) == {"check", "status", "subject", "what", "fix", "commands", "reload"}


def test_bounce_domain_not_accepted_relay_access_denied(live):
    lv = live(extra_main={"smtpd_authorized_xclient_hosts": "127.0.0.0/8"})
    lv.pf.postconf("-e", f"relay_domains = {pfmod.DEFER_DOMAIN}")
    lv.pf.reload()
    rcpt = "alice@example.net"
    to = lv.pf.verp_address(xverp_token(rcpt))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send_as_remote(lv.pf, to, dsn(rcpt, bounce_to=to))
    assert "Relay access denied" in str(refused.value)

    out, _ = lv.fails_then_fixed("Relay access denied")
    assert f"relay_domains = {pfmod.DEFER_DOMAIN}, relay.test" in out

    send_as_remote(lv.pf, to, dsn(rcpt, bounce_to=to))  # accepted now, and recorded
    lv.pf.wait_for(lambda: lv.rows("SELECT recipient FROM bounce_events"), what="the bounce row")
    assert lv.rows("SELECT recipient FROM bounce_events") == [(rcpt,)]


def test_bounce_address_not_a_valid_relay_recipient(live):
    lv = live()
    with open(os.path.join(lv.pf.config_dir, "relay_recipients"), "w") as fp:
        fp.write(f"@{pfmod.DEFER_DOMAIN}\tOK\n")
    lv.pf.reload()
    lv.fails_then_fixed("is not in relay_recipient_maps")


def test_null_sender_refused_by_a_sender_access_table(live):
    lv = live()
    table = os.path.join(lv.pf.config_dir, "sender_access")
    with open(table, "w") as fp:
        fp.write("<>\tREJECT no bounces here\n")
    lv.pf.postconf("-e", f"smtpd_sender_restrictions = check_sender_access texthash:{table}")
    lv.pf.reload()
    lv.fails_then_fixed("answers 'REJECT no bounces here' for <>")


def test_key_file_unreadable_by_the_pipe_user(live):
    """`bounces verp keygen` without --group: root:root 0640; every signed bounce defers."""
    # Production-like retry times: the deferred bounce stays in the deferred queue (the
    # fixture's 1-2 s backoff would keep it moving between deferred and active).
    lv = live(extra_main={"minimal_backoff_time": "300s", "maximal_backoff_time": "600s",
                          "queue_run_delay": "300s"})
    key_file = settings_mod.load(lv.config).verp.key_file
    proc = subprocess.run([script("bounces"), "--config", lv.config, "verp", "keygen"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert os.stat(key_file).st_gid == 0
    from bounce_handler import verp

    rcpt = "bob@example.net"
    to = verp.encode(rcpt, "news@corp.example", settings_mod.load(lv.config), time.time())
    lv.pf.send("", to, dsn(rcpt, bounce_to=to))
    lv.pf.wait_for(lambda: "status=deferred" in lv.pf.log_text(), what="a deferred bounce")
    assert "permission denied for uid" in lv.pf.log_text()

    out, report = lv.fails_then_fixed("cannot read the VERP key file")
    assert f"chgrp nogroup {key_file} && chmod 0640 {key_file}" in out
    # The deferred bounce was reported too, with the reason and the flush that
    # fails_then_fixed ran: it is recorded, verified.
    deferred = [f for f in report["findings"] if f["check"] == "backlog.deferred"]
    assert deferred and "permission denied" in deferred[0]["what"]
    lv.pf.wait_for(lambda: lv.rows("SELECT verified FROM bounce_events"), what="the bounce row")
    assert lv.rows("SELECT recipient, verified FROM bounce_events") == [(rcpt, 1)]


def test_config_fix_covers_key_file_and_caches(live):
    """The old fix made the config readable and left verp.keys and the caches behind."""
    lv = live()
    subprocess.run([script("bounces"), "--config", lv.config, "verp", "keygen"], check=True,
                   capture_output=True, timeout=60)
    os.chown(lv.config, 0, 0)
    os.chmod(lv.config, 0o600)
    lv.config_check()  # caches written with the config's owner and mode: 0600 root
    code, out = lv.doctor()
    assert code == 1
    # Applying only the config's own fix (what doctor printed before) is not enough.
    sh(f"chgrp nogroup {lv.config} && chmod 0640 {lv.config}")
    code, partial = lv.doctor()
    assert code == 1, partial
    assert "cannot read the VERP key file" in partial
    assert "cannot read .config.toml.cache and .config.toml.patterns" in partial
    # Start again from the broken state and apply everything doctor prints.
    os.chmod(lv.config, 0o600)
    os.chown(lv.config, 0, 0)
    out, _ = lv.fails_then_fixed("cannot read the config")
    code, after = lv.doctor()
    assert "warning" not in after, after


def test_extension_without_double_dash(live):
    """`... ${extension}` with no `--` before it: doctor says so, and its fix applies.

    Before `--` was shipped an extension such as "--version" was read as an option (the
    handler printed its version, Postfix deleted the bounce).  The handler now takes the
    last argument of such an entry as the extension (pipe.py), so the bounce is kept; the
    entry still depends on that rule and on nothing after ${extension}, so doctor asks for
    the `--` that makes it explicit.
    """
    lv = live()
    lv.pf.handler_macros = ["${extension}"]
    lv.pf.write_config()
    lv.pf.reload()
    to = lv.pf.verp_address("--version")
    lv.pf.send("", to, dsn("carol@example.net", bounce_to=to))
    lv.pf.wait_for(lambda: lv.rows("SELECT count(*) FROM messages") == [(1,)],
                   what="the bounce recorded through the old entry")

    out, _ = lv.fails_then_fixed("without `--` before it")
    assert "postconf -c" in out and "-M 'verpbounce/unix=verpbounce unix" in out
    argv = lv.pf.postconf("-M", "verpbounce/unix").split()
    assert argv[-2:] == ["--", "${extension}"]

    lv.pf.send("", to, dsn("carol@example.net", bounce_to=to))
    lv.pf.wait_for(lambda: lv.rows("SELECT count(*) FROM messages") == [(2,)],
                   what="the bounce recorded through the fixed entry")
    assert lv.rows("SELECT DISTINCT extension FROM messages") == [("--version",)]


def test_no_client_address_is_a_warning_and_its_fix_applies(live):
    """An argv without --client-address ${client_address} (a master.cf from before it).

    Nothing is lost, so doctor still exits 0; but the relay's own notices can no longer be
    told from a stranger's and only count as claims, so doctor warns, and its printed
    commands put the macro before `--`.
    """
    lv = live(handler_macros=["--", "${extension}"])
    code, out = lv.doctor()
    assert code == 0, out
    [warning] = [ln for ln in out.splitlines() if ln.startswith("warning")]
    assert "no --client-address ${client_address}" in warning
    report = lv.doctor_json()
    [finding] = [f for f in report["findings"] if f["check"] == "routing.client-address"]
    assert finding["status"] == "warning" and finding["commands"], finding
    for command in [*finding["commands"], report["reload"]]:
        sh(command)
    code, after = lv.doctor()
    assert code == 0 and "warning" not in after, after
    argv = lv.pf.postconf("-M", "verpbounce/unix").split()
    assert argv[-4:] == SHIPPED_MACROS


# -- the PostgreSQL spool -------------------------------------------------------------------


def test_spool_fix_covers_tmp_new_and_bad(live, pg_db):
    """The spool tree owned by root (the daemon run by hand as root first, say).

    doctor's old fix (`install -d ... SPOOL`) fixed the top directory only and then
    passed while every bounce deferred: tmp/ and new/ stayed root's.
    """
    lv = live(url=pg_db, pg_mode="spool")
    spool = lv.relay.spool_dir
    for sub in ("", "tmp", "new", "bad"):
        os.chown(os.path.join(spool, sub), 0, 0)
        os.chmod(os.path.join(spool, sub), 0o755)
    rcpt = "dave@example.net"
    message = dsn(rcpt, bounce_to=lv.pf.verp_address(xverp_token(rcpt)))
    sh(f"install -d -m 0770 -o nobody -g nogroup {spool}")  # the old fix, alone
    assert lv.handler_as_pipe_user(xverp_token(rcpt), message).returncode == 75
    code, partial = lv.doctor()
    assert code == 1 and f"{spool}/tmp" in partial, partial

    out, _ = lv.fails_then_fixed("the pipe user cannot use the spool")
    assert f"install -d -m 0770 -o nobody -g nogroup {spool} {spool}/tmp {spool}/new " \
        f"{spool}/bad" in out
    proc = lv.handler_as_pipe_user(xverp_token(rcpt), message)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(os.listdir(os.path.join(spool, "new"))) == 1


def test_spool_backlog_without_a_drain(live, pg_db):
    """Bounces spooled while no `bounces daemon` drains: answered 0, waiting on disk."""
    lv = live(url=pg_db, pg_mode="spool")
    spool = lv.relay.spool_dir
    for i in range(3):
        rcpt = f"erin{i}@example.net"
        proc = lv.handler_as_pipe_user(
            xverp_token(rcpt), dsn(rcpt, bounce_to=lv.pf.verp_address(xverp_token(rcpt)))
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    code, out = lv.doctor()
    assert code == 0 and "spool " in out and ": 3 waiting" in out  # minutes old: fine
    old = time.time() - 3600
    for name in os.listdir(os.path.join(spool, "new")):
        os.utime(os.path.join(spool, "new", name), (old, old))
    lv.fails_then_fixed("3 bounces waiting in")
    assert os.listdir(os.path.join(spool, "new")) == []
    import psycopg

    with psycopg.connect(pg_db.replace("postgresql+psycopg", "postgresql")) as conn:
        assert conn.execute("SELECT count(*) FROM bounce_events").fetchone() == (3,)


# -- LMTP into the daemon ----------------------------------------------------------------


class Daemon:
    """The real `bounces daemon`, LMTP only, as systemd would run it."""

    def __init__(self, config: str, listen: str) -> None:
        self.config, self.listen = config, listen
        self.proc = None

    def start(self) -> Daemon:
        self.proc = subprocess.Popen(
            [script("bounces"), "--config", self.config, "daemon", "--socketmap", "",
             "--lmtp", self.listen],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        host, _, port = self.listen.partition(":")[2].rpartition(":")
        import socket

        def up():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                return False

        pfmod.wait_for(up, timeout=60, what="bounces daemon listening")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def route_to(lv: Live, value: str) -> None:
    with open(os.path.join(lv.pf.config_dir, "transport"), "w") as fp:
        fp.write(f"{lv.pf.bounce_address}\t{value}\n")
    past = time.time() - 60
    os.utime(os.path.join(lv.pf.config_dir, "transport"), (past, past))
    lv.pf.reload()


def test_lmtp_intake_passes_with_and_without_the_pipe_entry(live):
    port = pfmod.free_port()
    listen = f"inet:127.0.0.1:{port}"
    lv = live(config_extra=f'[daemon]\nlmtp_listen = "{listen}"\n')
    route_to(lv, f"lmtp:{listen}")  # deploy/spool-and-lmtp.md's transport entry
    daemon = Daemon(lv.config, listen).start()
    try:
        # The documented set-up keeps the pipe entry: not in use, not a problem.
        code, out = lv.doctor()
        assert code == 0, out
        assert "verpbounce is not in use: bounces@relay.test goes over LMTP" in out
        assert f"`bounces daemon` answers LMTP on inet:127.0.0.1:{port}" in out
        report = lv.doctor_json()
        assert [(i["kind"], i["route"], i["store"]) for i in report["intakes"]] == [
            ("lmtp", f"lmtp:{listen}", "sqlite")
        ]
        rcpt = "frank@example.net"
        to = lv.pf.verp_address(xverp_token(rcpt))
        lv.pf.send("", to, dsn(rcpt, bounce_to=to))
        lv.pf.wait_for(lambda: lv.rows("SELECT source FROM messages"), what="the LMTP row")
        assert lv.rows("SELECT source FROM messages") == [("lmtp",)]

        # LMTP only: no pipe(8) service at all.
        lv.pf.postconf("-MX", "verpbounce/unix")
        lv.pf.reload()
        code, out = lv.doctor()
        assert code == 0, out
        assert "verpbounce" not in out

        # The next hop is not where the daemon listens: fixed by the printed commands.
        route_to(lv, f"lmtp:inet:127.0.0.1:{pfmod.free_port()}")
        out, _ = lv.fails_then_fixed(f"but `bounces daemon` listens on {listen}")

        # The daemon down: every bounce would defer.
        daemon.stop()
        code, out = lv.doctor()
        assert code == 1
        assert "`bounces daemon` does not answer LMTP on" in out
    finally:
        daemon.stop()


# -- logging without a syslog daemon -----------------------------------------------------


def test_no_syslog_daemon_the_line_falls_back_and_doctor_warns(live):
    """A host whose Postfix logs with maillog_file and where nothing listens on /dev/log.

    The pipe's line falls back to stderr, which pipe(8) copies into the delivery's maillog
    line -- of a successful delivery only the first 100 characters -- and doctor warns;
    its fix (the file target) puts the whole line in the file.  Before issue 16 syslog(3)
    swallowed the line: the maillog had no trace of it, and doctor said nothing.
    """
    from tests.support.syslog import without_dev_log

    lv = live(
        wrap=without_dev_log,
        config_edit=lambda t: t.replace('target = "file"', 'target = "syslog"'),
    )
    assert settings_mod.load(lv.config).log.syslog_socket == "/dev/log"
    code, out = lv.doctor(wrap=without_dev_log)
    assert code == 0, out
    [warning] = [ln for ln in out.splitlines() if ln.startswith("warning")]
    assert "[log] target = syslog, but /dev/log: " in warning
    assert f"into Postfix's log line for each delivery, in maillog_file {lv.pf.maillog_file}" \
        in warning

    def delivered(rcpt: str) -> str:
        to = lv.pf.verp_address(xverp_token(rcpt))
        lv.pf.send("", to, dsn(rcpt, bounce_to=to))
        lv.pf.wait_for(lambda: f"to=<{to}>" in lv.pf.log_text() and "status=sent" in
                       lv.pf.log_text(), what="the delivery")
        return next(ln for ln in lv.pf.log_text().splitlines() if f"to=<{to}>" in ln)

    line = delivered("grace@example.net")
    assert "delivered via verpbounce service (recorded: 1 bounce: grace@example.net" in line
    assert "outcome=recorded exit=0 token=grace=example" in line  # the fallback, cut short
    assert "elapsed_ms=" not in line

    # The fix as printed: the edit its sentence names, then its commands.
    report = lv.doctor_json(wrap=without_dev_log)
    [finding] = [f for f in report["findings"] if f["status"] != "ok"]
    assert finding["check"] == "log.target"
    assert finding["fix"] == (
        f'set [log] target = "file" in {lv.config} (file = "{lv.relay.log_file}"), then:'
    )
    assert printed_commands(out) == [finding["fix"], *finding["commands"]]
    with open(lv.config) as fp:
        text = fp.read()
    with open(lv.config, "w") as fp:
        fp.write(text.replace('target = "syslog"', 'target = "file"'))
    for command in finding["commands"]:
        sh(command)
    code, out = lv.doctor(wrap=without_dev_log)
    assert code == 0 and "warning" not in out, out
    assert f"[log] target = file: {lv.relay.log_file}" in out

    delivered("heidi@example.net")
    with open(lv.relay.log_file) as fp:
        logged = fp.read()
    assert "bounce-handler[" in logged
    assert "outcome=recorded exit=0 token=heidi=example.net" in logged
    assert "recipient=heidi@example.net" in logged and "elapsed_ms=" in logged
