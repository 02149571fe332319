"""A real Postfix with the socketmap daemon: relayed mail leaves with a signed envelope
sender, its bounce is recorded against the right sender and recipient and passed on to the
sender's mailbox, and a forged bounce is recorded unverified and passed on to nobody.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bounce_handler import settings as settings_mod
from bounce_handler.daemon.socketmap import SocketmapService
from tests.conftest import script
from tests.support import postfix as pf

pytestmark = pytest.mark.postfix

SENDER = "news@corp.example"
RECIPIENT = "alice@remote.example"

FORGED_DSN = """\
From: MAILER-DAEMON@elsewhere.example
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.elsewhere.example

Final-Recipient: rfc822; carol@remote.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <carol@remote.example>: user unknown

--b1--
"""


@pytest.fixture
def relay(_migrated_template, pipe_bin):
    # pipe_bin: a bounce-handler the pipe user nobody can execute (the dev venv, or a
    # deploy/install.sh deployment when the checkout is under a private directory).
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="bh-verp-e2e-", dir="/tmp"))
    base.chmod(0o755)
    work = base / "work"
    work.mkdir()
    mail = base / "mail"
    mail.mkdir()
    db = work / "bounces.db"
    shutil.copy(_migrated_template, db)
    for p in (work, mail, db):
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    port = pf.free_port()
    config = work / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\nbusy_timeout = 5.0\n'
        f'[log]\ntarget = "stderr"\n'
        f'[verp]\nkey_file = "{work}/verp.keys"\ndomain = "{pf.BOUNCE_DOMAIN}"\n'
        f'[daemon]\nsocketmap_listen = "inet:127.0.0.1:{port}"\n'
        f'sender_domains = "corp.example"\nforward_to_sender = true\n'
        # Low enough that counting each failure twice (DSN + postmaster copy) would flag.
        "[rules.compromised_sender]\nmax_bounces = 6\nmax_domains = 0\n"
    )
    config.chmod(0o644)
    # The real keygen, giving the key file to the pipe user's group (mode 0640).
    import grp

    group = grp.getgrgid(nobody.pw_gid).gr_name
    p = subprocess.run(
        [script("bounces"), "--config", str(config), "verp", "keygen", "--group", group],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    (base / "vmailbox").write_text(f"{SENDER}\tnews/\n")

    service = SocketmapService(settings_mod.load(str(config)), f"inet:127.0.0.1:{port}")
    service.start()
    sm = f"socketmap:inet:127.0.0.1:{port}"
    instance = pf.PostfixInstance(
        str(base / "postfix"),
        handler_argv=[os.path.join(pipe_bin, "bounce-handler"), "--config", str(config),
                      # deploy/postfix/master.cf: the relay's own notices are known as such.
                      "--client-address", "${client_address}"],
        extra_main={
            # deploy/postfix/socketmap.md: the production lines, verbatim.
            "sender_canonical_maps": f"{sm}:sender",
            "sender_canonical_classes": "envelope_sender",
            "virtual_alias_maps": f"{sm}:forward",
            # Accept mail for remote.example, then let the error transport bounce it.
            "smtpd_reject_unlisted_recipient": "no",
            # The original sender's mailbox: a Maildir owned by nobody.
            "virtual_mailbox_domains": "corp.example",
            "virtual_mailbox_base": str(mail),
            "virtual_mailbox_maps": f"texthash:{base}/vmailbox",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
        },
    )
    try:
        instance.start()
        yield instance, db, mail / "news" / "new"
    finally:
        instance.destroy()
        service.stop()
        shutil.rmtree(base, ignore_errors=True)


def rows(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT recipient, sender, verified, verify_reason, verp_token FROM bounce_events"
            " WHERE verp_token LIKE '.%' AND duplicate_of IS NULL ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def maildir(path):
    return sorted(path.iterdir()) if path.is_dir() else []


def test_relayed_bounce_is_signed_recorded_and_forwarded(relay):
    instance, db, inbox = relay
    instance.send(SENDER, RECIPIENT, f"From: {SENDER}\nTo: {RECIPIENT}\nSubject: hi\n\nhello\n")

    # Postfix's error transport bounces it at once; the DSN goes to the rewritten sender.
    got = instance.wait_for(lambda: rows(db), timeout=60, what="the bounce recorded")
    recipient, sender, verified, why, token = got[0]
    assert (recipient, sender, verified, why) == (RECIPIENT, SENDER, 1, "sender-only")
    # A per-sender token with its per-message nonce (verp.py "Per-message nonce").
    assert token.startswith(".a") and token[:-4].endswith("news=corp.example==.")
    log = instance.log_text()
    assert f"from=<bounces+{token}@{pf.BOUNCE_DOMAIN}>" in log  # it left rewritten
    assert f"from=<{SENDER}>" not in log

    # forward_to_sender: the same DSN reached the original sender's mailbox.
    files = instance.wait_for(lambda: maildir(inbox), timeout=60, what="the forwarded DSN")
    text = files[0].read_text(errors="replace")
    assert RECIPIENT in text and "Delivered-To: " + SENDER in text

    # A forged bounce (a tag nobody signed) is recorded, unverified, and forwarded nowhere.
    forged = token[:4] + ("x" if token[4] != "x" else "y") + token[5:]
    to = f"bounces+{forged}@{pf.BOUNCE_DOMAIN}"
    instance.send("", to, FORGED_DSN.format(to=to))
    got = instance.wait_for(lambda: len(rows(db)) > 1 and rows(db), timeout=60, what="forged")
    recipient, sender, verified, why, _ = got[1]
    assert (recipient, verified, why) == ("carol@remote.example", 0, "bad-tag")
    instance.wait_queue_empty(timeout=30)
    time.sleep(1)
    assert len(maildir(inbox)) == 1
    conn = sqlite3.connect(db)
    try:
        flagged = conn.execute(
            "SELECT kind, subject FROM flags WHERE subject IN (?, ?)",
            ("carol@remote.example", "remote.example"),
        ).fetchall()
    finally:
        conn.close()
    assert flagged == []  # the judge ignores the unverified row


def test_each_relayed_message_gets_its_own_token_and_each_failure_counts_once(relay):
    """Issue 13: with socketmap signing, 26 real bounces had raised compromised-sender R3
    (bounces=51): each failure arrived as the DSN and the postmaster copy, and a sender's
    per-day token made one token stand for many messages.  Now each message leaves with
    its own token (the nonce) and each failure counts once."""
    instance, db, _ = relay
    for i in range(5):
        rcpt = f"r{i}@remote.example"
        instance.send(SENDER, rcpt, f"From: {SENDER}\nTo: {rcpt}\nSubject: {i}\n\nhello\n")

    def all_events():
        conn = sqlite3.connect(db)
        try:
            return conn.execute(
                "SELECT recipient, verp_token, origin, duplicate_of FROM bounce_events"
            ).fetchall()
        finally:
            conn.close()

    got = instance.wait_for(lambda: len(all_events()) >= 10 and all_events(), timeout=90,
                            what="5 DSNs and their 5 postmaster copies")
    counted = [e for e in got if e[3] is None]
    assert len(got) == 10 and len(counted) == 5, got
    assert len({e[1] for e in counted}) == 5  # five messages, five tokens
    assert {e[2] for e in got} == {"local"}   # the relay's own bounce daemon wrote them
    log = instance.log_text()
    assert len({line.split("from=<", 1)[1].split(">", 1)[0] for line in log.splitlines()
                if "from=<bounces+." in line}) >= 5
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM flags WHERE kind = 'compromised-sender'"
                            ).fetchone()[0] == 0
    finally:
        conn.close()
