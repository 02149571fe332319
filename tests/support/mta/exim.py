"""Exim 4 (Debian's exim4-daemon-light, unpacked, never installed) as a sending MTA in a lab.

Snags met and how they are handled:

- the binary is set-uid root in the package; started with ``-C`` it drops its privileges
  when it re-executes itself for a delivery, and the bounce process then fails on its own
  spool -- ``packages.unpacked`` strips the bit (everything here runs as root anyway);
- it re-executes ``exim_path`` (compiled in as /usr/sbin/exim4) and clears its environment:
  the configuration names the unpacked binary and keeps ``LD_LIBRARY_PATH`` (libidn12);
- the compiled-in ``Debian-exim`` user exists only in the lab's private /etc/passwd.

Configuration: deliver everything by MX (dnslookup router, smtp transport), accept relay
from the lab's loopback only, a retry rule ``F,LIFETIME,2s`` (retry every 2 s, give up
after LIFETIME seconds), a delay warning after WARN_AFTER seconds, DSN advertised (so
NOTIFY=SUCCESS is honoured), a queue runner every 2 s.
"""

from __future__ import annotations

import os

from tests.support.mta import packages
from tests.support.mta.drivers import LIFETIME, WARN_AFTER, Unpacked
from tests.support.mta.lab import Lab

EXIM_UID = 64901

CONFIG = """\
primary_hostname = {hostname}
qualify_domain = lab.test
exim_path = {exim}
keep_environment = LD_LIBRARY_PATH
exim_user = Debian-exim
exim_group = Debian-exim
spool_directory = {spool}
log_file_path = {log}/%slog
pid_file_path = {spool}/exim.pid
daemon_smtp_ports = 25
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_check_rcpt
dsn_advertise_hosts = *
delay_warning = {warn}s
ignore_bounce_errors_after = 0s
timeout_frozen_after = 1m
queue_only = false
remote_max_parallel = 4

begin acl

acl_check_rcpt:
  accept  hosts = 127.0.0.1
  deny    message = relay not permitted

begin routers

dnslookup:
  driver = dnslookup
  transport = remote_smtp
  no_more

begin transports

remote_smtp:
  driver = smtp
  connect_timeout = 5s

begin retry

*   *   F,{lifetime}s,2s

begin rewrite
"""


class EximDriver(Unpacked):
    name = "exim"
    package = "exim"
    binary = "usr/sbin/exim4"

    @property
    def exim(self):
        return self.root / self.binary

    def _env(self) -> dict:
        return dict(os.environ, LD_LIBRARY_PATH=packages.lib_path(self.root))

    def version(self, lab: Lab) -> str:
        out = lab.run([str(self.exim), "-C", str(self.conf), "-bV"], env=self._env()).stdout
        return out.decode().splitlines()[0].split(" #")[0]  # "Exim version 4.96"

    def lab(self, base: str) -> Lab:
        return Lab(base, self.hostname,
                   passwd=[f"Debian-exim:x:{EXIM_UID}:{EXIM_UID}:Exim:/nonexistent:"
                           "/usr/sbin/nologin"],
                   group=[f"Debian-exim:x:{EXIM_UID}:"])

    def start(self, lab: Lab) -> None:
        d = lab.base / "exim"
        self.spool, logdir = d / "spool", d / "log"
        for p in (d, self.spool, logdir):
            p.mkdir(parents=True, exist_ok=True)
            os.chown(p, EXIM_UID, EXIM_UID)
        self.conf = d / "exim.conf"
        self.logdir = logdir
        self.conf.write_text(CONFIG.format(hostname=self.hostname, exim=self.exim,
                                           spool=self.spool, log=logdir, warn=WARN_AFTER,
                                           lifetime=LIFETIME))
        lab.run([str(self.exim), "-C", str(self.conf), "-bd", "-q2s"], env=self._env())
        lab.wait_smtp()

    def queue_size(self, lab: Lab) -> int:
        out = lab.run([str(self.exim), "-C", str(self.conf), "-bpc"], env=self._env()).stdout
        return int(out.decode().strip() or 0)

    def log(self, lab: Lab) -> str:
        try:
            return "".join(
                (self.logdir / f).read_text(errors="replace")
                for f in ("mainlog", "paniclog", "rejectlog") if (self.logdir / f).exists())
        except (OSError, AttributeError):
            return ""

