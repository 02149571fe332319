"""MIME bombs through the real entrypoint: defined exit, bounded time and memory, no traceback.

Bounds asserted per message (generous, for a loaded 2-core CI machine): wall time <= 10 s,
max RSS <= 300 MiB, measured for exactly that child (os.wait4).  The figures seen on the
development machine are printed (pytest -s) and recorded in deploy/spool-and-lmtp.md.
"""

from __future__ import annotations

import pytest

from tests.faults.helpers import assert_clean, run_handler
from tests.hostile.bombs import BOMBS

MAX_SECONDS = 10.0
MAX_RSS_MIB = 300.0


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_has_defined_exit_and_bounded_cost(store, name):
    data = BOMBS[name]()
    res, wall, rss = run_handler(store.config, "alice=example.net", data, timeout=120)
    print(f"\n{name}: {len(data) / 1048576:.1f} MiB in, exit {res.returncode}, "
          f"{wall:.2f} s, max RSS {rss:.0f} MiB: {res.stdout[:90]!r}")
    assert_clean(res)
    assert res.returncode == 0  # the store is healthy: recorded or quarantined, kept
    assert wall <= MAX_SECONDS
    assert rss <= MAX_RSS_MIB
    assert store.query("SELECT count(*) FROM messages")[0][0] == 1
    if len(data) > 10 * 1024 * 1024:
        assert store.query("SELECT truncated, size FROM messages") == [(1, len(data))]
