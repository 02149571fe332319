"""Property: noise never raises a flag the genuine bounces alone would not raise.

Genuine bounces are what a relay really receives for mail it sent: the notices its own
bounce daemon writes (to the VERP return path, through the pipe with an empty
${client_address}), and remote DSNs to return paths signed per recipient or per sender
(with the socketmap's per-message nonce).  Noise is what anyone else can add: the
notify_classes postmaster copy of a local notice (a second copy of one failure), replays
of a genuine token with other bytes (and other recipients listed beside its own), a
genuine token on a report naming only someone else, tokens with a tampered tag, and
unsigned XVERP bounces naming anyone.

Each example runs the genuine bounces alone through the real intake path (parse, VERP,
trust, the SQLite writer and the incremental judge) into one store, and the genuine
bounces interleaved with the noise into another, then compares the flags:

- with ``[verp] require_signed = true`` every flag of the noisy run is a flag of the
  genuine run;
- with the defaults (unsigned claims count, so forged XVERP bounces may raise flags that
  are reported) every *verified* flag of the noisy run -- the only kind `bounces export`
  writes -- is a verified flag of the genuine run.

All bounces fall within one rule window, so what counts is which units of evidence are
counted, not when.
"""

from __future__ import annotations

import shutil
import sqlite3
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bounce_handler import intake, verp
from bounce_handler import settings as settings_mod
from bounce_handler.store.lean import SqliteWriter
from tests.support.notices import RELAY_HOST, bounce_daemon_notice, report, returned_headers

KEY = "a " + "4b" * 32
T0 = 1_796_000_000.0  # 2026-11-30
SENDERS = ("news@corp.example", "shop@corp.example")
RECIPIENTS = tuple(f"u{i}@d{i % 4}.example" for i in range(8))
FAILURES = {
    "unknown": ("5.1.1", "550 5.1.1 <{r}>: Recipient address rejected: User unknown"),
    "spam": ("5.7.1", "550 5.7.1 Message rejected as spam"),
    "throttle": ("4.7.0", "421 4.7.0 [TSS04] Messages temporarily deferred, unusual rate"),
}
RULES = """
[rules.dead_recipient]
soft_days = 0
[rules.compromised_sender]
max_bounces = 3
max_domains = 3
spam_min = 2
jump_factor = 0.0
[rules.throttled_destination]
min_deferrals = 2
"""

genuine_item = st.fixed_dictionaries({
    "how": st.sampled_from(("local", "signed", "per-sender")),
    "sender": st.sampled_from(SENDERS),
    "recipients": st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=2, unique=True),
    "failure": st.sampled_from(tuple(FAILURES)),
})
noise_item = st.fixed_dictionaries({
    "what": st.sampled_from(("copy", "replay", "reuse", "tampered", "unsigned")),
    "of": st.integers(0, 1000),
    "where": st.integers(0, 1000),
    "victim": st.sampled_from(RECIPIENTS + ("victim@gmail.example", "postmaster@")),
    "failure": st.sampled_from(tuple(FAILURES)),
})


