"""DMA, the DragonFly Mail Agent (Debian's dma 0.13, unpacked, never installed), in a lab.

DMA has no SMTP listener and no daemon: a message is handed to ``dma -f SENDER RCPT...``
on stdin (the sendmail interface), kept in its spool, and delivered by ``dma -q``.  It
sends no delay warnings and no success notices (it has no DSN extension), and its only
notice is "There was an error delivering your mail to <rcpt>." with the remote's reply.

Snags met and how they are handled:

- its configuration file is compiled in as /etc/dma/dma.conf, and /etc/dma does not exist
  on the host: the lab overlays /etc (inside its mount namespace; the host's /etc is never
  written) and binds a private dma.conf there; the spool, aliases and host name are set in
  that file (SPOOLDIR, ALIASES, MAILNAME);
- ``DEFER``: submission only queues, so the test's ``dma`` call returns at once (a
  delivering dma stays in the background with the caller's output open);
- it gives up on a temporary failure only once the queue file is older than MAX_TIMEOUT,
  compiled in as 5 days, and retries from a process that sleeps 5 minutes and more between
  attempts.  The lab ages the queue instead of waiting: one queue run after the
  submissions, then, LIFETIME seconds later (every first attempt long over, only sleeping
  retriers left), it kills them (DMA writes a queue file once, at submission, and every
  attempt starts from it), sets the spool files' modification times 5 days + LIFETIME
  back, and runs the queue once more: each temporary failure then bounces.
"""

from __future__ import annotations

import os
import sys
import time

from tests.support.mta.drivers import LIFETIME, Unpacked
from tests.support.mta.lab import Lab

CONFIG = """\
MAILNAME {hostname}
SPOOLDIR {spool}
ALIASES {aliases}
DEFER
"""
# Run inside the lab: SIGKILL every process of the dma binary named in argv[1].
KILL_DMA = """\
import os, signal, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv0 = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[0]
    except OSError:
        continue
    if argv0 == sys.argv[1].encode():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
"""
# dma.h: MAX_TIMEOUT (5 days), after which a temporary failure bounces.
MAX_TIMEOUT = 5 * 24 * 3600


class DMADriver(Unpacked):
    name = "dma"
    package = "dma"
    binary = "usr/sbin/dma"

    @property
    def dma(self):
        return self.root / self.binary

    def lab(self, base: str) -> Lab:
        self.spool = os.path.join(base, "spool")
        os.makedirs(self.spool, exist_ok=True)
        # dma gives up root privileges before it writes its spool.
        os.chmod(self.spool, 0o777)
        aliases = os.path.join(base, "aliases")
        with open(aliases, "w") as fp:
            fp.write("postmaster: root\n")
        conf = os.path.join(base, "dma.conf")
        with open(conf, "w") as fp:
            fp.write(CONFIG.format(hostname=self.hostname, spool=self.spool,
                                   aliases=aliases))
        return Lab(base, self.hostname, overlays=["/etc"], mkdirs=[("/etc/dma", "0755")],
                   binds=[(conf, "/etc/dma/dma.conf")])

    def version(self, lab: Lab) -> str:
        return "DMA " + self.root.joinpath(".unpacked").read_text().split(
            "dma_", 1)[1].split("_", 1)[0]

    def start(self, lab: Lab) -> None:
        self.t0 = time.monotonic()
        self.queue_runs = 0

    def submit(self, lab: Lab, case) -> dict:
        lab.run([str(self.dma), "-f", case.sender, *case.rcpts],
                input=case.message(self.name).encode())
        return {}

    def queue_size(self, lab: Lab) -> int:
        # A queued message is a Q (envelope) and an M (message) file in the spool.
        return len([e for e in os.scandir(self.spool) if e.name.startswith("Q")])

    def nudge(self, lab: Lab) -> None:
        """The first poll runs the queue; the first one after LIFETIME seconds ages it."""
        if self.queue_runs == 0:
            self._queue_run(lab)
        elif self.queue_runs == 1 and time.monotonic() - self.t0 > LIFETIME:
            # Every first attempt ended long ago: what is left sleeps between retries.
            lab.run([sys.executable, "-c", KILL_DMA, str(self.dma)])
            past = time.time() - MAX_TIMEOUT - LIFETIME
            for entry in os.scandir(self.spool):
                os.utime(entry.path, (past, past))
            self._queue_run(lab)

    def _queue_run(self, lab: Lab) -> None:
        self.queue_runs += 1
        lab.spawn([str(self.dma), "-q"], lab.base / "dma.log")

    def log(self, lab: Lab) -> str:
        try:
            spool = " ".join(e.name for e in os.scandir(self.spool))
            return (lab.base / "dma.log").read_text(errors="replace") + "\nspool: " + spool
        except (OSError, AttributeError):
            return ""
