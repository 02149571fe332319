"""One redaction for secrets in URLs and connection strings: every message, log line, error.

The store's URL (``[database] url``) can carry a password two ways, and libpq and
SQLAlchemy echo either back in their errors::

    postgresql+psycopg://bounce:S3cret@db.example/bounces        userinfo
    postgresql+psycopg://bounce@db.example/bounces?password=S3cret   query (libpq keyword)

and a malformed one is echoed *alone*: libpq says ``invalid percent-encoded token:
"Se%zzCret"`` for either form, with no URL around it to recognise.  So ``redact`` masks
three things, in any text:

1. the password of every ``scheme://user:PASSWORD@host`` (up to the last "@" of the
   authority, so an unescaped "@" inside the password is covered);
2. the value of every ``password=`` (also ``sslpassword=``, ``PGPASSWORD=``), any case,
   up to "&", white space or a quote, or a whole quoted value (``password='a b'``);
3. each secret it is given, verbatim (``url_secrets(url)`` lists the configured URL's, raw
   and percent-decoded, malformed or not).

Used by the pipe's mailq line and log line, the PostgreSQL writer's errors, `bounces db`,
`bounces config show`, `bounces doctor`, the CLI's error line and the daemon's log
formatter.  Plain string scanning, no ``re``, no imports: the pipe may call it.
"""

from __future__ import annotations

MASK = "***"

# Where a URL's authority (user:password@host:port) ends.
_AUTHORITY_END = frozenset("/?#\"'<> \t\r\n")
# Where an unquoted password= value ends.
_VALUE_END = frozenset("&\"' \t\r\n")


def redact(text: str, *secrets: str) -> str:
    """`text` with every password it shows replaced by ``***`` (see the module docstring)."""
    if not isinstance(text, str):
        text = str(text)
    for secret in secrets:
        # One character is no secret worth masking every occurrence of.
        if secret and len(secret) >= 2 and secret != MASK:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _userinfo(text)
    if "password=" in text.lower():
        text = _password_params(text)
    return text


def _userinfo(text: str) -> str:
    out = []
    pos = 0
    while True:
        i = text.find("://", pos)
        if i < 0:
            break
        start = i + 3
        end = start
        while end < len(text) and text[end] not in _AUTHORITY_END:
            end += 1
        authority = text[start:end]
        userinfo, at, _host = authority.rpartition("@")
        user, colon, password = userinfo.partition(":")
        out.append(text[pos:start])
        if at and colon and password:
            out.append(f"{user}:{MASK}@{_host}")
        else:
            out.append(authority)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _password_params(text: str) -> str:
    lower = text.lower()
    out = []
    pos = 0
    while True:
        i = lower.find("password=", pos)
        if i < 0:
            break
        start = i + len("password=")
        out.append(text[pos:start])
        if start < len(text) and text[start] in "'\"":
            quote = text[start]
            close = text.find(quote, start + 1)
            end = len(text) if close < 0 else close + 1
            out.append(quote + MASK + (quote if close >= 0 else ""))
        else:
            end = start
            while end < len(text) and text[end] not in _VALUE_END:
                end += 1
            if end > start:
                out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _unquote(s: str) -> str:
    """Percent-decoding that leaves a malformed escape ("%zz") as it is."""
    if "%" not in s:
        return s
    data = bytearray()
    i = 0
    raw = s.encode("utf-8", "surrogateescape")
    while i < len(raw):
        c = raw[i]
        if c == 0x25 and _is_hex(raw[i + 1 : i + 3]):
            data.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            data.append(c)
            i += 1
    return data.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(b in b"0123456789abcdefABCDEF" for b in pair)


def url_secrets(url: str) -> list[str]:
    """The passwords a store URL carries, as written and percent-decoded."""
    found: list[str] = []
    if not isinstance(url, str):
        return found
    rest = url.partition("://")[2]
    end = 0
    while end < len(rest) and rest[end] not in "/?#":
        end += 1
    userinfo, at, _host = rest[:end].rpartition("@")
    password = userinfo.partition(":")[2] if at else ""
    if password:
        found.append(password)
    query = rest.partition("?")[2].partition("#")[0]
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        if eq and value and key.lower().endswith("password"):
            found.append(value)
    for value in list(found):
        decoded = _unquote(value)
        if decoded != value:
            found.append(decoded)
    # Longest first: a secret that contains another is masked whole.
    return sorted(set(found), key=len, reverse=True)


def log_redaction(url: str = "") -> None:
    """Make every handler of the root logger redact what it writes (daemon, drain).

    Applied to the formatted line, so a traceback that quotes a connection string is
    covered too.
    """
    import logging

    secrets = url_secrets(url)

    class RedactingFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record), *secrets)

    for handler in logging.getLogger().handlers:
        fmt = handler.formatter
        handler.setFormatter(
            RedactingFormatter(fmt._fmt if fmt else None, fmt.datefmt if fmt else None)
        )
