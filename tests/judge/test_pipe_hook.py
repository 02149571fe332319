"""The judge on the real pipe: bounce-handler records a bounce and raises its flag."""

from __future__ import annotations

import json
import time

from tests.conftest import SAMPLES

DSN = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
HEADERS = (
    b"Return-Path: <>\n"
    b"Delivered-To: bounces+alice=example.net@relay.example\n"
    b"X-Original-To: bounces+alice=example.net@relay.example\n"
)


def test_pipe_raises_a_dead_recipient_flag_in_the_same_transaction(store):
    # The sample's XVERP token is unsigned (verified=0, 'unsigned'): counted by default.
    proc = store.handler("alice=example.net", input=HEADERS + DSN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert store.query("SELECT kind, subject, state, rule FROM flags") == [
        ("dead-recipient", "alice@example.net", "open", "R1")]
    (event_id,) = store.query("SELECT id FROM bounce_events")[0]
    assert store.query("SELECT event_id FROM flag_evidence") == [(event_id,)]
    out = store.bounces("flags", "list", "--format", "json")
    flags = json.loads(out.stdout)
    assert flags[0]["evidence"]["status"] == "5.1.1"


def test_require_signed_makes_the_judge_ignore_xverp_bounces(store):
    store.write_config("[verp]\nrequire_signed = true\n")
    proc = store.handler("alice=example.net", input=HEADERS + DSN)
    assert proc.returncode == 0
    assert store.query("SELECT verified, verify_reason FROM bounce_events") == [(0, "unsigned")]
    assert store.query("SELECT count(*) FROM flags") == [(0,)]


def test_forged_looking_token_changes_no_flag_by_default(store):
    keys = store.root / "verp.keys"
    store.write_config(f'[verp]\nkey_file = "{keys}"\ndomain = "relay.example"\n')
    assert store.bounces("verp", "keygen").returncode == 0
    out = store.bounces("verp", "encode", "alice@example.net", "--sender", "news@shop.example")
    address = out.stdout.decode().strip()
    token = address.split("@")[0].split("+", 1)[1]
    # Flip one character of the tag: a forger who knows the format but not the key.
    i = 5
    forged = token[:i] + ("b" if token[i] != "b" else "c") + token[i + 1 :]
    proc = store.handler(forged, input=HEADERS + DSN)
    assert proc.returncode == 0, proc.stdout
    assert store.query("SELECT verified, verify_reason FROM bounce_events") == [(0, "bad-tag")]
    assert store.query("SELECT count(*) FROM flags") == [(0,)]
    # the genuine token raises the flag
    proc = store.handler(token, input=HEADERS + DSN)
    assert proc.returncode == 0, proc.stdout
    assert store.query("SELECT count(*) FROM flags") == [(1,)]


def test_invalid_rules_make_the_pipe_defer_not_drop(store):
    store.write_config("[rules.dead_recipient]\nsoft_dayz = 3\n")
    proc = store.handler("alice=example.net", input=HEADERS + DSN)
    assert proc.returncode == 75, proc.stdout
    assert store.query("SELECT count(*) FROM bounce_events") == [(0,)]


def test_sender_only_token_proves_the_sender_not_the_recipient(store):
    """A per-sender token (the socketmap's) plus any recipient a forger appends."""
    keys = store.root / "verp.keys"
    base = f'[verp]\nkey_file = "{keys}"\ndomain = "relay.example"\n'
    store.write_config(base + "require_signed = true\n")
    assert store.bounces("verp", "keygen").returncode == 0
    from bounce_handler import settings, verp

    s = settings.load(str(store.config))
    token = verp.encode(None, "news@shop.example", s, time.time())
    token = token.split("@")[0].split("+", 1)[1]
    proc = store.handler(token + "+alice=example.net", input=HEADERS + DSN)
    assert proc.returncode == 0, proc.stdout
    assert store.query("SELECT verified, verify_reason, sender FROM bounce_events") == [
        (1, "sender-only", "news@shop.example")]
    # require_signed: the dead-recipient rule wants the recipient under the tag too
    assert store.query("SELECT count(*) FROM flags WHERE kind = 'dead-recipient'") == [(0,)]
