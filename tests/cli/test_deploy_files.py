"""deploy/cron and deploy/systemd call `bounces` with arguments that exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from bounce_handler.cli import build_parser
from tests.conftest import ROOT

CRON = ROOT / "deploy" / "cron" / "bounce-handler"
SERVICE = ROOT / "deploy" / "systemd" / "bounce-handler-alert.service"
TIMER = ROOT / "deploy" / "systemd" / "bounce-handler-alert.timer"
QUEUE_SERVICE = ROOT / "deploy" / "systemd" / "bounce-handler-queue.service"
QUEUE_TIMER = ROOT / "deploy" / "systemd" / "bounce-handler-queue.timer"


def bounces_argv(command: str, variables: dict[str, str]) -> list[str]:
    for k, v in variables.items():
        command = command.replace(f"${k}", v)
    argv = shlex.split(re.sub(r"\s*\d?>\s*\S+", "", command))  # minus redirections
    i = next(n for n, a in enumerate(argv) if a.endswith("/bounces"))
    return argv[i + 1 :]


def cron_jobs(include_commented: bool):
    variables, jobs = {}, []
    for line in CRON.read_text().splitlines():
        text = line.strip()
        if text.startswith("#*/") and include_commented:
            text = text[1:]
        if not text or text.startswith("#"):
            continue
        fields = text.split(None, 6)
        if "=" in fields[0] and not fields[0][0].isdigit() and not fields[0].startswith("*"):
            k, _, v = text.partition("=")
            variables[k.strip()] = v.strip()
            continue
        assert len(fields) == 7, f"cron.d lines have 5 time fields, a user, a command: {line}"
        assert fields[5] == "nobody"  # the store's owner, as the pipe
        jobs.append(bounces_argv(fields[6], variables))
    return jobs


@pytest.mark.parametrize("include_commented", [False, True])
def test_cron_jobs_parse(include_commented):
    jobs = cron_jobs(include_commented)
    verbs = [j[2] for j in jobs]
    assert "alert" in verbs and "prune" in verbs
    if include_commented:
        assert verbs.count("export") == 2
    for argv in jobs:
        args = build_parser().parse_args(argv)
        assert args.config == "/etc/bounce-handler/config.toml"


def test_systemd_service_runs_alert_and_counts_open_flags_as_success():
    text = SERVICE.read_text()
    exec_line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    argv = bounces_argv(exec_line.partition("=")[2], {})
    args = build_parser().parse_args(argv)
    assert args.verb == "alert" and args.quiet
    assert "SuccessExitStatus=1 2" in text and "Type=oneshot" in text
    assert "OnCalendar=*:0/5" in TIMER.read_text()


def test_the_live_queue_is_read_every_minute_by_cron_or_timer():
    """Issue 13 item 7: R8 from the live queue needs a reading every minute, shipped."""
    feeds = [j for j in cron_jobs(False) if j[2] == "queue"]
    assert len(feeds) == 1
    args = build_parser().parse_args(feeds[0])
    assert args.feed and args.quiet and not args.input
    line = next(ln for ln in CRON.read_text().splitlines() if "queue --feed" in ln)
    assert line.split()[:5] == ["*"] * 5
    text = QUEUE_SERVICE.read_text()
    exec_line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    args = build_parser().parse_args(bounces_argv(exec_line.partition("=")[2], {}))
    assert args.verb == "queue" and args.feed and args.quiet
    # postqueue is setgid postdrop: a unit with NoNewPrivileges=yes could not run it.
    assert "NoNewPrivileges=no" in text and "User=nobody" in text
    assert "OnCalendar=*:*:00" in QUEUE_TIMER.read_text()


def test_systemd_units_verify():
    verify = shutil.which("systemd-analyze")
    if not verify:
        pytest.skip("systemd-analyze not installed")
    proc = subprocess.run([verify, "verify", str(SERVICE), str(TIMER), str(QUEUE_SERVICE),
                           str(QUEUE_TIMER)],
                          capture_output=True, text=True)
    # The ExecStart binary is not installed here; every other complaint is a real one.
    problems = [ln for ln in proc.stderr.splitlines()
                if ln.strip() and "/opt/bounce-handler" not in ln and "nobody" not in ln]
    assert not problems, proc.stderr


def test_cron_exports_write_where_install_sh_makes_room_and_hide_no_error():
    # Issue 16: the export lines wrote to /var/lib/bounce-handler/maps/, which nothing
    # created, and threw the error away with 2>/dev/null.  Their directory must be one the
    # permission table lists (tests/e2e/test_deploy_guide.py checks the table against
    # what install.sh leaves), and cron must see every error.
    from tests.e2e.deploy_docs import permission_rows

    made = {path.rstrip("/") for path, _owner, _mode in permission_rows()}
    lines = [ln for ln in CRON.read_text().splitlines() if " export " in ln and ln[:2] == "#*"]
    assert len(lines) == 2
    for line in lines:
        assert "/dev/null" not in line and "2>" not in line, line
        argv = shlex.split(line)
        out = argv[argv.index("-o") + 1]
        assert out.rsplit("/", 1)[0] in made, (out, sorted(made))
        assert "--quiet" in argv  # cron mails any output: no "wrote N" line every 10 min
