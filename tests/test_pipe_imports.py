"""The pipe's import list is part of its contract: nothing heavy on the per-bounce path."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import SAMPLES

# Each costs 20-360 ms in a fresh process here (measured: sqlalchemy ~235, alembic ~360,
# structlog ~120, psycopg ~150, flufl.bounce ~45, email.parser ~22, dataclasses ~14).
FORBIDDEN = (
    "sqlalchemy", "alembic", "structlog", "rich", "flufl", "psycopg", "asyncio",
    "email", "dataclasses", "typing", "argparse", "tomllib", "json", "logging",
)



def run_probe(store, extension: str, message: bytes) -> tuple[int, set[str]]:
    from bounce_handler import settings
    from bounce_handler.cli import caches

    # As after `bounces db upgrade` / `bounces config check`: the parsed-config cache and
    # the precompiled-pattern table exist.
    caches.write(settings.load(str(store.config)))
    path = store.root / "msg.eml"
    path.write_bytes(message)
    code = (
        "import io, sys\n"
        f"sys.stdin = io.TextIOWrapper(io.BytesIO(open({str(path)!r}, 'rb').read()))\n"
        "from bounce_handler import pipe\n"
        f"rc = pipe.main(['--config', {str(store.config)!r}, {extension!r}])\n"
        "mods = sorted(sys.modules)\n"  # before json, which is only the probe's
        "import json\n"
        "print('MODULES=' + json.dumps(mods))\n"
        "print('RC=%d' % rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    mods = json.loads(next(x for x in lines if x.startswith("MODULES="))[8:])
    rc = int(next(x for x in lines if x.startswith("RC="))[3:])
    return rc, set(mods)


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in FORBIDDEN)


def test_standard_dsn_path_imports_nothing_heavy(store):
    dsn = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
    rc, mods = run_probe(store, "alice=example.net", dsn)
    assert rc == 0
    assert heavy(mods) == []
    assert "_sqlite3" in mods  # it did reach the store


# Not heavy, but not free in a ~10 ms process either, and a standard DSN needs none of them.
# re (with enum, functools, collections): ~4.5 ms; the quarantine and heuristic paths may
# still load it through parse.lazyre.  datetime (with operator, math): ~1.5-2.5 ms; the
# judge keeps its times as epoch microseconds (judge/utc.py) and store/lean.py binds text.
STANDARD_PATH_SKIPS = ("re", "datetime", "functools", "collections")


def test_standard_dsn_path_imports_no_re_nor_datetime(store):
    """A standard RFC 3464 DSN is read by parse.scan's hand-written scanners, and judged.

    It raises a dead-recipient flag (R1), so the judge's raise path is in the run too.
    """
    dsn = (SAMPLES / "01-postfix-user-unknown.eml").read_bytes()
    rc, mods = run_probe(store, "alice=example.net", dsn)
    assert rc == 0
    assert "_sqlite3" in mods
    assert store.query("SELECT kind, rule FROM flags") == [("dead-recipient", "R1")]
    assert sorted(m for m in STANDARD_PATH_SKIPS if m in mods) == []


def test_quarantine_path_imports_nothing_heavy(store):
    rc, mods = run_probe(store, "x=y", b"garbage\n")
    assert rc == 0
    assert heavy(mods) == []
