"""bounce_handler/trust.py: the table of what each evidence may cause, its SQL twin, where a
message came from, and what may be a flag subject or an export key."""

from __future__ import annotations

import sqlite3
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bounce_handler import trust
from bounce_handler.intake import Envelope
from bounce_handler.judge.rules import parse
from bounce_handler.parse.model import Original, ParseResult

R, S, D = trust.RECIPIENT, trust.SENDER, trust.DESTINATION
V, C, F = trust.VERIFIED, trust.CLAIM, trust.FORGED


def row(**kw):
    base = {"verified": 0, "verify_reason": "no-token", "origin": None, "sender_source": None,
            "sasl_verified": 0}
    base.update(kw)
    return base


@pytest.mark.parametrize(
    "r, recipient, sender",
    [
        # A local notice: recipient from the relay's queue file; sender by how it was read.
        (row(origin="local", sender_source="envelope"), V, V),
        (row(origin="local", sender_source="sasl", sasl_verified=1), V, V),
        (row(origin="local", sender_source="sasl", sasl_verified=0), V, C),
        (row(origin="local", sender_source="from"), V, C),
        # Signed with the recipient (covered), or for the sender only, or not covering it.
        (row(verified=1, verify_reason=None, sender_source="token"), V, V),
        (row(verified=1, verify_reason="sender-only", sender_source="token"), C, V),
        (row(verified=1, verify_reason="not-covered", sender_source="token"), C, V),
        # A row from before sender_source existed: its sender came from the token.
        (row(verified=1, verify_reason=None, sender_source=None), V, V),
        # Claims and forgeries.
        (row(verify_reason="unsigned", sender_source="from"), C, C),
        (row(verify_reason="no-token", sender_source="envelope"), C, C),  # not local
        (row(origin="network", verify_reason="no-token", sender_source="envelope"), C, C),
        (row(verify_reason="bad-tag", sender_source="token"), F, F),
        (row(verify_reason="expired", sender_source="token"), F, F),
        (row(origin="local", verify_reason="bad-tag", sender_source="from"), V, F),
    ],
)
def test_strength_table(r, recipient, sender):
    assert (trust.strength(r, R), trust.strength(r, S), trust.strength(r, D)) == (
        recipient, sender, recipient)


@pytest.mark.parametrize("r", [
    row(origin="queue", verify_reason=None),
    # Whatever else a queue row might say, it is the relay's queue: R8 evidence only.
    row(origin="queue", verified=1, verify_reason=None, sender_source="token"),
    row(origin="queue", verify_reason="unsigned", sender_source="envelope"),
])
def test_a_live_queue_row_is_evidence_for_r8_and_nothing_else(r):
    assert (trust.strength(r, R), trust.strength(r, S), trust.strength(r, D)) == (
        trust.NONE, trust.NONE, V)
    every = rules(include=["dead_recipient", "compromised_sender", "throttled_destination"])
    for rs in (rules(), rules(require_signed=True), every):
        assert not trust.admits(r, R, rs) and not trust.admits(r, S, rs)
        assert trust.admits(r, D, rs) and trust.admits(r, D, rs, strict=True)


def rules(require_signed=False, include=()):
    raw = {section: {"include_unverified": True} for section in include}
    return parse(raw, accept_unsigned=not require_signed)


def test_admits_follows_require_signed_and_include_unverified():
    claim = row(verify_reason="unsigned", sender_source="from")
    forged = row(verify_reason="bad-tag", sender_source="token")
    verified = row(origin="local", sender_source="envelope")
    assert trust.admits(claim, S, rules())
    assert not trust.admits(claim, S, rules(require_signed=True))
    assert not trust.admits(claim, S, rules(), strict=True)
    assert not trust.admits(forged, S, rules())
    assert trust.admits(forged, S, rules(include=["compromised_sender"]))
    assert not trust.admits(forged, R, rules(include=["compromised_sender"]))
    assert not trust.admits(forged, S, rules(include=["compromised_sender"]), strict=True)
    for r in (rules(), rules(require_signed=True)):
        assert trust.admits(verified, S, r, strict=True) and trust.admits(verified, R, r)


COLUMNS = ("verified", "verify_reason", "origin", "sender_source", "sasl_verified")
any_row = st.fixed_dictionaries({
    "verified": st.sampled_from((0, 1)),
    "verify_reason": st.sampled_from((None, *trust.CLAIM_REASONS, *trust.FORGED_REASONS)),
    "origin": st.sampled_from((None, "local", "network", "queue")),
    "sender_source": st.sampled_from((None, *trust.SENDER_SOURCES)),
    "sasl_verified": st.sampled_from((None, 0, 1)),
})


@settings(max_examples=300, deadline=None)
@given(r=any_row, family=st.sampled_from(trust.FAMILIES), strict=st.booleans(),
       require_signed=st.booleans(),
       include=st.lists(st.sampled_from(("dead_recipient", "compromised_sender",
                                         "throttled_destination")), unique=True))
