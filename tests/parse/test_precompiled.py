"""The precompiled-pattern table (parse/precompile.py, parse/lazyre.py): exact, or unused."""

from __future__ import annotations

import json
import marshal
import os
import re
import stat
import subprocess
import sys

import pytest

from bounce_handler import settings
from bounce_handler.cli import caches
from bounce_handler.parse import lazyre, precompile
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"

VENDOR = ("aol_01", "exim_01", "sendmail_01", "gmail_01", "exchange_01", "qmail_01")


def test_every_pattern_is_in_the_table_and_rebuilds_equal_to_re_compile():
    table = precompile.build()
    assert len(table) == len({(p.pattern, p.flags) for p in lazyre.ALL}) > 50
    import _sre

    for (pattern, flags), entry in table.items():
        # Pattern equality compares flags, pattern text and the compiled code itself.
        assert _sre.compile(pattern, *lazyre.sre_args(entry)) == re.compile(pattern, flags)


def test_patterns_from_the_table_match_like_re_on_the_fixtures():
    table = precompile.build()
    import _sre

    texts = [p.read_bytes().decode("utf-8", "replace") for p in sorted(DATA.glob("*.eml"))]
    hits = 0
    for (pattern, flags), entry in table.items():
        ours, theirs = _sre.compile(pattern, *lazyre.sre_args(entry)), re.compile(pattern, flags)
        for text in texts:
            a = [m.span() + m.groups() for m in ours.finditer(text)]
            assert a == [m.span() + m.groups() for m in theirs.finditer(text)]
            hits += bool(a)
    assert hits > 20  # the comparison saw real matches, not only misses


