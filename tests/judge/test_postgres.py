"""The same SQL on PostgreSQL (psycopg, paramstyle %s): same flags as on SQLite."""

from __future__ import annotations

import pytest

from bounce_handler.judge.recompute import recompute
from bounce_handler.judge.rules import parse
from bounce_handler.judge.utc import as_datetime
from tests.judge.conftest import PgStream
from tests.judge.test_recompute import history

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg_stream(pg_server, request):
    import psycopg

    from bounce_handler import settings
    from bounce_handler.store import engine

    name = "judge_" + request.node.name.lower()[:40]
    url = pg_server.create_database(name)
    engine.upgrade(settings.from_dict({"database": {"url": url}}))
    conn = psycopg.connect(pg_server.dsn(name), autocommit=True)
    s = PgStream(None, conn=conn)
    yield s
    conn.close()


def snapshot(s) -> tuple:
    flags = [
        (k, subj, st, rule, as_datetime(raised), ev, adv)
        for k, subj, st, rule, raised, ev, adv in s.query(
            "SELECT kind, subject, state, rule, raised_at, evidence, advice FROM flags "
            "ORDER BY kind, subject, raised_at")
    ]
    links = s.query("SELECT f.kind, f.subject, x.event_id FROM flag_evidence x "
                    "JOIN flags f ON f.id = x.flag_id ORDER BY 1, 2, 3")
    return flags, [tuple(r) for r in links]


def test_postgres_gives_the_same_flags_as_sqlite_and_recompute_agrees(pg_stream, stream):
    history(pg_stream)
    history(stream)
    on_pg = snapshot(pg_stream)
    assert len(on_pg[0]) > 20
    assert on_pg == snapshot(stream)
    ids = pg_stream.query("SELECT id, kind, subject, state FROM flags ORDER BY id")
    stats = recompute(pg_stream.conn, pg_stream.rules)
    assert stats["kept"] == len(on_pg[0]) and stats["raised"] == stats["withdrawn"] == 0
    assert snapshot(pg_stream) == on_pg
    assert pg_stream.query("SELECT id, kind, subject, state FROM flags ORDER BY id") == ids
    # A rule change withdraws flags (same ids, out of the live set); undone, restores them.
    stats = recompute(pg_stream.conn, parse({"throttled_destination": {"enabled": False}}))
    gone = [i for i, kind, _, _ in ids if kind == "throttled-destination"]
    assert gone and stats["withdrawn_ids"] == gone
    assert pg_stream.query("SELECT DISTINCT state, cleared_at FROM flags WHERE kind = "
                           "'throttled-destination'") == [("cleared", None)]
    stats = recompute(pg_stream.conn, pg_stream.rules)
    assert stats["restored_ids"] == gone
    assert snapshot(pg_stream) == on_pg
    assert pg_stream.query("SELECT id, kind, subject, state FROM flags ORDER BY id") == ids


def test_lifecycle_on_postgres(pg_stream):
    from bounce_handler.judge import lifecycle

    pg_stream.bounce(as_datetime("2026-11-02 09:00:00"), "gone@example.org")
    (fid,) = pg_stream.query("SELECT id FROM flags")[0]
    lifecycle.ack(pg_stream.conn, fid, as_datetime("2026-11-02 10:00:00"), "root")
    lifecycle.clear(pg_stream.conn, fid, as_datetime("2026-11-02 11:00:00"), "root")
    f = lifecycle.get(pg_stream.conn, fid)
    assert [h["action"] for h in f["history"]] == ["raised", "acked", "cleared"]
    assert f["cleared_at"] == "2026-11-02T11:00:00Z"
    with pytest.raises(lifecycle.FlagError):
        lifecycle.clear(pg_stream.conn, fid, as_datetime("2026-11-02 12:00:00"), "root")


def test_two_relays_raising_the_same_flag_at_once_give_one_flag(pg_stream, pg_server):
    """Relay B evaluates while relay A's raise is uncommitted: B waits, then updates."""
    import threading

    import psycopg

    from bounce_handler.judge.lean import on_recorded

    a = PgStream(None, conn=pg_stream.conn)
    dbname = pg_stream.conn.info.dbname
    b = PgStream(None, conn=psycopg.connect(pg_server.dsn(dbname), autocommit=True))
    b.n = 1000  # distinct message digests
    t = as_datetime("2026-11-02 09:00:00")

    def insert(s, n):
        s.n += 1
        m = [f"{s.n:064d}", t, "test", "", None, None, None, None, None, "bounce", "recorded",
             None, None, 1, False, None, None]
        mid = s.conn.execute(
            "INSERT INTO messages (digest, received_at, source, relay, queue_id, "
            "envelope_sender, envelope_recipient, original_recipient, extension, kind, "
            "disposition, note, detector, size, truncated, header_message_id, subject) VALUES "
            f"({', '.join(['%s'] * 17)}) RETURNING id", m).fetchone()[0]
        ev = {"message_id": mid, "occurred_at": t, "kind": "bounce", "recipient": "gone@x.org",
              "recipient_domain": "x.org", "reason": "userunknown", "status": "5.1.1",
              "hard": True, "verified": True, "sender": f"s{n}@relay.example"}
        ev["id"] = s.conn.execute(
            "INSERT INTO bounce_events (message_id, occurred_at, kind, recipient, "
            "recipient_domain, reason, status, hard, verified, sender, detector) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'test') RETURNING id",
            [ev[k] for k in ("message_id", "occurred_at", "kind", "recipient",
                             "recipient_domain", "reason", "status", "hard", "verified",
                             "sender")]).fetchone()[0]
        return ev

    a.conn.execute("BEGIN")
    out_a = on_recorded(a.conn, [insert(a, 1)], a.rules, t)
    b.conn.execute("BEGIN")
    ev_b = insert(b, 2)
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        out=on_recorded(b.conn, [ev_b], b.rules, t)))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # blocked on A's uncommitted flag row
    a.conn.execute("COMMIT")
    worker.join(10)
    b.conn.execute("COMMIT")
    b.conn.close()
    assert [d.action for d in out_a] == ["raise"]
    assert [d.action for d in result["out"]] == ["update"]
    assert pg_stream.query("SELECT count(*) FROM flags") == [(1,)]
    assert pg_stream.query("SELECT count(*) FROM flag_evidence") == [(2,)]


def test_cli_on_postgres(pg_stream, pg_server, store):
    import json

    pg_stream.bounce(as_datetime("2026-11-02 09:00:00"), "gone@example.org")
    url = pg_server.url(pg_stream.conn.info.dbname)
    store.config.write_text(f'[database]\nurl = "{url}"\n')
    out = store.bounces("flags", "list", "--format", "json")
    assert out.returncode == 0, out.stderr
    flags = json.loads(out.stdout)
    assert [(f["kind"], f["subject"]) for f in flags] == [("dead-recipient", "gone@example.org")]
    out = store.bounces("flags", "clear", str(flags[0]["id"]))
    assert out.returncode == 0, out.stderr
    out = store.bounces("flags", "recompute")
    assert out.returncode == 0 and b"replayed 1 bounce events" in out.stdout, out.stderr
    assert pg_stream.query("SELECT state FROM flags") == [("cleared",)]
