"""VERP return-path tokens: Postfix's XVERP form and a signed form that cannot be forged.

A bounce reaches the pipe as ``bounces+TOKEN@relay``; Postfix hands us TOKEN as
``${extension}``.  ``decode`` turns it into a ``VerpResult``: who the original recipient
was, which local sender sent it, and whether the token is genuine.

Two token forms
---------------
**XVERP** (Postfix's own, made when the client says ``MAIL FROM:<bounces@relay> XVERP``
or ``sendmail -XV``): ``bounces+alice=example.com@relay``.  Anyone can write one, so it
decodes as ``verified=False, reason='unsigned'``; whether such rows count is the judge's
decision (its rules' ``include_unverified``, and ``[verp] require_signed``).

**Signed** (in the spirit of BATV and SRS): ``bounces+.KSSTTTTTTBODY@relay`` where

====== ======= ==========================================================================
``.``  1       marks the signed form: a dot-atom local part never starts with ".", so no
               XVERP extension ("local=domain") can be mistaken for one
``K``  1       key id, ``[a-z0-9]`` (the first key of the key file signs, all verify)
``SS`` 2       day stamp: days since 1970 modulo 1024, base32
``T``  6       tag: HMAC-SHA256(secret, ``K:DAY:BODY``), first 30 bits, base32, where DAY
               is the *full* day number in decimal (see "Expiry" below)
BODY   ...     ``SENDER``, ``SENDER==RECIPIENT`` or ``SENDER==.NONCE`` (see below)
====== ======= ==========================================================================

A 30-bit tag is more than BATV's or SRS's 24 bits.  Forging is an online attack: every
guess is a message our relay must accept, and the judge needs several verified bounces
before it flags anything, so ~10^9 messages per success is out of reach.

The body carries both addresses readably (``.a2kq4d7fxnews=corp.example==alice=example.com``).
Each address is written with this escape table; everything else of an address is
``[a-z0-9.-]`` verbatim:

=============== ========================================================================
``=``           the ``@`` that separates local part and domain (XVERP's convention)
``==``          between the sender and the recipient
``_x``          upper-case ``X`` (letters only)
``_-``          ``+``  (common in local parts: alice+news@)
``_=``          ``=``
``_HH``         any other ASCII byte, two hex digits (``_5f`` is ``_``, ``_40`` a second
                ``@``, ``_22`` a quote of a quoted local part, ``_2e`` a ``.`` that would
                otherwise make the local part an invalid dot-atom: a first, a doubled or
                a final dot; no escape ends in "." for the same reason)
``__`` prefix   the address was not ASCII (RFC 6531 UTF-8, IDN): what follows is its
                RFC 3492 Punycode, escaped as above
=============== ========================================================================

So a token holds only ``[a-z0-9=._-]``: Postfix delivers it intact in ``${extension}``,
and relays' usual restrictions (``%``, ``!``, quotes, ``@`` in a local part) never see
anything to reject.

**Case.**  The token contains no upper-case letter and ``decode`` folds it to lower case
before anything else, so it survives pipe(8)'s ``u`` flag (which lower-cases
``${extension}``) and remote MTAs that change the case of a return path.  Upper case in an
address is carried by the ``_x`` escape, so ``decode(encode(x))`` gives back ``x`` exactly.

**Length.**  RFC 5321 section 4.5.3.1.1 caps a local part at 64 octets; with the default
prefix ``bounces+`` that leaves 56 for the token, 10 of them header, 46 for the body:
``news@corp.example`` + ``alice@example.com`` (36 with the separator) fits with room to
spare.  When sender and recipient together do not fit, ``encode`` drops the recipient and
signs the sender alone (the bounce's own DSN still names the recipient; the attribution
to the sender stays signed); ``fallback=False`` raises ``VerpTooLong`` instead.  A sender
identity that does not fit even alone raises ``VerpTooLong``: choose a shorter identity
(a SASL login, a list name).

**Expiry cannot wrap.**  The token carries the day only modulo 1024 (two characters),
but the tag covers the full day number: ``decode`` takes the most recent day (today + 1
at the latest, for a relay whose clock runs ahead) with that remainder and checks the tag
for it.  A token 1,024 or more days old therefore fails its tag (and is reported
``expired`` when the tag matches 1,024 days earlier) instead of passing for a fresh one.
Tokens signed before this format (tag over ``K SS BODY``, the stamp alone) still verify
while they are young, which keeps the bounces of mail already sent attributable across
the upgrade; they are accepted only for issue days before ``LEGACY_LAST_DAY``, the day
the old stamp would first wrap for a token of the day signed tokens shipped
(2026-11-24), so no old token can come back to life either.

**Per-message nonce.**  The socketmap signs one envelope sender per message, and without
more a sender's tokens would all be alike for a whole day: then "one token" could not
mean "one message", which is what the judge counts a replayed token as (bounce_handler
/trust.py).  ``encode(..., nonce=True)`` (what the socketmap asks for) adds
``==.NONCE``, four random base32 characters under the tag, so two messages get two
tokens while a replay of one stays one.  Postfix asks sender_canonical_maps once per
message (measured with Postfix 3.7: three messages from one sender, three lookups).  The
nonce costs 7 octets of the body; a sender too long to carry it gets the plain
per-sender token, which still verifies.

**Per-sender tokens and XVERP together.**  The socketmap daemon (``bounces daemon``)
rewrites a relayed message's envelope sender to a body of just ``SENDER``: one envelope
sender per message, so no recipient.  If the client also asked for XVERP, Postfix appends
the recipient at delivery time, ``bounces+.TOKEN+alice=example.com@relay``, and ``decode``
returns the signed sender *and* that recipient.  The tag covers only the sender then:
anyone who received mail from that sender has seen the token, so the recipient of such a
bounce (like the recipient named inside any DSN) is a claim, not a proof.  Only a token
signed with the recipient in its body proves both.  This needs the first of
``verp_delimiters`` to be ``+`` (the default), which never occurs in a signed token.

Verification results (``VerpResult.reason``): ``None`` (verified), ``'unsigned'`` (XVERP),
``'bad-tag'`` (tampered or forged), ``'expired'`` (genuine but older than
``[verp] max_age_days``), ``'unknown-key'`` (a key id not in the key file: retired, or
forged), ``'malformed'`` (not a token of either form), ``'no-token'`` (no extension).

Keys: ``bounces verp keygen`` writes the file named by ``[verp] key_file``: one
``KEYID HEXSECRET`` per line, ``#`` comments, first line signs, all lines verify.  Rotate
with ``bounces verp keygen --rotate`` (prepends a new key; remove old keys once
``max_age_days`` has passed since the rotation).

Python API for applications that send through the relay::

    import time
    from bounce_handler import settings, verp

    cfg = settings.load()                      # the same config.toml the relay uses
    ring = verp.load_keys(cfg.verp.key_file)   # once; raises VerpKeyError
    return_path = verp.encode("alice@example.com", "newsletter", cfg, time.time(), key=ring)
    # -> 'bounces+.a2kq4d7fxnewsletter==alice=example.com@relay.example'
    # use it as the envelope sender: smtplib's sendmail(return_path, [rcpt], msg)

    result = verp.decode(verp.split_address(return_path, cfg), cfg, time.time())
    assert result.verified and result.recipient == "alice@example.com"

This module is on the pipe's hot path: it imports only ``os``; the SHA-256 primitive
(``_sha256``, 0.04 ms, rather than ``hmac``/``hashlib``, 3.5 ms) is loaded only when a
signed token is seen.
"""

