"""Debian packages for MTAs that are never installed: ``apt-get download`` + ``dpkg -x``.

Exim, OpenSMTPD and Sendmail conflict with the postfix package the rest of the suite needs,
but each runs from an unpacked .deb with a private configuration.  Their shared libraries
that a bare Debian 12 may lack (libidn12, libevent, libwrap0) come the same way and are
found through ``LD_LIBRARY_PATH``.

The .deb files are kept in ``CACHE`` (``$BOUNCE_HANDLER_MTA_CACHE``, default ``var/mta-debs``
in the checkout; git ignores /var/).  ``.ci/run`` fills it before the tests
(``python -m tests.support.mta.packages``) so a registry problem shows there, not as a test
failure; locally a missing .deb is downloaded on first use, and a machine that cannot do
that skips the MTA's tests (fails them under BOUNCE_HANDLER_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("BOUNCE_HANDLER_MTA_CACHE") or ROOT / "var" / "mta-debs")

# MTA -> the packages it runs from (Debian 12 names).
PACKAGES = {
    "exim": ["exim4-daemon-light", "libidn12"],
    "opensmtpd": ["opensmtpd", "libevent-2.1-7"],
    "sendmail": ["sendmail-bin", "sendmail-cf", "libwrap0", "m4"],
    "courier": ["courier-mta", "courier-base", "courier-authlib", "libcourier-unicode4",
                "libidn12"],
    "dma": ["dma"],
}
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")


class PackageError(RuntimeError):
    """A package could not be downloaded or unpacked (the message says why)."""


def deb_for(package: str) -> Path | None:
    """The cached .deb of `package` (the newest if several), or None."""
    found = sorted(CACHE.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def fetch(packages: list[str]) -> None:
    """Download every package not yet in the cache (``apt-get download``)."""
    missing = [p for p in packages if deb_for(p) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise PackageError("apt-get not found (a Debian machine is needed to fetch "
                           + ", ".join(missing) + ")")
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["apt-get", "download", *missing], cwd=CACHE,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PackageError(f"apt-get download {' '.join(missing)} into {CACHE}: {e}") from e
    still = [p for p in missing if deb_for(p) is None]
    if proc.returncode != 0 or still:
        raise PackageError(f"apt-get download {' '.join(missing)} failed "
                           f"({proc.returncode}): {proc.stderr.strip()[-500:]}")


def unpacked(mta: str) -> Path:
    """A directory with `mta`'s packages unpacked (``dpkg -x``), fetched first if needed.

    Set-uid and set-gid bits are removed: the tests run everything as root, and a set-uid
    Exim drops its privileges when re-executed with ``-C`` to deliver a bounce (the bounce
    process then cannot read its spool).
    """
    packages = PACKAGES[mta]
    fetch(packages)
    debs = [deb_for(p) for p in packages]
    stamp = "\n".join(d.name for d in debs)
    root = CACHE / f"root-{mta}"
    marker = root / ".unpacked"
    if marker.exists() and marker.read_text() == stamp:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for deb in debs:
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise PackageError(f"dpkg-deb -x {deb.name}: {proc.stderr.strip()}")
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                if mode & 0o6000:
                    os.chmod(path, mode & ~0o6000 & 0o7777)
    # nobody (Postfix's pipe user elsewhere) and the MTAs' own users must read it.
    os.chmod(CACHE, 0o755)
    marker.write_text(stamp)
    return root


def lib_path(root: Path) -> str:
    """``LD_LIBRARY_PATH`` value for binaries unpacked under `root`."""
    return ":".join(str(root / d) for d in LIB_DIRS)


def missing_libraries(binary: Path, root: Path) -> list[str]:
    """Shared libraries `binary` needs that neither the system nor `root` provides."""
    env = dict(os.environ, LD_LIBRARY_PATH=lib_path(root))
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env)
    return [line.split()[0] for line in proc.stdout.splitlines() if "not found" in line]


def main(argv: list[str]) -> int:
    """Fetch and unpack every MTA's packages (``.ci/run``); exit 1 with the reason if not."""
    wanted = argv or sorted(PACKAGES)
    for mta in wanted:
        try:
            root = unpacked(mta)
        except PackageError as e:
            print(f"{mta}: {e}", file=sys.stderr)
            return 1
        print(f"{mta}: {', '.join(d.name for d in map(deb_for, PACKAGES[mta]))} -> {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
