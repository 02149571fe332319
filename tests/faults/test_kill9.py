"""kill -9 of the handler at random points: no half-written bounce, no duplicate after redelivery.

A pipe process can die anywhere (OOM killer, an administrator's kill, a power cut on
the process level); Postfix then sees a signal, defers, and redelivers the same queue
file.  The store must hold either the whole message (message row, raw copy, every event)
or nothing, and the redelivery must leave exactly one.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time

from bounce_handler.store import spool
from tests.conftest import script
from tests.faults.helpers import padded, run_handler, spool_config

KILLS = 10


def _kill_at(config, ext: str, data: bytes, delay: float) -> int | None:
    """Start a handler, SIGKILL it after `delay` s (if still running); its exit status."""
    proc = subprocess.Popen(
        [script("bounce-handler"), "--config", str(config), "--", ext],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    time.sleep(delay)
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait(30)


def _storm_of_kills(config, seed: int):
    rng = random.Random(seed)
    msgs = [padded(100 + i, 3 * 1024 * 1024) for i in range(KILLS)]
    # How long one full run takes here: the kills are spread over it, weighted towards
    # the end where the write happens (a uniform spread would mostly hit the parse).
    t0 = time.monotonic()
    assert run_handler(config, *padded(99, 3 * 1024 * 1024))[0].returncode == 0
    full = time.monotonic() - t0
    statuses = []
    for i, (ext, data) in enumerate(msgs):
        delay = rng.uniform(0, full) if i % 3 == 0 else rng.uniform(0.6 * full, 1.1 * full)
        statuses.append(_kill_at(config, ext, data, delay))
    return msgs, statuses


def test_sqlite_kill9_leaves_whole_messages_or_nothing(store):
    msgs, statuses = _storm_of_kills(store.config, seed=9)
    assert any(s == -signal.SIGKILL for s in statuses)  # the kills did land
    conn = sqlite3.connect(store.db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Every message row has its raw copy and its events: no half-written bounce.
        half = conn.execute(
            "SELECT m.id FROM messages m WHERE m.disposition = 'recorded' AND ("
            " NOT EXISTS (SELECT 1 FROM raw_messages r WHERE r.message_id = m.id) OR"
            " NOT EXISTS (SELECT 1 FROM bounce_events e WHERE e.message_id = m.id))"
        ).fetchall()
        assert half == []
    finally:
        conn.close()
    # Postfix redelivers every killed message: each ends up exactly once.
    for ext, data in msgs:
        res = run_handler(store.config, ext, data)[0]
        assert res.returncode == 0, res.text
        assert res.stdout.startswith((b"recorded: ", b"duplicate: "))
    again = [run_handler(store.config, ext, data)[0].stdout[:10] for ext, data in msgs[:3]]
    assert again == [b"duplicate:"] * 3
    dup = store.query("SELECT digest, count(*) FROM messages GROUP BY digest HAVING count(*) > 1")
    assert dup == []
    assert store.query("SELECT count(*) FROM messages")[0][0] == KILLS + 1
    assert store.query("SELECT count(*) FROM bounce_events")[0][0] >= KILLS + 1


def test_spool_kill9_leaves_only_complete_files(tmp_path):
    cfg = spool_config(tmp_path, "postgresql+psycopg://bounce@127.0.0.1:1/none")
    spool_dir = str(tmp_path / "spool")
    spool.make_dirs(spool_dir)
    msgs, statuses = _storm_of_kills(cfg, seed=10)
    assert any(s == -signal.SIGKILL for s in statuses)
    for name in spool.pending(spool_dir):
        with open(os.path.join(spool_dir, "new", name), "rb") as fp:
            batch = spool.load(fp.read())  # complete and readable, or absent
        assert batch.message["digest"] + spool.SUFFIX == name
    for ext, data in msgs:
        assert run_handler(cfg, ext, data)[0].returncode == 0
    assert len(spool.pending(spool_dir)) == KILLS + 1
