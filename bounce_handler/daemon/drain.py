"""The spool drain: moves the batches the pipe spooled (``store/spool.py``) into PostgreSQL.

A service of ``bounces daemon`` (and ``bounces daemon --drain-once`` for cron and tests).
For each file in ``spool_dir/new``, oldest first: read the batch, write it with the
direct PostgreSQL writer (``store/pg.py``; idempotent on the message digest, so a file
drained twice -- a crash between the commit and the unlink -- is a duplicate, not a
second row), and delete the file only after the commit.

When PostgreSQL is unreachable (``StoreUnavailable``) the pass stops, every file stays,
and the next pass waits with an exponential backoff (1 s doubling to ``MAX_BACKOFF``):
the spool is the queue, exactly as Postfix's queue is for a pipe in direct mode.

A poison file never blocks the ones behind it.  The writer tells a data error (these
rows can never be stored: PostgreSQL refuses a value) from an outage: it stores such a
message as quarantined with why (store/rows.py ``set_aside``), and the file is done.
What is left goes to ``bad/`` with a ``NAME.why`` file beside it saying why:

- a file that is not a batch (truncated by hand, a foreign file): at once;
- a batch even the set-aside row of was refused (``UnstorableMessage``): at once;
- a batch the writer fails on for another reason (a bug, a damaged batch): after
  ``MAX_ATTEMPTS`` passes.  The count is kept in ``new/NAME.tries``, so it survives a
  restart of the daemon and separate ``--drain-once`` runs (it used to live in memory,
  and a file that failed in every cron run stayed in ``new/`` forever).

Nothing is ever deleted without a commit.

Usable without the daemon::

    python -m bounce_handler.daemon.drain [--config PATH] [--once]
"""

from __future__ import annotations

import logging
import os
import threading
import time

from bounce_handler import redaction
from bounce_handler.errors import StoreUnavailable, UnstorableMessage
from bounce_handler.store import spool

log = logging.getLogger("bounce_handler.daemon.drain")

MAX_BACKOFF = 60.0
MAX_ATTEMPTS = 3
# Beside new/NAME: how many passes failed on it (ignored by spool.pending: not SUFFIX).
TRIES_SUFFIX = ".tries"
# Seconds between scans of an empty spool (a new file waits at most this long).
IDLE_INTERVAL = 0.5


class DrainStats:
    """What one pass did."""

    __slots__ = ("drained", "duplicates", "bad", "left", "error")

    def __init__(self) -> None:
        self.drained = 0
        self.duplicates = 0
        self.bad = 0
        self.left = 0
        self.error: str | None = None

    def __repr__(self) -> str:
        return (
            f"DrainStats(drained={self.drained}, duplicates={self.duplicates}, "
            f"bad={self.bad}, left={self.left}, error={self.error!r})"
        )


def default_writer_factory(settings):
    """Return the direct PostgreSQL writer (psycopg is imported here, in the daemon only).

    It keeps its connection between files: a new connection per file cost more CPU
    (client and server) than the file's rows.
    """
    from bounce_handler.store.pg import writer_for_settings

    return writer_for_settings(settings, keep_connection=True)


