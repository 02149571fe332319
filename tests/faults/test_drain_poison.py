"""A poison message never blocks the spool (issue 14, items 2 and 3), with a real PostgreSQL.

The real ``bounce-handler`` spools (pg_mode = "spool"), the real ``bounces daemon
--drain-once`` drains, as cron would, one process per run.  Before: a NUL in a recipient
domain made PostgreSQL's insert fail with DataError, which the writer reported as "store
unavailable", so the drain stopped its pass at that file, every run, forever (exit 75,
nothing behind it ever reached PostgreSQL); a file the writer failed on for another reason
was moved aside after 3 attempts counted in memory, i.e. never by --drain-once.

Now the writer tells a data error from an outage: the message is stored set aside
(quarantined, with why, raw bytes kept) and the drain goes on; a file even that is refused
goes to bad/ with a NAME.why; other failures are counted in new/NAME.tries across runs.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from bounce_handler import intake
from bounce_handler import settings as settings_mod
from bounce_handler.store import spool
from tests.conftest import SAMPLES, script
from tests.faults.helpers import assert_clean, run_handler, spool_config, variant

pytestmark = pytest.mark.postgresql

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
# The message: a NUL in the recipient's domain, everywhere the DSN names it.
# X-Postfix-Sender names the original sender, not our VERP address: a notice without an
# extension whose X-Postfix-Sender is one would be counted against that token's recipient
# (trust.py: the postmaster copy), and the NUL would only survive in original_recipient.
NUL_DOMAIN = DSN.replace(b"alice@example.net", b"alice@exa\x00mple.net").replace(
    b"X-Postfix-Sender: rfc822; bounces+alice=example.net@relay.example",
    b"X-Postfix-Sender: rfc822; news@corp.example")


def psql(url: str, sql: str, params=None) -> list:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def drain_once(cfg) -> tuple[int, str]:
    proc = subprocess.run(
        [script("bounces"), "--config", str(cfg), "daemon", "--drain-once"],
        capture_output=True, timeout=120,
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


@pytest.fixture
def spooled(tmp_path, pg_url):
    cfg = spool_config(tmp_path, pg_url)
    spool.make_dirs(str(tmp_path / "spool"))
    return cfg, tmp_path / "spool", pg_url


def spool_ordinary(cfg, first: int, n: int) -> None:
    for i in range(first, first + n):
        res = run_handler(cfg, *variant(i, bounces_only=True))[0]
        assert_clean(res)
        assert res.returncode == 0, res.text


def age(path, seconds: int) -> None:
    """Make a spool file the oldest, so the drain meets it first."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))


def test_nul_in_recipient_domain_does_not_wedge_the_drain(spooled):
    cfg, spool_dir, url = spooled
    res = run_handler(cfg, None, NUL_DOMAIN)[0]  # no VERP token: the DSN names the recipient
    assert_clean(res)
    assert res.returncode == 0, res.text
    [poison] = spool.pending(str(spool_dir))
    age(spool_dir / "new" / poison, 60)
    # A file the pipe of an earlier version spooled: rows built without the store's
    # cleaning (a NUL in recipient_domain, as intake.build leaves it), written as is.
    s = settings_mod.load(str(cfg))
    batch, _ = intake.build(NUL_DOMAIN + b"\n", intake.Envelope(), s, 1.8e9)
    assert "\x00" in batch.events[0]["recipient_domain"]
    old = spool_dir / "new" / (batch.message["digest"] + spool.SUFFIX)
    old.write_bytes(spool.dump(batch))
    age(old, 30)
    spool_ordinary(cfg, 0, 3)

    code, out = drain_once(cfg)
    assert code == 0, out
    assert "drained 5, duplicates 0, bad 0, left 0" in out, out
    assert spool.pending(str(spool_dir)) == []
    domains = sorted(d for (d,) in psql(url, "SELECT recipient_domain FROM bounce_events"))
    assert domains.count("exa\ufffdmple.net") == 2  # kept, visibly, never as example.net
    assert psql(url, "SELECT count(*) FROM messages")[0][0] == 5


