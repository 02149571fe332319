"""Postfix socketmap service: signed VERP for relayed mail without changing the senders.

Postfix (>= 2.10) asks a socketmap server over a persistent connection, one netstring
(D. J. Bernstein's ``LEN:DATA,``) per request, as documented in socketmap_table(5)::

    request   "NAME KEY"                       e.g. 21:sender news@corp.example,
    reply     "OK VALUE" | "NOTFOUND " | "TEMP REASON" | "TIMEOUT REASON" | "PERM REASON"

TEMP makes Postfix defer the message (cleanup answers 451 4.3.0); PERM is for requests
that make no sense (an unknown map name).  Replies are capped at 100000 octets by
Postfix's socketmap_max_reply_size; ours are a few dozen.

Maps (the NAME Postfix sends, chosen in main.cf as ``socketmap:inet:HOST:PORT:NAME``):

``sender``
    For ``sender_canonical_maps`` with ``canonical_classes = envelope_sender``:
    ``news@corp.example`` -> ``bounces+.KSSTAGnews=corp.example==.NNNN@relay``, a signed
    per-sender bounce address with a per-message nonce (see bounce_handler.verp: Postfix
    asks once per message, so each message leaves with its own token).  NOTFOUND (address unchanged)
    for: the null sender, the bounce address itself (a message re-injected through
    cleanup, e.g. after a content filter, must not be wrapped twice), senders outside
    ``[daemon] sender_domains``, Postfix's own ``MAILER-DAEMON``/``double-bounce``
    (mail from them must never bounce), the partial keys Postfix also tries (``user``,
    ``@domain``), and senders too long to sign (logged).  A missing or broken key file
    is TEMP: deferring mail until an administrator fixes it beats relaying it unsigned
    and losing its bounces' attribution.

    One envelope sender per message: the address names the sender, not the recipient.
    Senders that want per-recipient VERP keep sending with XVERP; Postfix then applies
    XVERP to the rewritten sender at delivery time (``bounces+.TOKEN+alice=example.com@``)
    and the handler gets both: the signed sender and the (unsigned) recipient.

``reverse``
    ``bounces+.TOKEN@relay`` -> the original sender, for a verified per-sender token
    whose sender is an address; NOTFOUND otherwise.  For tools and for
    ``bounces``-side forwarding.

``forward``
    For ``virtual_alias_maps``, only when ``[daemon] forward_to_sender`` is true:
    ``bounces+.TOKEN@relay`` -> ``bounces+.TOKEN@relay, news@corp.example``.  Postfix
    delivers one copy to the address itself (a virtual alias that includes itself is not
    expanded again) -- the handler records it -- and passes one on to the original
    sender, with the bounce's null envelope sender.  Forged, expired and unknown-key
    tokens are never forwarded.

Keys are read through ``verp.keyring_for`` (re-read when the file changes), so
``bounces verp keygen --rotate`` takes effect without a restart.

Postfix folds socketmap keys to lower case before asking (dict_socketmap's
DICT_FLAG_FOLD_FIX), so a per-sender token names the sender in lower case.

Limit: on an ``inet:`` listener any local user can ask for a signed address for any
sender in ``sender_domains``; on a multi-user host listen on ``unix:PATH`` (mode 0660,
group postfix) instead.
"""

from __future__ import annotations

import logging
import socketserver
import time

from bounce_handler import verp
from bounce_handler.daemon.server import StreamService

log = logging.getLogger("bounce_handler.daemon.socketmap")

MAX_REQUEST = 100000  # Postfix's socketmap_max_reply_size; requests are far smaller
IDLE_TIMEOUT = 600  # a client silent this long is gone; Postfix reconnects when it needs to

# Postfix's own senders: double_bounce_sender's default, and the name it gives the null
# sender in headers.  Mail from them must not bounce, so it must not get a bounce address.
NEVER_REWRITE = frozenset({"double-bounce", "mailer-daemon"})


class NetstringError(ValueError):
    """The peer broke the netstring framing; the connection is closed."""


def netstring(data: bytes) -> bytes:
    """``LEN:DATA,``."""
    return b"%d:%s," % (len(data), data)


def read_netstring(rfile, limit: int = MAX_REQUEST) -> bytes | None:
    """One netstring from a binary file; None at a clean end of stream."""
    digits = b""
    while True:
        c = rfile.read(1)
        if not c:
            if digits:
                raise NetstringError("connection closed inside a length")
            return None
        if c == b":":
            break
        if not c.isdigit() or len(digits) > 6:
            raise NetstringError(f"bad netstring length byte {c!r}")
        digits += c
    if not digits:
        raise NetstringError("empty netstring length")
    n = int(digits)
    if n > limit:
        raise NetstringError(f"netstring of {n} octets exceeds {limit}")
    data = rfile.read(n)
    if len(data) != n:
        raise NetstringError("connection closed inside a netstring")
    if rfile.read(1) != b",":
        raise NetstringError("netstring not terminated by ','")
    return data


