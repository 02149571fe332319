"""Queries the e2e tests make on the stores (read-only, outside the code under test)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys


def pg_query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` on the PostgreSQL database at `url`."""
    import psycopg

    from bounce_handler.store.pg import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchall()


def sqlite_query(path: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` on the SQLite file at `path`, read as the file's owner.

    Root opening a WAL database that nobody has open creates its -wal and -shm and only
    then hands them to the database's owner (SQLite's robustFchown).  A pipe process
    opening them in that window finds them read-only and defers: seen once as
    "database ... is read-only for uid 65534" in test_hostile_extensions_through_pipe8,
    whose polling read the relay's store as root while Postfix delivered.  Tests poll
    while the pipe writes, so they read as the pipe does.
    """
    st = os.stat(path)
    if os.geteuid() != 0 or st.st_uid == 0:
        return _sqlite_rows(path, sql, params)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    proc = subprocess.run(
        [python, "-c", _AS_OWNER, path, sql, repr(tuple(params))],
        user=st.st_uid, group=st.st_gid, extra_groups=[], capture_output=True, text=True,
        timeout=60, cwd="/",
    )
    if proc.returncode != 0:
        raise AssertionError(f"reading {path} as uid {st.st_uid}: {proc.stderr[-2000:]}")
    return ast.literal_eval(proc.stdout)


def _sqlite_rows(path: str, sql: str, params: tuple) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


_AS_OWNER = (
    "import ast, sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1])\n"
    "try:\n"
    "    print(repr(conn.execute(sys.argv[2], ast.literal_eval(sys.argv[3])).fetchall()))\n"
    "finally:\n"
    "    conn.close()\n"
)