class DrainService:
    """Drains ``[database] spool_dir`` into the store; ``start``/``stop`` run it in a thread."""

    name = "spool-drain"

    def __init__(self, settings, writer_factory=None, judge_factory=None) -> None:
        self.settings = settings
        self.spool_dir = settings.database.spool_dir
        self.writer_factory = writer_factory or default_writer_factory
        if judge_factory is None:
            from bounce_handler.intake import judge_for as judge_factory
        self.judge_factory = judge_factory
        self._writer = None
        self._attempts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backoff = 0.0
        self.total = DrainStats()

    @property
    def address(self) -> str:
        """What it serves, for the daemon's log line."""
        return f"spool:{self.spool_dir}"

    # -- one pass ---------------------------------------------------------------------

    def _writer_now(self):
        if self._writer is None:
            self._writer = self.writer_factory(self.settings)
        return self._writer

    def _judge_now(self):
        # Parsed once: the rules are part of the frozen settings.
        if not hasattr(self, "_judge"):
            self._judge = self.judge_factory(self.settings)
        return self._judge

    def _quarantine_file(self, name: str, why: str) -> None:
        """Move new/NAME to bad/NAME, with bad/NAME.why saying why (kept for a human)."""
        src = os.path.join(self.spool_dir, "new", name)
        bad_dir = os.path.join(self.spool_dir, "bad")
        os.makedirs(bad_dir, exist_ok=True)
        why = redaction.redact(why, *redaction.url_secrets(self.settings.database.url))
        try:
            with open(os.path.join(bad_dir, name + ".why"), "w", encoding="utf-8") as fp:
                fp.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {why}\n")
        except OSError as e:  # the file itself matters more than its note
            log.warning("cannot write %s.why: %s", name, e.strerror)
        os.replace(src, os.path.join(bad_dir, name))
        self._forget_attempts(name)
        log.error("spool file moved to bad/: %s: %s", name, why)

    def _tries_path(self, name: str) -> str:
        return os.path.join(self.spool_dir, "new", name + TRIES_SUFFIX)

    def _count_attempt(self, name: str) -> int:
        """One more failed attempt at new/NAME; return the count (kept across processes)."""
        n = self._attempts.get(name, 0)
        try:
            with open(self._tries_path(name)) as fp:
                n = max(n, int(fp.read().strip() or 0))
        except (OSError, ValueError):
            pass
        n += 1
        self._attempts[name] = n
        try:
            with open(self._tries_path(name), "w") as fp:
                fp.write(f"{n}\n")
        except OSError as e:  # counted in memory still: this process moves it aside
            log.warning("cannot record the attempt count of %s: %s", name, e.strerror)
        return n

    def _forget_attempts(self, name: str) -> None:
        self._attempts.pop(name, None)
        try:
            os.unlink(self._tries_path(name))
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot remove %s%s: %s", name, TRIES_SUFFIX, e.strerror)

    def drain_once(self, limit: int | None = None) -> DrainStats:
        """One pass over ``new/``; stops at the first StoreUnavailable (files stay)."""
        stats = DrainStats()
        try:
            names = spool.pending(self.spool_dir)
        except OSError as e:
            stats.error = f"spool {self.spool_dir}: {e.strerror}"
            return stats
        if limit is not None:
            names = names[:limit]
        new_dir = os.path.join(self.spool_dir, "new")
        for i, name in enumerate(names):
            if self._stop.is_set():
                stats.left = len(names) - i
                break
            path = os.path.join(new_dir, name)
            try:
                with open(path, "rb") as fp:
                    data = fp.read()
            except FileNotFoundError:
                continue  # another drain took it
            try:
                batch = spool.load(data)
            except spool.SpoolFormatError as e:
                self._quarantine_file(name, str(e))
                stats.bad += 1
                continue
            try:
                writer = self._writer_now()
            except Exception as e:  # noqa: BLE001 - no writer (driver missing, server down)
                # Not this file's fault: every file waits for the next pass.
                stats.error = str(e) if isinstance(e, StoreUnavailable) else (
                    f"cannot open the store: {type(e).__name__}: {e}"[:300]
                )
                stats.left = len(names) - i
                break
            try:
                judge = self._judge_now() if batch.events else None
                _, created = writer.record(batch, judge=judge)
            except StoreUnavailable as e:
                # The store is down: keep this file and every later one for the next pass.
                self._writer = None
                stats.error = str(e)
                stats.left = len(names) - i
                break
            except UnstorableMessage as e:
                # Not even the set-aside row was taken: no retry can help.
                self._quarantine_file(name, f"unstorable: {e}"[:500])
                stats.bad += 1
                continue
            except Exception as e:  # noqa: BLE001 - one poisoned file must not block all
                n = self._count_attempt(name)
                self._writer = None
                why = f"{type(e).__name__}: {e}"[:300]
                if n >= MAX_ATTEMPTS:
                    self._quarantine_file(name, f"failed {n} times: {why}")
                    stats.bad += 1
                else:
                    log.warning("drain of %s failed (attempt %d of %d): %s",
                                name, n, MAX_ATTEMPTS, why)
                    stats.left += 1
                continue
            os.unlink(path)  # only after the commit: a crash before this is a duplicate later
            if name in self._attempts or os.path.exists(self._tries_path(name)):
                self._forget_attempts(name)
            if created:
                stats.drained += 1
            else:
                stats.duplicates += 1
        for k in ("drained", "duplicates", "bad"):
            setattr(self.total, k, getattr(self.total, k) + getattr(stats, k))
        return stats

    def drain_all(self, timeout: float | None = None) -> DrainStats:
        """Pass after pass until ``new/`` is empty or the store is down (for --drain-once)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        total = DrainStats()
        while True:
            stats = self.drain_once()
            for k in ("drained", "duplicates", "bad"):
                setattr(total, k, getattr(total, k) + getattr(stats, k))
            total.error, total.left = stats.error, stats.left
            if stats.error or not (stats.drained or stats.duplicates or stats.bad):
                return total
            if deadline is not None and time.monotonic() > deadline:
                return total

    # -- service ----------------------------------------------------------------------

    def run(self) -> None:
        """Loop: drain, back off while the store is down, idle when empty."""
        while not self._stop.is_set():
            try:
                stats = self.drain_once()
            except Exception as e:  # noqa: BLE001 - e.g. unlink refused: keep the service up
                log.exception("spool drain pass failed")
                stats = DrainStats()
                stats.error = f"{type(e).__name__}: {e}"[:300]
            if stats.error:
                self.backoff = min(MAX_BACKOFF, max(1.0, self.backoff * 2))
                log.warning(
                    "store unavailable, %d spooled bounce(s) wait, retry in %.0fs: %s",
                    stats.left,
                    self.backoff,
                    stats.error,
                )
                self._stop.wait(self.backoff)
                continue
            self.backoff = 0.0
            if not (stats.drained or stats.duplicates or stats.bad):
                self._stop.wait(IDLE_INTERVAL)

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        spool.make_dirs(self.spool_dir)
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the file in hand, then stop."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return  # still writing a file: its connection is not ours to close
        close = getattr(self._writer, "close", None)
        if close is not None:
            close()


def main(argv: list[str] | None = None) -> int:
    """``python -m bounce_handler.daemon.drain [--config PATH] [--once]``."""
    import argparse

    from bounce_handler import settings as settings_mod

    ap = argparse.ArgumentParser(prog="bounce_handler.daemon.drain", description=__doc__)
    ap.add_argument("--config")
    ap.add_argument("--once", action="store_true", help="drain what is there, then exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    s = settings_mod.load(args.config)
    redaction.log_redaction(s.database.url)
    svc = DrainService(s)
    if args.once:
        stats = svc.drain_all()
        print(
            f"drained {stats.drained}, duplicates {stats.duplicates}, bad {stats.bad}, "
            f"left {stats.left}" + (f": {stats.error}" if stats.error else "")
        )
        return 75 if stats.error or stats.left else 0
    svc.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        svc.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