def test_rows_postgresql_refuses_are_set_aside_not_retried(spooled):
    cfg, spool_dir, url = spooled
    # A constraint of the administrator's (or of a future schema) this message violates.
    psql(url, "ALTER TABLE bounce_events ADD CONSTRAINT no_poison "
              "CHECK (recipient NOT LIKE 'poison%')")
    poison = DSN.replace(b"alice@example.net", b"poison@example.net")
    assert run_handler(cfg, "poison=example.net", poison)[0].returncode == 0
    [name] = spool.pending(str(spool_dir))
    age(spool_dir / "new" / name, 60)
    spool_ordinary(cfg, 10, 2)

    code, out = drain_once(cfg)
    assert code == 0, out
    assert "drained 3, duplicates 0, bad 0, left 0" in out, out
    rows = psql(url, "SELECT m.disposition, q.reason, q.detail, r.message_id IS NOT NULL "
                     "FROM messages m JOIN quarantine q ON q.message_id = m.id "
                     "LEFT JOIN raw_messages r ON r.message_id = m.id")
    [(disposition, reason, detail, raw_kept)] = rows
    assert (disposition, reason, raw_kept) == ("quarantined", "unstorable", True)
    assert "CheckViolation" in detail and "no_poison" in detail
    assert psql(url, "SELECT count(*) FROM bounce_events")[0][0] == 2  # the two others
    # Postfix delivering the same bounce again: a duplicate, not a second row.
    assert run_handler(cfg, "poison=example.net", poison)[0].returncode == 0
    code, out = drain_once(cfg)
    assert code == 0 and "duplicates 1" in out, out
    assert psql(url, "SELECT count(*) FROM messages")[0][0] == 3


def test_a_file_even_the_set_aside_row_of_is_refused_goes_to_bad_with_why(spooled):
    cfg, spool_dir, url = spooled
    poison = DSN.replace(b"alice@example.net", b"dead@example.net")
    assert run_handler(cfg, "dead=example.net", poison)[0].returncode == 0
    [name] = spool.pending(str(spool_dir))
    age(spool_dir / "new" / name, 60)
    digest = name[: -len(spool.SUFFIX)]
    psql(url, f"ALTER TABLE messages ADD CONSTRAINT no_digest CHECK (digest <> '{digest}')")
    spool_ordinary(cfg, 20, 2)

    code, out = drain_once(cfg)
    assert code == 0, out
    assert "drained 2, duplicates 0, bad 1, left 0" in out, out
    bad = sorted(os.listdir(spool_dir / "bad"))
    assert bad == [name, name + ".why"]
    why = (spool_dir / "bad" / (name + ".why")).read_text()
    assert "unstorable" in why and "no_digest" in why
    assert psql(url, "SELECT count(*) FROM messages")[0][0] == 2


def test_attempt_counts_survive_separate_drain_runs(spooled):
    cfg, spool_dir, url = spooled
    # A damaged batch (a time that is not a number) the writer fails on every time, for
    # no reason PostgreSQL gives: counted, and set aside after MAX_ATTEMPTS runs.
    s = settings_mod.load(str(cfg))
    ext, raw = variant(30, bounces_only=True)
    batch, _ = intake.build(raw, intake.Envelope(extension=ext), s, 1.8e9)
    assert batch.events
    batch.now = "garbage"
    damaged = spool_dir / "new" / (batch.message["digest"] + spool.SUFFIX)
    damaged.write_bytes(spool.dump(batch))
    age(damaged, 60)
    spool_ordinary(cfg, 31, 2)

    tries = spool_dir / "new" / (damaged.name + ".tries")
    code, out = drain_once(cfg)  # run 1: the two others go through
    assert code == 75 and "drained 2" in out and "left 1" in out, out
    # One run retries a file once per pass (drain_all makes a second pass after progress),
    # i.e. at most twice: only a count kept across runs reaches MAX_ATTEMPTS (3).
    first = int(tries.read_text())
    assert 1 <= first < 3
    code, out = drain_once(cfg)  # run 2: the count goes on from the file
    assert code == 0, out
    assert "bad 1, left 0" in out, out
    assert sorted(os.listdir(spool_dir / "new")) == []  # .tries removed with it
    assert sorted(os.listdir(spool_dir / "bad")) == [damaged.name, damaged.name + ".why"]
    why = (spool_dir / "bad" / (damaged.name + ".why")).read_text()
    assert "failed 3 times" in why and "ValueError" in why
    assert psql(url, "SELECT count(*) FROM messages")[0][0] == 2
