"""One failure, one event: the DSN and Postfix's postmaster copy through a real Postfix.

With the shipped main.cf (``notify_classes = bounce``, ``bounce_notice_recipient`` on the
bounce address) every failure Postfix generates reaches the pipe twice: the DSN to the
VERP return path (null sender) and the postmaster copy to the bare bounce address (from
double-bounce@).  Both copies stay recorded; the second is linked to the first
(``duplicate_of``) and counts nowhere (issue 13, item 1: 62 real bounces had become 124
events, and 26 raised a compromised-sender flag at half its threshold).

What Postfix 3.7 hands the pipe, measured here (and why trust.origin believes it):

- ``${client_address}`` and ``${client_protocol}`` are empty for both notices; they name
  the client (127.0.0.1, ESMTP) for anything received over SMTP, also after local(8)
  forwarded it through an alias;
- the notices' first header is cleanup's ``Received: by HOST (Postfix) id QID;`` (pickup
  writes ``(Postfix, from userid N)``, local(8)'s forward has it too but keeps a
  ``Delivered-To:`` below it);
- both notices carry the original's ``X-Postfix-Queue-ID``, ``X-Postfix-Sender`` and
  ``Arrival-Date``: the failure identity.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.e2e.helpers import sqlite_query
from tests.support import postfix as pf
from tests.support.notices import report

pytestmark = pytest.mark.postfix

SENDER = "news@corp.example"
KEY = "a " + "5c" * 32
MACRO = ["--client-address", "${client_address}", "--client-protocol", "${client_protocol}"]


def message(rcpt: str) -> str:
    return f"From: {SENDER}\r\nTo: {rcpt}\r\nSubject: hi\r\n\r\nhello\r\n"


def rows(relay, sql: str, params: tuple = ()) -> list[tuple]:
    return sqlite_query(relay.db_path, sql, params)


def message_count(relay) -> int:
    return rows(relay, "SELECT count(*) FROM messages")[0][0]


def bounces(relay, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [os.path.join(relay.bin_dir, "bounces"), "--config", relay.config, *args],
        capture_output=True, text=True, timeout=120,
    )


def key_file(relay) -> str:
    path = os.path.join(relay.work, "verp.keys")
    with open(path, "w") as fp:
        fp.write(KEY + "\n")
    os.chmod(path, 0o644)
    return path


def assert_one_counted_copy_per_failure(relay, failures: int) -> list[tuple]:
    events = rows(relay, "SELECT id, recipient, failure_key, duplicate_of, origin, verp_token "
                         "FROM bounce_events WHERE recipient LIKE '%@nowhere.test' ORDER BY id")
    counted = [e for e in events if e[3] is None]
    assert len(events) == 2 * failures and len(counted) == failures, events
    first = {e[2]: e[0] for e in counted}
    for e in events:
        if e[3] is not None:
            assert e[3] == first[e[2]]  # linked to the first copy of the same failure
    return events


@pytest.fixture
def alias_file():
    """An aliases table Postfix's own users can read (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="bh-aliases-", dir="/tmp")
    os.chmod(d, 0o755)
    path = os.path.join(d, "aliases")
    with open(path, "w") as fp:
        fp.write(f"fwd bounces+x=forged.example@{pf.BOUNCE_DOMAIN}\n")
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(d, ignore_errors=True)