def domain_matches(domain: str, patterns: list[str]) -> bool:
    """Postfix-style domain list match: exact, '.parent' for subdomains, '*' for any."""
    domain = domain.lower().rstrip(".")
    for p in patterns:
        if p == "*" or p == domain:
            return True
        if p.startswith(".") and domain.endswith(p):
            return True
    return False


def parse_domains(text: str) -> list[str]:
    """``[daemon] sender_domains`` as a list (comma and/or space separated)."""
    return [d.lower() for d in text.replace(",", " ").split()]


class Tables:
    """The lookup logic, independent of sockets (one instance per service)."""

    def __init__(self, settings, clock=time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.domains = parse_domains(settings.daemon.sender_domains)
        self.maps = {"sender": self.sender, "reverse": self.reverse, "forward": self.forward}

    def lookup(self, request: bytes) -> bytes:
        """One request ("NAME KEY") -> one reply, both without netstring framing."""
        text = request.decode("utf-8", "surrogateescape")
        name, sep, key = text.partition(" ")
        fn = self.maps.get(name)
        if fn is None or not sep:
            return b"PERM unknown map name " + name.encode("utf-8", "surrogateescape")[:64]
        try:
            value = fn(key)
        except verp.VerpKeyError as e:
            log.error("%s %s: %s", name, key, e)
            return b"TEMP " + str(e).encode("utf-8", "replace")[:1000]
        if value is None:
            return b"NOTFOUND "
        return b"OK " + value.encode("utf-8", "surrogateescape")

    def sender(self, key: str) -> str | None:
        """Envelope sender -> signed per-sender bounce address, or None (unchanged)."""
        address = key.strip()
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return None  # null sender, or Postfix's partial keys "user" and "@domain"
        if local.lower() in NEVER_REWRITE or verp.is_bounce_address(address, self.settings):
            return None
        if not domain_matches(domain, self.domains):
            return None
        try:
            # nonce: one token per message, so the judge can count a replayed token once
            # without counting a day of the sender's genuine mail as one (verp.py).
            return verp.encode(None, address, self.settings, self.clock(), nonce=True)
        except verp.VerpTooLong as e:
            log.warning("sender %s left unchanged: %s", address, e)
            return None

    def _original(self, key: str) -> str | None:
        address = key.strip()
        if not verp.is_bounce_address(address, self.settings):
            return None
        try:
            extension = verp.split_address(address, self.settings)
        except verp.VerpError:
            return None
        result = verp.decode(extension, self.settings, self.clock())
        if not result.verified or not result.sender or "@" not in result.sender:
            if extension and result.reason not in (None, "unsigned", "no-token"):
                log.info("%s: not forwarded (%s)", address, result.reason)
            return None
        return result.sender

    def reverse(self, key: str) -> str | None:
        """Bounce address -> the original sender (verified tokens only)."""
        return self._original(key)

    def forward(self, key: str) -> str | None:
        """Bounce address -> "itself, original sender" when forwarding is enabled."""
        if not self.settings.daemon.forward_to_sender:
            return None
        sender = self._original(key)
        if sender is None:
            return None
        return f"{key.strip()}, {sender}"


class SocketmapHandler(socketserver.StreamRequestHandler):
    """One Postfix connection: netstring requests until it closes."""

    timeout = IDLE_TIMEOUT

    def handle(self) -> None:
        """Answer requests until the peer closes, idles out or breaks the framing."""
        tables = self.server.service.tables
        while True:
            try:
                request = read_netstring(self.rfile)
            except NetstringError as e:
                log.warning("socketmap client %s: %s; closing", self.client_address, e)
                return
            except OSError:  # idle timeout or reset
                return
            if request is None:
                return
            self.wfile.write(netstring(tables.lookup(request)))
            self.wfile.flush()


class SocketmapService(StreamService):
    """The socketmap listener (a daemon/server.py service)."""

    name = "socketmap"

    def __init__(self, settings, listen: str | None = None, clock=time.time) -> None:
        super().__init__(listen or settings.daemon.socketmap_listen, SocketmapHandler)
        self.tables = Tables(settings, clock)
        try:
            verp.keyring_for(settings)
        except verp.VerpKeyError as e:
            # Not fatal: lookups answer TEMP (Postfix defers) until the file is fixed, and
            # the ring is re-read then without a restart.
            log.error("%s; 'sender' lookups will answer TEMP until it is fixed", e)
        if not self.tables.domains:
            log.warning("[daemon] sender_domains is empty: the 'sender' map rewrites no sender")