def probe(config, message: bytes, tmp_path) -> tuple[str, set[str]]:
    """Run the pipe on `message` in a fresh interpreter: (output line, modules loaded)."""
    path = tmp_path / "msg.eml"
    path.write_bytes(message)
    code = (
        "import io, sys\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO(open({str(path)!r}, 'rb').read()))\n"
        "out = io.StringIO(); real = sys.stdout; sys.stdout = out\n"
        "from bounce_handler import pipe\n"
        f"rc = pipe.main(['--config', {str(config)!r}, 'x=example.net'])\n"
        "mods = sorted(sys.modules)\n"
        "sys.stdout = real\n"
        "import json\n"
        "print(json.dumps([rc, out.getvalue(), mods]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rc, line, mods = json.loads(proc.stdout.splitlines()[-1])
    assert rc == 0
    return line.strip(), set(mods)


@pytest.mark.parametrize("name", VENDOR)
def test_vendor_bounce_with_the_table_skips_re_and_reads_the_same(name, store, tmp_path):
    raw = (DATA / f"{name}.eml").read_bytes()
    s = settings.load(str(store.config))
    table = settings.patterns_path(str(store.config))
    if os.path.exists(table):
        os.unlink(table)
    without, mods = probe(store.config, b"X-Run: 1\n" + raw, tmp_path)
    assert "re" in mods  # no table: the ordinary re.compile
    assert caches.write(s)
    assert os.path.exists(table)
    with_table, mods = probe(store.config, b"X-Run: 2\n" + raw, tmp_path)
    assert "re" not in mods and "enum" not in mods
    assert with_table.startswith("recorded:")
    assert with_table == without  # same recipient, status and reason either way


def test_a_table_from_another_interpreter_is_ignored(store, tmp_path):
    s = settings.load(str(store.config))
    caches.write(s)
    table = settings.patterns_path(str(store.config))
    head, entries = marshal.loads(open(table, "rb").read())
    assert head == lazyre.header()
    with open(table, "wb") as fp:
        marshal.dump(((head[0], head[1] - 1, *head[2:]), entries), fp)
    line, mods = probe(store.config, (DATA / "exim_01.eml").read_bytes(), tmp_path)
    assert line.startswith("recorded:") and "re" in mods


def test_code_the_engine_refuses_falls_back_to_re_compile():
    """A damaged entry never reaches a match: _sre validates code and refuses it."""
    pattern = r"(?P<user>[a-z]+)@(?P<host>[a-z.]+)"
    entry = precompile.entry(pattern, 0)
    words = bytearray(entry[1])
    words[8:16] = b"\xff" * 8  # opcodes out of range
    args = (entry[0], bytes(words), *entry[2:5])
    # Even with a digest that matches the damage, _sre itself refuses the code.
    table = {(pattern, 0): (*args, lazyre.digest(pattern, 0, args))}
    lazyre.use_table(lambda: table)
    try:
        p = lazyre.LazyPattern(pattern)
        m = p.search("to joe@example.org now")
        assert m.group("user", "host") == ("joe", "example.org")
        assert p.compiled() == re.compile(pattern)
    finally:
        lazyre.use_table(None)
        lazyre.ALL.remove(p)


def _literal_altered(pattern: str, entry: tuple, old: str, new: str) -> tuple:
    """The entry with the code words of a literal character changed: still valid code.

    (The character stands in the literal and in the INFO block's prefix: both change.)
    """
    words = memoryview(bytearray(entry[1])).cast(lazyre.CODE_FORMAT)
    for i, w in enumerate(words.tolist()):
        if w == ord(old):
            words[i] = ord(new)
    return (entry[0], words.tobytes(), *entry[2:])


def test_an_altered_entry_is_not_used():
    """Issue 14: valid header, altered code: _sre accepts it and matched another pattern."""
    pattern = r"user (unknown)"
    entry = precompile.entry(pattern, 0)
    altered = _literal_altered(pattern, entry, "k", "x")  # now "user (unxnown)"
    import _sre

    assert _sre.compile(pattern, *lazyre.sre_args(altered)).search("user unxnown")  # the harm
    lazyre.use_table(lambda: {(pattern, 0): altered})
    p = lazyre.LazyPattern(pattern)
    try:
        assert p.search("550 user unknown").group(1) == "unknown"
        assert p.search("user unxnown") is None
    finally:
        lazyre.use_table(None)
        lazyre.ALL.remove(p)


def test_swapped_entries_make_the_whole_table_unusable():
    a, b = r"mailbox (full)", r"(quota) exceeded"
    ea, eb = precompile.entry(a, 0), precompile.entry(b, 0)
    calls = []

    def loader():
        calls.append(1)
        return {(a, 0): eb, (b, 0): ea}

    lazyre.use_table(loader)
    pa, pb = lazyre.LazyPattern(a), lazyre.LazyPattern(b)
    try:
        assert pa.search("the mailbox full").group(1) == "full"
        assert pb.search("quota exceeded").group(1) == "quota"
        assert calls == [1]  # read once, then dropped as a whole
        assert not lazyre.verify(loader()) and lazyre.verify({(a, 0): ea, (b, 0): eb})
    finally:
        lazyre.use_table(None)
        lazyre.ALL.remove(pa)
        lazyre.ALL.remove(pb)


def test_a_tampered_table_through_the_real_pipe(store, tmp_path):
    """Every entry of a vendor bounce's patterns swapped with another's, header intact.

    Before: the pipe ran the other patterns' code (wrong or no recipients, status "-").
    Now: the table is refused and the bounce reads exactly as without one.
    """
    raw = (DATA / "exim_01.eml").read_bytes()
    table = settings.patterns_path(str(store.config))
    without, _ = probe(store.config, b"X-Run: 1\n" + raw, tmp_path)
    assert without.startswith("recorded:")
    caches.write(settings.load(str(store.config)))
    head, entries = marshal.loads(open(table, "rb").read())
    keys = sorted(entries)
    swapped = {k: entries[keys[(i + 1) % len(keys)]] for i, k in enumerate(keys)}
    with open(table, "wb") as fp:
        marshal.dump((head, swapped), fp)
    tampered, mods = probe(store.config, b"X-Run: 2\n" + raw, tmp_path)
    assert "re" in mods  # compiled the ordinary way
    assert tampered == without


def test_the_table_gets_the_config_files_mode(store):
    os.chmod(store.config, 0o640)
    caches.write(settings.load(str(store.config)))
    table = settings.patterns_path(str(store.config))
    assert stat.S_IMODE(os.stat(table).st_mode) == 0o640
