"""PostgreSQL killed mid-storm and restarted (a private server on loopback).

direct mode: every invocation that cannot reach the server exits 75 (Postfix keeps the
message), and after the restart Postfix's redeliveries record each message exactly once.
spool mode: the pipe never talks to the server, so every invocation exits 0 with the
bounce safe in the spool; the drain keeps the files while the server is down and moves
each into PostgreSQL exactly once after it is back.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler.daemon.drain import DrainService
from bounce_handler.store import spool
from tests.faults.helpers import assert_clean, run_handler, variant

pytestmark = pytest.mark.postgresql

N = 24
CONCURRENCY = 6


def pg_rows(url: str) -> tuple[int, int]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        distinct = conn.execute("SELECT count(DISTINCT digest) FROM messages").fetchone()[0]
    return total, distinct


def write_config(tmp_path, url: str, mode: str):
    cfg = tmp_path / f"{mode}.toml"
    cfg.write_text(
        f'[database]\nurl = "{url}"\npg_mode = "{mode}"\nspool_dir = "{tmp_path / "spool"}"\n'
        '[log]\ntarget = "stderr"\n[intake]\nrelay = "test-relay"\n'
    )
    return cfg


def storm_with_outage(cfg, pg_server, msgs):
    """Deliver `msgs` CONCURRENCY at a time; stop the server a third of the way through
    and start it again two thirds through. Returns the exit status of each delivery."""
    results = [None] * len(msgs)
    started = [0]
    lock = threading.Lock()

    def deliver(i):
        with lock:
            started[0] += 1
        res = run_handler(cfg, *msgs[i])[0]
        assert_clean(res)
        results[i] = res.returncode
        return res.returncode

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        futures = [pool.submit(deliver, i) for i in range(len(msgs))]
        while started[0] < len(msgs) // 3:
            time.sleep(0.01)
        pg_server.stop(mode="immediate")  # a crash, not a clean shutdown
        while started[0] < 2 * len(msgs) // 3:
            time.sleep(0.01)
        down_codes = [run_handler(cfg, *m)[0].returncode for m in msgs[:2]]  # surely down
        pg_server.start()
        for f in futures:
            f.result()
    return results, down_codes


def test_direct_mode_outage_is_75_and_redelivery_records_each_once(tmp_path, pg_server, pg_url):
    cfg = write_config(tmp_path, pg_url, "direct")
    msgs = [variant(i) for i in range(N)]
    results, down_codes = storm_with_outage(cfg, pg_server, msgs)
    assert down_codes == [75, 75]
    assert set(results) <= {0, 75}
    # Postfix retries every deferred message (and may retry delivered ones after a crash).
    for i, code in enumerate(results):
        if code == 75:
            res = run_handler(cfg, *msgs[i])[0]
            assert res.returncode == 0, res.text
    for m in msgs[:3]:
        assert run_handler(cfg, *m)[0].stdout.startswith(b"duplicate: ")
    assert pg_rows(pg_url) == (N, N)


def test_spool_mode_outage_keeps_everything_and_drains_each_once(tmp_path, pg_server, pg_url):
    cfg = write_config(tmp_path, pg_url, "spool")
    spool.make_dirs(str(tmp_path / "spool"))
    s = settings_mod.load(str(cfg))
    msgs = [variant(i) for i in range(N)]
    svc = DrainService(s)
    # The first third is drained while the server is up, then the server dies.
    for m in msgs[: N // 3]:
        assert run_handler(cfg, *m)[0].returncode == 0
    assert svc.drain_all().drained == N // 3
    pg_server.stop(mode="immediate")
    try:
        for m in msgs[N // 3 :]:
            res = run_handler(cfg, *m)[0]
            assert res.returncode == 0, res.text  # the pipe does not need the server
        stats = svc.drain_all()
        assert stats.error and stats.drained == 0
        assert len(spool.pending(s.database.spool_dir)) == N - N // 3
    finally:
        pg_server.start()
    stats = svc.drain_all()
    assert stats.error is None and stats.drained == N - N // 3
    assert spool.pending(s.database.spool_dir) == []
    # A redelivery after the drain is a duplicate in PostgreSQL, not a second row.
    assert run_handler(cfg, *msgs[0])[0].returncode == 0
    assert svc.drain_all().duplicates == 1
    assert pg_rows(pg_url) == (N, N)


def test_password_in_url_never_shown(tmp_path, pg_server, pg_url):
    url = pg_url.replace("bounce@", "bounce:Sup3rS3cretPw@")
    cfg = write_config(tmp_path, url.replace(str(pg_server.port), "1"), "direct")
    res = run_handler(cfg, *variant(1, bounces_only=True))[0]
    assert res.returncode == 75
    assert b"Sup3rS3cretPw" not in res.stdout + res.stderr


def test_lmtp_into_postgresql_is_451_while_down_then_recorded_once(tmp_path, pg_server, pg_url):
    from bounce_handler.daemon.lmtp import LmtpService
    from tests.faults.helpers import lmtp_session

    cfg = write_config(tmp_path, pg_url, "spool")  # pg_mode concerns the pipe only
    svc = LmtpService(settings_mod.load(str(cfg)), f"unix:{tmp_path / 'l.sock'}")
    svc.start()
    sock = str(tmp_path / "l.sock")
    msgs = [variant(i, bounces_only=True) for i in range(3)]
    tx = [("", [f"bounces+{e}@relay.example"], raw) for e, raw in msgs]
    try:
        assert all(r[0].startswith("250 ") for r in lmtp_session(sock, tx[:1]))
        pg_server.stop(mode="immediate")
        try:
            down = lmtp_session(sock, tx)
        finally:
            pg_server.start()
        assert all(r[0].startswith("451 4.3.0 ") for r in down), down
        again = lmtp_session(sock, tx)
        assert [r[0].split()[3] for r in again] == ["duplicate:", "recorded:", "recorded:"]
    finally:
        svc.stop()
    assert pg_rows(pg_url) == (3, 3)


def test_daemon_writer_keeps_one_connection_and_replaces_it_after_a_restart(
    tmp_path, pg_server, pg_url
):
    """The drain's and LMTP's writer reuses one backend for every message; when the server
    restarts under it, the next message goes through a new connection at once (no exit 75,
    no back-off), and nothing is written twice."""
    from bounce_handler import intake
    from bounce_handler.store import pg

    s = settings_mod.from_dict(
        {"database": {"url": pg_url, "pg_mode": "direct"}, "intake": {"relay": "r"}}
    )
    writer = pg.writer_for_settings(s, keep_connection=True)
    pids = []
    for i in range(3):
        ext, raw = variant(i, bounces_only=True)
        out = intake.process(raw, intake.Envelope(extension=ext), s, 1_795_000_000.0 + i,
                             writer=writer)
        assert out.name == "recorded", out.detail
        pids.append(writer._conn.info.backend_pid)
    assert len(set(pids)) == 1  # one backend served all three

    pg_server.stop(mode="immediate")
    pg_server.start()
    ext, raw = variant(3, bounces_only=True)
    out = intake.process(raw, intake.Envelope(extension=ext), s, 1_795_000_010.0, writer=writer)
    assert out.name == "recorded", out.detail
    assert writer._conn.info.backend_pid not in pids
    writer.close()
    assert writer._conn is None
    assert pg_rows(pg_url) == (4, 4)


def test_pipe_writer_does_not_keep_its_connection(pg_url):
    from bounce_handler import intake
    from bounce_handler.store import pg

    s = settings_mod.from_dict(
        {"database": {"url": pg_url, "pg_mode": "direct"}, "intake": {"relay": "r"}}
    )
    writer = pg.writer_for_settings(s)
    ext, raw = variant(0, bounces_only=True)
    out = intake.process(raw, intake.Envelope(extension=ext), s, 1_795_000_000.0, writer=writer)
    assert out.name == "recorded"
    assert writer._conn is None
