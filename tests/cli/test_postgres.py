"""The administrator's verbs on a PostgreSQL store (several relays sharing one database).

The rows are copied over from the SQLite store the pipe filled (the PostgreSQL intake path
is the spool and the daemon, tested elsewhere); what is tested here is that every query
of report, show, alert, export, suppress and prune is valid PostgreSQL and gives the same
answers.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.cli.conftest import DEAD, RULES, SPAMMER

pytestmark = pytest.mark.postgresql

TABLES = ("messages", "raw_messages", "bounce_events", "quarantine", "flags", "flag_events",
          "flag_evidence")


@pytest.fixture
def pg_store(pg_server, populated, tmp_path):
    from sqlalchemy import MetaData, insert, text

    from bounce_handler import settings
    from bounce_handler.store import engine as store_engine
    from tests.conftest import Store

    url = pg_server.create_database("report_cli")
    cfg = settings.from_dict({"database": {"url": url}})
    store_engine.upgrade(cfg)
    eng = store_engine.make_engine(cfg)
    meta = MetaData()
    meta.reflect(eng)
    src = sqlite3.connect(populated.db)
    src.row_factory = sqlite3.Row
    with eng.begin() as conn:
        for name in TABLES:
            table = meta.tables[name]
            rows = [dict(r) for r in src.execute(f"SELECT * FROM {name}")]
            bools = [c.name for c in table.columns if str(c.type) == "BOOLEAN"]
            for r in rows:
                for b in bools:
                    if r[b] is not None:
                        r[b] = bool(r[b])
            if rows:
                conn.execute(insert(table), rows)
            if "id" in table.c:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                  f"(SELECT max(id) FROM {name}))"))
    src.close()
    eng.dispose()
    s = Store(tmp_path / "pg")
    s.root.mkdir()
    s.url = url
    s.write_config(RULES)
    return s


def test_report_alert_export_on_postgresql(pg_store, populated):
    for by in ("sender", "recipient", "domain", "reason", "status", "day", "hour"):
        pg = pg_store.bounces("report", "--since", "7d", "--by", by, "--format", "json")
        lite = populated.bounces("report", "--since", "7d", "--by", by, "--format", "json")
        assert pg.returncode == 0, pg.stderr.decode()
        a, b = json.loads(pg.stdout), json.loads(lite.stdout)
        assert [(g["key"], g["count"]) for g in a["groups"]] == [
            (g["key"], g["count"]) for g in b["groups"]]
        assert a["totals"] == b["totals"] and a["flags_live"] == b["flags_live"] == 8
        # Severity order, the digest and the windowed evidence as it stands now, alike.
        assert [(f["kind"], f["subject"], f["evidence"], f["evidence_now"])
                for f in a["flags"]] == [(f["kind"], f["subject"], f["evidence"],
                                          f["evidence_now"]) for f in b["flags"]]
        assert a["flags"][0]["kind"] == "compromised-sender"
        assert a["dead_recipients"] == b["dead_recipients"]
    table = pg_store.bounces("report", "--by", "sender")
    assert table.returncode == 0 and b"Live flags: 8" in table.stdout

    show = json.loads(pg_store.bounces("show", "1", "--format", "json").stdout)
    assert show["recipient"] == DEAD[0] and {f["kind"] for f in show["flags"]} == {
        "dead-recipient", "compromised-sender"}

    first = pg_store.bounces("alert", "--via", "stdout")
    assert first.returncode == 2, first.stderr.decode()
    assert f"compromised-sender: {SPAMMER}" in first.stdout.decode()
    assert pg_store.bounces("alert", "--via", "stdout").returncode == 1

    assert pg_store.bounces("suppress", "add", "recipient", "manual@example.org").returncode == 0
    exported = pg_store.bounces("export", "dead-recipients", "--format", "json")
    values = [e["value"] for e in json.loads(exported.stdout)["entries"]]
    assert values == DEAD + ["manual@example.org"]

    dry = pg_store.bounces("prune", "--older-than", "2d", "--dry-run")
    assert dry.returncode == 0 and b"would delete 3 messages" in dry.stdout
    done = pg_store.bounces("prune", "--older-than", "2d")
    assert done.returncode == 0, done.stderr.decode()
    assert b"deleted 3 messages (3 events)" in done.stdout
