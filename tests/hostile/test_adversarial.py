"""Every pattern and scanner on the intake path, attacked with inputs built from itself.

Issue 14: a text/html part of repeated "<script>" took 114 s at 600 KB in
``base.html_to_text`` (quadratic regexes run before any cap) and, through Postfix, ended in
"Command time limit exceeded": the bounce was lost.  The cure is a budget by construction
(every input bounded first, every pattern and scanner linear); this file checks it for
*every* target, enumerated (tests/hostile/adversary.py), so patterns added later are
attacked the day they merge.

Bounds here are generous (a loaded 2-core machine, ~8 engineers): they catch quadratic
behaviour, they are not the benchmark.  bench/adversarial.py prints the precise table
(target: <= 5x a plain message of the same size, <= 2 s for 10 MiB).
"""

from __future__ import annotations

import time

import pytest

from tests.faults.helpers import assert_clean, run_handler
from tests.hostile import adversary as A

SIZE = 64 * 1024  # the notice text detectors read is capped at 64 K characters anyway
# A quadratic pattern over 64 KB costs ~0.5-100 s here; linear ones stay within a few
# times the plain message (bench/adversarial.py: at most 5x since the line bounds of
# scan.first_lines), which costs 0.4-200 ms depending on the place.
RATIO = 40
FLOOR = 0.5  # seconds: below this nothing is pathological, whatever the ratio
# And the slowest row must grow linearly: x4 the input, ~x4 the time (x16 if quadratic).
GROWTH = 8
GROWTH_FROM = 0.1  # seconds: faster rows are too noisy to read a growth from

TARGETS = A.all_targets()


def test_every_pattern_and_scanner_is_a_target():
    from bounce_handler.parse import lazyre

    names = [t.name for t in TARGETS]
    assert len(names) == len(set(names))
    patterns = {(p.pattern, p.flags) for p in lazyre.ALL}
    assert len([t for t in TARGETS if t.module != "bounce_handler.parse.scan"
                and t.pattern]) == len(patterns) > 50
    # Owners are found (a pattern in a module's table or class is named after it).
    assert not [n for n in names if n.startswith("?")]
    assert {"base.html_to_text", "scan.Address", "scan.strip_blocks", "mime._split",
            "mime.decode_words"} <= set(names)


def test_the_generator_finds_the_issue_14_inputs():
    """The attacks are derived, not listed: the derivation rediscovers the known ones."""
    tag = A.attacks(r"<[^>]*>", 0, 100)
    assert ("('<')*", "<" * 100) in tag
    script = dict(A.attacks(r"(?is)<(script|style)\b.*?</\1>", 0, 70))
    assert script["('<script')*"] == "<script" * 10
    # a quantifier pumped: ADDRESS's local part
    address = dict(A.attacks(r"[\w.]{1,200}@[\w-]{1,63}", 0, 50))
    assert "." * 50 in address.values()  # the class's own literal first


@pytest.fixture(scope="module")
def plain_cache():
    return {}


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_worst_inputs_cost_a_small_multiple_of_a_plain_message(target, plain_cache):
    rows = A.evaluate(target, SIZE, plain_cache)
    assert rows
    bad = [r for r in rows if r.seconds > max(RATIO * r.plain, FLOOR)]
    assert not bad, "; ".join(
        f"{r.place} {r.label[:50]}: {r.seconds:.2f} s vs plain {r.plain:.3f} s" for r in bad
    )
    worst = max(rows, key=lambda r: r.seconds)
    if worst.seconds > GROWTH_FROM:
        g = A.growth(target, worst, SIZE)
        assert g <= GROWTH, f"{worst.place} {worst.label[:50]}: x{g:.1f} for x4 the input"


@pytest.mark.parametrize("place", A.BIG_PLACES)
def test_ten_mib_single_lines(place):
    """~10 MiB in one line (the pipe's read cap) in each place: seconds, not minutes."""
    parse = A._parse()
    plain = A.big_message(place, A.PROSE)
    parse(plain[:4000])
    tp = A.timed(parse, plain)
    for name, unit in A.BIG_UNITS.items():
        msg = A.big_message(place, unit)
        t = A.timed(parse, msg)
        print(f"\n{place}/{name}: {t:.2f} s (plain {tp:.2f} s)")
        assert t <= max(10 * tp, 10.0), f"{place}/{name}: {t:.2f} s vs plain {tp:.2f} s"


# -- Through the real entrypoint and through real Postfix ------------------------------------

def html_bounce(size: int = 600 * 1024) -> bytes:
    """A "bounce" whose text/html part repeats an unclosed <script> (issue 14: 114 s)."""
    return (
        b"From: MAILER-DAEMON@mx.example\nTo: bounces+alice=example.net@relay.test\n"
        b"Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="B"\n\n--B\n'
        b"Content-Type: text/html; charset=utf-8\n\n<html><body>"
        + b"<script>" * (size // 8) + b"\n--B--\n"
    )


def test_worst_html_bounce_through_the_entrypoint(store):
    data = html_bounce()
    t = time.monotonic()
    res, wall, _rss = run_handler(store.config, "alice=example.net", data, timeout=300)
    wall = time.monotonic() - t
    assert_clean(res)
    assert res.returncode == 0
    assert wall < 10, f"{wall:.1f} s"  # ~0.2 s here; 114 s (and more under load) before
    assert store.query("SELECT disposition FROM messages") in ([("quarantined",)],
                                                                [("recorded",)])


@pytest.mark.postfix
def test_worst_html_bounce_through_postfix(pipe_bin, _migrated_template):
    """The crafted bounce is kept, not "Command time limit exceeded" (and so lost).

    The pipe's time limit is 30 s here (120 s shipped): 400 KB of "<script>" took minutes.
    """
    import tempfile

    from tests.e2e.helpers import sqlite_query
    from tests.support import postfix as pf

    relay = pf.Relay(tempfile.mkdtemp(prefix="bh-adv-", dir="/tmp"), pipe_bin,
                     sqlite_template=str(_migrated_template),
                     extra_main={"verpbounce_time_limit": "30s"})
    try:
        relay.start()
        post = relay.postfix
        to = post.verp_address("alice=example.net")
        data = html_bounce(400 * 1024).replace(b"bounces+alice=example.net@relay.test",
                                               to.encode())
        post.send("", to, data)
        post.wait_for(lambda: "relay=verpbounce" in post.log_text(), timeout=120,
                      what="the delivery's outcome")
        post.wait_queue_empty(timeout=60)
        log = post.log_text()
        assert "Command time limit exceeded" not in log
        assert "status=sent (delivered via verpbounce service" in log
        rows = sqlite_query(relay.db_path, "SELECT disposition FROM messages")
        assert rows in ([("quarantined",)], [("recorded",)])
    finally:
        relay.destroy()