class World:
    """Builds (raw, envelope) deliveries; tokens are made once per genuine item."""

    def __init__(self, cfg, ring) -> None:
        self.cfg = cfg
        self.ring = ring
        self.n = 0

    def fresh(self) -> str:
        self.n += 1
        return f"{self.n:06X}QID"

    def failures(self, recipients, failure):
        status, text = FAILURES[failure]
        return [(r, status, text.format(r=r)) for r in recipients]

    def genuine(self, g: dict) -> list:
        """[(raw, envelope)]: the item's delivery first, then its postmaster copy if any."""
        single = len(g["recipients"]) == 1 and g["how"] != "per-sender"
        if single:
            token = verp.make_token(g["recipients"][0], g["sender"], self.ring, T0)
        else:
            token = verp.make_token(None, g["sender"], self.ring, T0, verp.make_nonce())
        g["token"] = token
        rp = f"bounces+{token}@relay.test"
        failures = self.failures(g["recipients"], g["failure"])
        if g["how"] == "local":
            orig = self.fresh()
            raw, qid = bounce_daemon_notice(failures, original_queue_id=orig, return_path=rp,
                                            original_sender=g["sender"])
            copy, cqid = bounce_daemon_notice(failures, original_queue_id=orig, return_path=rp,
                                              original_sender=g["sender"], postmaster_copy=True)
            g["copy"] = (copy, intake.Envelope(
                extension="", sender=f"double-bounce@{RELAY_HOST}", recipient="bounces@relay.test",
                client_address="", client_protocol="", queue_id=cqid))
            return [(raw, intake.Envelope(extension=token, sender="", recipient=rp,
                                          client_address="", client_protocol="", queue_id=qid))]
        raw = report(failures, to=rp, queue_id=self.fresh(), returned=returned_headers(g["sender"]))
        return [(raw, self.remote(token))]

    def remote(self, ext: str) -> intake.Envelope:
        return intake.Envelope(extension=ext, sender="", recipient=f"bounces+{ext}@relay.test",
                               client_address="192.0.2.25", client_protocol="ESMTP")

    def noise(self, n: dict, g: dict) -> list:
        what = n["what"]
        if what == "copy":
            return [g["copy"]] if "copy" in g else []
        if what == "replay":
            # A stranger who saw the token resends the report with other bytes, perhaps
            # listing someone else beside the recipients it failed for.
            ext = g["token"].upper() if n["of"] % 2 else g["token"]
            failures = self.failures(g["recipients"], g["failure"])
            failures += self.failures([n["victim"]], n["failure"])
            raw = report(failures, to=f"bounces+{ext}@relay.test", queue_id=self.fresh(),
                         returned=returned_headers(g["sender"]))
            return [(raw, self.remote(ext))]
        if what == "reuse":
            # The token's own recipients are not listed: the ones named are not covered.
            # (Two of them: one alone would be taken as where the mail was forwarded to.)
            others = [v for v in (n["victim"], "victim2@yahoo.example") if v not in g["recipients"]]
            raw = report(self.failures(others, n["failure"]),
                         to=f"bounces+{g['token']}@relay.test", queue_id=self.fresh(),
                         returned=returned_headers(g["sender"]))
            return [(raw, self.remote(g["token"]))]
        # A report naming only "postmaster@" names no address at all: the parser finds no
        # failed recipient and quarantines it, which proves nothing here.
        victim = n["victim"] if "@" in n["victim"][:-1] else "victim@gmail.example"
        if what == "tampered":
            t = g["token"]
            ext = t[:5] + ("a" if t[5] != "a" else "b") + t[6:]
            raw = report(self.failures([victim], n["failure"]), to=f"bounces+{ext}@relay.test",
                         returned=returned_headers(g["sender"]))
            return [(raw, self.remote(ext))]
        ext = victim.replace("@", "=")
        raw = report(self.failures([victim], n["failure"]), to=f"bounces+{ext}@relay.test",
                     returned=returned_headers(g["sender"]))
        return [(raw, self.remote(ext))]


def run(db: str, cfg, deliveries) -> tuple[set, set]:
    writer = SqliteWriter(db, 5.0)
    for i, (raw, env) in enumerate(deliveries):
        out = intake.process(raw, env, cfg, T0 + i, writer=writer, relay="test")
        assert out.name in ("recorded", "duplicate"), out.detail  # a copy may come twice
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT kind, subject, verified FROM flags").fetchall()
    finally:
        conn.close()
    return {(k, s) for k, s, _ in rows}, {(k, s) for k, s, v in rows if v}


@pytest.fixture
def world_files(tmp_path, _migrated_template):
    keys = tmp_path / "verp.keys"
    keys.write_text(KEY + "\n")
    return tmp_path, keys, _migrated_template


@pytest.mark.parametrize("require_signed", [True, False], ids=["require_signed", "defaults"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(genuine=st.lists(genuine_item, min_size=1, max_size=8),
       noise=st.lists(noise_item, max_size=14), order=st.randoms(use_true_random=False))
def test_noise_never_raises_a_flag_the_genuine_bounces_would_not(
    world_files, require_signed, genuine, noise, order
):
    root, keys, template = world_files
    cfg = settings_mod.from_dict({**tomllib.loads(RULES), "verp": {
        "key_file": str(keys), "domain": "relay.test", "require_signed": require_signed}})
    w = World(cfg, verp.load_keys(str(keys)))
    order.shuffle(genuine)
    first = [w.genuine(g) for g in genuine]
    clean = [d for ds in first for d in ds]
    noisy = list(clean)
    for n in noise:
        j = n["of"] % len(genuine)
        g = genuine[j]
        source = next(i for i, d in enumerate(noisy) if d is first[j][0])
        # A replay or a tampered token comes after what it was made from; a postmaster
        # copy and an unsigned forgery may come at any point.
        lo = source + 1 if n["what"] in ("replay", "reuse", "tampered") else 0
        for d in w.noise(n, g):
            noisy.insert(lo + n["where"] % (len(noisy) - lo + 1), d)
    a, b = str(root / "clean.db"), str(root / "noisy.db")
    shutil.copy(template, a)
    shutil.copy(template, b)
    clean_all, clean_verified = run(a, cfg, clean)
    noisy_all, noisy_verified = run(b, cfg, noisy)
    if require_signed:
        assert noisy_all <= clean_all, (noisy_all - clean_all, genuine, noise)
    assert noisy_verified <= clean_verified, (noisy_verified - clean_verified, genuine, noise)
