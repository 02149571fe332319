"""Sendmail 8 (Debian's sendmail-bin, unpacked, never installed) as a sending MTA in a lab.

Snags met and how they are handled:

- Sendmail stalls ~60 s on every command while ``gethostname()`` is not fully qualified
  ("unable to qualify my own domain name"): the lab's private UTS namespace names the
  host ``sendmail.lab.test`` and its private /etc/hosts resolves it;
- sendmail.cf is generated, not written by hand: ``m4`` and Sendmail's own ``cf/`` macros
  (packages m4 and sendmail-cf, unpacked beside the binary) turn SENDMAIL_MC into it;
- libwrap0, which the binary links, is unpacked beside it too;
- Sendmail refuses files under group/world-writable directories (the lab lives in /tmp):
  ``DontBlameSendmail`` says the lab's paths are safe;
- it skips queue runs when the load average passes ``QueueLA`` (8 per CPU) and refuses
  connections past ``RefuseLA``: on a shared 2-core test machine at load 20 the 421 case
  expired without its delay warning.  Both are set out of reach;
- it logs only to syslog, which the lab lacks: a failure shows the fake remote's log and
  the queue files instead.

Configuration: deliver by MX, relay for the lab's own host (the client's 127.0.0.1 resolves
to it), ``Timeout.queuewarn`` WARN_AFTER seconds, ``Timeout.queuereturn`` LIFETIME seconds,
a queue run every 2 s.
"""

from __future__ import annotations

import os

from tests.support.mta import packages
from tests.support.mta.drivers import LIFETIME, WARN_AFTER, Unpacked
from tests.support.mta.lab import Lab

SENDMAIL_MC = """\
divert(-1)
divert(0)dnl
VERSIONID(`bounce_handler test lab')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{hostname}')dnl
define(`QUEUE_DIR', `{d}/mqueue')dnl
define(`STATUS_FILE', `{d}/statistics')dnl
define(`ALIAS_FILE', `{d}/aliases')dnl
define(`confPID_FILE', `{d}/sendmail.pid')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confDONT_BLAME_SENDMAIL', `GroupWritableDirPathSafe,\
GroupReadableKeyFile,GroupWritableAliasFile,WorldWritableAliasFile')dnl
define(`confTO_QUEUEWARN', `{warn}s')dnl
define(`confTO_QUEUERETURN', `{lifetime}s')dnl
define(`confTO_CONNECT', `5s')dnl
define(`confTO_ICONNECT', `5s')dnl
define(`confMIN_QUEUE_AGE', `0')dnl
define(`confQUEUE_LA', `10000')dnl
define(`confREFUSE_LA', `10000')dnl
define(`confDELAY_LA', `0')dnl
define(`confDELIVERY_MODE', `background')dnl
define(`confPRIVACY_FLAGS', `authwarnings')dnl
define(`confDEF_USER_ID', `1:1')dnl
DAEMON_OPTIONS(`Port=25, Addr=127.0.0.1, Name=MTA')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""


class SendmailDriver(Unpacked):
    name = "sendmail"
    package = "sendmail"
    binary = "usr/libexec/sendmail/sendmail"

    @property
    def sendmail(self):
        return self.root / self.binary

    def _env(self) -> dict:
        return dict(os.environ, LD_LIBRARY_PATH=packages.lib_path(self.root))

    def version(self, lab: Lab) -> str:
        out = lab.run([str(self.sendmail), "-C", str(self.cf), "-d0.1", "-bt"],
                      input=b"", env=self._env(), check=False).stdout.decode()
        for line in out.splitlines():
            if line.startswith("Version "):
                return "Sendmail " + line.split()[1]
        return "Sendmail"

    def start(self, lab: Lab) -> None:
        d = self.dir = lab.base / "sendmail"
        (d / "mqueue").mkdir(parents=True, exist_ok=True)
        os.chmod(d / "mqueue", 0o700)
        (d / "aliases").write_text("postmaster: root\n")
        (d / "statistics").write_bytes(b"")
        mc = d / "sendmail.mc"
        mc.write_text(SENDMAIL_MC.format(hostname=self.hostname, d=d, warn=WARN_AFTER,
                                         lifetime=LIFETIME))
        cfdir = self.root / "usr/share/sendmail/cf"
        m4 = self.root / "usr/bin/m4"
        self.cf = d / "sendmail.cf"
        proc = lab.run([str(m4), f"-D_CF_DIR_={cfdir}/", str(cfdir / "m4/cf.m4"), str(mc)],
                       env=self._env())
        self.cf.write_bytes(proc.stdout)
        # aliases.db: Sendmail will not start delivering while it cannot open its aliases.
        lab.run([str(self.sendmail), "-C", str(self.cf), "-bi"], env=self._env(),
                check=False)
        lab.run([str(self.sendmail), "-C", str(self.cf), "-bd", "-q2s"], env=self._env())
        lab.wait_smtp()

    def queue_size(self, lab: Lab) -> int:
        return len([p for p in (self.dir / "mqueue").iterdir() if p.name.startswith("qf")])

    def log(self, lab: Lab) -> str:
        try:
            files = sorted((self.dir / "mqueue").iterdir())
            return "queue: " + " ".join(p.name for p in files)
        except (OSError, AttributeError):
            return ""
