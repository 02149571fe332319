"""Bounce storm: N bounces through 20 concurrent handlers into SQLite, PostgreSQL and LMTP.

    .venv/bin/python bench/storm.py [--messages 10000] [--concurrency 20]
        [--modes bare,sqlite,spool,lmtp,direct] [--direct-messages 300] [--postfix]

Every mode is measured in the same run, against the same machine's ceiling for any
pipe(8) handler: the rate at which it spawns bare ``python -c pass`` 20 at a time.

    bare     `python -c pass`, CONCURRENCY at a time (the spawn ceiling)
    sqlite   the real bounce-handler per message, as pipe(8) runs it, into SQLite
             (WAL, synchronous=FULL)
    spool    the same into a PostgreSQL URL with pg_mode="spool": the pipe writes a
             durable file, `python -m bounce_handler.daemon.drain` (the daemon's drain
             service, a separate process) moves it into a private PostgreSQL; the rate
             is end to end (first spawn -> last row committed in PostgreSQL)
    lmtp     `bounces daemon --lmtp unix:...` (one resident process) fed by CONCURRENCY
             LMTP connections (Postfix's default lmtp destination concurrency is 20),
             one message per transaction, into SQLite
    direct   pg_mode="direct": every pipe process imports psycopg and writes itself
             (fewer messages: --direct-messages; it is the slow design the spool avoids)
    postfix  (--postfix) SMTP into a private Postfix on loopback -> pipe transport ->
             bounce-handler -> SQLite; needs root, Postfix and nobody-executable venv

The corpus is a realistic mix: the bundled samples (bounces of several formats, a
deferral, an auto-reply, a non-bounce) and every tests/data fixture, each copy with its own
recipient and VERP extension.  Count check per mode: messages in = rows recorded +
quarantined + ignored, no duplicate digest, no message lost (an exit 75 is retried as
Postfix would, and counted).  Per-invocation latency p50/p99 is spawn-to-exit (or
MAIL FROM-to-reply for LMTP), queueing for the CPU included.

Not a test: tests and CI never run it (it takes minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

SAMPLES = (
    ("01-postfix-user-unknown.eml", "alice", "example.net"),
    ("02-mailbox-full.eml", "bob", "example.org"),
    ("03-yahoo-deferral.eml", "dave", "yahoo.com"),
    ("04-vacation.eml", "erin", "example.com"),
    ("05-not-a-bounce.eml", "frank", "example.com"),
)


# -- corpus -------------------------------------------------------------------------------


def corpus(n: int, root: Path = ROOT) -> list[tuple[str, bytes]]:
    """`n` unique (extension, message) pairs, the samples weighted 3:1 over fixtures.

    `root` is the tree whose samples/ and tests/data/ make the corpus (--corpus-root):
    comparing two commits is only fair on the same messages, and tests/data grows.
    """
    templates = []
    for name, local, domain in SAMPLES:
        path = root / "samples" / name
        if path.exists():
            templates.append((path.read_bytes(), local, domain))
    fixtures = sorted((root / "tests" / "data").glob("**/*.eml"))
    for p in fixtures:
        templates.append((p.read_bytes(), None, None))
    if not templates:
        sys.exit("no samples/ or tests/data/ messages to build a storm from")
    weights = [3 if local else 1 for _, local, _ in templates]
    order = [i for i, w in enumerate(weights) for _ in range(w)]
    out = []
    for i in range(n):
        raw, local, domain = templates[order[i % len(order)]]
        if local:
            new = f"{local}{i}".encode()
            raw = re.sub(rb"\b" + local.encode() + rb"(?=[@=])", new, raw)
            ext = f"{local}{i}={domain}"
        else:
            raw = b"X-Storm-Seq: %d\n" % i + raw
            ext = f"user{i}=example.net"
        out.append((ext, raw))
    return out


# -- measurement ---------------------------------------------------------------------------


class Run:
    """Per-mode figures."""

    def __init__(self, name: str, n: int) -> None:
        self.name = name
        self.n = n
        self.latencies: list[float] = []
        self.wall = 0.0
        self.outcomes: dict[str, int] = {}
        self.retries = 0
        self.check = ""
        self.note = ""
        self.cpu = 0.0  # user+sys seconds of every process of this mode (children)

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.n * 1000 if self.n else 0.0

    @property
    def rate(self) -> float:
        return self.n / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000


def spawn_storm(run: Run, argv_for, inputs, concurrency: int, env=None) -> None:
    """Run one process per input, `concurrency` at a time; retry exit 75 like Postfix."""
    lock = threading.Lock()
    pending_retry = []

    def one(item):
        argv, data = argv_for(item)
        t = time.perf_counter()
        proc = subprocess.run(argv, input=data, capture_output=True, env=env)
        dt = time.perf_counter() - t
        word = proc.stdout.split(b":", 1)[0].decode("ascii", "replace") or f"exit{proc.returncode}"
        with lock:
            run.latencies.append(dt)
            if proc.returncode == 75:
                pending_retry.append(item)
            elif proc.returncode != 0:
                word = f"exit{proc.returncode}"
            run.outcomes[word] = run.outcomes.get(word, 0) + 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, inputs))
    run.wall = time.perf_counter() - t0
    while pending_retry:  # Postfix's deferred queue, drained after the storm
        items, pending_retry[:] = list(pending_retry), []
        run.retries += len(items)
        run.outcomes["deferred"] = run.outcomes.get("deferred", 0) - len(items)
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, items))


def write_config(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(f'[database]\nurl = "{url}"\n{extra}[log]\ntarget = "none"\n')
    return path


def migrated_sqlite(tmp: Path, name: str) -> tuple[Path, Path]:
    from bounce_handler import settings
    from bounce_handler.cli import caches
    from bounce_handler.store import engine

    db = tmp / f"{name}.db"
    cfg = write_config(tmp / f"{name}.toml", f"sqlite:///{db}", "busy_timeout = 20.0\n")
    s = settings.load(str(cfg))
    engine.upgrade(s)
    caches.write(s)  # what `bounces db upgrade` leaves for the pipe
    return db, cfg


def count_check_sql(run: Run, rows: dict[str, int], distinct: int, total: int) -> None:
    accounted = rows.get("recorded", 0) + rows.get("quarantined", 0) + rows.get("ignored", 0)
    ok = accounted == run.n and distinct == total == run.n
    run.check = (
        f"in {run.n} = recorded {rows.get('recorded', 0)} + quarantined "
        f"{rows.get('quarantined', 0)} + ignored {rows.get('ignored', 0)}"
        f" -> {'OK' if ok else 'MISMATCH'}; rows {total}, distinct digests {distinct}"
    )


def sqlite_counts(db: Path) -> tuple[dict[str, int], int, int]:
    conn = sqlite3.connect(db)
    try:
        rows = dict(conn.execute("SELECT disposition, count(*) FROM messages GROUP BY 1"))
        distinct = conn.execute("SELECT count(DISTINCT digest) FROM messages").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        conn.close()
    return rows, distinct, total


def pg_counts(url: str) -> tuple[dict[str, int], int, int]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        q = "SELECT disposition, count(*) FROM messages GROUP BY 1"
        rows = dict(conn.execute(q).fetchall())
        distinct = conn.execute("SELECT count(DISTINCT digest) FROM messages").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    return rows, distinct, total


# -- modes ----------------------------------------------------------------------------------


def mode_bare(n: int, conc: int) -> Run:
    run = Run("bare python -c pass", n)
    spawn_storm(run, lambda _: ([sys.executable, "-c", "pass"], None), range(n), conc)
    run.outcomes = {"exit0": n}
    return run


def handler_argv(cfg: Path):
    handler = str(BIN / "bounce-handler")
    return lambda item: ([handler, "--config", str(cfg), "--", item[0]], item[1])


def mode_sqlite(msgs, conc: int, tmp: Path) -> Run:
    db, cfg = migrated_sqlite(tmp, "storm-sqlite")
    run = Run("pipe -> SQLite", len(msgs))
    spawn_storm(run, handler_argv(cfg), msgs, conc)
    count_check_sql(run, *sqlite_counts(db))
    return run


def start_pg(tmp: Path):
    from tests.support import postgres

    why = postgres.unavailable_reason()
    if why:
        return None, why
    base = Path(tempfile.mkdtemp(prefix="bh-storm-pg-", dir="/tmp"))
    base.chmod(0o755)
    inst = postgres.PostgresInstance(str(base / "pg"))
    os.makedirs(inst.base_dir)
    inst.start()
    return inst, None


def pg_database(inst, name: str) -> str:
    import psycopg

    from bounce_handler import settings
    from bounce_handler.store import engine

    url = inst.create_database(name)
    with psycopg.connect(inst.dsn("postgres"), autocommit=True) as conn:
        # The fixture turns synchronous_commit off for test speed; the bench wants real
        # commits (fsync stays off server-wide: the figure is an upper bound for PG).
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    engine.upgrade(settings.from_dict({"database": {"url": url}}))
    return url


def mode_spool(msgs, conc: int, tmp: Path, inst) -> Run:
    from bounce_handler import settings
    from bounce_handler.cli import caches
    from bounce_handler.store import spool

    url = pg_database(inst, "storm_spool")
    spool_dir = tmp / "spool"
    spool.make_dirs(str(spool_dir))
    cfg = write_config(tmp / "spool.toml", url, f'pg_mode = "spool"\nspool_dir = "{spool_dir}"\n')
    caches.write(settings.load(str(cfg)))
    run = Run("pipe -> spool -> PostgreSQL", len(msgs))
    drain = subprocess.Popen(
        [sys.executable, "-m", "bounce_handler.daemon.drain", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t0 = time.perf_counter()
        spawn_storm(run, handler_argv(cfg), msgs, conc)
        pipe_wall = run.wall
        deadline = time.monotonic() + 600
        while spool.pending(str(spool_dir)) and time.monotonic() < deadline:
            time.sleep(0.05)
        run.wall = time.perf_counter() - t0
    finally:
        drain.terminate()
        drain.wait(30)
    run.note = (
        f"pipe phase alone {len(msgs) / pipe_wall:.1f}/s; drain caught up "
        f"{run.wall - pipe_wall:.1f} s after the last pipe exited"
    )
    count_check_sql(run, *pg_counts(url))
    return run


def mode_direct(msgs, conc: int, tmp: Path, inst) -> Run:
    from bounce_handler import settings
    from bounce_handler.cli import caches

    url = pg_database(inst, "storm_direct")
    cfg = write_config(tmp / "direct.toml", url, 'pg_mode = "direct"\n')
    caches.write(settings.load(str(cfg)))
    run = Run("pipe -> PostgreSQL direct", len(msgs))
    spawn_storm(run, handler_argv(cfg), msgs, conc)
    count_check_sql(run, *pg_counts(url))
    return run


def lmtp_client(path: str, items, run: Run, lock) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    fp = sock.makefile("rb")

    def reply() -> bytes:
        while True:
            line = fp.readline()
            if not line:
                raise ConnectionError("lmtp server closed the connection")
            if line[3:4] != b"-":
                return line

    reply()
    sock.sendall(b"LHLO storm.test\r\n")
    reply()
    for ext, raw in items:
        body = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        body = body.replace(b"\r\n.", b"\r\n..")
        if body.startswith(b"."):
            body = b"." + body
        t = time.perf_counter()
        rcpt = b"bounces+" + ext.encode() + b"@relay.test"
        sock.sendall(b"MAIL FROM:<>\r\nRCPT TO:<" + rcpt + b">\r\nDATA\r\n")
        for _ in range(3):
            reply()
        sock.sendall(body + b".\r\n")
        line = reply()
        dt = time.perf_counter() - t
        word = line.split(b" ")[3].rstrip(b":").decode() if line.startswith(b"250") else "deferred"
        with lock:
            run.latencies.append(dt)
            run.outcomes[word] = run.outcomes.get(word, 0) + 1
    sock.sendall(b"QUIT\r\n")
    reply()
    sock.close()


def mode_lmtp(msgs, conc: int, tmp: Path) -> Run:
    db, cfg = migrated_sqlite(tmp, "storm-lmtp")
    sock = tmp / "lmtp.sock"
    daemon = subprocess.Popen(
        [str(BIN / "bounces"), "--config", str(cfg), "daemon", "--socketmap", "",
         "--lmtp", f"unix:{sock}", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bounces daemon did not start: {daemon.stderr.read().decode()[-500:]}")
            time.sleep(0.05)
        run = Run("LMTP -> bounces daemon -> SQLite", len(msgs))
        lock = threading.Lock()
        shares = [msgs[i::conc] for i in range(conc)]
        t0 = time.perf_counter()
        threads = [
            threading.Thread(target=lmtp_client, args=(str(sock), s, run, lock)) for s in shares
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run.wall = time.perf_counter() - t0
    finally:
        daemon.terminate()
        daemon.wait(30)
    count_check_sql(run, *sqlite_counts(db))
    return run


def mode_postfix(msgs, tmp: Path, maxproc: int) -> Run | str:
    """SMTP -> private Postfix -> pipe(8) -> bounce-handler -> SQLite."""
    import pwd
    import smtplib

    from tests.support import postfix as pf

    why = pf.unavailable_reason()
    if why:
        return why
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="bh-storm-pf-", dir="/tmp"))
    base.chmod(0o755)
    work = base / "work"
    work.mkdir()
    db, cfg = migrated_sqlite(work, "storm-postfix")
    for p in (work, db, cfg):
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    for p in work.iterdir():
        os.chown(p, nobody.pw_uid, nobody.pw_gid)

    class Relay(pf.PostfixInstance):
        def pipe_service_line(self) -> str:
            return super().pipe_service_line().replace(" - 10 pipe", f" - {maxproc} pipe")

    inst = Relay(
        str(base / "postfix"),
        handler_argv=[str(BIN / "bounce-handler"), "--config", str(cfg)],
        extra_main={"default_destination_concurrency_limit": str(maxproc),
                    "smtpd_client_connection_count_limit": "0"},
    )
    inst.start()
    run = Run(f"SMTP -> Postfix -> pipe(maxproc {maxproc}) -> SQLite", len(msgs))
    try:
        t0 = time.perf_counter()

        def submit(share):
            with smtplib.SMTP("127.0.0.1", inst.port, timeout=60) as smtp:
                for ext, raw in share:
                    smtp.sendmail("", [inst.verp_address(ext)], raw)

        shares = [msgs[i::4] for i in range(4)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(submit, shares))
        submitted = time.perf_counter() - t0
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if sqlite_counts(db)[2] >= len(msgs):
                break
            time.sleep(0.2)
        run.wall = time.perf_counter() - t0
        run.note = f"SMTP submission of all {len(msgs)} took {submitted:.1f} s"
        rows, distinct, total = sqlite_counts(db)
        run.outcomes = dict(rows)
        count_check_sql(run, rows, distinct, total)
    finally:
        inst.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return run


# -- report --------------------------------------------------------------------------------


def report(runs: list[Run], bare: Run | None) -> None:
    print()
    print(f"machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}, "
          f"Python {sys.version.split()[0]}")
    head = ("mode", "msgs", "wall s", "per s", "p50 ms", "p99 ms", "x bare", "CPU ms", "x bare")
    print("{:44} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}".format(*head))
    for r in ([bare] if bare else []) + runs:
        ratio = f"{r.rate / bare.rate:6.2f}x" if bare and bare.rate else "-"
        cratio = f"{r.cpu_ms / bare.cpu_ms:6.2f}x" if bare and bare.cpu and r.cpu else "-"
        print(
            f"{r.name:44} {r.n:6d} {r.wall:8.1f} {r.rate:8.1f} "
            f"{r.pct(0.5):8.1f} {r.pct(0.99):8.1f} {ratio:>7} {r.cpu_ms:7.1f} {cratio:>7}"
        )
    for r in runs:
        outcomes = dict(sorted(r.outcomes.items()))
        print(f"\n[{r.name}] outcomes {outcomes}, retried after 75: {r.retries}")
        if r.check:
            print(f"  count check: {r.check}")
        if r.note:
            print(f"  {r.note}")
    cores = os.cpu_count() or 1
    print(f"\nCPU-bound rate on {cores} cores (cores / CPU per bounce; immune to other load):")
    for r in ([bare] if bare else []) + runs:
        if r.cpu:
            print(f"  {r.name:44} {cores / (r.cpu / r.n):8.1f}/s")
    if bare and bare.rate:
        print("\nRatios to the spawn ceiling (target: pipe modes >= 0.5x; LMTP >= 10x the pipe):")
        pipe = next((r for r in runs if r.name.startswith("pipe -> SQLite")), None)
        for r in runs:
            line = f"  {r.name:44} {r.rate / bare.rate:5.2f}x ceiling"
            if pipe and r is not pipe and pipe.rate:
                line += f", {r.rate / pipe.rate:5.2f}x pipe->SQLite"
            print(line)


def children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measured(fn, *args):
    """Run a mode; charge it the CPU of the processes it started and waited for.

    Wall-clock rates on a shared machine move with everyone else's load; CPU seconds per
    bounce do not, so the report gives both (and the CPU-bound rate on this many cores).
    """
    c0 = children_cpu()
    run = fn(*args)
    if isinstance(run, Run):
        run.cpu = children_cpu() - c0
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--modes", default="bare,sqlite,spool,lmtp,direct")
    ap.add_argument("--direct-messages", type=int, default=300,
                    help="messages for pg_mode=direct (it is ~10x slower)")
    ap.add_argument("--bare-messages", type=int, default=2000)
    ap.add_argument("--postfix", action="store_true", help="also through a private Postfix")
    ap.add_argument("--postfix-messages", type=int, default=2000)
    ap.add_argument("--corpus-root", type=Path, default=ROOT,
                    help="build the corpus from this tree's samples/ and tests/data/ "
                    "(default: this one); give two commits' runs the same messages")
    args = ap.parse_args()
    modes = set(args.modes.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="bh-storm-"))
    msgs = corpus(args.messages, args.corpus_root)
    print(f"corpus: {len(msgs)} messages, {sum(len(m) for _, m in msgs) / 1e6:.1f} MB, "
          f"concurrency {args.concurrency}", flush=True)
    runs: list[Run] = []
    bare = None
    inst = None
    try:
        if "bare" in modes:
            bare = measured(mode_bare, min(args.bare_messages, args.messages), args.concurrency)
            print(f"bare: {bare.rate:.1f}/s", flush=True)
        if "sqlite" in modes:
            runs.append(measured(mode_sqlite, msgs, args.concurrency, tmp))
            print(f"sqlite: {runs[-1].rate:.1f}/s", flush=True)
        if "lmtp" in modes:
            runs.append(measured(mode_lmtp, msgs, args.concurrency, tmp))
            print(f"lmtp: {runs[-1].rate:.1f}/s", flush=True)
        if modes & {"spool", "direct"}:
            inst, why = start_pg(tmp)
            if inst is None:
                print(f"PostgreSQL modes skipped: {why}")
            else:
                if "spool" in modes:
                    runs.append(measured(mode_spool, msgs, args.concurrency, tmp, inst))
                    print(f"spool: {runs[-1].rate:.1f}/s", flush=True)
                if "direct" in modes and args.direct_messages:
                    few = msgs[: args.direct_messages]
                    runs.append(measured(mode_direct, few, args.concurrency, tmp, inst))
                    print(f"direct: {runs[-1].rate:.1f}/s", flush=True)
        if args.postfix:
            r = mode_postfix(msgs[: args.postfix_messages], tmp, args.concurrency)
            if isinstance(r, str):
                print(f"postfix mode skipped: {r}")
            else:
                runs.append(r)
        # Bare again at the end: the machine is shared, so the ceiling is the mean of two.
        if bare is not None:
            again = measured(mode_bare, min(args.bare_messages, args.messages), args.concurrency)
            print(f"bare (again): {again.rate:.1f}/s", flush=True)
            bare.latencies += again.latencies
            bare.wall = (bare.wall + again.wall) / 2
            bare.cpu = (bare.cpu + again.cpu) / 2
    finally:
        if inst is not None:
            inst.destroy()
            shutil.rmtree(os.path.dirname(inst.base_dir), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    report(runs, bare)


if __name__ == "__main__":
    main()