from __future__ import annotations

import os

from bounce_handler.errors import EX_CONFIG, EX_DATAERR, BounceHandlerError

MARK = "."
TAG_LEN = 6
STAMP_LEN = 2
HEADER_LEN = 1 + 1 + STAMP_LEN + TAG_LEN
STAMP_MODULUS = 1024  # 32 * 32: two base32 characters of days
NONCE_LEN = 4  # base32 characters: 20 bits, per message (socketmap)
NONCE_MARK = "==."  # BODY = SENDER==.NONCE: "." never starts an escaped address field
# Days since 1970 of 2026-11-24, the day signed tokens shipped (git: "VERP: signed tokens
# with key ring"): no token in the old format (tag over the 2-character stamp alone) can
# be older.  Such a token read on day LEGACY_FIRST_DAY + 1024 or later can only be one
# whose stamp wrapped, so from then on the old format verifies nothing.
LEGACY_FIRST_DAY = 20781
LEGACY_LAST_DAY = LEGACY_FIRST_DAY + STAMP_MODULUS - 1
MAX_LOCAL_PART = 64  # RFC 5321 section 4.5.3.1.1
MIN_SECRET_BYTES = 16

B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 alphabet, lower case
_B32_INDEX = {c: i for i, c in enumerate(B32)}
KEY_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_LITERAL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
_HEX = "0123456789abcdef"