def test_the_sql_twin_agrees_with_admits(r, family, strict, require_signed, include):
    """judge/lean.py counts with trust.sql: it must say what trust.admits says, row by row."""
    rs = rules(require_signed, include)
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE bounce_events (id INTEGER PRIMARY KEY, {', '.join(COLUMNS)})")
    conn.execute(f"INSERT INTO bounce_events ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                 [r[c] for c in COLUMNS])
    params: list = []
    sql = trust.sql(family, rs, params, strict)
    got = conn.execute(f"SELECT count(*) FROM bounce_events WHERE {sql}", params).fetchone()[0]
    assert bool(got) == trust.admits(r, family, rs, strict)


# --- where a message came from: the headers Postfix 3.7 really writes -------------------

PIPE = b"Return-Path: <>\nX-Original-To: bounces+a=b.example@relay.test\n" \
       b"Delivered-To: bounces+a=b.example@relay.test\n"
BOUNCE_DAEMON = PIPE + (
    b"Received: by relay.relay.test (Postfix)\n"
    b"\tid 7DD80214C9A; Tue,  1 Dec 2026 15:22:13 +0000 (UTC)\n"
    b"Date: Tue,  1 Dec 2026 15:22:13 +0000 (UTC)\n"
    b"From: Mail Delivery System <MAILER-DAEMON@relay.test>\n"
    b"Subject: Undelivered Mail Returned to Sender\n\nbody\n"
)
PICKUP = PIPE + (
    b"Received: by relay.relay.test (Postfix, from userid 0)\n"
    b"\tid 83D46214C9F; Tue,  1 Dec 2026 15:22:13 +0000 (UTC)\n"
    b"From: x@relay.test\nSubject: C\n\nlocal\n"
)
FORWARDED = PIPE + (
    b"Received: by relay.relay.test (Postfix)\n"
    b"\tid 544762144A3; Tue,  1 Dec 2026 15:26:08 +0000 (UTC)\n"
    b"Delivered-To: fwd@local.test\n"
    b"Received: from [127.0.0.1] (localhost [127.0.0.1])\n"
    b"\tby relay.relay.test (Postfix) with ESMTP id 518742144A2\n"
    b"From: MAILER-DAEMON@x\nSubject: via alias\n\nforged\n"
)


@pytest.mark.parametrize(
    "raw, client, sender, queue_id, expected",
    [
        (BOUNCE_DAEMON, "", "", None, "local"),
        (BOUNCE_DAEMON, "", "double-bounce@relay.relay.test", "7DD80214C9A", "local"),
        (BOUNCE_DAEMON.replace(b"\n", b"\r\n"), "", "", None, "local"),
        (BOUNCE_DAEMON, None, "", None, None),           # old master.cf: not known
        (BOUNCE_DAEMON, "127.0.0.1", "", None, "network"),
        (BOUNCE_DAEMON, "", "someone@corp.example", None, None),  # not a notice's sender
        (BOUNCE_DAEMON, "", "", "OTHERQUEUEID", None),   # not the queue file delivered
        (PICKUP, "", "", None, None),                    # sendmail, not the bounce daemon
        (FORWARDED, "", "", None, None),                 # local(8) forward: Delivered-To
        (PIPE + b"From: a@b\n" + BOUNCE_DAEMON[len(PIPE):], "", "", None, None),
        (b"garbage without headers", "", "", None, None),
    ],
)
def test_origin(raw, client, sender, queue_id, expected):
    env = Envelope(sender=sender, client_address=client, queue_id=queue_id)
    assert trust.origin(env, raw) == expected


def test_origin_reads_a_bounded_prefix_of_hostile_headers():
    raw = BOUNCE_DAEMON[: -len(b"\nbody\n")] + b"X-Long: " + b"a" * (20 * 1024 * 1024) + b"\n\nb"
    t = time.perf_counter()
    assert trust.origin(Envelope(sender="", client_address=""), raw) is None  # no header end
    assert time.perf_counter() - t < 1.0  # a guard against reading it all, not a benchmark
    many = PIPE + b"Received: by h (Postfix)\n\tid Q;\n" + b"X: y\n" * 200_000 + b"\nb"
    t = time.perf_counter()
    trust.origin(Envelope(sender="", client_address=""), many)
    assert time.perf_counter() - t < 1.0


# --- identities --------------------------------------------------------------------------

def result(queue_id="70002214C93", mta="relay.relay.test", message_id=None, original=None):
    return ParseResult(kind="bounce", queue_id=queue_id, reporting_mta=mta,
                       arrival_date="Tue,  1 Dec 2026 15:22:13 +0000 (UTC)",
                       message_id=message_id, original=Original(message_id=original))


def test_failure_key_is_what_the_dsn_and_the_postmaster_copy_share():
    dsn = trust.failure_key("bounce", "Dave@nowhere.test", True, result(message_id="<1@r>"), "d1")
    copy = trust.failure_key("bounce", "dave@nowhere.test", True, result(message_id="<2@r>"), "d2")
    assert dsn == copy
    assert trust.failure_key("bounce", "eve@nowhere.test", True, result(), "d1") != dsn
    assert trust.failure_key("delay", "dave@nowhere.test", True, result(), "d1") != dsn
    # Nothing from outside can ever be the same failure as a notice our relay wrote.
    assert trust.failure_key("bounce", "dave@nowhere.test", False, result(), "d1") != dsn
    assert trust.failure_key("bounce", "dave@nowhere.test", True, result(queue_id="X"),
                             "d1") != dsn
    # Without a queue ID: the original Message-ID, else the report's own, else the bytes.
    a = trust.failure_key("bounce", "d@x.example", False, result(None, original="<o@c>"), "d1")
    b = trust.failure_key("bounce", "d@x.example", False, result(None, original="<o@c>"), "d2")
    assert a == b
    c = trust.failure_key("bounce", "d@x.example", False, result(None, message_id="<n@r>"), "d1")
    assert c == trust.failure_key("bounce", "d@x.example", False,
                                  result(None, message_id="<n@r>"), "d2")
    assert trust.failure_key("bounce", "d@x.example", False, result(None), "d1") != \
        trust.failure_key("bounce", "d@x.example", False, result(None), "d2")


# --- flag subjects and export keys ---------------------------------------------------------

@pytest.mark.parametrize("value", ["alice@example.com", "a.b+c@mail.example.org",
                                   "ünïcode@exämple.com", "x@xn--bcher-kva.example"])
def test_valid_addresses(value):
    assert trust.valid_address(value)


@pytest.mark.parametrize("value", [
    None, "", "postmaster@", "corp.example", "user@", "@example.com", "a@localhost",
    "a@1.2.3.4", "a@[192.0.2.1]", '"a b"@example.com', "a b@example.com", "a@-x.example",
    "a..b@example.com", ".a@example.com", "a@example..com", "a@b@example.com",
    "a@" + "x" * 64 + ".example", "a\n@example.com",
])
def test_invalid_addresses(value):
    assert not trust.valid_address(value)


def _valid_address_per_character(address):
    """valid_address as it was first written, a test per character: the reference."""
    if not address or len(address) > 320:
        return False
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(domain) > 253:
        return False
    if local[0] == "." or local[-1] == "." or ".." in local:
        return False
    for c in local:
        if c in '()<>[]:;@\\,"' or not c.isprintable() or c.isspace():
            return False
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() or c == "-" for c in label):
            return False
    return True


