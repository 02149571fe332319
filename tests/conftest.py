"""Shared fixtures: a real, migrated SQLite store and the real console scripts.

Tests run the installed ``bounce-handler`` and ``bounces`` executables as subprocesses (what
Postfix and an administrator run), never a mock of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLES = ROOT / "samples"


def script(name: str) -> str:
    """Path of a console script installed beside the test interpreter."""
    path = BIN / name
    if not path.exists():  # pragma: no cover - a broken install, not a test condition
        pytest.fail(f"{path} not found: install the project (pip install -e .[test])")
    return str(path)


class Store:
    """A migrated SQLite store in a temp dir, with a config file naming it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "bounces.db"
        self.config = root / "config.toml"
        self.url = f"sqlite:///{self.db}"

    def write_config(self, extra: str = "") -> None:
        self.config.write_text(
            f'[database]\nurl = "{self.url}"\nbusy_timeout = 2.0\n'
            f'[log]\ntarget = "stderr"\n[intake]\nrelay = "test-relay"\n' + extra
        )

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["BOUNCE_HANDLER_CONFIG"] = str(self.config)
        return env

    def handler(self, *args: str, input: bytes = b"", timeout: float = 60):
        """Run the real bounce-handler with `input` on stdin."""
        return subprocess.run(
            [script("bounce-handler"), *args],
            input=input,
            capture_output=True,
            env=self.env(),
            timeout=timeout,
        )

    def bounces(self, *args: str, input: bytes | None = None, timeout: float = 120):
        """Run the real `bounces` CLI against this store."""
        return subprocess.run(
            [script("bounces"), *args],
            input=input,
            capture_output=True,
            env=self.env(),
            timeout=timeout,
        )

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import sqlite3

        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory) -> Path:
    from bounce_handler import settings
    from bounce_handler.store import engine

    root = tmp_path_factory.mktemp("template")
    db = root / "bounces.db"
    engine.upgrade(settings.from_dict({"database": {"url": f"sqlite:///{db}"}}))
    return db


@pytest.fixture
def store(tmp_path, _migrated_template) -> Store:
    """A fresh migrated store (a copy of a session template: alembic runs once)."""
    s = Store(tmp_path)
    shutil.copy(_migrated_template, s.db)
    s.write_config()
    return s


@pytest.fixture
def empty_store(tmp_path) -> Store:
    """A config naming a database file that does not exist yet."""
    s = Store(tmp_path)
    s.write_config()
    return s



# -- A real Postfix and PostgreSQL (tests/support/postfix.py, postgres.py) -------------------
# Skipped when absent, failed under BOUNCE_HANDLER_REQUIRE_SERVICES=1 (tests/support/services).


@pytest.fixture(scope="session")
def pipe_bin():
    """A bin directory whose bounce-handler Postfix's pipe user (nobody) can execute.

    The dev venv when nobody can run it; otherwise a non-editable deploy/install.sh
    deployment in a 0755 directory under /tmp, built once per session.
    """
    import tempfile

    from tests.support import postfix as pf
    from tests.support.services import require

    why = pf.unavailable_reason()
    if why:
        require("postfix", why)
    scratch = tempfile.mkdtemp(prefix="bh-pipe-bin-", dir="/tmp")
    os.chmod(scratch, 0o755)
    try:
        bin_dir, _how = pf.pipe_bin_dir(str(ROOT), str(BIN), scratch)
        yield bin_dir
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix_relay(pipe_bin, _migrated_template):
    """A private Postfix (127.0.0.1, random port) piping bounces+TOKEN@relay.test into the
    real bounce-handler, which records them in a migrated SQLite store (``relay.db_path``).
    """
    import tempfile

    from tests.support import postfix as pf

    relay = pf.Relay(
        tempfile.mkdtemp(prefix="bh-relay-", dir="/tmp"),
        pipe_bin,
        sqlite_template=str(_migrated_template),
    )
    try:
        yield relay.start()
    finally:
        relay.destroy()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A private PostgreSQL on loopback (tests/support/postgres.py), or skip/fail."""
    from tests.support import postgres
    from tests.support.services import require

    why = postgres.unavailable_reason()
    if why:
        require("PostgreSQL", why)
    inst = postgres.PostgresInstance(str(tmp_path_factory.mktemp("pg")))
    inst.start()
    yield inst
    inst.destroy()
