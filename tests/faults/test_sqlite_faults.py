"""SQLite store faults: locked, read-only, disk full -> exit 75, then recorded exactly once."""

from __future__ import annotations

import os
import shutil
import sqlite3

from tests.faults.helpers import assert_clean, padded, run_handler, spool_config, variant


def counts(db) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        return (
            conn.execute("SELECT count(*) FROM messages").fetchone()[0],
            conn.execute("SELECT count(DISTINCT digest) FROM messages").fetchone()[0],
        )
    finally:
        conn.close()


def integrity(db) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_long_transaction_lock_is_75_then_recorded_once_after_release(store):
    ext, raw = variant(1, bounces_only=True)
    blocker = sqlite3.connect(store.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # a long writer, e.g. `bounces prune` on a big table
    try:
        res, wall, _ = run_handler(store.config, ext, raw)
        assert_clean(res)
        assert res.returncode == 75
        assert b"locked for more than 2s" in res.stdout
        assert str(store.db).encode() in res.stdout  # names the file
        assert 1.5 < wall < 10  # waited for busy_timeout (2 s in the test config), no more
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert counts(store.db) == (0, 0)
    # Postfix retries the same queue file: recorded once, then a duplicate.
    first, _, _ = run_handler(store.config, ext, raw)
    again, _, _ = run_handler(store.config, ext, raw)
    assert (first.returncode, again.returncode) == (0, 0)
    assert first.stdout.startswith(b"recorded: ")
    assert again.stdout.startswith(b"duplicate: ")
    assert counts(store.db) == (1, 1)


def test_read_only_file_system_is_75_then_recorded_after_remount(store, small_fs):
    # Root ignores file modes, so "read-only" is made real: the store on a ro mount.
    small_fs.umount()
    small_fs.size = "8m"
    assert small_fs.mount() is None
    db = small_fs.path / "bounces.db"
    shutil.copy(store.db, db)
    cfg = store.root / "ro.toml"
    cfg.write_text(store.config.read_text().replace(str(store.db), str(db)))
    small_fs.remount("ro")
    ext, raw = variant(2, bounces_only=True)
    res, _, _ = run_handler(cfg, ext, raw)
    assert_clean(res)
    assert res.returncode == 75
    assert str(db).encode() in res.stdout
    assert b"read-only" in res.stdout or b"cannot open" in res.stdout
    small_fs.remount("rw")
    assert counts(db) == (0, 0)
    res, _, _ = run_handler(cfg, ext, raw)
    assert res.returncode == 0 and res.stdout.startswith(b"recorded: ")
    assert counts(db) == (1, 1)


def test_disk_full_is_75_and_database_stays_intact(store, small_fs):
    db = small_fs.path / "bounces.db"
    shutil.copy(store.db, db)  # ~150 KiB of schema on a 1 MiB file system
    cfg = store.root / "full.toml"
    cfg.write_text(store.config.read_text().replace(str(store.db), str(db)))
    ok_ext, ok_raw = variant(3, bounces_only=True)
    assert run_handler(cfg, ok_ext, ok_raw)[0].returncode == 0
    ext, raw = padded(4, 2 * 1024 * 1024)  # its compressed copy cannot fit
    res, _, _ = run_handler(cfg, ext, raw)
    assert_clean(res)
    assert res.returncode == 75
    assert b"disk full" in res.stdout or b"full" in res.stdout
    assert integrity(db) == "ok"
    assert counts(db) == (1, 1)  # the earlier bounce is still there, nothing half-written
    # Space comes back (the big message moves on once smaller ones are out of the way):
    # a small message records normally and the file is still sound.
    ext5, raw5 = variant(5, bounces_only=True)
    assert run_handler(cfg, ext5, raw5)[0].returncode == 0
    assert integrity(db) == "ok"
    assert counts(db) == (2, 2)


def test_spool_on_a_full_disk_is_75_and_leaves_no_partial_file(tmp_path, small_fs):
    cfg = spool_config(tmp_path, "postgresql+psycopg://bounce@127.0.0.1:1/none")
    spool = small_fs.path / "spool"
    for sub in ("tmp", "new"):
        (spool / sub).mkdir(parents=True)
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "spool"), str(spool)))
    ext, raw = padded(6, 2 * 1024 * 1024)
    res, _, _ = run_handler(cfg, ext, raw)
    assert_clean(res)
    assert res.returncode == 75
    assert b"disk full" in res.stdout
    assert os.listdir(spool / "new") == []
    assert os.listdir(spool / "tmp") == []  # the partial write was removed
    ext, raw = variant(7, bounces_only=True)
    res, _, _ = run_handler(cfg, ext, raw)
    assert res.returncode == 0
    assert len(os.listdir(spool / "new")) == 1


def test_missing_or_unwritable_spool_is_75_naming_the_directory(tmp_path):
    cfg = spool_config(tmp_path, "postgresql+psycopg://bounce@127.0.0.1:1/none")
    ext, raw = variant(8, bounces_only=True)
    res, _, _ = run_handler(cfg, ext, raw)
    assert_clean(res)
    assert res.returncode == 75
    assert f"spool directory {tmp_path / 'spool' / 'tmp'} does not exist".encode() in res.stdout
