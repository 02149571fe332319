"""A receiving SMTP server that throttles every attempt, as Yahoo and Gmail do.

For the live-queue tests (tests/e2e/test_postfix_live_queue.py): a private Postfix relays
to it (``transport_maps``: ``DOMAIN smtp:[127.0.0.1]:PORT``) and every delivery attempt is
refused with a temporary reply, so the messages stay in the deferred queue with the
provider's words as their delay reason:

- ``yahoo``: ``421 4.7.0 [TSS04] Messages from IP temporarily deferred due to unexpected
  volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes``
  in reply to MAIL FROM, then the connection is closed (Yahoo's wording, 2024);
- ``gmail``: ``450-4.7.28`` ... ``450 4.7.28`` (the multi-line "unusual rate of
  unsolicited mail" reply) in reply to RCPT TO.

Standard library only: a threading TCP server on loopback; ``attempts`` counts the
refusals, ``stop()`` closes it.
"""

from __future__ import annotations

import socketserver
import threading

YAHOO = ("421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected "
         "volume or user complaints - 4.16.55.1; see "
         "https://postmaster.yahooinc.com/error-codes")
GMAIL = (
    "450-4.7.28 Our system has detected an unusual rate of unsolicited mail originating\r\n"
    "450-4.7.28 from your IP address. To protect our users from spam, mail sent from your\r\n"
    "450-4.7.28 IP address has been temporarily rate limited. For more information, go to\r\n"
    "450 4.7.28 https://support.google.com/mail/?p=UnsolicitedRateLimitError x1-20020a05 - gsmtp"
)


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        mx = self.server.owner
        self._send("220 mx.throttle.test ESMTP")
        while True:
            try:
                line = self.rfile.readline(4096)
            except OSError:
                return
            if not line:
                return
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                self._send("250 mx.throttle.test")
            elif verb == b"MAIL":
                if mx.mode == "yahoo":
                    mx.refused()
                    self._send(YAHOO.format(ip=self.client_address[0]))
                    return  # 421: the server closes the connection
                self._send("250 2.1.0 OK")
            elif verb == b"RCPT":
                mx.refused()
                self._send(GMAIL)
            elif verb == b"RSET":
                self._send("250 2.0.0 OK")
            elif verb == b"QUIT":
                self._send("221 2.0.0 closing")
                return
            else:
                self._send("502 5.5.1 not here")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class ThrottlingMX:
    """``ThrottlingMX("yahoo"|"gmail")``: listening on 127.0.0.1:``port`` once started."""

    def __init__(self, mode: str) -> None:
        if mode not in ("yahoo", "gmail"):
            raise ValueError(mode)
        self.mode = mode
        self.attempts = 0
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def refused(self) -> None:
        """Count one refused attempt."""
        with self._lock:
            self.attempts += 1

    @property
    def nexthop(self) -> str:
        """The transport_maps value that routes a domain here."""
        return f"smtp:[127.0.0.1]:{self.port}"

    def start(self) -> ThrottlingMX:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
