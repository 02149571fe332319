"""Recompute over a million bounce rows: time, rate and peak memory, against a plain scan.

    .venv/bin/python bench/recompute_bench.py            # 1,000,000 events
    .venv/bin/python bench/recompute_bench.py --events 100000 --keep /tmp/b.db

Builds a migrated SQLite store in a temp dir (alembic, then executemany: ~30 days of a
busy relay with 2,000 senders, 200,000 recipients, a few spam runs and throttling bursts),
then runs, each in a fresh child process so ru_maxrss is its own:

* baseline: one full scan of bounce_events joined to messages (what any replay must read);
* recompute: judge.recompute.recompute with the default rules (run it again with --keep
  on the same file to time a recompute that keeps every flag it finds).

Prints both times, the ratio recompute/scan, events per second and peak RSS.  Also prints
the cold import cost of judge/lean.py (the pipe's share of the engine) against bare
`python -c pass`.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta

FMT = "%Y-%m-%d %H:%M:%S.%f"
T0 = datetime(2026, 10, 1)
REASONS = [
    ("userunknown", "5.1.1", 1, 30),
    ("mailboxfull", "4.2.2", 0, 20),
    ("undefined", "4.4.1", 0, 10),
    ("hostunknown", "5.1.2", 1, 5),
    ("blocked", "5.7.1", 1, 10),
    ("spamdetected", "5.7.1", 1, 10),
    ("expired", "4.4.7", 0, 10),
    ("ratelimited", "4.7.0", 0, 5),
]


def generate(path: str, n: int, seed: int = 1) -> float:
    import sqlite3

    from bounce_handler import settings
    from bounce_handler.store import engine
    from bounce_handler.store.lean import EVENT_COLUMNS, MESSAGE_COLUMNS

    engine.upgrade(settings.from_dict({"database": {"url": f"sqlite:///{path}"}}))
    started = time.monotonic()
    rnd = random.Random(seed)
    weights = [w for *_, w in REASONS]
    domains = [f"d{i}.example" for i in range(5000)]
    domains += ["gmail.com", "yahoo.com", "outlook.com"] * 500
    senders = [f"user{i}@relay.example" for i in range(2000)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    span = 30 * 86400
    msg_sql = (f"INSERT INTO messages (id, {', '.join(MESSAGE_COLUMNS)}) "
               f"VALUES ({', '.join('?' * (len(MESSAGE_COLUMNS) + 1))})")
    ev_sql = (f"INSERT INTO bounce_events (id, {', '.join(EVENT_COLUMNS)}) "
              f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})")
    batch_m, batch_e = [], []
    blast_at = {int(n * f) for f in (0.2, 0.5, 0.8)}
    i = 0
    while i < n:
        at = T0 + timedelta(seconds=span * i / n)
        ts = at.strftime(FMT)
        if blast_at and i >= min(blast_at):  # a spam run: 3,000 bounces for one sender
            blast_at.remove(min(blast_at))
            who = senders[rnd.randrange(2000)]
            burst = [(who, f"v{k}@{domains[rnd.randrange(5000)]}", "spamdetected", "5.7.1", 1,
                      None) for k in range(3000)]
        elif rnd.random() < 0.002:  # a Yahoo throttling burst
            burst = [(senders[rnd.randrange(2000)], f"y{rnd.randrange(10**6)}@yahoo.com",
                      "undefined", "4.7.0", 0, "421 4.7.0 [TSS04] Messages temporarily deferred")
                     for _ in range(20)]
        else:
            reason, status, hard, _ = rnd.choices(REASONS, weights)[0]
            burst = [(senders[int(rnd.paretovariate(1.2)) % 2000],
                      f"r{rnd.randrange(200_000)}@{domains[rnd.randrange(len(domains))]}",
                      reason, status, hard, None)]
        for k, (sender, rcpt, reason, status, hard, diag) in enumerate(burst[: n - i]):
            i += 1
            ts_k = (at + timedelta(seconds=k * 0.2)).strftime(FMT) if len(burst) > 1 else ts
            m = {"digest": f"{i:064x}", "received_at": ts_k, "source": "bench", "relay": "",
                 "kind": "bounce", "disposition": "recorded", "size": 2000, "truncated": 0}
            batch_m.append([i] + [m.get(c) for c in MESSAGE_COLUMNS])
            e = {"message_id": i, "occurred_at": ts_k,
                 "kind": "delay" if status.startswith("4.7") else "bounce",
                 "recipient": rcpt, "recipient_domain": rcpt.rpartition("@")[2],
                 "status": status, "reason": reason, "hard": hard, "diagnostic": diag,
                 "detector": "bench", "sender": sender, "verified": 0 if rnd.random() < 0.03 else 1}
            batch_e.append([i] + [e.get(c) for c in EVENT_COLUMNS])
        if len(batch_m) >= 50_000:
            conn.executemany(msg_sql, batch_m)
            conn.executemany(ev_sql, batch_e)
            batch_m, batch_e = [], []
    conn.executemany(msg_sql, batch_m)
    conn.executemany(ev_sql, batch_e)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return time.monotonic() - started


def child(mode: str, path: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    started = time.monotonic()
    if mode == "scan":
        n = 0
        for _row in conn.execute(
            "SELECT e.*, m.received_at FROM bounce_events e JOIN messages m ON m.id = e.message_id"
        ):
            n += 1
        extra = f"rows={n}"
    elif mode == "hot":
        extra = hot_path(conn)
    else:
        from bounce_handler.judge.recompute import recompute
        from bounce_handler.judge.rules import defaults

        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            if done[0] % 100_000 < n:
                print(f"  recompute: {done[0]:,} events, {time.monotonic() - started:.0f}s",
                      file=sys.stderr, flush=True)

        stats = recompute(conn, defaults(), progress)
        flags = dict(conn.execute("SELECT kind, count(*) FROM flags GROUP BY kind").fetchall())
        kept = "".join(f" {k}={stats[k]}" for k in ("kept", "changed", "withdrawn", "restored")
                       if k in stats)
        extra = f"events={stats['events']} raised={stats['raised']}{kept} flags={flags}"
    elapsed = time.monotonic() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{elapsed:.3f} {rss:.1f} {extra}")


def hot_path(conn, n: int = 300) -> str:
    """on_recorded for one new bounce at a time, as the pipe calls it (rolled back after)."""
    from bounce_handler.judge.lean import on_recorded
    from bounce_handler.judge.rules import defaults
    from bounce_handler.store.lean import (
        EVENT_COLUMNS,
        INSERT_EVENT,
        INSERT_MESSAGE,
        MESSAGE_COLUMNS,
    )

    rules = defaults()
    rnd = random.Random(5)
    last = conn.execute("SELECT max(occurred_at) FROM bounce_events").fetchone()[0]
    now = datetime.fromisoformat(last) + timedelta(minutes=1)
    senders = [r[0] for r in conn.execute(
        "SELECT sender FROM bounce_events GROUP BY sender ORDER BY count(*) DESC LIMIT 50")]
    times = []
    for i in range(n):
        reason, status, hard, _ = rnd.choice(REASONS)
        rcpt = f"r{rnd.randrange(200_000)}@d{rnd.randrange(5000)}.example"
        ts = now.strftime(FMT)
        conn.execute("BEGIN IMMEDIATE")
        m = {"digest": f"hot{i}", "received_at": ts, "source": "bench", "relay": "",
             "kind": "bounce", "disposition": "recorded", "size": 1, "truncated": 0}
        mid = conn.execute(INSERT_MESSAGE, [m.get(c) for c in MESSAGE_COLUMNS]).lastrowid
        e = {"message_id": mid, "occurred_at": ts, "kind": "bounce", "recipient": rcpt,
             "recipient_domain": rcpt.rpartition("@")[2], "status": status, "reason": reason,
             "hard": hard, "detector": "bench", "sender": rnd.choice(senders), "verified": 1}
        e["id"] = conn.execute(INSERT_EVENT, [e.get(c) for c in EVENT_COLUMNS]).lastrowid
        t = time.perf_counter()
        on_recorded(conn, [e], rules, now)
        times.append(time.perf_counter() - t)
        conn.execute("ROLLBACK")
    times.sort()
    return (f"median={times[n // 2] * 1e6:.0f}us p99={times[int(n * 0.99)] * 1e6:.0f}us "
            f"max={times[-1] * 1e6:.0f}us over {n} single-bounce calls")


def run_child(mode: str, path: str) -> tuple[float, float, str]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, path],
                         stdout=subprocess.PIPE, text=True, check=True)
    secs, rss, extra = out.stdout.strip().split(" ", 2)
    return float(secs), float(rss), extra


def cold(code: str, runs: int = 15) -> float:
    # As installed: with .pyc files (pip compiles them; PYTHONDONTWRITEBYTECODE, set in
    # some shells, would make every run compile the sources instead).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        best = min(best, time.perf_counter() - t)
    return best


# What the pipe imports for a standard DSN anyway (store/lean.py loads the sqlite3 C module
# alone; no re, no datetime), without and with the engine (and its rules parsed).
PIPE_BASE = (
    "import bounce_handler.pipe, bounce_handler.intake, bounce_handler.parse, "
    "bounce_handler.classify, bounce_handler.verp, bounce_handler.store.lean, "
    "bounce_handler.settings as s; s.defaults()"
)
PIPE_JUDGE = PIPE_BASE + "; from bounce_handler.judge.lean import hook_for_settings as h; " \
    "h(s.defaults())"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--keep", help="use/keep the database at this path")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--generate", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.generate:
        secs = generate(args.generate, args.events)
        print(f"generated {args.events:,} bounce events in {secs:.1f}s "
              f"({os.path.getsize(args.generate) / 2**20:.0f} MiB)")
        return
    tmp = None
    path = args.keep
    if path is None:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "bench.db")
    if not os.path.exists(path):
        # In a child too: ru_maxrss survives fork+exec on Linux, so the measuring children
        # must come from a parent that never held SQLAlchemy and the generated rows.
        subprocess.run([sys.executable, __file__, "--events", str(args.events),
                        "--generate", path], check=True)
    scan_s, scan_rss, scan_extra = run_child("scan", path)
    rec_s, rec_rss, rec_extra = run_child("recompute", path)
    hot_s, hot_rss, hot_extra = run_child("hot", path)
    n = args.events
    print(f"hot path on_recorded after recompute: {hot_extra}")
    print(f"baseline full scan:  {scan_s:8.2f}s  peak RSS {scan_rss:7.1f} MiB  ({scan_extra})")
    print(f"recompute:           {rec_s:8.2f}s  peak RSS {rec_rss:7.1f} MiB  ({rec_extra})")
    print(f"recompute/scan ratio {rec_s / scan_s:.1f}x, {n / rec_s:,.0f} events/s, "
          f"{rec_s / n * 1e6:.0f} us/event")
    bare = cold("pass")
    base = cold(PIPE_BASE)
    judged = cold(PIPE_JUDGE)
    print(f"cold start: bare python {bare * 1000:.1f} ms, pipe imports {base * 1000:.1f} ms, "
          f"+ judge.lean with rules parsed {judged * 1000:.1f} ms "
          f"(engine adds {(judged - base) * 1000:.1f} ms; {judged / bare:.2f}x bare python)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