REASONS = ("unsigned", "bad-tag", "expired", "unknown-key", "malformed", "no-token")

# The one reason a *verified* result can carry: the tag proves the sender, but the
# recipient is not under it (a per-sender token from the socketmap, alone or with
# Postfix's XVERP "+local=domain" appended). Anyone who has seen one of that sender's
# messages can add any recipient, so the dead-recipient rules treat such a recipient like
# an unsigned one.
SENDER_ONLY = "sender-only"


class VerpError(BounceHandlerError):
    """A token cannot be made (bad input, too long)."""

    exit_code = EX_DATAERR


class VerpTooLong(VerpError):
    """The signed address would not fit the 64-octet local part of RFC 5321."""


class VerpKeyError(BounceHandlerError):
    """The key file is missing, unreadable or invalid; the message names it and says why.

    Not the bounce's fault: the pipe maps it to exit 75 so Postfix retries.
    """

    exit_code = EX_CONFIG


class VerpResult:
    """What a token says: immutable, plain ``__slots__`` (no dataclasses on the hot path).

    token       the extension as given (None when there was none)
    recipient   the original recipient, or None (per-sender token, malformed, no token)
    sender      the local sender identity, or None (XVERP, malformed, no token)
    verified    True only for a signed token whose tag, key and stamp are all good
    reason      None when verified with the recipient signed too, SENDER_ONLY when
                verified for the sender alone, else one of REASONS

    For an unverified signed token, ``recipient`` and ``sender`` are what it *claims*
    (kept for the record; the judge ignores unverified rows).
    """

    __slots__ = ("token", "recipient", "sender", "verified", "reason")

    def __init__(self, token, recipient, sender, verified, reason) -> None:
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "recipient", recipient)
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "verified", verified)
        object.__setattr__(self, "reason", reason)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("VerpResult is frozen")

    def as_dict(self) -> dict:
        """Plain dict (for JSON)."""
        return {n: getattr(self, n) for n in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"VerpResult({inner})"


# -- keys ---------------------------------------------------------------------------------


def _sha256_factory():
    # _sha256 is CPython 3.11's builtin SHA-256 (3.12+ calls it _sha2); importing hashlib
    # instead would load OpenSSL's _hashlib, ~3 ms of the pipe's ~10 ms budget.
    try:
        from _sha256 import sha256
    except ImportError:
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256
    return sha256


class KeyRing:
    """The keys of a key file: ``ids[0]`` signs, every id verifies.

    The HMAC inner and outer hash states are computed once per key (RFC 2104), so a
    verification costs two SHA-256 compressions of a few dozen bytes.
    """

    __slots__ = ("path", "ids", "_states")

    def __init__(self, keys: list[tuple[str, bytes]], path: str | None = None) -> None:
        if not keys:
            raise VerpKeyError(f"{path or 'key ring'}: no keys")
        sha256 = _sha256_factory()
        states = {}
        for kid, secret in keys:
            if len(secret) > 64:
                secret = sha256(secret).digest()
            secret = secret.ljust(64, b"\0")
            states[kid] = (
                sha256(bytes(b ^ 0x36 for b in secret)),
                sha256(bytes(b ^ 0x5C for b in secret)),
            )
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "ids", tuple(k for k, _ in keys))
        object.__setattr__(self, "_states", states)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyRing is frozen")

    def __contains__(self, kid: str) -> bool:
        return kid in self._states

    def __repr__(self) -> str:  # never the secrets
        return f"KeyRing(path={self.path!r}, ids={self.ids!r})"

    @property
    def signing_id(self) -> str:
        """The id of the key that signs new tokens."""
        return self.ids[0]

    def mac(self, kid: str, message: bytes) -> bytes:
        """HMAC-SHA256 of `message` under key `kid` (KeyError if unknown)."""
        inner, outer = self._states[kid]
        inner = inner.copy()
        inner.update(message)
        outer = outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def parse_keys(text: str, path: str = "key file") -> list[tuple[str, bytes]]:
    """Parse key-file text into ``[(kid, secret)]``; raises VerpKeyError naming the line."""
    keys: list[tuple[str, bytes]] = []
    seen = set()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise VerpKeyError(f"{path}: line {n}: expected 'KEYID HEXSECRET'")
        kid, hexsecret = fields
        if len(kid) != 1 or kid not in KEY_ID_CHARS:
            raise VerpKeyError(
                f"{path}: line {n}: key id {kid!r} must be one character a-z or 0-9 "
                "(it travels in the lower-cased token)"
            )
        if kid in seen:
            raise VerpKeyError(f"{path}: line {n}: key id {kid!r} appears twice")
        try:
            secret = bytes.fromhex(hexsecret)
        except ValueError:
            raise VerpKeyError(f"{path}: line {n}: secret is not hexadecimal") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise VerpKeyError(
                f"{path}: line {n}: secret has {len(secret)} bytes, at least "
                f"{MIN_SECRET_BYTES} needed"
            )
        seen.add(kid)
        keys.append((kid, secret))
    if not keys:
        raise VerpKeyError(f"{path}: no keys (run `bounces verp keygen`)")
    return keys


