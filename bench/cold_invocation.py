"""Cold-invocation cost of the pipe entrypoint against a bare interpreter, in one run.

    .venv/bin/python bench/cold_invocation.py [--runs 40] [--sample samples/01-...eml]

Each handler run is a fresh process doing what Postfix's pipe(8) makes it do: read a
standard DSN on stdin, parse, classify, commit one bounce row to a migrated SQLite store
(WAL, synchronous=FULL). Every message is made unique (a header) so none is a duplicate.
Runs alternate with `python -c pass` from the same interpreter so machine noise hits both
alike; the figure that matters is the ratio of the medians (target: <= 2.0).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(cmd, stdin_bytes=None, env=None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, input=stdin_bytes, capture_output=True, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        out = proc.stdout[-300:] + proc.stderr[-300:]
        sys.exit(f"{cmd[0]} exited {proc.returncode}: {out!r}")
    return elapsed


def _listen(path: str):
    """A thread receiving syslog datagrams on `path` (what rsyslog/journald do on /dev/log)."""
    import socket
    import threading

    class Listener(threading.Thread):
        def __init__(self) -> None:
            super().__init__(daemon=True)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(path)
            self.sock.settimeout(0.2)
            self.stop = threading.Event()
            self.count = 0

        def run(self) -> None:
            while not self.stop.is_set():
                try:
                    self.sock.recv(65536)
                    self.count += 1
                except TimeoutError:
                    continue

    listener = Listener()
    listener.start()
    return listener


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--sample", default=str(ROOT / "samples" / "01-postfix-user-unknown.eml"))
    ap.add_argument(
        "--rules-off",
        action="store_true",
        help="disable every threshold rule (the default run has the engine on, as shipped)",
    )
    ap.add_argument(
        "--log",
        choices=("none", "stderr", "syslog", "syslog-missing", "file"),
        default="none",
        help="[log] target of the handler: none (default: the parse-and-record cost alone), "
        "stderr, syslog (to a datagram socket this bench listens on, as a syslog daemon "
        "would), syslog-missing (a syslog socket path that does not exist: the fallback), "
        "file (appended to a file, [log] target = file)",
    )
    args = ap.parse_args()

    import compileall

    import bounce_handler
    from bounce_handler import settings
    from bounce_handler.cli import caches
    from bounce_handler.store import engine

    # A pip install compiles the package; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 (set on these machines) would recompile every module in
    # every process and measure the compiler, not the handler.
    compileall.compile_dir(os.path.dirname(bounce_handler.__file__), quiet=1)

    tmp = Path(tempfile.mkdtemp(prefix="bh-bench-"))
    db = tmp / "bounces.db"
    cfg = tmp / "config.toml"
    text = f'[database]\nurl = "sqlite:///{db}"\n'
    listener = None
    if args.log in ("none", "stderr"):
        text += f'[log]\ntarget = "{args.log}"\n'
    elif args.log == "file":
        text += f'[log]\ntarget = "file"\nfile = "{tmp / "pipe.log"}"\n'
    elif "syslog_socket" not in settings.SCHEMA["log"]:
        # A version without [log] syslog_socket: libc syslog(3) to /dev/log, whatever is there.
        text += '[log]\ntarget = "syslog"\n'
    else:
        sock_path = tmp / ("absent.sock" if args.log == "syslog-missing" else "log.sock")
        if args.log == "syslog":
            listener = _listen(str(sock_path))
        text += f'[log]\ntarget = "syslog"\nsyslog_socket = "{sock_path}"\n'
    if args.rules_off:
        for table in ("dead_recipient", "compromised_sender", "throttled_destination"):
            text += f"[rules.{table}]\nenabled = false\n"
    cfg.write_text(text)
    s = settings.load(str(cfg))
    engine.upgrade(s)
    caches.write(s)  # what `bounces db upgrade` / `bounces config check` leave behind
    env = dict(os.environ, BOUNCE_HANDLER_CONFIG=str(cfg))
    sample = Path(args.sample).read_bytes()
    handler = str(BIN / "bounce-handler")
    bare = [sys.executable, "-c", "pass"]

    for i in range(3):  # warm the page cache and __pycache__
        timed(bare)
        timed([handler, "alice=example.net"], b"X-Warm: %d\n" % i + sample, env)
    t_bare, t_handler = [], []
    for i in range(args.runs):
        t_bare.append(timed(bare))
        t_handler.append(timed([handler, "alice=example.net"], b"X-Run: %d\n" % i + sample, env))
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM bounce_events").fetchone()[0]
    if listener is not None:
        listener.stop.set()
        listener.join(5)
        print(f"syslog lines received         {listener.count}")
    mb, mh = statistics.median(t_bare), statistics.median(t_handler)
    engine_state = "off" if args.rules_off else "on"
    print(f"runs                          {args.runs} (+3 warm-up), rows recorded {rows}")
    print(f"threshold engine              {engine_state}")
    print(f"[log] target                  {args.log}")
    print(f"bare `python -c pass`  median {mb * 1000:7.1f} ms")
    print(f"bounce-handler (DSN->row) med {mh * 1000:7.1f} ms")
    print(f"ratio handler / bare          {mh / mb:7.2f}x   (target <= 2.0)")
    cores = os.cpu_count()
    print(f"throughput on {cores} cores       ~{cores / mh:.0f} bounces/s (CPU-bound estimate)")


if __name__ == "__main__":
    main()
