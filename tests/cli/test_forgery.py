"""Forged, replayed and expired evidence through the real `bounce-handler`, then the real
`bounces export`, checked with the real `postmap -q` the way smtpd looks a key up.

Issue 13, items 2-4: one genuine signed token vouched for anything a DSN listed under
it; replays of one token counted as many bounces; keys that access(5) reads as wildcards
(``postmaster@``, a bare domain) were exported; unverified bounces put SASL logins into
the HOLD map; a token 1,024-1,054 days old verified again.  docs/trust.md has the model.
"""

from __future__ import annotations

import json
import time

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler import verp
from tests.cli.test_export import lookup, need_postmap, postfix_dir
from tests.support.notices import bounce_daemon_notice, report, returned_headers

KEY = "a " + "3d" * 32
SENDER = "news@corp.example"
DAY = 86400


@pytest.fixture
def signing(store):
    """The store with a key file; returns (store, settings, key ring)."""
    keys = store.root / "verp.keys"
    keys.write_text(KEY + "\n")
    store.write_config(f'[verp]\nkey_file = "{keys}"\ndomain = "relay.test"\n')
    cfg = settings_mod.load(str(store.config))
    return store, cfg, verp.load_keys(str(keys))


def configure(store, extra: str) -> None:
    store.write_config(f'[verp]\nkey_file = "{store.root / "verp.keys"}"\n'
                       f'domain = "relay.test"\n{extra}')


