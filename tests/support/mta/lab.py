"""A lab for one real MTA: private namespaces, a fake Internet, the failure cases, the notices.

``Lab`` starts ``net.py`` as PID 1 of fresh PID/network/mount/UTS namespaces (see its
docstring for what it serves), runs the MTA's commands inside them with ``nsenter``, submits
one message per ``CASES`` entry over SMTP to the MTA on the lab's 127.0.0.1:25, and collects
what the MTA sends back to the senders (``case-NAME@origin.test``): its genuine bounces,
delay warnings and success notices, as the bytes a relay would receive.

Killing the lab's PID 1 ends every process in it (the MTA's daemons included), so a crash
or an interrupted test run leaves nothing running.

Packages: MTAs that conflict with the installed postfix package (Exim, OpenSMTPD, Sendmail)
are never installed: ``packages.unpacked(...)`` runs ``apt-get download`` into a cache
(``BOUNCE_HANDLER_MTA_CACHE``, default ``var/mta-debs`` in the checkout, which git ignores;
``.ci/run`` fills it) and ``dpkg -x`` into a directory per MTA.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

NET = str(Path(__file__).with_name("net.py"))
CAPTURE_DOMAIN = "origin.test"

# The fake Internet's zone: every name here resolves, everything else is NXDOMAIN.
ZONE_BASE = {
    "origin.test": {"MX": [[10, "mx.origin.test"]]},
    "mx.origin.test": {"A": ["127.0.0.2"]},
    "rcpt.test": {"MX": [[10, "mx.rcpt.test"]]},
    "mx.rcpt.test": {"A": ["127.0.0.2"]},
    "refuse.test": {"MX": [[10, "mx.refuse.test"]]},
    "mx.refuse.test": {"A": ["127.0.0.3"]},
    "busy.test": {"MX": [[10, "mx.busy.test"]]},
    "mx.busy.test": {"A": ["127.0.0.4"]},
    # RFC 7505: "MX 0 ." says the domain accepts no mail at all.
    "nullmx.test": {"MX": [[0, "."]]},
    "pipelining.test": {"MX": [[10, "mx.pipelining.test"]]},
    "mx.pipelining.test": {"A": ["127.0.0.5"]},
    "sender.test": {"MX": [[10, "mx.sender.test"]]},
    "mx.sender.test": {"A": ["127.0.0.6"]},
    "lab.test": {},
    # The root name exists and has no address, as on the real Internet: an MTA that does
    # not know RFC 7505 (Courier 1.0.16) looks up the null MX's "." like any MX host and
    # must get the real answer (NOERROR, no records), not an NXDOMAIN only this lab says.
    "": {},
    "2.0.0.127.in-addr.arpa": {"PTR": ["mx.rcpt.test"]},
    "3.0.0.127.in-addr.arpa": {"PTR": ["mx.refuse.test"]},
    "4.0.0.127.in-addr.arpa": {"PTR": ["mx.busy.test"]},
    "5.0.0.127.in-addr.arpa": {"PTR": ["mx.pipelining.test"]},
    "6.0.0.127.in-addr.arpa": {"PTR": ["mx.sender.test"]},
}


class Case:
    """One message the lab submits: its sender names the case (``case-NAME@origin.test``)."""

    def __init__(self, name: str, rcpts: list[str], notify: str | None = None) -> None:
        self.name = name
        self.rcpts = rcpts
        self.notify = notify

    @property
    def sender(self) -> str:
        return f"case-{self.name}@{CAPTURE_DOMAIN}"

    def message(self, mta: str) -> str:
        return (
            f"From: Case {self.name} <{self.sender}>\r\n"
            f"To: {', '.join(self.rcpts)}\r\n"
            f"Subject: lab case {self.name} via {mta}\r\n"
            f"Message-ID: <{self.name}.{mta}@origin.test>\r\n"
            f"Date: Mon, 01 Dec 2025 12:00:00 +0000\r\n"
            "\r\n"
            f"This message tests how {mta} reports the case {self.name}.\r\n"
        )


# The failure cases of issue 15 (the local part picks the fake remote's answer, net.REPLIES;
# the domain picks the server: refuse.test greets 554, busy.test greets 421, nxdomain.test
# does not exist, nullmx.test has a null MX, sender.test refuses the sender at MAIL FROM,
# pipelining.test pipelines), mixed messages, and a success notice that must not count as a
# failure.
CASES = [
    Case("unknown", ["unknown@rcpt.test"]),
    Case("full", ["full@rcpt.test"]),
    Case("content", ["content@rcpt.test"]),
    Case("refused", ["someone@refuse.test"]),
    Case("big", ["big@rcpt.test"]),
    Case("expired", ["someone@busy.test"]),
    Case("nxdomain", ["nobody@nxdomain.test"]),
    Case("multi", ["unknown-m@rcpt.test", "full-m@rcpt.test", "nobody-m@nxdomain.test",
                   "ok-m@rcpt.test"]),
    Case("success", ["ok@rcpt.test"], notify="SUCCESS"),
    Case("sender", ["someone@sender.test"]),
    Case("listed", ["listed@rcpt.test"]),
    Case("dmarc", ["dmarc@rcpt.test"]),
    Case("disabled", ["disabled@rcpt.test"]),
    Case("moved", ["moved@rcpt.test"]),
    Case("relay", ["relay@rcpt.test"]),
    Case("notauth", ["notauth@rcpt.test"]),
    Case("nullmx", ["someone@nullmx.test"]),
    Case("throttled", ["throttled@rcpt.test"]),
    Case("unusual", ["unusual@rcpt.test"]),
    # A refusal of DATA fails every recipient accepted at RCPT; the one refused at RCPT
    # keeps its own reply.
    Case("datamulti", ["unknown-d@rcpt.test", "content-d@rcpt.test", "ok-d@rcpt.test"]),
    # The same with a temporary refusal of DATA, until the queue lifetime ends.
    Case("tempdata", ["tempdata-t@rcpt.test", "ok-t@rcpt.test"]),
    # Every RCPT refused in a pipelined session, then "554 5.5.1 Error: no valid
    # recipients" to the DATA sent behind them.
    Case("pipelined", ["unknown-p@pipelining.test", "full-p@pipelining.test"]),
]
CASE_BY_NAME = {c.name: c for c in CASES}


class LabError(RuntimeError):
    """The lab or its MTA could not be set up (the message says what and shows the logs)."""


class Notice:
    """One message the MTA sent back to a case's sender."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = path.read_bytes()
        env = json.loads(path.with_suffix(".json").read_text())
        self.mail_from = env["mail_from"]
        self.rcpt_tos = env["rcpt_tos"]

    @property
    def case(self) -> str | None:
        for rcpt in self.rcpt_tos:
            local = rcpt.split("@")[0]
            if local.startswith("case-"):
                return local[5:]
        return None


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: a killed test run takes its labs along (unshare --kill-child
    passes it on to the lab's PID 1, whose death ends the namespace)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


class Lab:
    """One MTA's namespaces under `base` (see the module docstring)."""

    def __init__(self, base: str, hostname: str, *, passwd=(), group=(), tmpfs=(), binds=(),
                 overlays=(), mkdirs=()):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.hostname = hostname
        self.spec = {
            "hostname": hostname,
            "capture_domain": CAPTURE_DOMAIN,
            "zone": {**ZONE_BASE, hostname: {"A": ["127.0.0.1"]},
                     "1.0.0.127.in-addr.arpa": {"PTR": [hostname]}},
            "passwd": list(passwd),
            "group": list(group),
            "tmpfs": list(tmpfs),
            "binds": [list(b) for b in binds],
            "overlays": list(overlays),
            "mkdirs": [list(m) for m in mkdirs],
        }
        self.proc: subprocess.Popen | None = None
        self.pid1: int | None = None

    # -- life cycle -----------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        for stale in ("ready", "failed"):
            (self.base / stale).unlink(missing_ok=True)
        (self.base / "lab.json").write_text(json.dumps(self.spec, indent=1))
        err = open(self.base / "net.stderr", "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--mount",
             "--uts", "--propagation", "private", "--", sys.executable, NET, str(self.base)],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not (self.base / "ready").exists():
            if self.proc.poll() is not None or (self.base / "failed").exists():
                raise LabError(f"the lab's namespace did not start:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise LabError(f"the lab's namespace was not ready in {timeout} s:\n"
                               f"{self.stderr()}")
            time.sleep(0.05)
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        self.pid1 = int(children.split()[0])

    def stop(self) -> None:
        """Kill the lab's PID 1: the kernel then kills every process in its PID namespace.

        Not SIGTERM to ``unshare``: with --fork it blocks SIGTERM while it waits.
        """
        if self.pid1:
            try:
                os.kill(self.pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def stderr(self) -> str:
        try:
            return (self.base / "net.stderr").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    # -- inside the namespaces ----------------------------------------------------------

    def run(self, argv: list[str], *, check: bool = True, timeout: float = 60, env=None,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        """Run `argv` inside the lab (its network, mounts, host name and PID space)."""
        proc = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "--pid", "--net", "--mount", "--uts", "--",
             *argv],
            input=input, stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise LabError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                           f"{proc.stdout.decode(errors='replace')[-2000:]}\n"
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
        return proc

    def spawn(self, argv: list[str], log: Path, env=None) -> subprocess.Popen:
        """Start a foreground daemon inside the lab, its output to `log` (dies with the lab)."""
        out = open(log, "ab")
        return subprocess.Popen(
            ["nsenter", "-t", str(self.pid1), "--pid", "--net", "--mount", "--uts", "--",
             *argv],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)

    def submit(self, case: Case, mta: str, port: int = 25) -> dict:
        """Send `case`'s message to the MTA's listener; returns refusals (empty if none)."""
        request = {
            "port": port,
            "mail_from": case.sender,
            "rcpts": case.rcpts,
            "data": case.message(mta),
            "rcpt_options": [f"NOTIFY={case.notify}"] if case.notify else [],
        }
        proc = self.run([sys.executable, NET, "--send"], input=json.dumps(request).encode())
        out = proc.stdout.decode().strip()
        return json.loads(out)["refused"] if out else {}

    def wait_smtp(self, port: int = 25, timeout: float = 30.0) -> None:
        """Wait until something in the lab greets with 220 on 127.0.0.1:`port`."""
        probe = (
            "import socket,sys\n"
            f"s=socket.create_connection(('127.0.0.1',{port}),timeout=5)\n"
            "sys.exit(0 if s.recv(64).startswith(b'220') else 1)\n"
        )
        deadline = time.monotonic() + timeout
        while self.run([sys.executable, "-c", probe], check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise LabError(f"no SMTP greeting on the lab's 127.0.0.1:{port}")
            time.sleep(0.3)

    # -- results ------------------------------------------------------------------------

    def notices(self) -> list[Notice]:
        return [Notice(p) for p in sorted((self.base / "captured").glob("*.eml"))]

    def remote_log(self) -> str:
        try:
            return (self.base / "remote.log").read_text(errors="replace")
        except OSError:
            return ""
