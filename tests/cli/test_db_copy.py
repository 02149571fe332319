"""Issue 16 item 4: `bounces db copy`, SQLite -> real PostgreSQL -> SQLite.

A SQLite store is filled through the real intake path (parse, classify, the lean writer,
the judge raising flags) with a few thousand events, then the administrator's verbs add
suppressions, acks, clears and an alert run.  It is copied into a private PostgreSQL and
back into a new SQLite file; at each end every table has the same rows (ids included) and
`bounces report`, `flags list` and `show` print the same.  Also: a second run copies
nothing new, a run killed with SIGKILL mid-table finishes when started again with no
duplicate, PostgreSQL's sequences continue past the copied ids (the pipe records the next
bounce there), and a target holding another store's rows is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Store, script
from tests.faults.helpers import variant

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

MESSAGES = 3600
RULES = """
[rules.dead_recipient]
include_unverified = true
[rules.compromised_sender]
include_unverified = true
max_bounces = 40
max_domains = 0
jump_min = 0
[rules.throttled_destination]
include_unverified = true
min_deferrals = 3
"""
# Three days back: no rule window reaches "now", so a report run a minute later at the
# other end counts exactly the same.
T0 = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(
    days=3)
PERIOD = ("--since", (T0 - timedelta(hours=1)).isoformat(),
          "--until", (T0 + timedelta(hours=4)).isoformat())
TABLES_SQL = "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'"


def fill(store: Store) -> None:
    """MESSAGES messages through intake.process (the pipe's path, in-process for speed)."""
    from bounce_handler import intake
    from bounce_handler import settings as settings_mod

    settings = settings_mod.load(str(store.config))
    t0 = T0.replace(tzinfo=UTC).timestamp()
    for i in range(MESSAGES):
        ext, raw = variant(i)
        # Several local senders, so there are several compromised-sender flags.
        raw = raw.replace(b"news@shop.example", f"news{i % 7}@shop.example".encode())
        out = intake.process(raw, intake.Envelope(extension=ext), settings, t0 + i * 3,
                             source="pipe")
        assert out.name in ("recorded", "ignored", "quarantined"), out.detail
    lines = "\n".join(f"old{n}@example.com,import {n}" for n in range(300))
    assert store.bounces("suppress", "import", "--kind", "recipient", "-",
                         input=lines.encode()).returncode == 0
    assert store.bounces("suppress", "add", "sender", "=evil@x.example").returncode == 0
    ids = [r[0] for r in store.query("SELECT id FROM flags ORDER BY id")]
    assert store.bounces("flags", "ack", *map(str, ids[:5]), "--note", "seen").returncode == 0
    assert store.bounces("flags", "clear", *map(str, ids[5:8])).returncode == 0
    assert store.bounces("alert", "--via", "stdout").returncode == 2


@pytest.fixture(scope="module")
def source(tmp_path_factory, _migrated_template) -> Store:
    # On tmpfs when there is one: the pipe's writer fsyncs every message (synchronous =
    # FULL), which is not what this test is about and costs a minute on a shared disk.
    import tempfile

    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    root = tempfile.mkdtemp(prefix="bh-copy-", dir=shm) if shm else str(
        tmp_path_factory.mktemp("copy-source"))
    from pathlib import Path

    s = Store(Path(root))
    shutil.copy(_migrated_template, s.db)
    s.write_config(RULES)
    try:
        fill(s)
        yield s
    finally:
        shutil.rmtree(root, ignore_errors=True)


def pg_config(root, url: str, extra: str = "") -> Store:
    s = Store(root)
    root.mkdir(exist_ok=True)
    s.url = url
    s.write_config(RULES + extra)
    return s


def counts_sqlite(store: Store) -> dict[str, tuple[int, int]]:
    conn = sqlite3.connect(store.db)
    try:
        names = [r[0] for r in conn.execute(TABLES_SQL)]
        return {n: conn.execute(f'SELECT count(*), coalesce(max(rowid), 0) FROM "{n}"')
                .fetchone() for n in names}
    finally:
        conn.close()


def counts_pg(url: str) -> dict[str, tuple[int, int]]:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url).set(drivername="postgresql")
    with psycopg.connect(u.render_as_string(hide_password=False)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename != 'alembic_version'")]
        out = {}
        for n in names:
            key = {"raw_messages": "message_id", "alert_state": None, "alert_marks": None,
                   "flag_evidence": "event_id"}.get(n, "id")
            top = f"coalesce(max({key}), 0)" if key else "0"
            out[n] = tuple(conn.execute(f'SELECT count(*), {top} FROM "{n}"').fetchone())
        return out


def same_counts(a: dict, b: dict) -> None:
    # alert_state's and alert_marks' keys are text or composite: compare their counts only
    # (rowid means nothing there).
    assert set(a) == set(b)
    for name in a:
        if name in ("alert_state", "alert_marks", "flag_evidence"):
            assert a[name][0] == b[name][0], name
        else:
            assert a[name] == b[name], (name, a[name], b[name])


def views(store: Store) -> dict[str, str]:
    """What the administrator sees, from `store`'s config."""
    env = {"COLUMNS": "140"}
    out = {}
    for name, args in {
        "report": ("report", *PERIOD, "--by", "sender"),
        "report-json": ("report", *PERIOD, "--by", "recipient", "--top", "50",
                        "--format", "json"),
        "report-csv": ("report", *PERIOD, "--by", "domain", "--format", "csv"),
        "flags": ("flags", "list", "--state", "all"),
        "show": ("show", "1234", "--format", "json"),
        "suppress": ("suppress", "list", "--format", "csv"),
    }.items():
        proc = subprocess.run([script("bounces"), *args], capture_output=True,
                              env={**store.env(), **env}, timeout=300)
        assert proc.returncode == 0, (name, proc.stderr)
        out[name] = proc.stdout.decode()
    return out


def copy(store: Store, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return store.bounces("db", "copy", *args, timeout=timeout)


def test_sqlite_to_postgresql_and_back(source, pg_server, tmp_path):
    before = counts_sqlite(source)
    assert before["bounce_events"][0] >= 2000 and before["flags"][0] >= 500
    assert before["suppressions"][0] == 301 and before["alert_state"][0] == 1
    assert before["flag_evidence"][0] > 0 and before["quarantine"][0] > 0
    expected = views(source)
    assert "compromised-sender" in expected["flags"]

    url = pg_server.create_database("copy_there")
    proc = copy(source, "--to", url, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["verified"] and all(t["ok"] for t in doc["tables"])
    assert {t["name"] for t in doc["tables"]} >= {
        "messages", "raw_messages", "bounce_events", "quarantine", "flags", "flag_events",
        "flag_evidence", "alert_state", "suppressions"}
    same_counts(before, counts_pg(url))
    pg = pg_config(tmp_path / "pg", url)
    assert views(pg) == expected

    # Idempotent: a second run adds nothing, and still verifies.
    proc = copy(source, "--to", url, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    again = {t["name"]: t for t in json.loads(proc.stdout)["tables"]}
    assert again["bounce_events"]["copied"] == 0 and again["raw_messages"]["copied"] == 0
    same_counts(before, counts_pg(url))

    # And back, into a new SQLite file: the same again.
    back = Store(tmp_path / "back")
    back.root.mkdir()
    back.write_config(RULES)
    proc = copy(back, "--from", url, "--to", back.url)
    assert proc.returncode == 0, proc.stderr
    assert "verified: every table" in proc.stdout.decode()
    same_counts(before, counts_sqlite(back))
    assert views(back) == expected

    # PostgreSQL's sequences continue past the copied ids: new rows through the CLI, and
    # the next bounce through the pipe writing PostgreSQL itself.
    assert pg.bounces("suppress", "add", "recipient", "new@example.org").returncode == 0
    direct = pg_config(tmp_path / "pg-direct", url)
    direct.config.write_text(direct.config.read_text().replace(
        f'url = "{url}"', f'url = "{url}"\npg_mode = "direct"'))
    ext, raw = variant(MESSAGES + 1, bounces_only=True)
    res = direct.handler("--", ext, input=raw)
    assert res.returncode == 0 and res.stdout.startswith(b"recorded: "), res.stdout + res.stderr
    after = counts_pg(url)
    assert after["messages"] == (before["messages"][0] + 1, before["messages"][1] + 1)
    assert after["suppressions"][0] == before["suppressions"][0] + 1
    # A later run brings the SQLite copy up to date (the new rows, nothing twice).
    proc = copy(back, "--from", url, "--to", back.url)
    assert proc.returncode == 0, proc.stderr
    same_counts(after, counts_sqlite(back))


def test_killed_mid_copy_finishes_when_run_again(source, pg_server):
    url = pg_server.create_database("copy_resume")
    total = counts_sqlite(source)["messages"][0]
    proc = subprocess.Popen([script("bounces"), "db", "copy", "--to", url, "--batch", "10"],
                            env=source.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    copied = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with psycopg.connect(dsn) as conn:
                copied = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        except psycopg.Error:  # the schema is not there yet
            copied = 0
        if copied >= 200:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    with psycopg.connect(dsn) as conn:
        mid = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert 200 <= mid < total  # really interrupted half-way

    done = copy(source, "--to", url)
    assert done.returncode == 0, done.stderr
    same_counts(counts_sqlite(source), counts_pg(url))
    with psycopg.connect(dsn) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT digest) FROM messages"
                                   ).fetchone()
    assert n == distinct == total
    # The copy's own line for messages: only what was left was copied this time.
    m = re.search(r"^messages\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)", done.stdout.decode(), re.M)
    assert m and int(m.group(3).replace(",", "")) == total - mid


def test_a_target_holding_another_store_is_refused(source, pg_server, tmp_path,
                                                   _migrated_template):
    url = pg_server.create_database("copy_foreign")
    other = Store(tmp_path / "other")
    other.root.mkdir()
    shutil.copy(_migrated_template, other.db)
    other.write_config(RULES)
    for i in range(5):
        ext, raw = variant(i, bounces_only=True)
        assert other.handler("--", ext, input=raw.replace(b"Tue, 24", b"Wed, 25")
                             ).returncode == 0
    assert copy(other, "--to", url).returncode == 0
    proc = copy(source, "--to", url)
    assert proc.returncode == 65, proc.stdout + proc.stderr
    assert "holds rows that are not this source's" in proc.stderr.decode()
    # The source must be at head, and a store cannot be copied onto itself.
    proc = copy(source, "--to", source.url)
    assert proc.returncode == 64 and b"the source store itself" in proc.stderr


def test_postgresql_refusing_a_row_names_it(pg_server, tmp_path, _migrated_template):
    # An old SQLite store may hold a NUL in text (issue 14 item 2); PostgreSQL cannot.
    s = Store(tmp_path / "nul")
    s.root.mkdir()
    shutil.copy(_migrated_template, s.db)
    s.write_config(RULES)
    ext, raw = variant(0, bounces_only=True)
    assert s.handler("--", ext, input=raw).returncode == 0
    conn = sqlite3.connect(s.db)
    conn.execute("UPDATE bounce_events SET recipient_domain = ?", ("exa\x00mple.net",))
    conn.commit()
    conn.close()
    url = pg_server.create_database("copy_nul")
    proc = copy(s, "--to", url)
    assert proc.returncode == 65, proc.stderr
    assert "bounce_events (id=1): the target refused this row" in proc.stderr.decode()
