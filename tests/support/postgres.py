"""A private PostgreSQL server for tests: its own data directory, socket and loopback port.

Debian's ``postgresql-15`` package ships the binaries under /usr/lib/postgresql/15/bin;
``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user
(``runuser``), in a directory that user owns.  ``fsync=off`` and ``initdb --no-sync``:
the data is thrown away after the run, and an OS crash is not what the tests simulate.
``synchronous_commit`` stays *on*: the outage tests stop the server with ``-m immediate``
(a crash), and with it off the last commits (e.g. the migrations made a second earlier)
were lost -- seen here, the schema vanished.  Measured: initdb ~0.6 s, start ~0.1 s.

    pg = PostgresInstance(base_dir, port)
    pg.start()            # initdb (first time) + pg_ctl start -w
    pg.url("bounces")     # postgresql+psycopg://bounce@127.0.0.1:PORT/bounces
    pg.stop() / pg.start()   # a database outage and its end, for e2e tests
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time

# The server user for tests; trust authentication on loopback only (the cluster listens
# on 127.0.0.1 and a private socket directory, nothing else).
ROLE = "bounce"


def find_bindir() -> str | None:
    """The directory holding initdb/pg_ctl/postgres, newest major version first."""
    explicit = os.environ.get("BOUNCE_HANDLER_PG_BINDIR")
    if explicit:
        return explicit if os.path.exists(os.path.join(explicit, "pg_ctl")) else None
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    for d in candidates:
        if os.path.exists(os.path.join(d, "pg_ctl")) and os.path.exists(os.path.join(d, "initdb")):
            return d
    for name in ("pg_ctl",):
        found = shutil.which(name)
        if found and shutil.which("initdb"):
            return os.path.dirname(os.path.realpath(found))
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable_reason() -> str | None:
    """Why a private PostgreSQL cannot run here, or None when it can."""
    if find_bindir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql-15"
        )
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    return None


def _reachable_by_others(path: str) -> bool:
    """Whether every existing ancestor of `path` is traversable by other users (o+x)."""
    path = os.path.abspath(path)
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except FileNotFoundError:
            continue


class PostgresError(RuntimeError):
    """The private server could not be set up or started."""


class PostgresInstance:
    """One private PostgreSQL cluster under `base_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, base_dir: str, port: int | None = None) -> None:
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres and not _reachable_by_others(base_dir):
            # A pytest tmp dir lives under /tmp/pytest-of-root (0700): the server user
            # could not reach its own data directory there.
            import tempfile

            base_dir = tempfile.mkdtemp(prefix="bh-pg-", dir="/tmp")
        self.base_dir = base_dir
        self.port = port or free_port()
        self.bindir = find_bindir()
        if self.bindir is None:
            raise PostgresError(unavailable_reason() or "no PostgreSQL binaries")
        self.data_dir = os.path.join(base_dir, "data")
        self.socket_dir = os.path.join(base_dir, "sock")
        self.log_file = os.path.join(base_dir, "server.log")
        self.start_seconds: float | None = None
        self.initdb_seconds: float | None = None

    # -- plumbing ---------------------------------------------------------------------

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise PostgresError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}\n"
                f"{self.log_tail()}"
            )
        return proc

    def _bin(self, name: str) -> str:
        return os.path.join(self.bindir, name)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server log (for failure messages)."""
        try:
            with open(self.log_file, errors="replace") as fp:
                return "".join(fp.readlines()[-lines:])
        except OSError:
            return ""

    def _prepare_dirs(self) -> None:
        # The parent may be a 0700 pytest tmp dir owned by root: the server user must be
        # able to traverse to its own directories, so the base is made 0755 and handed over.
        os.makedirs(self.socket_dir, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        if self._as_postgres:
            import pwd

            pw = pwd.getpwnam("postgres")
            for p in (self.base_dir, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    # -- lifecycle --------------------------------------------------------------------

    def initdb(self) -> None:
        """Create the cluster (once)."""
        if os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            return
        self._prepare_dirs()
        t0 = time.monotonic()
        self._run(
            [
                self._bin("initdb"),
                "-D",
                self.data_dir,
                "-U",
                ROLE,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        self.initdb_seconds = time.monotonic() - t0

    def start(self) -> None:
        """initdb if needed, then start the server and wait until it accepts connections."""
        self.initdb()
        t0 = time.monotonic()
        opts = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c full_page_writes=off",
                # Several relays x several pipe processes in the e2e tests, plus the CLI.
                "-c max_connections=200",
            ]
        )
        self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                self.data_dir,
                "-l",
                self.log_file,
                "-o",
                opts,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )
        self.start_seconds = time.monotonic() - t0

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: disconnect clients, as an outage would)."""
        if self.is_running():
            self._run([self._bin("pg_ctl"), "-D", self.data_dir, "-m", mode, "-w", "stop"])

    def is_running(self) -> bool:
        """True when the postmaster is up."""
        if not os.path.exists(os.path.join(self.data_dir, "postmaster.pid")):
            return False
        return (
            self._run([self._bin("pg_ctl"), "-D", self.data_dir, "status"], check=False).returncode
            == 0
        )

    def destroy(self) -> None:
        """Stop the server and remove its files."""
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- databases --------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create database `name` (dropping any previous one) and return its URL."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def dsn(self, dbname: str) -> str:
        """A libpq connection string (for psycopg directly)."""
        return f"host=127.0.0.1 port={self.port} user={ROLE} dbname={dbname}"

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL the handler's config takes."""
        return f"postgresql+psycopg://{ROLE}@127.0.0.1:{self.port}/{dbname}"
