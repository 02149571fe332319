"""`bounces parse`: the real console script, its public jsonl shape, inputs and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import script

DATA = Path(__file__).resolve().parent.parent / "data"
RECIPIENT_KEYS = ["address", "action", "status", "reason", "hard", "diagnostic",
                  "remote_mta", "detector", "reply_code", "phase"]
ORIGINAL_KEYS = ["sender", "message_id", "from", "subject", "sasl_login"]


def run(*args: str, input: bytes | None = None, cwd: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k != "BOUNCE_HANDLER_CONFIG"}
    return subprocess.run([script("bounces"), "parse", *args], input=input,
                          capture_output=True, env=env, cwd=cwd, timeout=60)


def lines(p) -> list:
    assert p.stderr == b"" or p.returncode != 0, p.stderr
    return [json.loads(x) for x in p.stdout.decode("utf-8").splitlines()]


def test_jsonl_shape_is_exact():
    p = run(str(DATA / "postfix_01.eml"))
    assert p.returncode == 0, p.stderr
    [rec] = lines(p)
    assert list(rec) == ["source", "index", "kind", "recipients", "original", "error"]
    assert rec["source"] == str(DATA / "postfix_01.eml")
    assert (rec["index"], rec["kind"], rec["error"]) == (0, "bounce", None)
    [r] = rec["recipients"]
    assert list(r) == RECIPIENT_KEYS
    assert r == {
        "address": "nobody@example.net", "action": "failed", "status": "5.1.1",
        "reason": "userunknown", "hard": True,
        "diagnostic": "550 5.1.1 <nobody@example.net>: Recipient address rejected: "
                      "User unknown in virtual mailbox table",
        "remote_mta": "mx1.example.net", "detector": "rfc3464",
        # The notice's text part says "(in reply to RCPT TO command)".
        "reply_code": "550", "phase": "rcpt",
    }
    assert list(rec["original"]) == ORIGINAL_KEYS
    assert rec["original"]["sender"] == "alice@customer.example.org"
    assert rec["original"]["sasl_login"] == "alice@customer.example.org"


def test_directory_is_walked_sorted_and_utf8_kept(tmp_path):
    for name in ("rfc6533_01.eml", "exim_01.eml"):
        shutil.copy(DATA / name, tmp_path / name)
    (tmp_path / "sub").mkdir()
    shutil.copy(DATA / "qmail_01.eml", tmp_path / "sub" / "a.eml")
    p = run(str(tmp_path))
    assert p.returncode == 0
    recs = lines(p)
    assert [Path(r["source"]).relative_to(tmp_path).as_posix() for r in recs] == [
        "exim_01.eml", "rfc6533_01.eml", "sub/a.eml"]
    assert recs[1]["recipients"][0]["address"] == "用户@例え.jp"
    assert "用户@例え.jp".encode() in p.stdout  # not \u-escaped


def test_mbox_is_split_with_positions_and_stdin_is_read():
    parts = [DATA / "exim_01.eml", DATA / "autoreply_01.eml", DATA / "ses_02.eml"]
    mbox = b"".join(b"From MAILER-DAEMON Tue Nov 24 10:00:00 2026\n" + p.read_bytes() + b"\n"
                    for p in parts)
    recs = lines(run("-", input=mbox))
    assert [(r["source"], r["index"], r["kind"]) for r in recs] == [
        ("-", 0, "bounce"), ("-", 1, "autoreply"), ("-", 2, "complaint")]


def test_unreadable_input_still_gets_its_line_and_exit_1(tmp_path):
    p = run(str(DATA / "qmail_01.eml"), str(tmp_path / "missing.eml"))
    assert p.returncode == 1
    recs = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert recs[0]["error"] is None and recs[0]["kind"] == "bounce"
    assert recs[1]["kind"] == "unknown" and recs[1]["error"].startswith("cannot read")
    assert b"missing.eml" in p.stderr


def test_json_and_table_formats():
    p = run("--format", "json", str(DATA / "qmail_01.eml"), str(DATA / "not" / "plain_01.eml"))
    data = json.loads(p.stdout)
    assert [d["kind"] for d in data] == ["bounce", "unknown"]
    t = run("--format", "table", str(DATA / "qmail_01.eml")).stdout.decode().splitlines()
    assert t[0].split("\t") == ["source", "kind", "address", "status", "reason", "hard",
                                "detector"]
    assert t[1].split("\t")[2:] == ["ghost@example.net", "5.1.1", "userunknown", "hard",
                                    "qmail"]


def test_help_has_an_example():
    p = subprocess.run([script("bounces"), "parse", "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    assert "Example:" in p.stdout and "bounces parse" in p.stdout
