"""Parse workers: ``intake.build`` in child processes, so one message can be given a time limit.

The pipe has a per-message budget for free: pipe(8) kills a handler past
``<transport>_time_limit``.  A resident daemon has none unless it makes one, and a thread
cannot be stopped: four messages whose parse never ended held all four LMTP worker
threads, and an ordinary bounce behind them waited past 90 s (issue 14).  So the LMTP
service parses in child processes (``python -m bounce_handler.daemon.workers``), one
message at a time each; a child that has not answered ``[daemon] lmtp_time_limit``
seconds after it got a message is killed (SIGKILL) and replaced, and ``build`` raises
``TimeLimit``.  The LMTP service then *quarantines* the message with why (kept, raw bytes
included, never retried: a retry would take as long again and end, after Postfix's five
days, in a bounce that is lost), see daemon/lmtp.py.

Parsing in processes also takes it out of the daemon's GIL: the children parse on every
core while the parent speaks LMTP and commits.

Protocol, over the child's stdin/stdout (private pipes between two processes of this
installation, so ``pickle`` is fine): a frame is an 8-byte big-endian length and a
pickle.  The first frame to a child is the settings (``Settings.as_dict()``); then each
request is ``(raw, envelope fields, now, keywords)`` and each reply ``("ok", batch,
outcome)`` or ``("error", exception)``.  A child's stderr is the daemon's.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time

log = logging.getLogger("bounce_handler.daemon.workers")

_HEADER = 8


class TimeLimit(Exception):
    """The parse of one message took longer than the limit; its worker was killed."""


class WorkerDied(Exception):
    """The worker process ended while it had a message (killed from outside, a crash)."""


def _write_frame(fd: int, obj, deadline: float | None = None) -> None:
    """Write one frame; TimeLimit past `deadline` (`fd` non-blocking then).

    The deadline covers the write too: a message larger than the pipe's buffer (64 KiB)
    would otherwise block the parent forever on a worker that has stopped reading.
    """
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(_HEADER, "big") + data)
    while view:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                raise TimeLimit()
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """`n` bytes from `fd`; None on end of file; TimeLimit past `deadline`."""
    chunks = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeLimit()
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int, deadline: float | None = None):
    head = _read_exact(fd, _HEADER, deadline)
    if head is None:
        raise EOFError
    body = _read_exact(fd, int.from_bytes(head, "big"), deadline)
    if body is None:
        raise EOFError
    return pickle.loads(body)


# How long a new worker may take to import the parser and say it is ready: start-up is
# not the message's time (the limit counts from the request), and a loaded machine can be
# slow to start a Python process.
STARTUP_TIMEOUT = 120.0


class _Worker:
    """One child process, ready (its imports done) when the constructor returns."""

    def __init__(self, settings_dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bounce_handler.daemon.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
        os.set_blocking(self.proc.stdin.fileno(), False)  # writes wait with a deadline
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            _write_frame(self.proc.stdin.fileno(), settings_dict, deadline)
            ready = _read_frame(self.proc.stdout.fileno(), deadline)
        except (TimeLimit, EOFError, OSError, pickle.UnpicklingError):
            ready = None
        if ready != "ready":
            self.kill()
            raise WorkerDied(f"parse worker did not start (exit {self.proc.returncode})")

    def ask(self, request, time_limit: float):
        deadline = time.monotonic() + time_limit
        _write_frame(self.proc.stdin.fileno(), request, deadline)
        return _read_frame(self.proc.stdout.fileno(), deadline)

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def close(self) -> None:
        """Ask the child to end (end of file on its stdin), then make sure it did."""
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


# A request that has waited this long for an idle worker gets a new one (up to the pool's
# maximum): only messages that hold their worker for long (a slow parse, the time limit
# running) make the pool grow, not an ordinary queue on a busy machine.  A quarter of the
# time limit, at most 5 s (then an ordinary bounce waits at most that behind slow ones).
GROW_AFTER = 5.0


class WorkerPool:
    """Up to `workers` child processes; ``build`` is safe to call from several threads.

    The pool starts with one worker per core (more would only contend for the cores: on
    2 cores 4 workers cost ~20% more CPU a message than 2, bench/storm.py) and grows to
    `workers` when a message has waited for one for a while (GROW_AFTER), so messages
    that hold their worker up to the time limit do not hold the ones behind them too.
    Children start on first use.
    """

    def __init__(self, settings, workers: int, time_limit: float) -> None:
        self.settings_dict = {"path": settings.path, **settings.as_dict()}
        self.time_limit = time_limit
        self.size = workers
        self._slots = max(1, min(workers, os.cpu_count() or 1))
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(self._slots):
            self._idle.put(None)  # a slot; the process is started when first needed
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self.killed = 0

    def _take(self):
        """An idle worker (or None: a slot to start one in), growing the pool if need be."""
        try:
            return self._idle.get(timeout=min(GROW_AFTER, self.time_limit / 4))
        except queue.Empty:
            with self._lock:
                grow = self._slots < self.size
                if grow:
                    self._slots += 1
            return None if grow else self._idle.get()

    def build(self, raw: bytes, envelope, now: float, **kw):
        """``intake.build`` in a worker: (batch, outcome).

        Raises TimeLimit, WorkerDied, or what build raised (VerpKeyError ...).
        """
        worker = self._take()
        try:
            if worker is None:
                worker = _Worker(self.settings_dict)  # WorkerDied: the slot stays empty
                with self._lock:
                    self._all.add(worker)
            fields = {k: getattr(envelope, k) for k in envelope.__slots__}
            reply = worker.ask((raw, fields, now, kw), self.time_limit)
        except TimeLimit:
            self._discard(worker)
            worker = None
            self.killed += 1
            raise TimeLimit(
                f"parse took longer than {self.time_limit:g}s ([daemon] lmtp_time_limit); "
                "its worker process was stopped"
            ) from None
        except (EOFError, OSError, pickle.UnpicklingError) as e:
            code = worker.proc.poll() if worker is not None else None
            self._discard(worker)
            worker = None
            raise WorkerDied(
                f"parse worker ended while parsing (exit {code}): {type(e).__name__}"
            ) from None
        finally:
            self._idle.put(worker)
        if reply[0] == "ok":
            return reply[1], reply[2]
        raise reply[1]

    def _discard(self, worker) -> None:
        if worker is None:
            return
        worker.kill()
        with self._lock:
            self._all.discard(worker)

    def close(self) -> None:
        """Stop every child (the messages in hand, if any, are not waited for)."""
        with self._lock:
            workers, self._all = list(self._all), set()
        for w in workers:
            w.close()


def serve(fd_in: int, fd_out: int) -> None:
    """The child's loop: settings first, then one reply per request until end of file."""
    from bounce_handler import intake
    from bounce_handler import settings as settings_mod

    try:
        sections = _read_frame(fd_in)
    except EOFError:
        return
    path = sections.pop("path", None)
    settings = settings_mod.Settings(path, sections)
    if path:
        from bounce_handler.parse import lazyre

        lazyre.use_table(settings_mod.patterns_path(path))
    # Everything a message needs is imported before the first one's clock starts.
    from bounce_handler import verp  # noqa: F401
    from bounce_handler.parse import parse  # noqa: F401

    _write_frame(fd_out, "ready")
    while True:
        try:
            raw, fields, now, kw = _read_frame(fd_in)
        except EOFError:
            return
        try:
            batch, outcome = intake.build(raw, intake.Envelope(**fields), settings, now, **kw)
            reply = ("ok", batch, outcome)
        except Exception as e:  # noqa: BLE001 - carried to the parent, which decides
            reply = ("error", e)
        try:
            _write_frame(fd_out, reply)
        except (pickle.PicklingError, TypeError, AttributeError):
            _write_frame(fd_out, ("error", RuntimeError(f"{type(reply[1]).__name__}")))


if __name__ == "__main__":
    # Replies go to the real stdout only: anything printed by accident goes to stderr.
    out = os.dup(1)
    os.dup2(2, 1)
    serve(0, out)