def load_keys(path: str) -> KeyRing:
    """Read a key file; raises VerpKeyError with the file name and why."""
    try:
        with open(path, encoding="ascii") as fp:
            text = fp.read()
    except FileNotFoundError:
        raise VerpKeyError(
            f"VERP key file {path} does not exist (run `bounces verp keygen`)"
        ) from None
    except PermissionError:
        raise VerpKeyError(
            f"VERP key file {path}: permission denied for uid {os.getuid()} "
            "(mode 0640, group of the pipe user)"
        ) from None
    except OSError as e:
        raise VerpKeyError(f"VERP key file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise VerpKeyError(f"VERP key file {path}: not ASCII text") from None
    return KeyRing(parse_keys(text, path), path)


# One cached ring per path, keyed by the file's identity, so the resident daemon picks up
# `keygen --rotate` at once and the pipe reads the file once per process.
_RINGS: dict[str, tuple[tuple[int, int, int], KeyRing]] = {}


def keyring_for(settings) -> KeyRing:
    """The key ring named by ``settings.verp.key_file`` (re-read when the file changes)."""
    path = settings.verp.key_file
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VerpKeyError(
            f"VERP key file {path} does not exist (run `bounces verp keygen`)"
        ) from None
    except OSError as e:
        raise VerpKeyError(f"VERP key file {path}: {e.strerror}") from None
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _RINGS.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    ring = load_keys(path)
    _RINGS[path] = (stamp, ring)
    return ring


# -- address escaping ---------------------------------------------------------------------


def _escape_ascii(s: str, last: bool) -> str:
    """Escape an ASCII address; `last`: the field ends the token (no trailing dot)."""
    at = s.rfind("@")
    if at <= 0 or at == len(s) - 1:
        at = -1  # an empty local part or domain: escape that "@" (never a bare "=" at an end)
    out = []
    prev = ""
    end = len(s) - 1
    for i, c in enumerate(s):
        if c in _LITERAL:
            # RFC 5322 dot-atom: no "..", no "." at the end of the local part, and none at
            # the start either (a recipient field starting with "." would read as the
            # per-message ".NONCE" of a per-sender token).
            if c == "." and (i == 0 or prev == "." or (last and i == end)):
                e = "_2e"
            else:
                e = c
        elif i == at:
            e = "="
        elif "A" <= c <= "Z":
            e = "_" + c.lower()
        elif c == "+":
            e = "_-"
        elif c == "=":
            e = "_="
        else:
            o = ord(c)
            e = "_" + _HEX[o >> 4] + _HEX[o & 15]
        out.append(e)
        prev = e[-1]
    return "".join(out)


def encode_field(address: str, last: bool = True) -> str:
    """One address in the token alphabet (see the table in the module docstring)."""
    if address.isascii():
        return _escape_ascii(address, last)
    # RFC 3492 Punycode of the whole address: ASCII characters stay in place (escaped as
    # usual), the others become a compact [a-z0-9] suffix.  Shorter than any byte escape.
    return "__" + _escape_ascii(address.encode("punycode").decode("ascii"), last)


def _unescape(s: str) -> str | None:
    """Inverse of _escape_ascii; None when `s` is not a valid escaped field."""
    out = []
    i = 0
    n = len(s)
    at_seen = False
    while i < n:
        c = s[i]
        if c in _LITERAL:
            out.append(c)
            i += 1
        elif c == "=":
            # The encoder writes exactly one bare "=", never at either end.
            if i == 0 or i == n - 1 or at_seen:
                return None
            at_seen = True
            out.append("@")
            i += 1
        elif c == "_" and i + 1 < n:
            d = s[i + 1]
            if d in "01234567":
                if i + 2 >= n or s[i + 2] not in _HEX:
                    return None
                out.append(chr(int(s[i + 1 : i + 3], 16)))
                i += 3
                continue
            if "a" <= d <= "z":
                out.append(d.upper())
            elif d == "-":
                out.append("+")
            elif d == "=":
                out.append("=")
            else:
                return None
            i += 2
        else:
            return None
    return "".join(out)


def decode_field(field: str) -> str | None:
    """Inverse of encode_field (input already lower-cased); None when malformed."""
    if not field:
        return None
    if field.startswith("__"):
        inner = _unescape(field[2:])
        if inner is None:
            return None
        try:
            return inner.encode("ascii").decode("punycode")
        except (UnicodeError, ValueError, IndexError):
            return None
    return _unescape(field)


def _split_body(body: str) -> tuple[str, str | None] | None:
    """Split BODY at the first unescaped "==" (escape-aware); None when malformed."""
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "_":
            i += 3 if i + 1 < n and body[i + 1] in "01234567" else 2
            continue
        if c == "=" and i + 1 < n and body[i + 1] == "=":
            return body[:i], body[i + 2 :]
        i += 1
    return body, None


# -- the tag ------------------------------------------------------------------------------


def _day(now: float) -> int:
    return int(now // 86400)


def _stamp(day: int) -> str:
    d = day % STAMP_MODULUS
    return B32[d >> 5] + B32[d & 31]


def _signed(kid: str, day: int, body: str) -> str:
    """What the tag covers: the key id, the full day number and the body.

    The ":" after the key id keeps it apart from the old format's ``K SS BODY`` (whose
    second character is a base32 stamp character, never ":").
    """
    return f"{kid}:{day}:{body}"


def _issue_day(stamp: str, today: int) -> int:
    """The most recent day, at most tomorrow, whose number modulo 1024 is the stamp."""
    s = _B32_INDEX[stamp[0]] * 32 + _B32_INDEX[stamp[1]]
    return today + 1 - ((today + 1 - s) % STAMP_MODULUS)


def _tag(ring: KeyRing, kid: str, signed: str) -> str:
    mac = ring.mac(kid, signed.encode("ascii"))
    n = int.from_bytes(mac[:4], "big") >> (32 - 5 * TAG_LEN)
    return "".join(B32[(n >> (5 * i)) & 31] for i in range(TAG_LEN - 1, -1, -1))


def _compare(a: str, b: str) -> bool:
    try:
        from _operator import _compare_digest
    except ImportError:  # pragma: no cover - every CPython has it
        return a == b
    return _compare_digest(a, b)


# -- addresses ----------------------------------------------------------------------------


def bounce_domain(settings) -> str:
    """The bounce address's domain: ``[verp] domain``, or this host's name."""
    return settings.verp.domain or os.uname().nodename


def _delimiter(settings) -> str:
    return (settings.verp.recipient_delimiter or "+")[0]


def split_address(address: str, settings) -> str | None:
    """The extension of a bounce address (``bounces+EXT@relay`` -> ``EXT``).

    None for the bare bounce address; raises VerpError when `address` is not one of ours
    (another local part).  The domain is not checked: one relay may answer for several.
    """
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    local, at, _domain = address.rpartition("@")
    if not at:
        local = address
    prefix = settings.verp.prefix
    if local.lower() == prefix.lower():
        return None
    head = prefix + _delimiter(settings)
    if local[: len(head)].lower() != head.lower():
        raise VerpError(f"{address!r} is not a bounce address ({head}TOKEN@domain)")
    return local[len(head) :]


def is_bounce_local_part(local: str, settings) -> bool:
    """True for ``bounces`` and ``bounces+ANYTHING`` (case-insensitive), any domain."""
    prefix = settings.verp.prefix.lower()
    local = local.lower()
    return local == prefix or local.startswith(prefix + _delimiter(settings))


def is_bounce_address(address: str, settings) -> bool:
    """True for ``bounces@DOMAIN`` and ``bounces+ANYTHING@DOMAIN`` (case-insensitive)."""
    local, at, domain = address.rpartition("@")
    if not at or domain.lower() != bounce_domain(settings).lower():
        return False
    return is_bounce_local_part(local, settings)


# -- encode / decode ----------------------------------------------------------------------


def make_nonce() -> str:
    """NONCE_LEN random base32 characters (os.urandom: no import on the hot path)."""
    n = int.from_bytes(os.urandom(4), "big")
    return "".join(B32[(n >> (5 * i)) & 31] for i in range(NONCE_LEN))


def make_token(
    recipient: str | None, sender: str, ring: KeyRing, now: float, nonce: str | None = None
) -> str:
    """The signed token alone (no length check): ``.K SS TAG BODY``.

    `nonce` (per-sender tokens only) is added as ``==.NONCE``: see "Per-message nonce".
    """
    if not sender:
        raise VerpError("a signed token needs a sender identity")
    if recipient:
        if nonce:
            raise VerpError("a nonce is for per-sender tokens (no recipient)")
        body = encode_field(sender, last=False) + "==" + encode_field(recipient)
    elif nonce:
        if len(nonce) != NONCE_LEN or any(c not in _B32_INDEX for c in nonce):
            raise VerpError(f"a nonce is {NONCE_LEN} base32 characters")
        body = encode_field(sender, last=False) + NONCE_MARK + nonce
    else:
        body = encode_field(sender)
    kid = ring.signing_id
    day = _day(now)
    return MARK + kid + _stamp(day) + _tag(ring, kid, _signed(kid, day, body)) + body


def encode(
    recipient: str | None,
    sender: str,
    settings,
    now: float,
    key: KeyRing | None = None,
    *,
    fallback: bool = True,
    nonce: bool = False,
) -> str:
    """The full signed return-path address for mail from `sender` to `recipient`.

    `recipient` None (or empty) makes a per-sender token (what the socketmap daemon
    uses); with `nonce` it carries a random per-message nonce too, unless that would not
    fit (then the plain per-sender token).  When sender and recipient do not fit the
    64-octet local part, the recipient is dropped (`fallback=True`) or VerpTooLong
    raised; a sender that does not fit alone always raises VerpTooLong.  `key` defaults
    to the ring of ``[verp] key_file``.
    """
    ring = key if key is not None else keyring_for(settings)
    head = settings.verp.prefix + _delimiter(settings)
    budget = MAX_LOCAL_PART - len(head)
    token = make_token(recipient, sender, ring, now)
    if nonce and not recipient:
        unique = make_token(None, sender, ring, now, make_nonce())
        if len(unique) <= budget:
            token = unique
    if len(token) > budget and recipient:
        if not fallback:
            raise VerpTooLong(
                f"signed token for {sender!r} -> {recipient!r} is {len(token)} octets; "
                f"the local part leaves {budget} after {head!r} (RFC 5321 4.5.3.1.1)"
            )
        token = make_token(None, sender, ring, now)
    if len(token) > budget:
        raise VerpTooLong(
            f"sender identity {sender!r} is too long for a signed bounce address: the "
            f"token is {len(token)} octets, the local part leaves {budget} after "
            f"{head!r} (RFC 5321 4.5.3.1.1); use a shorter identity"
        )
    return f"{head}{token}@{bounce_domain(settings)}"


def _xverp(extension: str, settings) -> tuple[str | None, str | None]:
    """Postfix XVERP: ``local=domain`` -> (recipient, None), or (None, 'malformed')."""
    d2 = settings.verp.verp_delimiters[1:2] or "="
    # The domain cannot contain the delimiter, the local part can: split at the last one.
    local, sep, domain = extension.rpartition(d2)
    if not sep or not local or not domain:
        return None, "malformed"
    # Postfix never writes control characters or white space into an XVERP address; an
    # extension carrying CR/LF, NUL or ESC was crafted (found by tests/hostile), and its
    # "recipient" must not reach the store as if it were an address.
    if not extension.isprintable() or " " in domain:
        return None, "malformed"
    return f"{local}@{domain}", None


def decode(extension: str | None, settings, now: float) -> VerpResult:
    """Decode and verify Postfix's ``${extension}``; never raises except VerpKeyError.

    VerpKeyError (key file missing or invalid) is raised only for a signed token; the
    pipe maps it to exit 75 so the bounce waits in Postfix's queue until the key is back.
    """
    if not extension:
        return VerpResult(extension, None, None, False, "no-token")
    if not extension.startswith(MARK):
        recipient, why = _xverp(extension, settings)
        return VerpResult(extension, recipient, None, False, why or "unsigned")

    token = extension
    xverp_recipient = None
    d1 = settings.verp.verp_delimiters[:1]
    if d1 and d1 not in _LITERAL and d1 not in "=_":
        # Per-sender token + XVERP: Postfix appended "+local=domain" at delivery.
        token, sep, rest = extension.partition(d1)
        if sep:
            xverp_recipient, why = _xverp(rest, settings)
            if why:
                return VerpResult(extension, None, None, False, "malformed")
    token = token.lower()

    def malformed() -> VerpResult:
        return VerpResult(extension, None, None, False, "malformed")

    if len(token) <= HEADER_LEN:
        return malformed()
    kid = token[1]
    stamp = token[2 : 2 + STAMP_LEN]
    tag = token[2 + STAMP_LEN : HEADER_LEN]
    body = token[HEADER_LEN:]
    if kid not in KEY_ID_CHARS or any(c not in _B32_INDEX for c in stamp + tag):
        return malformed()
    parts = _split_body(body)
    if parts is None:
        return malformed()
    sender = decode_field(parts[0])
    recipient = None
    signed_recipient = False
    if parts[1] is not None and parts[1][:1] == ".":
        # SENDER==.NONCE: a per-sender token unique to one message (socketmap).
        nonce = parts[1][1:]
        if len(nonce) != NONCE_LEN or any(c not in _B32_INDEX for c in nonce):
            return malformed()
    elif parts[1] is not None:
        recipient = decode_field(parts[1])
        if recipient is None or xverp_recipient is not None:
            return malformed()
        signed_recipient = True
    if sender is None:
        return malformed()
    recipient = recipient or xverp_recipient

    ring = keyring_for(settings)
    if kid not in ring:
        return VerpResult(extension, recipient, sender, False, "unknown-key")
    today = _day(now)
    # The latest day with this stamp, tomorrow at most (another relay's clock a little
    # ahead of ours); the tag says whether it is the day the token was made.
    issued = _issue_day(stamp, today)
    if not _compare(_tag(ring, kid, _signed(kid, issued, body)), tag):
        if _compare(_tag(ring, kid, kid + stamp + body), tag):
            # The format before the tag covered the full day (see "Expiry cannot wrap").
            if issued > LEGACY_LAST_DAY:
                return VerpResult(extension, recipient, sender, False, "expired")
        elif any(
            _compare(_tag(ring, kid, _signed(kid, day, body)), tag)
            for day in (issued - STAMP_MODULUS, issued + STAMP_MODULUS)
        ):
            # Genuine, but 1,024 days older than its stamp reads, or dated 2+ days ahead
            # (a clock far off): outside the validity window either way.
            return VerpResult(extension, recipient, sender, False, "expired")
        else:
            return VerpResult(extension, recipient, sender, False, "bad-tag")
    if today - issued > settings.verp.max_age_days:
        return VerpResult(extension, recipient, sender, False, "expired")
    return VerpResult(extension, recipient, sender, True, None if signed_recipient else SENDER_ONLY)


def signed_part(extension: str | None, settings) -> str | None:
    """The signed token of an extension, lower-cased, without an XVERP suffix.

    What a replay of one token has in common however its case and its "+local=domain"
    suffix vary: the judge's unit of evidence for token-backed rows (trust.py).  None for
    anything that is not a signed token.
    """
    if not extension or not extension.startswith(MARK):
        return None
    d1 = settings.verp.verp_delimiters[:1]
    if d1 and d1 not in _LITERAL and d1 not in "=_":
        extension = extension.partition(d1)[0]
    return extension.lower()
