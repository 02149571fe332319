"""What every MTA driver provides, and the run that puts all of them through CASES at once.

A driver knows one MTA: where its binary comes from, the lab it needs (system users,
compiled-in paths), its configuration (deliver to the Internet by MX, listen on the lab's
127.0.0.1:25, tiny retry and queue-lifetime settings), how to start it and how to tell that
its queue is empty.  ``run_all`` starts every available MTA in its own lab, submits every
case to each, and waits -- all labs at once, so the slowest case (retries until the queue
lifetime runs out) is paid once, not once per MTA.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from tests.support.mta import packages
from tests.support.mta.lab import CASES, Lab, LabError

# The queue lifetime every MTA gets: long enough for a few 421 retries and a delay warning
# (WARN_AFTER), short enough to keep the whole run within a minute or two.
LIFETIME = 30
WARN_AFTER = 8


class Driver:
    """One MTA (subclasses fill in the blanks)."""

    name = "?"

    @property
    def hostname(self) -> str:
        return f"{self.name}.lab.test"

    def unavailable(self) -> str | None:
        """Why this MTA cannot run here (None when it can)."""
        raise NotImplementedError

    def version(self, lab: Lab) -> str:
        """The MTA's name and version (asked once it runs)."""
        raise NotImplementedError

    def lab(self, base: str) -> Lab:
        return Lab(base, self.hostname)

    def start(self, lab: Lab) -> None:
        """Configure and start the MTA inside `lab`; return once it answers on port 25."""
        raise NotImplementedError

    def submit(self, lab: Lab, case) -> dict:
        """Hand `case`'s message to the MTA; returns refusals (empty if none).  Over SMTP to
        its listener, unless the MTA has none (DMA)."""
        return lab.submit(case, self.name)

    def queue_size(self, lab: Lab) -> int:
        raise NotImplementedError

    def nudge(self, lab: Lab) -> None:
        """Ask the MTA to retry its queue now (where its own queue runner is too lazy)."""

    def log(self, lab: Lab) -> str:
        """The MTA's log, for failure messages."""
        return ""


class Unpacked(Driver):
    """An MTA run from its Debian package unpacked with ``packages.unpacked`` (it conflicts
    with the postfix package, so it is never installed)."""

    package = "?"  # the Debian package
    binary = "?"  # the program inside it, whose shared libraries must all resolve

    def __init__(self) -> None:
        self.root = None

    def unavailable(self) -> str | None:
        try:
            self.root = packages.unpacked(self.package)
        except packages.PackageError as e:
            return str(e)
        missing = packages.missing_libraries(self.root / self.binary, self.root)
        name = self.binary.rsplit("/", 1)[-1]
        return f"{name} needs {', '.join(missing)}" if missing else None


class Run:
    """What one MTA did with CASES."""

    def __init__(self, driver: Driver, lab: Lab) -> None:
        self.driver = driver
        self.lab = lab
        self.version = ""
        self.refused: dict[str, dict] = {}
        self.notices = []
        self.error: str | None = None
        self.seconds = 0.0
        self.t0 = time.monotonic()

    def by_case(self, name: str) -> list:
        return [n for n in self.notices if n.case == name]

    def diagnostics(self) -> str:
        """Everything a failing assertion should show."""
        return (f"refused at submission: {self.refused or 'nothing'}\n"
                f"--- {self.driver.name} log ---\n{self.driver.log(self.lab)[-4000:]}\n"
                f"--- fake remote log ---\n{self.lab.remote_log()[-3000:]}")


def run_all(drivers: list[Driver], timeout: float = LIFETIME + 120) -> dict[str, Run]:
    """Start every driver's MTA, submit every case to each, wait until all queues drain.

    Returns driver name -> Run; a driver that could not be set up has ``run.error`` set
    (the labs are left for the caller to ``destroy``, so logs can be read on failure).
    """
    runs: dict[str, Run] = {}
    for d in drivers:
        lab = d.lab(tempfile.mkdtemp(prefix=f"bh-mta-{d.name}-", dir="/tmp"))
        runs[d.name] = Run(d, lab)

    def setup(run: Run) -> None:
        d, lab = run.driver, run.lab
        try:
            d.start(lab)
            run.version = d.version(lab)
            for case in CASES:
                refused = d.submit(lab, case)
                if refused:
                    run.refused[case.name] = refused
        except Exception as e:
            run.error = f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"

    # The namespaces from this thread: their PR_SET_PDEATHSIG fires when the thread that
    # started them ends (lab._die_with_parent), so not from the pool's threads.
    for run in runs.values():
        try:
            run.lab.start()
        except Exception as e:
            run.error = f"{type(e).__name__}: {e}"
    # The rest is mostly waiting for processes: the MTAs start side by side.
    with ThreadPoolExecutor(max_workers=max(1, len(runs))) as pool:
        list(pool.map(setup, [r for r in runs.values() if r.error is None]))
    deadline = time.monotonic() + timeout
    pending = {n for n, r in runs.items() if r.error is None}
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            run = runs[name]
            try:
                if run.driver.queue_size(run.lab) == 0:
                    run.seconds = time.monotonic() - run.t0
                    pending.discard(name)
                else:
                    run.driver.nudge(run.lab)
            except LabError as e:
                run.error = str(e)
                pending.discard(name)
        time.sleep(1.0)
    # Notices are sent after the queue file is gone: give the last ones a moment to land.
    time.sleep(2.0)
    for name, run in runs.items():
        if name in pending:
            run.error = f"{name}'s queue did not drain within {timeout:.0f} s"
        run.notices = run.lab.notices()
    return runs