def feed(store, ext: str | None, raw: bytes, *options: str) -> str:
    args = [*options, "--", ext] if ext is not None else list(options)
    proc = store.handler(*args, input=raw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.decode()


def flags(store) -> list[dict]:
    proc = store.bounces("flags", "list", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def export(store, tmp_path, what: str, *args: str):
    """Run `bounces export WHAT -o FILE` (postmap-ed); return (map path, config dir, stderr)."""
    need_postmap()
    etc = postfix_dir(tmp_path)
    out = tmp_path / f"{what}-{time.monotonic_ns()}"
    proc = store.bounces("export", what, "-o", str(out), "-c", etc, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    return str(out), etc, proc.stderr.decode()


def smtpd_lookup(etc: str, table: str, address: str) -> str | None:
    """What check_recipient_access / check_sender_access find for `address`.

    access(5), EMAIL ADDRESS PATTERNS: ``user@domain``, then ``domain`` and its parent
    domains (smtpd_access_maps is in parent_domain_matches_subdomains by default), then
    ``user@``; with recipient_delimiter "+", ``user+ext@domain`` also as ``user@domain``.
    Each key is asked of the real table with ``postmap -q``; the first answer wins.
    """
    local, _, domain = address.rpartition("@")
    keys = [address]
    if "+" in local:
        keys.append(f"{local.split('+', 1)[0]}@{domain}")
    labels = domain.split(".")
    keys += [".".join(labels[i:]) for i in range(len(labels))]
    keys.append(f"{local}@")
    for key in keys:
        found = lookup(etc, key, table)
        if found:
            return found
    return None


def test_a_token_vouches_only_for_the_recipient_it_carries(signing, tmp_path):
    store, cfg, ring = signing
    token = verp.make_token("alice@example.com", SENDER, ring, time.time())
    listed = ["victim1@gmail.example", "victim2@yahoo.example", "postmaster@",
              "Postmaster@relay.test"]
    raw = report([(a, "5.1.1", f"550 5.1.1 <{a}>: no such user") for a in listed],
                 to=f"bounces+{token}@relay.test", returned=returned_headers(SENDER))
    feed(store, token, raw)
    table, etc, _ = export(store, tmp_path, "dead-recipients")
    for address in ("victim1@gmail.example", "victim2@yahoo.example",
                    "postmaster@relay.test", "postmaster@example.com", "Postmaster@Gmail.com"):
        assert smtpd_lookup(etc, table, address) is None, address
    rows = store.query("SELECT recipient, verified, verify_reason FROM bounce_events")
    assert {r[2] for r in rows} == {"not-covered"}, rows  # the token names alice, not them
    # Reported at most as unverified flags; never a subject that is not a whole address.
    assert all(not f["verified"] for f in flags(store))
    assert "postmaster@" not in {f["subject"] for f in flags(store)}


def test_fifty_replays_of_one_genuine_token_are_one_bounce(signing):
    store, cfg, ring = signing
    token = verp.make_token("alice@example.com", SENDER, ring, time.time())
    for i in range(50):
        # Varied bytes: another report, date, text, case, and a victim beside alice.
        ext = token if i % 2 else token.upper()
        raw = report(
            [("alice@example.com", "5.1.1", f"550 5.1.1 try {i}"),
             (f"victim{i}@d{i}.example", "5.1.1", "550 5.1.1 no such user")],
            to=f"bounces+{ext}@relay.test", arrival=f"Tue, 24 Nov 2026 11:{i:02d}:00 +0000",
            returned=returned_headers(SENDER),
        )
        feed(store, ext, raw)
    assert store.query("SELECT count(*) FROM bounce_events")[0][0] >= 50
    assert [f for f in flags(store) if f["kind"] == "compromised-sender"] == []


def test_one_per_sender_token_with_xverp_suffixes_is_one_message(signing):
    store, cfg, ring = signing
    # The socketmap's per-sender form; Postfix appends +local=domain for XVERP senders.
    token = verp.split_address(verp.encode(None, SENDER, cfg, time.time(), key=ring), cfg)
    for i in range(25):
        ext = f"{token}+r{i}=d{i}.example"
        raw = report([(f"r{i}@d{i}.example", "5.1.1", "550 5.1.1 no such user")],
                     to=f"bounces+{ext}@relay.test", returned=returned_headers(SENDER))
        feed(store, ext, raw)
    assert store.query("SELECT count(DISTINCT recipient_domain) FROM bounce_events")[0][0] == 25
    assert [f for f in flags(store) if f["kind"] == "compromised-sender"] == []  # no R4


def test_sixty_spam_rejections_under_one_token_are_one_message(signing):
    store, cfg, ring = signing
    token = verp.split_address(verp.encode(None, SENDER, cfg, time.time(), key=ring), cfg)
    failures = [(f"u{i}@d{i % 7}.example", "5.7.1", "550 5.7.1 message rejected as spam")
                for i in range(60)]
    feed(store, token, report(failures, to=f"bounces+{token}@relay.test",
                              returned=returned_headers(SENDER)))
    assert store.query("SELECT count(*) FROM bounce_events")[0][0] == 60
    assert [f for f in flags(store) if f["kind"] == "compromised-sender"] == []  # no R6, R3


def test_a_bare_domain_from_a_forged_return_path_is_never_a_key(signing, tmp_path):
    store, _, _ = signing
    for i in range(25):  # 25 domains: R4's threshold is 20
        rcpt = f"r{i}@d{i}.example"
        ext = f"r{i}=d{i}.example"
        raw = report([(rcpt, "5.1.1", "550 5.1.1 no such user")], to=f"bounces+{ext}@relay.test",
                     returned=returned_headers("ceo@corp.example", return_path="corp.example"))
        feed(store, ext, raw)
    assert "corp.example" not in {f["subject"] for f in flags(store)}
    table, etc, _ = export(store, tmp_path, "compromised-senders")
    for sender in ("anyone@corp.example", "ceo@corp.example", "x@mail.corp.example"):
        assert smtpd_lookup(etc, table, sender) is None, sender


def test_forged_bounces_put_no_sasl_login_in_the_hold_map(signing, tmp_path):
    store, _, _ = signing
    configure(store, "[rules.compromised_sender]\nmax_bounces = 3\n")
    received = ("Received: from [198.51.100.9]\n\t(Authenticated sender: mallory)\n"
                "\tby relay.relay.test (Postfix) with ESMTPSA id 1A2B3C\n")
    for i in range(5):
        ext = f"r{i}=d{i}.example"
        raw = report([(f"r{i}@d{i}.example", "5.1.1", "550 5.1.1 no such user")],
                     to=f"bounces+{ext}@relay.test",
                     returned=returned_headers("alice@corp.example", received=received))
        feed(store, ext, raw)
    table, etc, err = export(store, tmp_path, "compromised-senders", "--key", "sasl")
    assert lookup(etc, "mallory", table) is None
    assert "verified evidence" in err  # the flag is reported as left out, not dropped silently


def test_the_relays_own_login_survives_a_flood_of_forged_ones(signing, tmp_path):
    """Local notices (Postfix's bounce daemon, shown by an empty ${client_address}) carry
    the relay's own Received: header: that login is verified; 60 forged newer ones with
    another login neither replace it nor join it."""
    store, _, _ = signing
    configure(store, "[rules.compromised_sender]\nmax_bounces = 3\nmax_domains = 0\n")
    for i in range(3):
        raw, qid = bounce_daemon_notice(
            [(f"r{i}@d{i}.example", "5.1.1", "550 5.1.1 no such user")],
            original_queue_id=f"ABC{i}", return_path="alice@corp.example", sasl_login="alice",
            original_sender="alice@corp.example", postmaster_copy=True,
        )
        feed(store, None, raw, "--client-address", "", "--queue-id", qid)
    received = ("Received: from [198.51.100.9]\n\t(Authenticated sender: mallory)\n"
                "\tby relay.relay.test (Postfix) with ESMTPSA id 1A2B3C\n")
    for i in range(60):
        ext = f"f{i}=x{i}.example"
        raw = report([(f"f{i}@x{i}.example", "5.1.1", "550 5.1.1 no such user")],
                     to=f"bounces+{ext}@relay.test", x_sender="alice@corp.example",
                     returned=returned_headers("alice@corp.example", received=received))
        feed(store, ext, raw)
    live = {f["subject"]: f for f in flags(store) if f["kind"] == "compromised-sender"}
    assert live["alice@corp.example"]["verified"] is True
    table, etc, _ = export(store, tmp_path, "compromised-senders", "--key", "sasl")
    assert lookup(etc, "alice", table).startswith("HOLD")
    assert lookup(etc, "mallory", table) is None


def test_manual_entries_that_access5_would_read_as_wildcards_are_not_exported(signing,
                                                                              tmp_path):
    store, _, _ = signing
    for value in ("example.com", "user@", "postmaster@example.com", "ok@example.org"):
        store.bounces("suppress", "add", "recipient", value)
    table, etc, err = export(store, tmp_path, "dead-recipients")
    assert smtpd_lookup(etc, table, "ok@example.org").startswith("REJECT")
    for address in ("anyone@example.com", "user@elsewhere.example", "postmaster@example.com"):
        assert smtpd_lookup(etc, table, address) is None, address
    assert "skipped 'example.com'" in err and "RFC 5321" in err


@pytest.mark.parametrize("days", [1024, 1030, 1054])
def test_a_token_1024_days_old_is_not_fresh_again(signing, tmp_path, days):
    store, cfg, ring = signing
    token = verp.make_token("alice@example.com", SENDER, ring, time.time() - days * DAY)
    raw = report([("alice@example.com", "5.1.1", "550 5.1.1 no such user")],
                 to=f"bounces+{token}@relay.test", returned=returned_headers(SENDER))
    feed(store, token, raw)
    assert store.query("SELECT verified, verify_reason FROM bounce_events") == [(0, "expired")]
    table, etc, _ = export(store, tmp_path, "dead-recipients")
    assert smtpd_lookup(etc, table, "alice@example.com") is None
