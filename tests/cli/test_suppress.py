"""`bounces suppress`: manual entries in, out, imported; they show up in exports."""

from __future__ import annotations

import csv
import io
import json

from tests.cli.conftest import DEAD, on_terminal


def entries(store, *args) -> list[dict]:
    proc = store.bounces("suppress", "list", *args, "--format", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_add_remove_list(store):
    proc = store.bounces("suppress", "add", "recipient", "<Alice@Example.NET>", "--note", "gone")
    assert proc.returncode == 0 and b"added: recipient Alice@example.net" in proc.stdout
    again = store.bounces("suppress", "add", "recipient", "Alice@example.net")
    assert again.returncode == 0 and b"already there" in again.stdout
    store.bounces("suppress", "add", "sender", "spammer@shop.example")
    rows = entries(store)
    assert [(r["kind"], r["value"], r["note"]) for r in rows] == [
        ("recipient", "Alice@example.net", "gone"), ("sender", "spammer@shop.example", None)]
    assert [r["value"] for r in entries(store, "--kind", "sender")] == ["spammer@shop.example"]
    table = store.bounces("suppress", "list").stdout.decode()
    assert "Suppressions: 2" in table and "Alice@example.net" in table
    assert store.bounces("suppress", "remove", "recipient", "alice@EXAMPLE.net").returncode == 0
    gone = store.bounces("suppress", "remove", "recipient", "alice@example.net")
    assert gone.returncode == 1 and b"no recipient entry" in gone.stderr
    assert len(entries(store)) == 1


def test_bad_values_are_refused(store):
    proc = store.bounces("suppress", "add", "recipient", "two words@example.net")
    assert proc.returncode == 65 and b"whitespace" in proc.stderr
    proc = store.bounces("suppress", "add", "recipient", "#comment")
    assert proc.returncode == 65


def test_import_plain_list_from_stdin(store):
    text = b"# old list\nold1@example.net\n\nold2@Example.Net,bounced for years\n"
    proc = store.bounces("suppress", "import", "--kind", "recipient", "-", input=text)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"imported 2 entries: 2 new, 0 already there" in proc.stdout
    rows = entries(store)
    assert [(r["value"], r["note"], r["source"]) for r in rows] == [
        ("old1@example.net", None, "import"), ("old2@example.net", "bounced for years", "import")]
    no_kind = store.bounces("suppress", "import", "-", input=b"x@example.net\n")
    assert no_kind.returncode == 65 and b"--kind" in no_kind.stderr


def test_export_csv_imports_back_into_another_store(populated, store, tmp_path):
    exported = populated.bounces("export", "dead-recipients", "--format", "csv").stdout
    f = tmp_path / "dead.csv"
    f.write_bytes(exported)
    proc = store.bounces("suppress", "import", str(f))
    assert proc.returncode == 0, proc.stderr.decode()
    assert [r["value"] for r in entries(store)] == sorted(DEAD)
    # ... and they are exported from there as manual entries.
    out = store.bounces("export", "dead-recipients", "--format", "csv").stdout.decode()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["value"] for r in rows) == sorted(DEAD)
    assert {r["source"] for r in rows} == {"import"}


def test_import_shows_a_progress_bar_on_a_terminal_only(store, tmp_path):
    f = tmp_path / "many.txt"
    f.write_text("".join(f"user{i}@example.net\n" for i in range(300)))
    status, out = on_terminal(store, "suppress", "import", "--kind", "recipient", str(f))
    assert status == 0
    assert b"importing" in out and b"/300" in out  # rich's bar: "importing ━━━ 120/300"
    assert b"imported 300 entries: 300 new" in out
    piped = store.bounces("suppress", "import", "--kind", "recipient", str(f))
    assert b"importing" not in piped.stdout + piped.stderr
    assert b"0 new, 300 already there" in piped.stdout
