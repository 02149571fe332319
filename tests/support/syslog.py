"""Syslog conditions for the logging tests: a listener of our own, or no /dev/log at all.

``without_dev_log(argv)`` runs a command where nothing listens on /dev/log, as in a
container or on a host whose Postfix logs with ``maillog_file``.  When /dev/log does not
exist here, that is already the case and argv is returned as is; otherwise the command
runs in a private mount namespace (``unshare -m``, propagation private: the host's mounts
are untouched) with /dev/null bind-mounted over /dev/log, so a connect() there is
refused exactly as on a host whose syslog daemon is gone.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading

DEV_LOG = "/dev/log"


def without_dev_log(argv: list[str]) -> list[str]:
    """`argv`, wrapped so that nothing listens on /dev/log for it and its children."""
    if not os.path.exists(DEV_LOG):
        return list(argv)
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    return [
        unshare,
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount --bind /dev/null {DEV_LOG} && exec "$@"',
        "sh",
        *argv,
    ]


class Listener:
    """A syslog daemon stand-in on a unix socket: collects what is sent (dgram or stream)."""

    def __init__(self, path: str, kind: int = socket.SOCK_DGRAM) -> None:
        self.path = path
        self.kind = kind
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, kind)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # the pipe may run as another user
        if kind == socket.SOCK_STREAM:
            self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.kind == socket.SOCK_DGRAM:
                    self.received.append(self.sock.recv(65536))
                    continue
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(5)
                chunks = []
                while True:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        break
                    if not data:
                        break
                    chunks.append(data)
                self.received.append(b"".join(chunks))

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
