"""The resident daemon's frame: run a list of independent services until told to stop.

``bounces daemon`` builds its services from the ``[daemon]`` settings (one module each:
``daemon/socketmap.py`` answers Postfix's socketmap lookups, ``daemon/lmtp.py`` takes
bounces over LMTP) and hands them to ``run``.  A service is any object with

    name        short label for logs ("socketmap", "lmtp")
    start()     bind and begin serving in the background (its own thread or event
                loop); raise OSError/BounceHandlerError when it cannot bind
    stop()      stop serving and release the socket; must be safe to call twice
    address     what it actually listens on (after start; "inet:127.0.0.1:PORT" with the
                real port when the spec said port 0, or "unix:PATH")

so services do not share a loop or a thread and one can be added without touching the
others.  ``run`` starts them in order, and stops them all (in reverse) on SIGTERM/SIGINT
or when any ``start`` fails, so a half-started daemon never lingers.

``stream_server`` is the shared helper for socketserver-based services: a threading
server on ``inet:HOST:PORT`` or ``unix:PATH`` (the same spellings as Postfix's own
``inet:``/``unix:`` table and service addresses).
"""

from __future__ import annotations

import logging
import os
import signal
import socketserver
import threading

from bounce_handler.errors import EX_CONFIG, BounceHandlerError

log = logging.getLogger("bounce_handler.daemon")


def parse_listen(spec: str) -> tuple[str, object]:
    """``inet:HOST:PORT`` -> ("inet", (host, port)); ``unix:PATH`` -> ("unix", path)."""
    kind, _, rest = spec.partition(":")
    if kind == "unix" and rest.startswith("/"):
        return "unix", rest
    if kind == "inet":
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit() and int(port) < 65536:
            return "inet", (host, int(port))
    raise BounceHandlerError(
        f"listen address {spec!r}: expected inet:HOST:PORT or unix:/ABSOLUTE/PATH", EX_CONFIG
    )


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _ThreadingUnix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def stream_server(spec: str, handler, unix_mode: int = 0o660):
    """A bound threading stream server for `spec` (not yet serving).

    A stale unix socket left by a crash is removed first; the new one gets `unix_mode`
    (0660: Postfix's processes reach it through the group, other local users do not).
    """
    kind, where = parse_listen(spec)
    if kind == "inet":
        import socket

        cls = _ThreadingTCP
        if ":" in where[0]:
            cls = type("_ThreadingTCP6", (_ThreadingTCP,), {"address_family": socket.AF_INET6})
        return cls(where, handler)
    try:
        os.unlink(where)
    except FileNotFoundError:
        pass
    server = _ThreadingUnix(where, handler)
    os.chmod(where, unix_mode)
    return server


def describe(server) -> str:
    """The listen spec a stream server is really bound to."""
    addr = server.server_address
    if isinstance(addr, (str, bytes)):
        return f"unix:{os.fsdecode(addr)}"
    host, port = addr[:2]
    return f"inet:[{host}]:{port}" if ":" in host else f"inet:{host}:{port}"


class StreamService:
    """A socketserver-based service running `serve_forever` in its own thread."""

    name = "stream"

    def __init__(self, listen: str, handler) -> None:
        self.listen = listen
        self.handler = handler
        self.server = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """The bound address (after start)."""
        return describe(self.server) if self.server else self.listen

    def start(self) -> None:
        """Bind and serve in a background thread."""
        self.server = stream_server(self.listen, self.handler)
        self.server.service = self  # handlers reach their service's state through this
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"{self.name}-{self.address}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket, remove a unix socket file."""
        server, self.server = self.server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread:
            self._thread.join(5)
        if isinstance(server.server_address, str):
            try:
                os.unlink(server.server_address)
            except OSError:
                pass


def run(services: list, stop: threading.Event | None = None) -> int:
    """Start `services`, wait for SIGTERM/SIGINT (or `stop`), stop them; return 0."""
    if not services:
        raise BounceHandlerError("nothing to run: no service is configured", EX_CONFIG)
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    started = []
    try:
        for service in services:
            try:
                service.start()
            except OSError as e:
                raise BounceHandlerError(
                    f"{service.name}: cannot listen on {service.address}: {e.strerror or e}",
                    EX_CONFIG,
                ) from None
            started.append(service)
            log.info("%s listening on %s", service.name, service.address)
        stop.wait()
        log.info("stopping")
    finally:
        for service in reversed(started):
            try:
                service.stop()
            except Exception:  # one service's failure to stop must not keep the others up
                log.exception("%s: error while stopping", service.name)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
