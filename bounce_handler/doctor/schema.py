"""The store: reachable, and its schema at the migrations' head.

The pipe (and the daemon) check the schema revision before writing and defer (75 / LMTP
451) while it is behind ``bounces db upgrade``: every bounce waits in a queue meanwhile.
Database URLs are never printed with their password (``redact``).
"""

from __future__ import annotations

import os
import shlex

from bounce_handler.doctor.findings import OK, PROBLEM, Finding


def redact(text: str, url: str) -> str:
    """`text` with every password `url` carries (user:password@, ?password=) masked."""
    from bounce_handler import redaction

    return redaction.redact(text, *redaction.url_secrets(url))


def sqlite_revision(path: str) -> str | None:
    """The alembic revision of a SQLite store, read without leaving a file behind.

    Opening a WAL database (even ``mode=ro``) creates -wal and -shm beside it, owned by
    whoever opens it: doctor runs as root, and a root-owned -shm makes the database
    read-only for the pipe user -- every bounce deferred by the check meant to catch
    that (found by tests/e2e/test_doctor_paths.py).  Without a -wal file everything is
    in the main file, and ``immutable=1`` reads it with no side files at all.
    """
    import sqlite3
    from urllib.parse import quote

    live = os.path.exists(path + "-wal") and os.path.exists(path + "-shm")
    uri = f"file:{quote(path)}?{'mode=ro' if live else 'immutable=1'}"
    conn = sqlite3.connect(uri, uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise
    finally:
        conn.close()
    return row[0] if row else None


def check_schema(intake) -> list[Finding]:
    """Migrations at head for the intake's store (as doctor's user: root reads anything)."""
    from bounce_handler.store import engine

    cfg = intake.settings
    url = cfg.database.url
    cfg_arg = f" --config {shlex.quote(cfg.path)}" if cfg.path else ""
    upgrade = f"{shlex.quote(intake.bounces())}{cfg_arg} db upgrade"
    if intake.user and url.startswith("sqlite"):
        # As the pipe user: a SQLite file created by root would be read-only for the pipe.
        upgrade = f"runuser -u {shlex.quote(intake.user)} -- {upgrade}"
    subject = redact(url, url)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        if not os.path.exists(path):
            # Looking would create an empty file owned by doctor's user (root).
            if intake.kind == "pipe":
                return []  # access.database reports it, with the fix
            return [
                Finding(
                    PROBLEM,
                    f"database {path} does not exist: the daemon answers 451 until it does",
                    commands=[upgrade],
                    check="store.schema",
                    subject=subject,
                )
            ]
    try:
        if url.startswith("sqlite:///"):
            current = sqlite_revision(url[len("sqlite:///") :].split("?", 1)[0])
        else:
            current = engine.current_revision(cfg)
        head = engine.head_revision()
    except Exception as e:  # noqa: BLE001 - any failure to look is itself the finding
        first = str(e).splitlines()[0][:200] if str(e) else ""
        return [
            Finding(
                PROBLEM,
                f"cannot read the database schema version: {type(e).__name__}: "
                + redact(first, url),
                "check [database] url (the server, the role, the password), then: " + upgrade,
                check="store.schema",
                subject=subject,
            )
        ]
    if current != head:
        return [
            Finding(
                PROBLEM,
                f"database schema at {current or 'nothing (empty)'}, head is {head}: the "
                "pipe exits 75 (Postfix keeps retrying) until it is upgraded",
                commands=[upgrade],
                check="store.schema",
                subject=subject,
            )
        ]
    return [Finding(OK, f"database schema at head ({head})", check="store.schema", subject=subject)]
