"""deploy/README.md followed as an administrator would, on a private Postfix:

install.sh (venv, config, directories, owners, modes, `db upgrade` as the pipe user) →
config edit + `bounces config check` → the master.cf/main.cf snippets *verbatim* (only
paths and the domain substituted) and the two tables from the guide → `bounces doctor`
says no problems → a test bounce over SMTP → `bounces report` shows it.

Slow (~30 s: install.sh builds a venv with every dependency), so one test walks all steps.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from tests.conftest import ROOT
from tests.e2e import deploy_docs
from tests.e2e.dsn import dsn, xverp_token
from tests.support import postfix as pfmod

pytestmark = [pytest.mark.postfix, pytest.mark.slow]

DOMAIN = "bounces.example.com"


def run(argv, **kw):
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, **kw
    )
    assert proc.returncode == 0, (
        f"{argv} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def snippet_main(paths: dict[str, str]) -> dict[str, str]:
    """deploy/postfix/main.cf's parameters, with our test domain and table paths."""
    out = {}
    for line in (ROOT / "deploy" / "postfix" / "main.cf").read_text().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            v = v.strip().replace(DOMAIN, pfmod.BOUNCE_DOMAIN)
            # hash: tables need postmap; texthash: reads the same file format directly.
            v = re.sub(r"hash:/etc/postfix/(\w+)", lambda m: f"texthash:{paths[m.group(1)]}", v)
            out[k.strip()] = v
    return out


def snippet_tables() -> dict[str, str]:
    """The table lines the guide's comments give (# /etc/postfix/NAME:  KEY  VALUE)."""
    tables = {}
    for line in (ROOT / "deploy" / "postfix" / "main.cf").read_text().splitlines():
        m = re.match(r"^# /etc/postfix/(\w+):\s+(\S+)\s+(\S+)$", line)
        if m:
            tables[m.group(1)] = (
                f"{m.group(2).replace(DOMAIN, pfmod.BOUNCE_DOMAIN)}\t{m.group(3)}\n"
            )
    return tables


def snippet_master(prefix: str, config_dir: str) -> str:
    lines = (ROOT / "deploy" / "postfix" / "master.cf").read_text().splitlines()
    entry = "\n".join(ln for ln in lines if ln and not ln.startswith("#")) + "\n"
    return entry.replace("/opt/bounce-handler", prefix).replace("/etc/bounce-handler", config_dir)


def test_the_deploy_guide_end_to_end():
    why = pfmod.unavailable_reason()
    if why:
        from tests.support.services import require

        require("postfix", why)
    root = tempfile.mkdtemp(prefix="bh-guide-", dir="/tmp")
    os.chmod(root, 0o755)
    prefix, etc = f"{root}/opt", f"{root}/etc/bounce-handler"
    state, spool = f"{root}/var/lib/bounce-handler", f"{root}/var/spool/bounce-handler"
    import grp
    import pwd

    nobody, nogroup = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    instance = None
    try:
        # Step 1: install.
        run(
            [
                "bash",
                str(ROOT / "deploy" / "install.sh"),
                "--prefix",
                prefix,
                "--config-dir",
                etc,
                "--state-dir",
                state,
                "--spool-dir",
                spool,
                "--bin-dir",
                "",
            ]
        )
        bounces = [f"{prefix}/venv/bin/bounces", "--config", f"{etc}/config.toml"]
        st = os.stat(f"{etc}/config.toml")
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, nogroup)
        st = os.stat(state)
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o750, nobody)
        assert os.stat(f"{state}/bounces.db").st_uid == nobody  # created by the pipe user
        for sub in ("tmp", "new", "bad"):
            st = os.stat(f"{spool}/{sub}")
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o770, nobody)
        assert "up to date" in run([*bounces, "db", "current"])
        # The permission table of deploy/spool-and-lmtp.md is what install.sh did (and
        # `bounces verp keygen --group` for the key file), and the pages the systemd
        # units name were installed.
        run([*bounces, "verp", "keygen", "--group", "nogroup", "--file", f"{etc}/verp.keys"])
        layout = {"/opt/bounce-handler": prefix, "/etc/bounce-handler": etc,
                  "/var/lib/bounce-handler": state, "/var/spool/bounce-handler": spool}
        assert deploy_docs.check_permissions(layout, "nobody", "nogroup") == []
        for page in deploy_docs.documentation_paths():
            assert os.path.isfile(page.replace("/opt/bounce-handler", prefix)), page

        # Step 2: configure.
        cfg = open(f"{etc}/config.toml").read()
        cfg = cfg.replace("[verp]\n", f'[verp]\ndomain = "{pfmod.BOUNCE_DOMAIN}"\n', 1)
        open(f"{etc}/config.toml", "w").write(cfg)
        assert ": ok" in run([*bounces, "config", "check"])

        # Step 3: Postfix, from the snippets.
        pfdir = f"{root}/postfix"
        tables = snippet_tables()
        assert set(tables) == {"relay_recipients", "transport"}
        paths = {name: f"{root}/{name}" for name in tables}
        for name, text in tables.items():
            open(paths[name], "w").write(text)
            past = os.path.getmtime(paths[name]) - 60
            os.utime(paths[name], (past, past))  # see PostfixInstance.write_config
        main = snippet_main(paths)
        instance = pfmod.PostfixInstance(
            pfdir, name="guide", extra_main=main, pipe_entry=snippet_master(prefix, etc)
        )
        instance.start()
        assert "verpbounce" in instance.postconf("-M", "verpbounce/unix")
        assert instance.postconf("-M", "bounce/unix").split()[-1] == "bounce"

        # Step 4: doctor.
        out = run([*bounces, "doctor", "-c", instance.config_dir])
        assert "no problems found" in out, out

        # Step 5: a test bounce.
        rcpt = "alice@example.net"
        to = instance.verp_address(xverp_token(rcpt))
        instance.send("", to, dsn(rcpt, bounce_to=to))
        instance.wait_for(
            lambda: "status=sent (delivered via verpbounce service" in instance.log_text(),
            timeout=60,
            what="the test bounce delivered to the handler",
        )

        # Step 6: the report.
        out = run([*bounces, "report", "--by", "recipient"])
        assert "Total: 1 events: 1 bounce (1 hard, 0 soft)" in out, out
        assert rcpt in out
    finally:
        if instance is not None:
            instance.destroy()
        shutil.rmtree(root, ignore_errors=True)


def test_the_guides_reload_line_starts_a_stopped_postfix():
    # Issue 16: `postfix check && postfix reload` exited 1, printing nothing, when Postfix
    # was stopped (the message goes to the mail log).  The guide's line, verbatim, with
    # this instance's -c, must leave Postfix running whether it was running or not.
    why = pfmod.unavailable_reason()
    if why:
        from tests.support.services import require

        require("postfix", why)
    guide = (ROOT / "deploy" / "README.md").read_text()
    [line] = [ln.strip() for ln in guide.splitlines() if ln.strip().startswith("postfix status")]
    root = tempfile.mkdtemp(prefix="bh-reload-", dir="/tmp")
    os.chmod(root, 0o755)
    instance = pfmod.PostfixInstance(f"{root}/postfix", name="reload")
    try:
        instance.write_config()
        assert not instance.is_running()
        command = line.replace("postfix ", f"{pfmod.POSTFIX} -c {instance.config_dir} ")
        for _ in ("stopped", "running"):
            proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                  timeout=120)
            assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
            pfmod.wait_for(instance.is_running, timeout=30, what="postfix running")
    finally:
        instance.destroy()
        shutil.rmtree(root, ignore_errors=True)
