"""The live-queue reader: `bounces queue --feed` every ``[queue] scan_interval`` seconds.

A service of ``bounces daemon`` (daemon/server.py's interface), on when ``[queue]
scan_interval`` is not 0: each reading runs ``postqueue -j`` and records the recipients a
throttling destination defers for rule R8 (livequeue.py says what, once each, and why).

Nothing goes silent: a reading that fails (postqueue not runnable -- the daemon's user
needs the postdrop group, see deploy/systemd/bounce-handler-daemon.service --, the store
down) is logged as a warning, again whenever the reason changes and at least every
``REPEAT`` seconds while it lasts, and once more when readings work again.  Nothing is
lost meanwhile: what the queue shows is still there at the next reading.
"""

from __future__ import annotations

import logging
import threading
import time

from bounce_handler.errors import BounceHandlerError

log = logging.getLogger("bounce_handler.daemon.queuescan")

# While readings keep failing the same way, the warning is repeated this often.
REPEAT = 3600.0


class QueueScanService:
    """Reads the live queue every ``interval`` seconds in a thread (``start``/``stop``)."""

    name = "queue-scan"

    def __init__(self, settings, interval: float | None = None, clock=time.time,
                 writer_factory=None) -> None:
        self.settings = settings
        self.interval = settings.queue.scan_interval if interval is None else interval
        self.config_dir = settings.queue.postfix_config
        self.clock = clock
        self.writer_factory = writer_factory
        self._writer = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.readings = 0
        self.failure: str | None = None  # the last reading's error, while they fail
        self._warned_at = 0.0

    @property
    def address(self) -> str:
        """What it reads, for the daemon's log line."""
        where = f" -c {self.config_dir}" if self.config_dir else ""
        return f"postqueue{where} -j every {self.interval:g}s"

    def _pg_writer(self):
        if not self.settings.database.url.startswith("postgresql"):
            return None
        if self._writer is None:
            if self.writer_factory is not None:
                self._writer = self.writer_factory(self.settings)
            else:
                from bounce_handler.store.pg import writer_for_settings

                self._writer = writer_for_settings(self.settings, keep_connection=True)
        return self._writer

    def read_once(self):
        """One reading; returns livequeue.FeedStats (raises what livequeue.feed raises)."""
        from bounce_handler import livequeue

        text = livequeue.read_queue(self.config_dir)
        return livequeue.feed(self.settings, text, self.clock(), config_dir=self.config_dir,
                              writer=self._pg_writer())

    def _one(self) -> None:
        try:
            stats = self.read_once()
        except (BounceHandlerError, ValueError) as e:
            self._failing(str(e))
            return
        except Exception as e:  # noqa: BLE001 - a bug must not stop the service
            log.exception("live queue: reading failed")
            self._failing(f"{type(e).__name__}: {e}")
            return
        self.readings += 1
        if self.failure is not None and not stats.disabled:
            log.warning("live queue: readable again (%s)", stats.summary())
            self.failure = None
        if stats.disabled:
            self._failing(stats.summary())  # once an hour, not at every reading
            return
        if stats.failed or stats.malformed:
            log.warning("%s", stats.summary())
        elif stats.recorded:
            log.info("%s", stats.summary())
        else:
            log.debug("%s", stats.summary())

    def _failing(self, why: str) -> None:
        now = time.monotonic()
        if why != self.failure or now - self._warned_at >= REPEAT:
            log.warning("live queue not read (rule R8 waits for Postfix's notices): %s", why)
            self._warned_at = now
        self.failure = why

    def run(self) -> None:
        """Loop: read, then wait ``interval`` (or until stopped)."""
        while not self._stop.is_set():
            self._one()
            self._stop.wait(self.interval)

    def start(self) -> None:
        """Run the loop in a daemon thread (the first reading at once)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the reading in hand, then stop."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return  # still writing: its connection is not ours to close
        close = getattr(self._writer, "close", None)
        if close is not None:
            close()
