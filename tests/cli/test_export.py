"""`bounces export`: access maps the real postmap accepts, and CSV/JSON lists."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess

import pytest

from tests.cli.conftest import DEAD, SPAMMER

POSTMAP = "/usr/sbin/postmap"


def postfix_dir(tmp_path) -> str:
    """A configuration directory for postmap -c (it reads main.cf; no /etc/postfix needed)."""
    d = tmp_path / "postfix-etc"
    d.mkdir(exist_ok=True)
    (d / "main.cf").write_text("compatibility_level = 3.6\n")
    return str(d)


def need_postmap():
    if not os.access(POSTMAP, os.X_OK):
        from tests.support.services import require

        require("postfix", f"{POSTMAP} not found (Debian package postfix)")


def lookup(config_dir: str, key: str, table: str) -> str | None:
    proc = subprocess.run([POSTMAP, "-c", config_dir, "-q", key, f"hash:{table}"],
                          capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr  # 1: not found
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_dead_recipients_map_is_accepted_by_postmap_and_looked_up(populated, tmp_path):
    need_postmap()
    etc = postfix_dir(tmp_path)
    populated.bounces("suppress", "add", "recipient", "Manual@Example.ORG", "--note", "left")
    out = tmp_path / "maps" / "dead_recipients"
    out.parent.mkdir()
    proc = populated.bounces("export", "dead-recipients", "-o", str(out), "-c", etc)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "maps" / "dead_recipients.db").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["dead_recipients",
                                                            "dead_recipients.db"]
    for address in DEAD:
        got = lookup(etc, address, str(out))
        assert got and got.startswith("REJECT 5.1.1 Recipient address known to bounce (flag #")
    # Postfix folds the lookup key's case (the domain part is what the store lower-cases).
    assert lookup(etc, DEAD[0].upper(), str(out)).startswith("REJECT 5.1.1")
    assert lookup(etc, "Manual@example.org", str(out)) == (
        "REJECT 5.1.1 Recipient address known to bounce (manual: left)")
    assert lookup(etc, "alive@example.net", str(out)) is None
    assert lookup(etc, SPAMMER, str(out)) is None


def test_discard_action(populated, tmp_path):
    proc = populated.bounces("export", "dead-recipients", "--action", "discard")
    lines = [ln for ln in proc.stdout.decode().splitlines() if not ln.startswith("#")]
    assert len(lines) == len(DEAD)
    assert all(ln.split("\t")[1].startswith("DISCARD recipient known to bounce") for ln in lines)
    bad = populated.bounces("export", "dead-recipients", "--action", "hold")
    assert bad.returncode == 64 and "does not apply" in bad.stderr.decode()


def test_compromised_senders_hold_map(populated, tmp_path):
    need_postmap()
    etc = postfix_dir(tmp_path)
    out = tmp_path / "compromised"
    proc = populated.bounces("export", "compromised-senders", "-o", str(out), "-c", etc)
    assert proc.returncode == 0, proc.stderr.decode()
    assert lookup(etc, SPAMMER, str(out)) == "HOLD sender flagged as compromised (flag #6 R3)"
    # Re-export after the flag is cleared: the map follows, replaced in place.
    populated.bounces("flags", "clear", "6")
    assert populated.bounces("export", "compromised-senders", "-o", str(out), "-c",
                             etc).returncode == 0
    assert lookup(etc, SPAMMER, str(out)) is None


def test_sasl_key_maps_senders_to_their_logins(populated):
    # The deferral sample was submitted by SASL login "mallory": a manual entry for that
    # sender exports under the login check_sasl_access looks up.
    populated.bounces("suppress", "add", "sender", "mallory")
    proc = populated.bounces("export", "compromised-senders", "--key", "sasl")
    body = [ln for ln in proc.stdout.decode().splitlines() if not ln.startswith("#")]
    assert body == ["mallory\tHOLD sender flagged as compromised (manual)"]
    # The flagged sender has no recorded login: said on stderr, not silently dropped, and
    # the exit status says the map is incomplete (issue 16: it used to be 0).
    assert f"flag #6 ({SPAMMER}): no SASL login recorded" in proc.stderr.decode()
    assert proc.returncode == 1, proc.stderr
    assert "the map is incomplete: 1 compromised sender(s)" in proc.stderr.decode()


def test_sasl_map_with_no_login_at_all_is_an_error_written_to_the_file(populated, tmp_path):
    # No login for the one flagged sender and no manual entry: the map holds nothing, and
    # that must not look like success to cron or systemd.
    out = tmp_path / "compromised_senders"
    proc = populated.bounces("export", "compromised-senders", "--key", "sasl", "--no-postmap",
                             "--quiet", "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    assert [ln for ln in out.read_text().splitlines() if not ln.startswith("#")] == []
    err = proc.stderr.decode()
    assert "the map is incomplete" in err and "wrote" not in err  # --quiet: no summary
    # Keyed by envelope sender, the same flag is exportable: 0.
    proc = populated.bounces("export", "compromised-senders", "--no-postmap", "--quiet",
                             "-o", str(out))
    assert proc.returncode == 0 and proc.stderr == b""
    assert f"{SPAMMER}\tHOLD" in out.read_text()


def test_csv_and_json(populated, tmp_path):
    populated.bounces("suppress", "add", "recipient", "manual@example.org")
    proc = populated.bounces("export", "dead-recipients", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode())))
    assert [r["value"] for r in rows] == DEAD + ["manual@example.org"]
    assert {r["kind"] for r in rows} == {"recipient"}
    assert rows[-1]["source"] == "manual" and rows[0]["source"].startswith("flag #")
    out = tmp_path / "dead.json"
    assert populated.bounces("export", "dead-recipients", "--format", "json", "-o",
                             str(out)).returncode == 0
    doc = json.loads(out.read_text())
    assert doc["export"] == "dead-recipients" and len(doc["entries"]) == len(DEAD) + 1
    assert not (tmp_path / "dead.json.db").exists()  # only postfix maps are postmap-ed


def test_unwritable_output_is_a_clear_error(populated, tmp_path):
    proc = populated.bounces("export", "dead-recipients", "-o", str(tmp_path / "no" / "x"),
                             "--no-postmap")
    # 73 (EX_CANTCREAT), not 1: 1 now means "written, but incomplete" (--key sasl).
    assert proc.returncode == 73
    err = proc.stderr.decode()
    assert "cannot write" in err and "Traceback" not in err
    # A missing directory (the cron jobs' maps/ before install.sh made it) names the fix.
    assert f"create the directory: install -d -m 0755 {tmp_path / 'no'}" in err


@pytest.mark.parametrize("what", ["dead-recipients", "compromised-senders"])
def test_export_of_an_empty_store_is_a_valid_empty_map(store, tmp_path, what):
    need_postmap()
    etc = postfix_dir(tmp_path)
    out = tmp_path / what
    assert store.bounces("export", what, "-o", str(out), "-c", etc).returncode == 0
    assert lookup(etc, "anyone@example.net", str(out)) is None