def test_dsn_and_postmaster_copy_are_one_failure_and_local(make_relay, alias_file, tmp_path):
    relay = make_relay(
        name="dups",
        pipe_args=MACRO,
        config_extra="[rules.compromised_sender]\nmax_bounces = 8\nmax_domains = 0\n",
        extra_main={
            "smtpd_reject_unlisted_recipient": "no",
            # local(8) and an alias to the bounce address: a stranger's way to get a
            # message to the pipe with cleanup's "Received: by HOST (Postfix)" on top.
            "mydestination": "local.test",
            "alias_maps": f"texthash:{alias_file}",
            "local_recipient_maps": "$alias_maps",
        },
    )
    key_file(relay)
    from bounce_handler import settings, verp

    cfg = settings.load(relay.config)
    ring = verp.load_keys(cfg.verp.key_file)
    p = relay.postfix
    # Five messages with XVERP return paths, one signed for eve: six failures at the relay
    # (its error transport refuses them), each reported twice.
    for i in range(5):
        rcpt = f"dave{i}@nowhere.test"
        p.send(f"bounces+dave{i}=nowhere.test@{pf.BOUNCE_DOMAIN}", rcpt, message(rcpt))
    signed = verp.encode("eve@nowhere.test", SENDER, cfg, time.time(), key=ring)
    p.send(signed, "eve@nowhere.test", message("eve@nowhere.test"))
    # A sender without VERP: only the postmaster copy reaches the handler (the DSN goes to
    # carol), and it is first-class evidence about her.
    p.send("carol@sender.test", "zed@elsewhere.test", message("zed@elsewhere.test"))
    p.wait_for(lambda: message_count(relay) >= 13, timeout=90, what="13 notices piped")
    carol = rows(relay, "SELECT recipient, sender, sender_source, origin, duplicate_of "
                        "FROM bounce_events WHERE sender = 'carol@sender.test'")
    assert carol == [("zed@elsewhere.test", "carol@sender.test", "envelope", "local", None)]

    events = assert_one_counted_copy_per_failure(relay, 6)
    assert {e[4] for e in events} == {"local"}, events  # the bounce daemon wrote them all
    copies = [e for e in events if e[3] is not None]
    dsns = [e for e in events if e[3] is None]
    # Whichever came first counts; the postmaster copy (bare address) decodes the same
    # VERP token from X-Postfix-Sender as the DSN it copies.
    assert sorted(e[5] for e in copies) == sorted(e[5] for e in dsns)
    envs = rows(relay, "SELECT extension, envelope_sender FROM messages ORDER BY id")
    assert sum(1 for ext, _ in envs if not ext) == 7  # six postmaster copies, and carol's
    assert {s for ext, s in envs if not ext} == {f"double-bounce@{p.main_cf()['myhostname']}"}

    # 12 copies but 6 failures: max_bounces = 8 is not reached (it was, before).
    assert rows(relay, "SELECT kind, subject FROM flags WHERE kind = 'compromised-sender'") == []
    signed_row = rows(relay, "SELECT verified, verify_reason, sender, sender_source "
                             "FROM bounce_events WHERE recipient = 'eve@nowhere.test'")
    assert set(signed_row) == {(1, None, SENDER, "token")}

    # Strangers: a notice-shaped message over SMTP, and one through local(8)'s alias.
    forged = report([("victim@gmail.example", "5.1.1", "550 5.1.1 no such user")],
                    to=f"bounces+victim=gmail.example@{pf.BOUNCE_DOMAIN}")
    p.send("", f"bounces+victim=gmail.example@{pf.BOUNCE_DOMAIN}", forged)
    p.send("", "fwd@local.test", report([("x@forged.example", "5.1.1", "550 5.1.1 gone")],
                                        to="fwd@local.test"))
    p.wait_for(lambda: message_count(relay) >= 15, timeout=60, what="the strangers' mail")
    strangers = rows(relay, "SELECT recipient, origin FROM bounce_events "
                            "WHERE recipient IN ('victim@gmail.example', 'x@forged.example')")
    assert sorted(strangers) == [("victim@gmail.example", "network"),
                                 ("x@forged.example", "network")]
    log = p.log_text()
    assert "forwarded as" in log  # the alias path really went through local(8)

    # The relay's own notices are verified evidence: their dead recipients are exported;
    # the strangers' claims raise (unverified) flags at most, never a map line.
    out = tmp_path / "dead"
    proc = bounces(relay, "export", "dead-recipients", "-o", str(out), "-c", p.config_dir)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    for i in range(5):
        assert f"dave{i}@nowhere.test\tREJECT" in text
    assert "eve@nowhere.test\tREJECT" in text
    assert "zed@elsewhere.test\tREJECT" in text
    assert "victim@gmail.example" not in text and "x@forged.example" not in text


def test_without_the_macro_the_copies_are_still_one_failure(make_relay):
    """An old master.cf (no ${client_address}): nothing is local, duplicates still link."""
    relay = make_relay(
        name="oldargv",
        config_extra="[rules.compromised_sender]\nmax_bounces = 4\nmax_domains = 0\n",
        extra_main={"smtpd_reject_unlisted_recipient": "no"},
    )
    p = relay.postfix
    for i in range(3):
        rcpt = f"dave{i}@nowhere.test"
        p.send(f"bounces+dave{i}=nowhere.test@{pf.BOUNCE_DOMAIN}", rcpt, message(rcpt))
    p.wait_for(lambda: message_count(relay) >= 6, timeout=90, what="6 notices piped")
    # Reports and the judge count failures, not copies: 3, under max_bounces = 4.
    proc = bounces(relay, "report", "--since", "1d", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total"] == 3
    assert rows(relay, "SELECT kind, subject FROM flags WHERE kind = 'compromised-sender'") == []
    events = assert_one_counted_copy_per_failure(relay, 3)
    assert {e[4] for e in events} == {None}  # not known to be local: never trusted as such


def test_a_delay_notice_and_its_postmaster_copy_are_one_deferral(make_relay):
    """Issue 13: R8 counted one deferral twice (the delay DSN and Postfix's copy of it)."""
    relay = make_relay(name="delays", pipe_args=MACRO, extra_main={"delay_warning_time": "1s"})
    p = relay.postfix
    rcpt = f"erin@{pf.DEFER_DOMAIN}"
    p.submit(f"bounces+erin={pf.DEFER_DOMAIN}@{pf.BOUNCE_DOMAIN}", rcpt, message(rcpt))
    p.wait_for(lambda: message_count(relay) >= 2, timeout=90, what="the delay DSN and its copy")
    events = rows(relay, "SELECT kind, recipient, origin, duplicate_of, failure_key "
                         "FROM bounce_events ORDER BY id")
    assert [(e[0], e[1], e[2]) for e in events] == [("delay", rcpt, "local")] * 2, events
    assert events[0][3] is None and events[1][3] is not None and events[0][4] == events[1][4]
    proc = bounces(relay, "report", "--since", "1d", "--format", "json")
    assert json.loads(proc.stdout)["totals"]["delay"]["total"] == 1
