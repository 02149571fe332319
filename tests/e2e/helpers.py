"""Queries the e2e tests make on the stores (read-only, outside the code under test)."""

from __future__ import annotations


def pg_query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` on the PostgreSQL database at `url`."""
    import psycopg

    from bounce_handler.store.pg import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params).fetchall()


def sqlite_query(path: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of `sql` on the SQLite file at `path`."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
