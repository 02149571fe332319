"""store/lean.py loads the sqlite3 C module without functools; the driver must not notice."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def probe(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (imports are per process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_cold_import_skips_functools_and_the_sqlite3_package():
    out = probe(
        """
        import sys
        from bounce_handler.store import lean
        loaded = sorted(m for m in ("functools", "collections", "datetime", "sqlite3")
                        if m in sys.modules)
        assert loaded == [], loaded
        assert lean.sqlite3 is sys.modules["_sqlite3"]
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_statement_cache_works_and_the_real_modules_still_load_afterwards():
    out = probe(
        """
        import sys
        from bounce_handler.store import lean
        # A cache of 2 with 3 statements, each run 5 times: hits, misses and evictions
        # all go through the LRU wrapper the stand-in handed to _sqlite3.
        conn = lean.sqlite3.connect(":memory:", cached_statements=2, isolation_level=None)
        conn.execute("CREATE TABLE t (n INTEGER)")
        for i in range(5):
            conn.execute("INSERT INTO t (n) VALUES (?)", (i,))
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == i + 1
            assert conn.execute("SELECT max(n) FROM t WHERE n <= ?", (i,)).fetchone()[0] == i
        # The stand-in is gone: the real functools and the sqlite3 package load normally,
        # on the very same C module.
        import functools, sqlite3, datetime
        assert hasattr(functools, "reduce") and hasattr(functools, "partial")
        assert sqlite3.connect is lean.sqlite3.connect
        assert sqlite3.OperationalError is lean.sqlite3.OperationalError
        c2 = sqlite3.connect(":memory:")
        c2.execute("CREATE TABLE d (x TEXT)")
        c2.execute("INSERT INTO d VALUES (?)", (datetime.date(2026, 11, 25),))  # package adapter
        assert c2.execute("SELECT x FROM d").fetchone()[0] == "2026-11-25"
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_with_functools_already_loaded_the_ordinary_import_is_used():
    out = probe(
        """
        import sys, functools
        from bounce_handler.store import lean
        assert sys.modules["functools"] is functools
        assert lean.sqlite3 is sys.modules["_sqlite3"]
        conn = lean.sqlite3.connect(":memory:")
        assert conn.execute("SELECT 41 + 1").fetchone()[0] == 42
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