def test_the_only_printable_white_space_is_the_space():
    # valid_address tests a local part with isprintable() and `" " in` instead of
    # isspace() per character: the same only while this holds, over all of Unicode.
    import sys

    assert [c for c in map(chr, range(sys.maxunicode + 1))
            if c.isprintable() and c.isspace()] == [" "]


_ADDRESS_CHARS = st.sampled_from(list('ab.-@ _"<>\\\t\n\x00\x85\xa0\u2028\u200b\ufeff'
                                      "é١٢٣ẞ0123") + ["\ud800"])


@settings(max_examples=3000, deadline=None)
@example(local="a b", domain="x")
@example(local="a\xa0b", domain="x")
@example(local="a\u200bb", domain="x")
@example(local="a", domain="é١-ẞ")
@example(local="a", domain="x_y")
@example(local="a", domain="-x")
@given(local=st.text(_ADDRESS_CHARS, max_size=8), domain=st.text(_ADDRESS_CHARS, max_size=12))
def test_valid_address_is_the_per_character_definition(local, domain):
    for value in (local + "@" + domain, local + "@" + domain + ".example", local):
        assert trust.valid_address(value) == _valid_address_per_character(value), value


@pytest.mark.parametrize("value, problem", [
    ("alice@example.com", None),
    ("postmaster@example.com", "RFC 5321"),
    ("Postmaster@Example.com", "RFC 5321"),
    ("example.com", "complete address"),
    ("user@", "complete address"),
    ("#x@example.com", "comment"),
    ("ünï@example.com", "ASCII"),
    ("a b@example.com", "white space"),
])
def test_export_keys(value, problem):
    got = trust.export_key_problem(value)
    assert (got is None) if problem is None else (problem in got)


def test_sasl_keys():
    assert trust.export_key_problem("alice", "sasl") is None
    assert trust.export_key_problem("alice@corp.example", "sasl") is None
    assert "SASL" in trust.export_key_problem("x" * 300, "sasl")


def test_failure_identity_is_reusable_for_a_queue_entry():
    """What item 7 (the live queue) needs: the identity of a message seen in the queue is
    the identity of the notice Postfix later sends about it."""
    from bounce_handler.parse import parse
    from tests.support.notices import bounce_daemon_notice

    arrival = "Tue,  1 Dec 2026 15:22:13 +0000 (UTC)"
    raw, _ = bounce_daemon_notice([("dave@nowhere.test", "4.4.1", "deferred")],
                                  original_queue_id="8682A214CA2", arrival=arrival,
                                  return_path="bounces+dave=nowhere.test@relay.test")
    r = parse(raw)
    assert r.kind == "delay" and r.queue_id == "8682A214CA2"
    seen_in_queue = trust.failure_identity(
        "delay", "dave@nowhere.test", True,
        trust.queue_reference("relay.relay.test", "8682A214CA2", arrival))
    assert trust.failure_key("delay", "dave@nowhere.test", True, r, "digest") == seen_in_queue
