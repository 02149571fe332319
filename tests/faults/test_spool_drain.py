"""The pipe's spool and the daemon's drain, store-agnostic parts (real files, real SQLite).

The drain normally writes into PostgreSQL (tests/faults/test_pg_faults.py); its writer is
injectable, so the file handling -- oldest first, delete only after commit, keep
everything while the store is down, bad files aside -- is proven here against a real
SQLite store with the same ``record(batch) -> (id, created)`` interface.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler.daemon.drain import DrainService
from bounce_handler.errors import StoreUnavailable
from bounce_handler.store import spool
from bounce_handler.store.lean import SqliteWriter
from tests.faults.helpers import assert_clean, run_handler, spool_config, variant


@pytest.fixture
def spooled(tmp_path, store):
    """(settings, sqlite store) with a spool-mode config whose spool exists."""
    cfg = spool_config(tmp_path, "postgresql+psycopg://bounce:pw@127.0.0.1:1/none")
    spool.make_dirs(str(tmp_path / "spool"))
    return settings_mod.load(str(cfg)), cfg, store


def sqlite_factory(store):
    return lambda s: SqliteWriter(str(store.db), 2.0)


def rows(store) -> tuple[int, int]:
    return (
        store.query("SELECT count(*) FROM messages")[0][0],
        store.query("SELECT count(DISTINCT digest) FROM messages")[0][0],
    )


def test_spool_file_round_trips_the_batch(spooled):
    from bounce_handler import intake

    s, _, _ = spooled
    ext, raw = variant(1, bounces_only=True)
    batch, outcome = intake.build(raw, intake.Envelope(extension=ext), s, 1_800_000_000.5)
    again = spool.load(spool.dump(batch))
    assert again.message == batch.message
    assert again.raw == batch.raw
    assert again.events == batch.events
    assert again.quarantine == batch.quarantine
    assert again.now == batch.now
    with pytest.raises(spool.SpoolFormatError):
        spool.load(b"BHSPOOL1\n" + b"\x00garbage")
    with pytest.raises(spool.SpoolFormatError):
        spool.load(spool.dump(batch)[:-7])  # truncated


def test_pipe_spools_then_drain_records_each_exactly_once(spooled):
    s, cfg, store = spooled
    msgs = [variant(i) for i in range(12)]
    for ext, raw in msgs:
        res, _, _ = run_handler(cfg, ext, raw)
        assert_clean(res)
        assert res.returncode == 0
    # Redelivery while still spooled: a duplicate, no second file.
    res, _, _ = run_handler(cfg, *msgs[0])
    assert res.stdout.startswith(b"duplicate: ")
    assert len(spool.pending(s.database.spool_dir)) == 12
    svc = DrainService(s, writer_factory=sqlite_factory(store))
    stats = svc.drain_all()
    assert (stats.drained, stats.duplicates, stats.bad, stats.error) == (12, 0, 0, None)
    assert spool.pending(s.database.spool_dir) == []
    assert rows(store) == (12, 12)
    # Redelivery after the drain: spooled again, drained as a duplicate, still one row.
    assert run_handler(cfg, *msgs[3])[0].returncode == 0
    stats = svc.drain_all()
    assert (stats.drained, stats.duplicates) == (0, 1)
    assert rows(store) == (12, 12)
    dispositions = dict(store.query("SELECT disposition, count(*) FROM messages GROUP BY 1"))
    assert dispositions.get("recorded", 0) >= 6
    assert dispositions.get("ignored", 0) >= 2 and dispositions.get("quarantined", 0) >= 2


def test_store_down_keeps_every_file_and_drains_after_recovery(spooled):
    s, cfg, store = spooled
    for i in range(5):
        assert run_handler(cfg, *variant(i, bounces_only=True))[0].returncode == 0
    hidden = store.db.with_suffix(".away")
    os.rename(store.db, hidden)  # the store is gone (PostgreSQL down, in production)
    svc = DrainService(s, writer_factory=sqlite_factory(store))
    stats = svc.drain_once()
    assert stats.error and "does not exist" in stats.error
    assert (stats.drained, stats.left) == (0, 5)
    assert len(spool.pending(s.database.spool_dir)) == 5
    os.rename(hidden, store.db)
    stats = svc.drain_all()
    assert (stats.drained, stats.error) == (5, None)
    assert rows(store) == (5, 5)


def test_commit_then_crash_before_unlink_is_a_duplicate_not_a_second_row(spooled):
    s, cfg, store = spooled
    assert run_handler(cfg, *variant(1, bounces_only=True))[0].returncode == 0
    [name] = spool.pending(s.database.spool_dir)
    path = os.path.join(s.database.spool_dir, "new", name)
    keep = path + ".copy"
    shutil.copy(path, keep)
    DrainService(s, writer_factory=sqlite_factory(store)).drain_all()
    os.rename(keep, path)  # as if the daemon died between COMMIT and unlink
    stats = DrainService(s, writer_factory=sqlite_factory(store)).drain_all()
    assert (stats.drained, stats.duplicates) == (0, 1)
    assert rows(store) == (1, 1)
    assert spool.pending(s.database.spool_dir) == []


def test_unreadable_file_goes_to_bad_and_does_not_block_the_rest(spooled):
    s, cfg, store = spooled
    assert run_handler(cfg, *variant(1, bounces_only=True))[0].returncode == 0
    junk = os.path.join(s.database.spool_dir, "new", "0" * 64 + spool.SUFFIX)
    with open(junk, "wb") as fp:
        fp.write(b"not a batch")
    os.utime(junk, ns=(1, 1))  # oldest: drained first
    stats = DrainService(s, writer_factory=sqlite_factory(store)).drain_all()
    assert (stats.drained, stats.bad) == (1, 1)
    bad = os.path.join(s.database.spool_dir, "bad")
    name = os.path.basename(junk)
    assert sorted(os.listdir(bad)) == [name, name + ".why"]
    with open(os.path.join(bad, name + ".why")) as fp:
        assert "bad magic" in fp.read()  # kept with why
    assert rows(store) == (1, 1)


def test_a_writer_that_keeps_failing_moves_the_file_aside_after_max_attempts(spooled):
    s, cfg, store = spooled
    assert run_handler(cfg, *variant(2, bounces_only=True))[0].returncode == 0

    class Broken:
        def record(self, batch, judge=None):
            raise ValueError("value PostgreSQL rejects")

    svc = DrainService(s, writer_factory=lambda s: Broken())
    for _ in range(3):
        svc.drain_once()
    assert spool.pending(s.database.spool_dir) == []
    bad = sorted(os.listdir(os.path.join(s.database.spool_dir, "bad")))
    assert len(bad) == 2 and bad[1] == bad[0] + ".why"
    assert os.listdir(os.path.join(s.database.spool_dir, "new")) == []  # no .tries left


def test_drain_service_thread_backs_off_while_down_and_catches_up(spooled):
    s, cfg, store = spooled
    state = {"down": True}

    def factory(_s):
        if state["down"]:
            raise StoreUnavailable("connection refused (test)")
        return SqliteWriter(str(store.db), 2.0)

    svc = DrainService(s, writer_factory=factory)
    svc.start()
    try:
        for i in range(4):
            assert run_handler(cfg, *variant(i, bounces_only=True))[0].returncode == 0
        time.sleep(0.5)
        assert svc.backoff >= 1.0
        assert len(spool.pending(s.database.spool_dir)) == 4
        state["down"] = False
        deadline = time.monotonic() + 20
        while spool.pending(s.database.spool_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        svc.stop()
    assert spool.pending(s.database.spool_dir) == []
    assert rows(store) == (4, 4)


def test_bounces_daemon_drain_once_reports_and_exits_75_when_store_down(spooled):
    s, cfg, store = spooled
    assert run_handler(cfg, *variant(1, bounces_only=True))[0].returncode == 0
    proc = store.bounces("--config", str(cfg), "daemon", "--drain-once")
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 75, out
    assert "left 1" in out
    assert ":pw@" not in out and "pw" not in out.split("left 1", 1)[1]  # no password
    assert len(spool.pending(s.database.spool_dir)) == 1
    conn = sqlite3.connect(store.db)
    conn.close()


def test_daemon_runs_the_drain_only_in_spool_mode(spooled, store):
    from bounce_handler.cli.daemon import services_for

    s, _, _ = spooled
    names = [svc.name for svc in services_for(s, socketmap="", lmtp="")]
    assert names == ["spool-drain"]
    direct = settings_mod.from_dict({"database": {"url": s.database.url, "pg_mode": "direct"}})
    assert services_for(direct, socketmap="", lmtp="") == []
    sqlite = settings_mod.load(str(store.config))
    assert services_for(sqlite, socketmap="", lmtp="") == []


def test_pipe_in_spool_mode_imports_no_driver(spooled):
    """The point of the spool: the pipe process never loads psycopg (or anything heavy)."""
    import subprocess
    import sys

    s, cfg, _ = spooled
    settings_mod.write_cache(s)  # what `bounces` leaves beside the config: no tomllib
    ext, raw = variant(1, bounces_only=True)
    code = (
        "import sys, io\n"
        "from bounce_handler import pipe\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO({raw!r}))\n"
        f"rc = pipe.main(['--config', {str(cfg)!r}, '--', {ext!r}])\n"
        "heavy = ('psycopg', 'sqlalchemy', 'alembic', 'structlog', 'asyncio', 'json', 'email',"
        " 'flufl', 'dataclasses', 'typing', 'argparse')\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in heavy), rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY [] 0" in proc.stdout, proc.stdout + proc.stderr
    assert len(spool.pending(s.database.spool_dir)) == 1
