"""Issue 14 item 6: bounce text reaches no terminal and no spreadsheet in clear.

Hostile values are recorded through the real ``bounce-handler`` (a local sender with ESC
sequences in the bounced copy's From:, a diagnostic with an OSC 8 link, a screen clear,
an 8-bit CSI and a bidi override, an extension with an OSC title, recipients that are
spreadsheet formulas), then every verb that prints them runs for real, on a
pseudo-terminal where it matters.  What must never come out: the sequences themselves.
What must: their visible form (``\\x1b[2J``), so the administrator still sees that the
bounce carried them.  Rich's own colours (``ESC[1m`` ...) are ours and allowed.

One more store is written with SQL, the way a store written before the storage cleaning
(issue 14 item 2) may look: the display must not rely on the store being clean.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from tests.cli.conftest import KEY_FILE, on_terminal, token
from tests.conftest import Store

ESC = "\x1b"
CLEAR = f"{ESC}[2J"
TITLE = f"{ESC}]0;pwned\x07"
LINK = f"{ESC}]8;;http://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\"
CSI8 = "\x9b31m"  # an 8-bit CSI: some terminals obey it as ESC [
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE ("Trojan Source")

# The bytes none of the outputs may contain (as UTF-8 on the terminal).
FORBIDDEN = [s.encode() for s in (CLEAR, f"{ESC}]0;", f"{ESC}]8;", CSI8, RLO)]

HOSTILE_SENDER = f"n{CLEAR}ws{TITLE}@shop.example"
HOSTILE_DIAG = f"550 5.1.1 user unknown {LINK} {CLEAR}{CSI8}{RLO}gnp.exe"
FORMULA = '=HYPERLINK("http://evil.example/x","click")@x.example'
MINUS = "-2+3@x.example"
PLAIN = "plain@example.net"
HOSTILE_EXTENSION = f"plain{TITLE}=example.net"

RULES = f"""
[verp]
key_file = "{KEY_FILE}"
[rules.dead_recipient]
include_unverified = true
[rules.compromised_sender]
include_unverified = true
max_bounces = 3
max_domains = 0
jump_min = 0
"""


def dsn(rcpt: str, sender: str, diag: str) -> bytes:
    """A Postfix-style DSN for `rcpt`, whose returned headers name `sender` in From:."""
    return f"""Return-Path: <>
Delivered-To: bounces+{token(rcpt)}@relay.example
From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces+{token(rcpt)}@relay.example
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=utf-8

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; {diag}

--B
Content-Type: text/rfc822-headers

Return-Path: <bounces+{token(rcpt)}@relay.example>
From: <{sender}>
To: {rcpt}
Subject: offers

