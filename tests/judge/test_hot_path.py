"""judge/lean.py runs inside the pipe: it must stay light, even when it raises flags."""

from __future__ import annotations

import subprocess
import sys

# The pipe's forbidden list, plus what the judge avoids although the stdlib would offer it:
# datetime (times are epoch microseconds, judge/utc.py) and re (with functools and
# collections; advice.py builds the transport name without it).
HEAVY = ("sqlalchemy", "alembic", "structlog", "rich", "flufl", "psycopg", "asyncio", "email",
         "json", "dataclasses", "typing", "argparse", "tomllib", "datetime", "re", "functools",
         "collections")

# store/lean.py's sqlite3 (the C module, loaded without datetime), as the pipe uses it: a
# plain `import sqlite3` would load datetime itself and hide the judge's own imports.
PROGRAM = r"""
import sys
from bounce_handler import settings
from bounce_handler.judge.lean import hook_for_settings
from bounce_handler.store.lean import (
    EVENT_COLUMNS, INSERT_EVENT, INSERT_MESSAGE, MESSAGE_COLUMNS, sqlite3)

judge = hook_for_settings(settings.defaults())
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
ts = "2026-11-02 09:00:00.000000"
m = dict(digest="d", received_at=ts, source="test", relay="", kind="bounce",
         disposition="recorded", size=1, truncated=0)
mid = conn.execute(INSERT_MESSAGE, [m.get(k) for k in MESSAGE_COLUMNS]).lastrowid
events = []
for k in range(6):
    ev = dict(message_id=mid, occurred_at=ts, kind="bounce", recipient=f"u{k}@yahoo.com",
              recipient_domain="yahoo.com", reason="userunknown", status="5.1.1", hard=1,
              detector="t", verified=1, sender="s@relay.example",
              diagnostic='550 5.1.1 "[TS03]" gone')
    ev["id"] = conn.execute(INSERT_EVENT, [ev.get(k) for k in EVENT_COLUMNS]).lastrowid
    events.append(ev)
decisions = judge(conn, events, 1793610000.0)
conn.execute("COMMIT")
print(len(decisions), sorted({d.kind for d in decisions}))
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
""".replace("%r", repr(HEAVY))


def test_judging_imports_nothing_heavy(store):
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(store.db)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    counts, heavy = out.stdout.splitlines() if out.stdout.count("\n") == 2 else (out.stdout, "")
    # 6 dead recipients raised; the 5th deferral raises the throttle flag (the 6th, in the
    # same second, finds it freshly updated: core.REFRESH).
    assert counts.startswith("7 ") and "throttled-destination" in counts
    assert heavy.strip() == ""
