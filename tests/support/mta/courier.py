"""Courier (Debian's courier-mta 1.0.16, unpacked, never installed) as a sending MTA in a lab.

Snags met and how they are handled:

- every path is compiled in (``courier-config``: /etc/courier, /usr/lib/courier,
  /var/lib/courier, /run/courier) and the package conflicts with postfix: the lab
  bind-mounts a private copy of the package's /etc/courier, the unpacked /usr/lib/courier
  and a private /var/lib/courier over those paths, inside its own mount namespace (a tmpfs
  on /run holds /run/courier), so the host's directories are never touched;
- Courier starts its daemons with ``env -i`` and a shell that sources /etc/courier/courierd
  or /etc/courier/esmtpd with ``set -a``: ``LD_LIBRARY_PATH`` for the unpacked libraries
  (libcourierauth, libcourier-unicode, libidn12) is written into those files;
- relaying is granted by ``RELAYCLIENT`` in the environment couriertcpd passes to
  courieresmtpd (what smtpaccess's ``allow,RELAYCLIENT`` sets), without building
  smtpaccess.dat (makedat needs perl modules a bare machine lacks);
- ``ESMTP_BLOCKBACKSCATTER=smtp/dsn`` (Debian's default) would keep the notices to a remote
  sender in the queue: it is emptied;
- the user ``courier`` exists only in the lab's private /etc/passwd;
- Courier logs to syslog, which the lab lacks: a failure shows the fake remote's log and
  the queue instead.

Configuration: ``me`` is the lab's host name, ``queuetime`` LIFETIME seconds, ``warntime``
WARN_AFTER seconds, retries every 2 s (``retryalpha``/``retrygamma``), no STARTTLS; the
queue is flushed (``courier flush``) on every poll so a 4xx is retried promptly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.mta import packages
from tests.support.mta.drivers import LIFETIME, WARN_AFTER, Driver
from tests.support.mta.lab import Lab

UID = 64921
# libc-bin's; /sbin may be missing from a non-login root's PATH.
LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"

# Appended to the package's /etc/courier/courierd and esmtpd (later assignments win).
COURIERD = """
LD_LIBRARY_PATH={libs}
ESMTP_BLOCKBACKSCATTER=
ESMTP_USE_STARTTLS=0
ESMTP_PREFER_IPV6_MX=0
"""
ESMTPD = """
LD_LIBRARY_PATH={libs}
RELAYCLIENT=
BOFHCHECKDNS=0
TARPIT=0
ESMTP_LOG_DIALOG=0
ESMTPDSTART=YES
ACCESSFILE=
ADDRESS=127.0.0.1
PIDFILE=/run/courier/esmtpd.pid
TCPDOPTS="-noidentlookup -nodnslookup"
"""
# /etc/courier files: one value each (Courier's courierd(8) "Configuration files").
SETTINGS = {
    "me": "{hostname}",
    "defaultdomain": "lab.test",
    "queuetime": "{lifetime}s",
    "warntime": "{warn}s",
    "retryalpha": "2s",
    "retrybeta": "1",
    "retrygamma": "2s",
    "retrymaxdelta": "1",
    # No idle session kept for the next message to the same host: a session the remote
    # closed (the 421 cases hang up) was otherwise reused for another case's retry, whose
    # final notice then said only ">>> RSET <<< <command failed>", whichever run was lucky.
    "esmtptimeoutkeepalive": "0",
}


class CourierDriver(Driver):
    name = "courier"

    def __init__(self) -> None:
        self.root = None

    def unavailable(self) -> str | None:
        try:
            self.root = packages.unpacked("courier")
        except packages.PackageError as e:
            return str(e)
        if not os.path.exists(LDCONFIG):
            return "ldconfig not found (libc-bin)"
        env = dict(os.environ, LD_LIBRARY_PATH=self._libs())
        proc = subprocess.run(["ldd", str(self.courierd)], capture_output=True, text=True,
                              env=env)
        missing = [x.split()[0] for x in proc.stdout.splitlines() if "not found" in x]
        return f"courierd needs {', '.join(missing)}" if missing else None

    @property
    def courierd(self):
        return self.root / "usr/lib/courier/courier/courierd"

    def _libs(self) -> str:
        return ":".join([str(self.root / "usr/lib"), packages.lib_path(self.root)])

    def _env(self) -> dict:
        return dict(os.environ, LD_LIBRARY_PATH=self._libs())

    def lab(self, base: str) -> Lab:
        # The bind mounts' sources must exist before the lab's namespace is made.
        self.prepare(Path(base))
        etc, var = os.path.join(base, "etc-courier"), os.path.join(base, "var-courier")
        return Lab(base, self.hostname,
                   passwd=[f"courier:x:{UID}:{UID}:Courier:/var/lib/courier:"
                           "/usr/sbin/nologin"],
                   group=[f"courier:x:{UID}:"],
                   tmpfs=["/run"], mkdirs=[("/run/courier", "0755")],
                   binds=[(etc, "/etc/courier"),
                          (str(self.root / "usr/lib/courier"), "/usr/lib/courier"),
                          (var, "/var/lib/courier"),
                          (os.path.join(base, "ld.so.cache"), "/etc/ld.so.cache")])

    def version(self, lab: Lab) -> str:
        return "Courier " + self.root.joinpath(".unpacked").read_text().split(
            "courier-mta_", 1)[1].split("_", 1)[0]

    def prepare(self, base) -> None:
        etc, var = base / "etc-courier", base / "var-courier"
        shutil.copytree(self.root / "etc/courier", etc, symlinks=True)
        libs = self._libs()
        with open(etc / "courierd", "a") as fp:
            fp.write(COURIERD.format(libs=libs))
        with open(etc / "esmtpd", "a") as fp:
            fp.write(ESMTPD.format(libs=libs))
        for name, value in SETTINGS.items():
            (etc / name).write_text(value.format(hostname=self.hostname, lifetime=LIFETIME,
                                                 warn=WARN_AFTER) + "\n")
        for sub in ("msgs", "msgq", "tmp", "track", "filters", "allfilters", "sts"):
            (var / sub).mkdir(parents=True, exist_ok=True)
        for dirpath, dirs, files in os.walk(var):
            for name in [*dirs, *files]:
                os.chown(os.path.join(dirpath, name), UID, UID)
        os.chown(var, UID, UID)
        self.var = var
        # A private dynamic-linker cache that knows the unpacked libraries, mounted over
        # /etc/ld.so.cache in the lab: courierdsn runs submit with a scrubbed environment,
        # so LD_LIBRARY_PATH does not reach it.  -X: leave every directory's links alone;
        # -i: and the host's aux-cache.
        conf = base / "ld.so.conf"
        conf.write_text("include /etc/ld.so.conf.d/*.conf\n"
                        + "".join(f"{d}\n" for d in self._libs().split(":")))
        subprocess.run([LDCONFIG, "-X", "-i", "-C", str(base / "ld.so.cache"), "-f", str(conf)],
                       check=True, capture_output=True)

    def start(self, lab: Lab) -> None:
        # What courierctl.start and ``esmtpd start`` do, in the foreground (their own
        # scripts background the daemons with the caller's output still open), with the
        # unpacked couriertcpd and courieresmtpd (the scripts name them under /usr/sbin,
        # where nothing may be created).
        self.logfile = lab.base / "courier.log"
        lab.spawn(["/usr/bin/env", "-i", "/bin/sh", "-c",
                   "set -a; . /etc/courier/courierd; exec /usr/lib/courier/courier/courierd"],
                  self.logfile)
        sbin = self.root / "usr/sbin"
        lab.spawn(["/usr/bin/env", "-i", "/bin/sh", "-c",
                   "set -a; . /etc/courier/esmtpd; "
                   f"exec {sbin}/couriertcpd $TCPDOPTS -user=courier -group=courier "
                   "-address=127.0.0.1 -maxprocs=40 -maxperc=40 -maxperip=40 "
                   f"-pid=/run/courier/esmtpd.pid 25 {sbin}/courieresmtpd"],
                  self.logfile)
        lab.wait_smtp()

    def queue_size(self, lab: Lab) -> int:
        return sum(1 for _ in self.var.joinpath("msgs").rglob("C*"))

    def nudge(self, lab: Lab) -> None:
        lab.run([str(self.root / "usr/sbin/courier"), "flush"], env=self._env(), check=False)

    def log(self, lab: Lab) -> str:
        try:
            queue = " ".join(str(p.relative_to(self.var))
                             for p in self.var.rglob("*") if p.is_file())
            return self.logfile.read_text(errors="replace") + "\nqueue: " + queue
        except (OSError, AttributeError):
            return ""
