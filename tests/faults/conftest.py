"""Fixtures for fault tests: small file systems, a private PostgreSQL with the schema."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.services import require


class Tmpfs:
    """A size-limited tmpfs mounted at `path` (root only); unmounted at teardown."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        self.size = size

    def mount(self) -> str | None:
        """Mount; return None on success, else why it was refused."""
        self.path.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        return None if proc.returncode == 0 else (proc.stderr.strip() or "mount failed")

    def remount(self, opts: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{opts}", str(self.path)], check=True)

    def umount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (disk-full tests); skips, saying why, when it cannot be mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root; disk-full tests not run")
    fs = Tmpfs(tmp_path / "small", "1m")
    why = fs.mount()
    if why:
        # A loop file system would need the same privilege (mount) plus losetup; when
        # tmpfs is refused, that is refused too.
        pytest.skip(f"cannot mount a tmpfs ({why}); disk-full tests not run")
    yield fs
    fs.umount()


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL on loopback (tests/support/postgres.py), or skip/fail."""
    from tests.support import postgres

    why = postgres.unavailable_reason()
    if why:
        require("PostgreSQL", why)
    try:
        import bounce_handler.store.pg  # noqa: F401
    except ImportError as e:
        require("PostgreSQL writer", f"bounce_handler/store/pg.py not importable: {e}")
    # pytest's tmp root is 0700 root; the server runs as `postgres` and must reach its
    # data directory, so it lives in a directory of its own under /tmp.
    import tempfile

    base = tempfile.mkdtemp(prefix="bh-faults-pg-", dir="/tmp")
    os.chmod(base, 0o755)
    inst = postgres.PostgresInstance(os.path.join(base, "pg"))
    os.makedirs(inst.base_dir)
    try:
        inst.start()
        yield inst
    finally:
        inst.destroy()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server, request):
    """A fresh migrated database on the private server; returns its URL."""
    from bounce_handler import settings
    from bounce_handler.store import engine

    if not pg_server.is_running():
        pg_server.start()
    name = "f_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    name = "".join(c if c.isalnum() else "_" for c in name)
    url = pg_server.create_database(name)
    # The shared fixture runs with synchronous_commit=off for speed; a crash test needs
    # real commits (an exit 0 whose commit a crash loses would look like our bug). A
    # per-database setting overrides the server's command line.
    import psycopg

    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    engine.upgrade(settings.from_dict({"database": {"url": url}}))
    return url
