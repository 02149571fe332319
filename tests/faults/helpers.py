"""What the fault and hostile tests share: a varied bounce corpus, spool configs, runners."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from tests.conftest import SAMPLES, script

# The bundled samples and the recipient each is about: (file, local part, domain).
CORPUS = (
    ("01-postfix-user-unknown.eml", "alice", "example.net"),
    ("02-mailbox-full.eml", "bob", "example.org"),
    ("03-yahoo-deferral.eml", "dave", "yahoo.com"),
    ("04-vacation.eml", "erin", "example.com"),
    ("05-not-a-bounce.eml", "frank", "example.com"),
)


def variant(i: int, bounces_only: bool = False) -> tuple[str, bytes]:
    """Message number `i` of a varied stream: (extension, bytes), unique per `i`.

    Each sample's recipient is renamed (``alice`` -> ``alice17``) in the DSN, the attached
    original and the VERP address alike, as a real storm to many recipients looks.
    """
    pool = CORPUS[:3] if bounces_only else CORPUS
    name, local, domain = pool[i % len(pool)]
    raw = (SAMPLES / name).read_bytes()
    new = f"{local}{i}".encode()
    raw = re.sub(rb"\b" + local.encode() + rb"(?=[@=])", new, raw)
    return f"{local}{i}={domain}", raw


def padded(i: int, nbytes: int) -> tuple[str, bytes]:
    """Message `i` with an incompressible folded header of about `nbytes` (defeats zlib)."""
    import base64

    ext, raw = variant(i, bounces_only=True)
    b64 = base64.b64encode(os.urandom(nbytes * 3 // 4)).decode()
    folded = "\n ".join(b64[j : j + 76] for j in range(0, len(b64), 76))
    return ext, f"X-Pad: {folded}\n".encode() + raw


def spool_config(root: Path, url: str, extra: str = "") -> Path:
    """A config with a PostgreSQL URL in spool mode, spool under `root`."""
    cfg = root / "spool-config.toml"
    cfg.write_text(
        f'[database]\nurl = "{url}"\npg_mode = "spool"\nspool_dir = "{root / "spool"}"\n'
        f'[log]\ntarget = "stderr"\n[intake]\nrelay = "test-relay"\n' + extra
    )
    return cfg


def run_handler(config, extension: str | None, data: bytes, timeout: float = 60,
                user: str | None = None, args: tuple = (), handler: str | None = None):
    """Run the real bounce-handler; return (Result, wall seconds, max RSS MiB).

    `handler` is the executable (default: the dev venv's); runs as another `user` need
    one that user can execute (the pipe_bin fixture).
    """
    argv = [handler or script("bounce-handler"), "--config", str(config), *args]
    if extension is not None:
        argv += ["--", extension]
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    return run_measured(argv, data, timeout)


class Result:
    """Exit status and output of one handler run."""

    __slots__ = ("returncode", "stdout", "stderr")

    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace") + self.stderr.decode("utf-8", "replace")


TIME = "/usr/bin/time"


def run_measured(argv: list[str], data: bytes, timeout: float = 60, env=None):
    """Popen + os.wait4: (Result, wall seconds, max RSS MiB of exactly this child)."""
    # Linux carries a process's peak RSS across fork+exec, so a child forked from a big
    # test process reports the parent's size: GNU time(1) forks the handler from its own
    # small image and reports exactly that child's peak (%M, KiB) into a file.
    rss_file = None
    if os.path.exists(TIME):
        import tempfile

        fd, rss_file = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        argv = [TIME, "-q", "-f", "%M", "-o", rss_file, "--", *argv]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    # communicate() would reap the child itself and lose its rusage: feed and read
    # through threads, then wait4 for this pid.
    import threading

    bufs = {}

    def reader(name, stream):
        bufs[name] = stream.read()

    threads = [
        threading.Thread(target=reader, args=("out", proc.stdout)),
        threading.Thread(target=reader, args=("err", proc.stderr)),
    ]
    for t in threads:
        t.start()
    try:
        proc.stdin.write(data)
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.monotonic() - t0
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = ru.ru_maxrss / 1024
    if rss_file:
        try:
            with open(rss_file) as fp:
                rss = int(fp.read().split()[-1]) / 1024
        except (OSError, ValueError, IndexError):
            pass  # killed before time(1) wrote it: keep the (upper bound) wait4 figure
        os.unlink(rss_file)
    return Result(proc.returncode, bufs.get("out", b""), bufs.get("err", b"")), wall, rss


def assert_clean(res: Result) -> None:
    """Exit 0 or 75, one short line on stdout, never a traceback."""
    text = res.text
    assert res.returncode in (0, 75), text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    assert len(res.stdout.decode("utf-8", "replace").splitlines()) == 1, res.stdout[-500:]


def lmtp_session(address, transactions, timeout: float = 60) -> list[list[str]]:
    """Speak LMTP (RFC 2033) over one connection; return the DATA replies per transaction.

    `address` is a unix socket path or (host, port); `transactions` is a list of
    (mail_from, [rcpt, ...], data bytes).  smtplib.LMTP reads a single reply after DATA,
    so this small client reads one per accepted recipient, as the RFC requires.
    """
    import socket

    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(address)
    fp = sock.makefile("rb")

    def reply() -> str:
        lines = []
        while True:
            line = fp.readline().decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                raise ConnectionError("connection closed: " + " | ".join(lines))
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def cmd(text: str) -> str:
        sock.sendall(text.encode("utf-8", "surrogateescape") + b"\r\n")
        return reply()

    out = []
    try:
        assert reply().startswith("220")
        assert cmd("LHLO client.test").startswith("250")
        for mail_from, rcpts, data in transactions:
            assert cmd(f"MAIL FROM:<{mail_from}>").startswith("250")
            accepted = [r for r in rcpts if cmd(f"RCPT TO:<{r}>").startswith("250")]
            assert cmd("DATA").startswith("354")
            body = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            body = b"\r\n".join(
                b"." + line if line.startswith(b".") else line for line in body.split(b"\r\n")
            )
            sock.sendall(body + b".\r\n")
            out.append([reply() for _ in accepted])
        cmd("QUIT")
    finally:
        fp.close()
        sock.close()
    return out
