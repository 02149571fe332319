"""`bounces prune`: old rows and old raw copies go, flags and recent rows stay."""

from __future__ import annotations

from tests.cli.conftest import DEAD, DEFERRED, FULL, checkpoint


def counts(store) -> dict[str, int]:
    return {t: store.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("messages", "bounce_events", "raw_messages", "quarantine", "flags",
                      "flag_evidence")}


def test_dry_run_deletes_nothing(populated):
    before = counts(populated)
    proc = populated.bounces("prune", "--older-than", "2d", "--dry-run")
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"would delete {len(FULL)} messages" in proc.stdout.decode()
    assert counts(populated) == before


def test_prune_rows_older_than(populated):
    before = counts(populated)
    proc = populated.bounces("prune", "--older-than", "2d")
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"deleted {len(FULL)} messages ({len(FULL)} events)" in proc.stdout.decode()
    after = counts(populated)
    assert after["messages"] == before["messages"] - len(FULL)
    assert after["bounce_events"] == len(DEAD) + len(DEFERRED)
    assert after["raw_messages"] == before["raw_messages"] - len(FULL)  # cascaded
    assert after["flags"] == before["flags"]  # flags are history: they stay
    left = populated.query("SELECT DISTINCT reason FROM bounce_events")
    assert ("mailboxfull",) not in left
    # Nothing more is older than two days: a second run is a no-op.
    again = populated.bounces("prune", "--older-than", "2d")
    assert "deleted 0 messages" in again.stdout.decode()


def test_raw_copies_follow_raw_retention_days(populated):
    text = populated.config.read_text()
    populated.config.write_text(text.replace("[intake]\n", "[intake]\nraw_retention_days = 1\n"))
    import sqlite3

    # Make the quarantined message's copy old too: its bytes are all there is of it.

    conn = sqlite3.connect(populated.db)
    conn.execute("UPDATE raw_messages SET stored_at = '2000-01-01 00:00:00.000000' "
                 "WHERE message_id = (SELECT message_id FROM quarantine)")
    conn.commit()
    conn.close()
    checkpoint(populated.db)
    before = counts(populated)
    proc = populated.bounces("prune", "--older-than", "180d")
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"and {len(FULL)} more raw copies" in proc.stdout.decode()
    after = counts(populated)
    assert after["messages"] == before["messages"]  # rows stay
    assert after["bounce_events"] == before["bounce_events"]
    assert after["raw_messages"] == before["raw_messages"] - len(FULL)
    assert populated.query(
        "SELECT count(*) FROM raw_messages WHERE message_id = (SELECT message_id FROM quarantine)"
    ) == [(1,)]
    # --raw-older-than overrides the setting: now everything but the quarantined copy goes.
    populated.bounces("prune", "--older-than", "180d", "--raw-older-than", "0d")
    assert counts(populated)["raw_messages"] == 1


def test_bad_age_is_a_usage_error(populated):
    proc = populated.bounces("prune", "--older-than", "soon")
    assert proc.returncode == 64 and "not a duration" in proc.stderr.decode()
