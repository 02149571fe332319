"""The PostgreSQL spool: the pipe's durable hand-off to the resident daemon.

``import psycopg`` alone costs ~150 ms, 13x a bare interpreter start, and the pipe runs once
per bounce; so with ``[database] pg_mode = "spool"`` (the default for a PostgreSQL URL) the
pipe parses and classifies the message exactly as for SQLite, and this writer puts the
resulting ``intake.Batch`` in a file instead of a database.  ``bounces daemon`` (the drain
service, ``daemon/drain.py``) moves every file into PostgreSQL with the direct writer and
deletes it only after the commit.

Layout of ``[database] spool_dir`` (created by ``deploy/`` with the modes below)::

    tmp/        files being written (a crash leaves debris here, never in new/)
    new/        complete batches, one file per message, named by the message digest
    bad/        files the drain could not read or store, each with NAME.why beside it
                saying why (kept for a human, never deleted)

Durability, in the order pipe(8) needs it (exit 0 makes Postfix delete its copy, so the
file must be on disk first): write to ``tmp/``, ``fsync`` the file, ``link`` it to
``new/DIGEST`` (atomic; fails if the name exists), ``fsync`` the ``new/`` directory, and
only then exit 0.  ``link`` rather than ``rename`` because it refuses to replace: a
redelivery of a message still waiting in the spool is a *duplicate*, reported as such.
One that was already drained is spooled again and becomes a duplicate in PostgreSQL (the
digest is unique there), so every path is idempotent.

The file format is ``MAGIC`` followed by a ``marshal`` dump of a tuple of plain values
(dicts of str/int/None, bytes, float): ``marshal`` is built into the interpreter (no
import cost, unlike json or pickle's module) and the batch holds nothing it cannot
represent.  marshal is not safe against crafted input, which is fine here: only the pipe
user can write the spool (mode 0770, owner pipe user, group of the daemon), and the reader
is the same installation's Python.  ``FORMAT`` is bumped if the tuple ever changes.
"""

from __future__ import annotations

import marshal
import os

from bounce_handler.errors import StoreUnavailable
from bounce_handler.store.rows import Batch, clean_batch

MAGIC = b"BHSPOOL1\n"
FORMAT = 1
# Files in new/ have exactly this suffix; anything else there is ignored by the drain.
SUFFIX = ".batch"


def dump(batch) -> bytes:
    """Serialise one batch to the spool file content."""
    return MAGIC + marshal.dumps(
        (FORMAT, batch.message, batch.raw, list(batch.events), batch.quarantine, batch.now)
    )


class SpoolFormatError(Exception):
    """A spool file that is not a complete batch of a known format."""


def load(data: bytes):
    """Read the Batch a spool file holds. Raises SpoolFormatError."""
    if not data.startswith(MAGIC):
        raise SpoolFormatError("not a bounce-handler spool file (bad magic)")
    try:
        value = marshal.loads(data[len(MAGIC) :])
    except (ValueError, EOFError, TypeError) as e:
        raise SpoolFormatError(f"unreadable batch: {e}") from None
    if not isinstance(value, tuple) or len(value) != 6 or value[0] != FORMAT:
        raise SpoolFormatError("unknown spool format version")
    _, message, raw, events, quarantine, now = value
    if not isinstance(message, dict) or "digest" not in message or not isinstance(events, list):
        raise SpoolFormatError("spool file lacks the message row")
    return Batch(message, raw, events, quarantine, now)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _explain(e: OSError, spool_dir: str) -> str:
    """One line for mailq: which directory and why."""
    import errno

    where = e.filename or spool_dir
    if e.errno == errno.ENOSPC:
        return f"spool {spool_dir}: disk full"
    if e.errno == errno.EDQUOT:
        return f"spool {spool_dir}: quota exceeded"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"spool {where} not writable by uid {os.getuid()} (directory mode?)"
    if e.errno == errno.EROFS:
        return f"spool {spool_dir} is on a read-only file system"
    if e.errno == errno.ENOENT:
        where = os.path.dirname(e.filename) if e.filename else spool_dir
        return f"spool directory {where} does not exist: create it (see deploy/spool-and-lmtp.md)"
    return f"spool {where}: {e.strerror or type(e).__name__}"


class SpoolWriter:
    """Writes one Batch per call into ``spool_dir/new``; same interface as SqliteWriter."""

    # intake.process need not build the judge hook: the drain runs it in PostgreSQL.
    runs_judge = False
    # ... and says "spooled", not "recorded": the rows reach the database when drained.
    spools = True

    def __init__(self, spool_dir: str) -> None:
        self.spool_dir = spool_dir
        self.tmp_dir = os.path.join(spool_dir, "tmp")
        self.new_dir = os.path.join(spool_dir, "new")

    def record(self, batch, judge=None) -> tuple[int | None, bool]:
        """Spool the batch durably; return (None, created). created=False: already spooled.

        ``judge`` is accepted for the writer interface and not used: the drain runs the
        judge when it writes the batch into PostgreSQL, in the same transaction.
        """
        # Cleaned before it is written: the file holds what PostgreSQL will take (the
        # drain's writer cleans again; clean_batch is idempotent).
        clean_batch(batch)
        digest = batch.message["digest"]
        name = digest + SUFFIX
        final = os.path.join(self.new_dir, name)
        tmp = os.path.join(self.tmp_dir, f"{digest}.{os.getpid()}")
        data = dump(batch)
        try:
            if os.path.exists(final):
                return None, False
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, final)
                created = True
            except FileExistsError:
                created = False  # a concurrent delivery of the same message won the race
            finally:
                os.unlink(tmp)
            if created:
                _fsync_dir(self.new_dir)
            return None, created
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise StoreUnavailable(_explain(e, self.spool_dir)) from None


def pending(spool_dir: str) -> list[str]:
    """Names of the complete batches in ``new/``, oldest first (arrival order for the judge)."""
    new_dir = os.path.join(spool_dir, "new")
    entries = []
    with os.scandir(new_dir) as it:
        for entry in it:
            if entry.name.endswith(SUFFIX):
                try:
                    entries.append((entry.stat().st_mtime_ns, entry.name))
                except FileNotFoundError:  # drained by another drain meanwhile
                    continue
    entries.sort()
    return [name for _, name in entries]


def make_dirs(spool_dir: str, mode: int = 0o770) -> None:
    """Create the spool layout (for `bounces daemon`, tests and the install script)."""
    for sub in ("", "tmp", "new", "bad"):
        os.makedirs(os.path.join(spool_dir, sub), mode=mode, exist_ok=True)