--B--
""".encode()


def feed(store: Store, extension: str, raw: bytes) -> str:
    proc = store.handler("--", extension, input=raw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.decode()


@pytest.fixture(scope="module")
def _hostile_template(tmp_path_factory, _migrated_template):
    import shutil

    s = Store(tmp_path_factory.mktemp("hostile"))
    shutil.copy(_migrated_template, s.db)
    s.write_config(RULES)
    # Signed tokens whose sender is the hostile one: only verified evidence reaches the
    # flags and the exports (bounce_handler/trust.py), and the sender a token signs is the
    # one recorded, so this is the way hostile text gets everywhere.
    for rcpt in (FORMULA, MINUS, PLAIN):
        feed(s, token(rcpt, HOSTILE_SENDER), dsn(rcpt, HOSTILE_SENDER, HOSTILE_DIAG))
    # The token carries an OSC title: the row keeps it as verp_token.
    feed(s, HOSTILE_EXTENSION, dsn("other@example.net", "ok@shop.example", "550 5.1.1 gone"))
    unclean(s)
    return s


def unclean(s: Store) -> None:
    """Put back what the pipe's cleaning boundary (store/rows.py) replaced.

    The pipe stores control characters of sender addresses and tokens as U+FFFD; a store
    written before that boundary, or by another writer, holds them as they came, and that
    is what every output below must survive.
    """
    conn = sqlite3.connect(s.db)
    conn.execute("UPDATE bounce_events SET sender = ? WHERE sender != ?",
                 (HOSTILE_SENDER, "ok@shop.example"))
    conn.execute("UPDATE flags SET subject = ? WHERE kind = 'compromised-sender'",
                 (HOSTILE_SENDER,))
    conn.execute("UPDATE bounce_events SET verp_token = ? WHERE recipient = ?",
                 (HOSTILE_EXTENSION, "other@example.net"))
    conn.execute("UPDATE messages SET extension = ? WHERE extension LIKE ?",
                 (HOSTILE_EXTENSION, "%\ufffd%"))
    conn.commit()
    conn.close()


@pytest.fixture
def hostile(tmp_path, _hostile_template) -> Store:
    import shutil

    s = Store(tmp_path)
    shutil.copy(_hostile_template.db, s.db)
    s.write_config(RULES)
    return s


def assert_harmless(out: bytes, *visible: str) -> None:
    for bad in FORBIDDEN:
        assert bad not in out, (bad, out[:3000])
    text = out.decode("utf-8", "replace")
    for v in visible:
        assert v in text, (v, text[:3000])


def event_of(store: Store, recipient: str) -> int:
    return store.query("SELECT id FROM bounce_events WHERE recipient = ?", (recipient,))[0][0]


def test_the_store_really_holds_the_hostile_values(hostile):
    # (Otherwise every test below would pass for the wrong reason.)
    [(sender,)] = hostile.query("SELECT DISTINCT sender FROM bounce_events WHERE sender != ?",
                                ("ok@shop.example",))
    assert ESC in sender
    assert ESC in hostile.query("SELECT diagnostic FROM bounce_events WHERE recipient = ?",
                                (FORMULA,))[0][0]
    kinds = {r[0] for r in hostile.query("SELECT kind FROM flags")}
    assert kinds == {"dead-recipient", "compromised-sender"}


def test_report_table_on_a_terminal(hostile):
    status, out = on_terminal(hostile, "report", "--by", "sender")
    assert status == 0, out
    # The compromised-sender flag's subject and the group key both show the sequences.
    assert_harmless(out, "\\x1b[2J")


def test_report_by_recipient_on_a_terminal(hostile):
    status, out = on_terminal(hostile, "report", "--by", "recipient")
    assert status == 0, out
    assert_harmless(out, "=HYPERLINK(")


def test_json_strings_are_printable(hostile):
    # json.dumps escapes ESC, but wrote the 8-bit CSI and the bidi override raw.
    proc = hostile.bounces("show", str(event_of(hostile, FORMULA)), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert_harmless(proc.stdout, "\\u009b31m", "\\u202egnp.exe")
    assert json.loads(proc.stdout)["diagnostic"] == HOSTILE_DIAG  # still the same value
    proc = hostile.bounces("report", "--by", "sender", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert_harmless(proc.stdout)
    assert HOSTILE_SENDER in {g["key"] for g in json.loads(proc.stdout)["groups"]}


def test_show_event_on_a_terminal(hostile):
    status, out = on_terminal(hostile, "show", str(event_of(hostile, FORMULA)))
    assert status == 0, out
    assert_harmless(out, "\\x1b]8;;http://evil.example/", "\\x9b31m", "\\u202egnp.exe")


def test_show_token_on_a_terminal(hostile):
    status, out = on_terminal(hostile, "show", str(event_of(hostile, "other@example.net")))
    assert status == 0, out
    assert_harmless(out, "plain\\x1b]0;pwned\\x07=example.net")


def test_show_raw_on_a_terminal_is_visible_and_exact_through_a_pipe(hostile):
    eid = str(event_of(hostile, FORMULA))
    status, out = on_terminal(hostile, "show", eid, "--raw")
    assert status == 0, out
    assert_harmless(out, "\\x1b]8;;http://evil.example/")
    raw = hostile.bounces("show", eid, "--raw").stdout
    assert raw == dsn(FORMULA, HOSTILE_SENDER, HOSTILE_DIAG)  # a pipe gets the bytes


def test_show_address_on_a_terminal(hostile):
    status, out = on_terminal(hostile, "show", PLAIN)
    assert status == 0, out
    assert_harmless(out, "n\\x1b[2Jws")


def test_flags_list_and_show(hostile):
    status, out = on_terminal(hostile, "flags", "list")
    assert status == 0, out
    assert_harmless(out, "compromised-sender", "n\\x1b[2Jws\\x1b]0;pwned\\x07@shop.example")
    (fid,) = hostile.query("SELECT id FROM flags WHERE kind = 'compromised-sender'")[0]
    status, out = on_terminal(hostile, "flags", "show", str(fid))
    assert status == 0, out
    assert_harmless(out, "n\\x1b[2Jws")


def test_alert_on_stdout(hostile):
    status, out = on_terminal(hostile, "alert", "--via", "stdout")
    assert status == 2, out
    assert_harmless(out, "n\\x1b[2Jws")


def test_suppress_list_and_error_messages(hostile):
    # A suppression holding an ESC (added before any check existed: SQL) ...
    conn = sqlite3.connect(hostile.db)
    conn.execute("INSERT INTO suppressions (kind, value, source, note, created_at) VALUES "
                 "('recipient', ?, 'manual', ?, '2026-11-24 10:00:00.000000')",
                 (f"x{CLEAR}@example.org", f"note {TITLE}"))
    conn.commit()
    conn.close()
    status, out = on_terminal(hostile, "suppress", "list")
    assert status == 0, out
    assert_harmless(out, "\\x1b[2J", "\\x1b]0;pwned")
    # ... and an error message quoting what the administrator pasted from a bounce.
    status, out = on_terminal(hostile, "show", f"x{CLEAR}y")
    assert status == 64, out
    assert_harmless(out, "\\x1b[2J")


def test_parse_table_and_jsonl(hostile, tmp_path):
    msg = tmp_path / "hostile.eml"
    msg.write_bytes(dsn(f"a{CLEAR}b@x.example", HOSTILE_SENDER, HOSTILE_DIAG))
    status, out = on_terminal(hostile, "parse", "--format", "table", str(msg))
    assert status == 0, out
    assert_harmless(out)
    proc = hostile.bounces("parse", str(msg))
    assert_harmless(proc.stdout)
    [rec] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert HOSTILE_DIAG.split(" user")[0] in rec["recipients"][0]["diagnostic"]


def test_queue_table(hostile, tmp_path):
    queue = tmp_path / "q.json"
    queue.write_text(json.dumps({
        "queue_name": "deferred", "queue_id": "4Xyz", "arrival_time": 1764000000,
        "message_size": 1000, "sender": HOSTILE_SENDER,
        "recipients": [{"address": f"a{CLEAR}@x{TITLE}.example",
                        "delay_reason": f"host said: 421 4.7.0 {LINK} try later"}],
    }) + "\n")
    status, out = on_terminal(hostile, "queue", "--input", str(queue))
    assert status == 0, out
    assert_harmless(out, "\\x1b]0;pwned", "\\x1b]8;;")


def test_export_to_a_terminal(hostile):
    # ESC never passed the export's own key check (it names the value with repr) ...
    status, out = on_terminal(hostile, "export", "compromised-senders")
    assert status == 0, out
    assert_harmless(out, "n\\x1b[2Jws")
    # ... an 8-bit CSI or a bidi override did, and was printed raw; since the trust model
    # (docs/trust.md) a key must be a complete ASCII address, so it is left out, named
    # visibly.
    conn = sqlite3.connect(hostile.db)
    conn.execute("INSERT INTO suppressions (kind, value, source, note, created_at) VALUES "
                 "('recipient', ?, 'manual', NULL, '2026-11-24 10:00:00.000000')",
                 (f"x{CSI8}{RLO}@example.org",))
    conn.commit()
    conn.close()
    status, out = on_terminal(hostile, "export", "dead-recipients")
    assert status == 0, out
    assert_harmless(out, "x\\x9b31m\\u202e@example.org")
    proc = hostile.bounces("export", "dead-recipients")
    assert f"{CSI8}".encode() not in proc.stdout and RLO.encode() not in proc.stdout
    assert "skipped 'x\\x9b31m\\u202e@example.org'" in proc.stderr.decode()


def test_a_store_written_before_any_cleaning(hostile):
    # Flag subjects and advice as an old store (or another writer) may hold them.
    conn = sqlite3.connect(hostile.db)
    conn.execute("UPDATE flags SET subject = ?, advice = ? WHERE id = (SELECT min(id) FROM "
                 "flags WHERE kind = 'dead-recipient')",
                 (f"dead{CLEAR}{RLO}@example.net", f"reset {LINK}\nline two {CSI8}"))
    conn.commit()
    conn.close()
    for args in (("report",), ("flags", "list"), ("report", "--by", "recipient")):
        status, out = on_terminal(hostile, *args, "--top", "50") if args[0] == "report" \
            else on_terminal(hostile, *args)
        assert status == 0, out
        assert_harmless(out, "\\x1b[2J\\u202e")


# -- CSV: OWASP's rule, and the values still come back --------------------------------------


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_report_csv_cells_are_neutralised(hostile):
    proc = hostile.bounces("report", "--by", "recipient", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = csv_rows(proc.stdout)
    assert_no_formula(rows)
    keys = [r[0] for r in rows[1:]]
    assert "'" + FORMULA in keys and "'" + MINUS in keys
    # Every text cell is quoted, so a ';'-splitting spreadsheet keeps it one cell.
    assert f'"\'{FORMULA.replace(chr(34), chr(34) * 2)}"' in proc.stdout.decode()


def test_export_csv_is_neutralised_and_reads_back_exactly(hostile, tmp_path):
    proc = hostile.bounces("export", "dead-recipients", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = csv_rows(proc.stdout)
    assert_no_formula(rows)
    keys = {r[0] for r in rows[1:]}
    assert {"'" + MINUS, PLAIN} <= keys
    # Quotes, parentheses and commas make no complete address (docs/trust.md): the formula
    # is never a key, whatever its cell would look like.
    assert not any("HYPERLINK" in k for k in keys)
    # `bounces suppress import` reads the neutralised cells back as the real values.
    f = tmp_path / "dead.csv"
    f.write_bytes(proc.stdout)
    fresh = Store(tmp_path / "fresh")
    fresh.root.mkdir()
    import shutil

    shutil.copy(hostile.db, fresh.db)
    fresh.write_config(RULES)
    assert fresh.bounces("suppress", "import", str(f)).returncode == 0
    values = {r[0] for r in fresh.query("SELECT value FROM suppressions")}
    assert {MINUS, PLAIN} <= values


def test_suppress_list_csv_is_neutralised(hostile):
    hostile.bounces("suppress", "add", "recipient", "@evil@x.example")
    proc = hostile.bounces("suppress", "list", "--format", "csv")
    rows = csv_rows(proc.stdout)
    assert_no_formula(rows)
    assert "'@evil@x.example" in [r[0] for r in rows]


# -- the functions themselves, and what rich does on its own ------------------------------


def test_rich_alone_passes_escape_sequences_through():
    # Why render.console() exists: rich strips BEL, BS, VT, FF and CR only.  If a rich
    # release starts stripping ESC itself, this test says so (the wrapper stays harmless).
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, force_terminal=True, width=100, highlight=False).print(
        f"a{CLEAR}{LINK}{CSI8}{RLO}b")
    out = buf.getvalue()
    assert CLEAR in out and f"{ESC}]8;;" in out and CSI8 in out and RLO in out


def test_render_console_shows_them_instead():
    from rich.table import Table

    from bounce_handler.reports.render import console

    buf = io.StringIO()
    con = console(file=buf, force_terminal=True, width=100)
    t = Table("x")
    t.add_row(f"a{CLEAR}b")
    con.print(t)
    con.print(f"c{TITLE}d", "\ud800")  # a lone surrogate would make print raise
    out = buf.getvalue()
    for bad in (CLEAR, f"{ESC}]0;", "\ud800"):
        assert bad not in out
    assert "a\\x1b[2Jb" in out and "c\\x1b]0;pwned\\x07d" in out and "\\ud800" in out


def test_visible_json_text_and_csv_cell():
    from bounce_handler.reports.render import csv_cell, csv_value, json_text, visible

    assert visible("plain text") == "plain text"
    assert visible(f"a{CLEAR}\n\tb") == "a\\x1b[2J\\x0a\\x09b"
    assert visible(f"a{CLEAR}\n\tb", newlines=True) == "a\\x1b[2J\n\tb"
    assert visible(visible(CSI8 + RLO)) == visible(CSI8 + RLO) == "\\x9b31m\\u202e"
    doc = {"k": f"\x7f{CSI8}{RLO}\U000e0001é\ud800"}
    text = json_text(doc)
    assert text.isprintable() or set(text) - set(filter(str.isprintable, text)) == {"\n"}
    assert json.loads(text) == doc and "é" in text
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'x", "''=x", "x=1", "", 5):
        cell = csv_cell(value)
        if isinstance(cell, str) and cell:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
            assert csv_value(cell) == value
    assert csv_cell(None) == ""
