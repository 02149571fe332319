"""OpenSMTPD (Debian's opensmtpd 6.8, unpacked, never installed) as a sending MTA in a lab.

Snags met and how they are handled:

- its paths are compiled in: the spool /var/spool/smtpd, the privilege-separation chroot
  /var/lib/opensmtpd/empty and the control socket /var/run/smtpd.sock.  The lab mounts an
  overlay on /var and a tmpfs on /run, inside its private mount namespace, and creates them
  there (the host's /var and /run are untouched);
- the users ``opensmtpd`` and ``opensmtpq`` (Debian's postinst makes them) exist only in
  the lab's private /etc/passwd;
- it logs to syslog, which the lab lacks: it runs in the foreground (``-d``) with its log
  on stderr, kept in the lab directory;
- its scheduler retries a remote transfer only every few minutes: ``smtpctl schedule all``
  on every poll makes the 421 case retry as often as the other MTAs.

Configuration: relay everything from the lab's loopback by MX, ``queue ttl`` LIFETIME
seconds, a delay warning after WARN_AFTER seconds.
"""

from __future__ import annotations

import os

from tests.support.mta import packages
from tests.support.mta.drivers import LIFETIME, WARN_AFTER, Unpacked
from tests.support.mta.lab import Lab

UID, QUID = 64911, 64912

CONFIG = """\
queue ttl {lifetime}s
bounce warn-interval {warn}s
listen on 127.0.0.1 port 25 hostname {hostname}
action "relay" relay helo {hostname}
match from local for any action "relay"
"""


class OpenSMTPDDriver(Unpacked):
    name = "opensmtpd"
    package = "opensmtpd"
    binary = "usr/sbin/smtpd"

    @property
    def smtpd(self):
        return self.root / self.binary

    @property
    def smtpctl(self):
        return self.root / "usr/sbin/smtpctl"

    def _env(self) -> dict:
        return dict(os.environ, LD_LIBRARY_PATH=packages.lib_path(self.root))

    def lab(self, base: str) -> Lab:
        return Lab(base, self.hostname,
                   passwd=[f"opensmtpd:x:{UID}:{UID}:OpenSMTPD:/var/lib/opensmtpd/empty:"
                           "/usr/sbin/nologin",
                           f"opensmtpq:x:{QUID}:{QUID}:OpenSMTPD queue:"
                           "/var/lib/opensmtpd/empty:/usr/sbin/nologin"],
                   group=[f"opensmtpd:x:{UID}:", f"opensmtpq:x:{QUID}:"],
                   overlays=["/var"], tmpfs=["/run"],
                   mkdirs=[("/var/lib/opensmtpd/empty", "0755"),
                           ("/var/spool/smtpd", "0711")])

    def version(self, lab: Lab) -> str:
        out = lab.run([str(self.smtpd), "-h"], check=False, env=self._env())
        text = (out.stdout + out.stderr).decode()
        return text.split("version:", 1)[1].splitlines()[0].strip() if "version:" in text \
            else "OpenSMTPD"

    def start(self, lab: Lab) -> None:
        self.conf = lab.base / "smtpd.conf"
        self.conf.write_text(CONFIG.format(hostname=self.hostname, lifetime=LIFETIME,
                                           warn=WARN_AFTER))
        self.logfile = lab.base / "smtpd.log"
        lab.spawn([str(self.smtpd), "-d", "-f", str(self.conf)], self.logfile,
                  env=self._env())
        lab.wait_smtp()

    def ctl(self, lab: Lab, *args: str, check: bool = True):
        """smtpctl refuses to run unless its group is opensmtpq (Debian makes it set-gid)."""
        return lab.run(["setpriv", f"--regid={QUID}", "--clear-groups", str(self.smtpctl),
                        *args], check=check, env=self._env())

    def queue_size(self, lab: Lab) -> int:
        out = self.ctl(lab, "show", "queue").stdout
        return len([x for x in out.decode().splitlines() if x.strip()])

    def nudge(self, lab: Lab) -> None:
        self.ctl(lab, "schedule", "all", check=False)

    def log(self, lab: Lab) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""
