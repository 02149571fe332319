"""bounce-handler: the entrypoint Postfix's pipe(8) transport runs, once per bounce.

master.cf (see deploy/postfix/master.cf for the full entry and why each flag):

    verpbounce unix - n n - 20 pipe
      flags=DORq null_sender= user=nobody
      argv=/opt/bounce-handler/venv/bin/bounce-handler
        --config /etc/bounce-handler/config.toml --client-address ${client_address}
        -- ${extension}

Usage:

    bounce-handler [--config PATH] [--sender S] [--recipient R]
                   [--original-recipient R] [--queue-id ID]
                   [--client-address ADDR] [--client-protocol PROTO] -- EXTENSION

EXTENSION is Postfix's ${extension} (the VERP token after "bounces+").  The options take
the other pipe(8) macros when the master.cf entry passes them; without them the envelope
is read from the Return-Path/Delivered-To/X-Original-To headers that flags=R, D and O
prepend.  ``--client-address ${client_address}`` (empty for a notice Postfix's own
bounce daemon wrote) is what lets the handler know such a notice is genuine
(bounce_handler/trust.py, docs/trust.md); without it nothing is taken as local.

**The extension is never read as an option.**  Anyone can mail bounces+--help@relay or
make Postfix's XVERP write bounces+--x=example.com@relay, so the extension is data, and:

- with ``--`` (the shipped entry): everything after the first ``--`` met where an option
  could start is the extension (at most one argument);
- without ``--`` (an entry written before it was shipped, ``... ${extension}``): the
  *last* argument is always the extension, whatever it looks like, and only the ones
  before it are options.  pipe(8) always passes ``${extension}``, even empty: Postfix 3.7
  gives ``''`` for a bare bounces@ address (tests/e2e/test_postfix_argv.py checks both
  shapes), so the last argument is never an option of the entry.  An entry without
  ``${extension}`` must write its options as ``--config PATH`` (a value of its own).
- ``--help`` and ``--version`` alone are answered only when stdin is a terminal or
  carries no message: under pipe(8) stdin is always a pipe holding at least the
  prepended headers, so bounces+--help@relay through an old entry is a bounce like any
  other.

The exit status is the durability contract with Postfix (pipe(8) maps sysexits):

    0   recorded (or spooled, in PostgreSQL spool mode), a duplicate of a recorded message,
        deliberately ignored (an auto-reply), or quarantined (not understood: kept with
        why)  -> Postfix deletes its copy
    75  EX_TEMPFAIL: anything that is not the message's fault (store missing, locked,
        read-only, full, schema behind; config or key file unreadable; a bad master.cf
        argv; an unexpected error) -> Postfix keeps it queued and retries; the one line
        we print is the reason `mailq` shows.

Nothing else, ever: pipe(8) *bounces* on any other status (a traceback exits 1), and a
bounce of a null-sender message is discarded, i.e. lost.  So every path ends in EXIT.

This module's imports are its contract (tests/test_pipe_imports.py pins them): no
SQLAlchemy, alembic, structlog, flufl.bounce, psycopg or email package here; the process
must cost at most ~2x a bare interpreter start.
"""

from __future__ import annotations

import sys
import time

# Outcome -> exit status: the one table. Quarantine is 0: the message is safe in the store,
# and retrying something we cannot understand would only end in Postfix bouncing it.
EXIT = {
    "recorded": 0,
    "spooled": 0,  # pg_mode = "spool": durable in the spool, in PostgreSQL once drained
    "duplicate": 0,
    "ignored": 0,
    "quarantined": 0,
    "tempfail": 75,
}
EX_TEMPFAIL = 75

# Postfix copies our output into its log line and the DSN text, truncated at ~1,850
# characters; one line of at most this much keeps the most useful words visible.
MAX_OUTPUT = 300

OPTIONS = {
    "--config": "config",
    "--sender": "sender",
    "--recipient": "recipient",
    "--original-recipient": "original_recipient",
    "--queue-id": "queue_id",
    "--client-address": "client_address",
    "--client-protocol": "client_protocol",
}

USAGE = (
    "usage: bounce-handler [--config PATH] [--sender S] [--recipient R] "
    "[--original-recipient R] [--queue-id ID] [--client-address ADDR] "
    "[--client-protocol PROTO] -- EXTENSION"
)


class UsageError(Exception):
    """The master.cf argv is wrong: an administrator's mistake, so defer (75), not bounce."""


INFO_FLAGS = ("-h", "--help", "--version")


def parse_argv(argv: list[str]) -> dict[str, str | None]:
    """Options, then the extension (see the module docstring). Raises UsageError."""
    opts: dict[str, str | None] = {v: None for v in OPTIONS.values()}
    opts["extension"] = None
    opts["help"] = opts["version"] = None
    last = len(argv) - 1
    rest: list[str] = []
    i = 0
    while i <= last:
        arg = argv[i]
        if arg == "--" and i < last:
            rest = argv[i + 1 :]
            break
        if i == last:
            # No "--" before it: the last argument is the extension (an entry written
            # before the shipped one had "--"), even when it looks like an option.
            rest = [arg]
            break
        if arg in ("-h", "--help"):
            opts["help"] = "1"
        elif arg == "--version":
            opts["version"] = "1"
        elif arg.split("=", 1)[0] in OPTIONS:
            name, eq, value = arg.partition("=")
            if not eq:
                i += 1
                value = argv[i]  # i <= last: the last argument is a value here
            opts[OPTIONS[name]] = value
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg[:40]!r}")
        else:
            rest = argv[i:]
            break
        i += 1
    if len(rest) > 1:
        raise UsageError(f"expected one EXTENSION argument, got {len(rest)}")
    if rest:
        opts["extension"] = rest[0]
    return opts


def wants_info(argv: list[str], stdin) -> str | None:
    """"help" or "version" when a person asked (see the module docstring), else None."""
    if len(argv) != 1 or argv[0] not in INFO_FLAGS:
        return None
    try:
        if stdin.isatty():
            return "version" if argv[0] == "--version" else "help"
        peek = getattr(stdin, "peek", None)
        if peek is not None:
            empty = not peek(1)
        elif stdin.seekable():
            pos = stdin.tell()
            empty = not stdin.read(1)
            stdin.seek(pos)
        else:
            return None
    except (OSError, ValueError):
        return None
    if not empty:
        return None  # a message on stdin: a delivery whose extension is this flag
    return "version" if argv[0] == "--version" else "help"


def read_bounded(stream, cap: int) -> tuple[bytes, int, bool]:
    """Read at most `cap` bytes; drain (and count) the rest so Postfix sees a clean pipe."""
    data = stream.read(cap)
    size = len(data)
    truncated = False
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        truncated = True
        size += len(chunk)
    return data, size, truncated


def envelope_headers(raw: bytes) -> dict[str, str]:
    """Return-Path, Delivered-To and X-Original-To from the lines pipe's flags prepend.

    pipe(8) writes them before the message's own headers (flags=R, D, O), so only the
    first few lines are read; a header of the same name deeper in the message (e.g. in
    the attached original) is not ours.
    """
    found: dict[str, str] = {}
    start = 0
    for _ in range(8):
        end = raw.find(b"\n", start)
        if end < 0:
            break
        line = raw[start:end].rstrip(b"\r")
        name, colon, value = line.partition(b":")
        key = name.strip().lower()
        if not colon or key not in (b"return-path", b"delivered-to", b"x-original-to"):
            break
        text = value.strip().decode("utf-8", "replace").strip("<>")
        found.setdefault(key.decode(), text)
        start = end + 1
    return found


def _logfmt(pairs: list[tuple[str, object]]) -> str:
    """key=value line; values quoted and control characters escaped (no log injection)."""
    out = []
    for k, v in pairs:
        if v is None:
            continue
        s = str(v)
        if not s or any(c in s for c in ' "\\') or not s.isprintable():
            s = '"' + s.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        out.append(f"{k}={s}")
    return " ".join(out)


def _emit(settings, fields: list[tuple[str, object]]) -> None:
    """The one structured line per invocation: syslog (facility mail), a file, stderr, or none.

    A line syslog or the file cannot take (nothing listens on ``[log] syslog_socket``: a
    container, a host where Postfix logs with ``maillog_file``; a file the pipe user may
    not write) goes to stderr instead, which pipe(8) copies into Postfix's own log line
    for the delivery -- whole for a deferral, but only the first 100 characters of the
    output for a successful one (Postfix 3.7: "delivered via verpbounce service (...)"),
    hence `bounces doctor`'s warning and the "file" target for such hosts.
    """
    target = settings.log.target if settings is not None else "stderr"
    if target == "none":
        return
    if settings is not None and settings.log.format == "json":
        import json  # only for administrators who chose JSON lines

        line = json.dumps({k: v for k, v in fields if v is not None}, ensure_ascii=True)
    else:
        line = _logfmt(fields)
    if target == "syslog":
        # LOG_WARNING / LOG_INFO (RFC 5424 section 6.2.1 severities 4 and 6).
        level = 4 if fields[0][1] == "tempfail" else 6
        if _syslog(settings.log.syslog_socket, settings.log.syslog_ident, level, line):
            return
    elif target == "file":
        if _append(settings.log.file, settings.log.syslog_ident, line):
            return
    sys.stderr.write(line + "\n")


def _append(path: str, ident: str, line: str) -> bool:
    """Append `line`, time-stamped, to the file at `path`; False if it was not written.

    Opened per process, O_APPEND: one write(2) a line, so concurrent pipe processes never
    interleave, and logrotate's plain rename-and-create needs no signal.
    """
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    except OSError:
        return False
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data = f"{stamp} {ident}[{os.getpid()}]: {line}\n".encode("utf-8", "replace")
        return os.write(fd, data) == len(data)
    except OSError:
        return False
    finally:
        os.close(fd)


# The syslog facility `mail` (RFC 5424 section 6.2.1: facility 2), as Postfix logs.
LOG_MAIL = 2
EPROTOTYPE = 91  # Linux: connect() of a datagram socket to a stream socket


def _syslog(path: str, ident: str, level: int, line: str) -> bool:
    """Send `line` to the syslog daemon listening on `path`; False if it was not delivered.

    Not the `syslog` module: libc's syslog(3) drops the line without a word when nothing
    listens on /dev/log (it never reports failure), so the documented fallback never ran
    and the line vanished.  A socket of our own reports ENOENT / ECONNREFUSED.  It is the
    C module `_socket` (~0.2 ms to import here) because `socket` pulls in enum and
    selectors (~9 ms, measured with -X importtime): tests/test_pipe_log.py sends through
    it to real listeners, so a platform where it changes fails there.
    The frame is what glibc's syslog(3) writes on /dev/log: "<PRI>Mmm dd hh:mm:ss
    TAG[PID]: MSG" (RFC 3164 section 4.1), read alike by rsyslog, syslog-ng and journald;
    a stream socket (some syslog-ng set-ups) gets it NUL-terminated, as glibc does.
    """
    import _socket
    import os

    data = (
        f"<{LOG_MAIL * 8 + level}>{time.strftime('%b %e %H:%M:%S')} "
        f"{ident}[{os.getpid()}]: {line}"
    ).encode("utf-8", "replace")
    for kind in (_socket.SOCK_DGRAM, _socket.SOCK_STREAM):
        try:
            sock = _socket.socket(_socket.AF_UNIX, kind)
        except OSError:
            return False
        try:
            # A syslog daemon too busy to read for a second must not hold a bounce.
            sock.settimeout(1.0)
            sock.connect(path)
            if kind == _socket.SOCK_DGRAM:
                return sock.send(data) == len(data)
            sock.sendall(data + b"\0")
            return True
        except OSError as e:
            if kind != _socket.SOCK_DGRAM or e.errno != EPROTOTYPE:
                return False
        finally:
            sock.close()
    return False


def run(argv: list[str], stdin, now: float | None = None) -> tuple[int, str, list, object]:
    """Handle one delivery; return (exit status, output line, log fields, settings or None)."""
    t0 = time.perf_counter()
    settings = None
    outcome_name = "tempfail"
    line = "deferred: internal error"
    fields: list[tuple[str, object]] = []
    extension = None
    try:
        info = wants_info(argv, stdin)
        opts = parse_argv(argv)
        if info == "help" or (info is None and opts["help"] and opts["extension"] is None):
            return 0, USAGE, [], None
        if info == "version" or (info is None and opts["version"] and opts["extension"] is None):
            from bounce_handler import __version__

            return 0, f"bounce-handler {__version__}", [], None
        extension = opts["extension"]
        from bounce_handler import settings as settings_mod

        settings = settings_mod.load(opts["config"])
        if settings.path:
            # The precompiled patterns beside the config: read (here, not in the parser)
            # only if this message needs a pattern compiled (parse/lazyre.py).
            from bounce_handler.parse import lazyre

            table = settings_mod.patterns_path(settings.path)
            lazyre.use_table(lambda: settings_mod.read_stamped(table, lazyre.header()))
        raw, size, truncated = read_bounded(stdin, settings.intake.max_message_bytes)
        hdrs = envelope_headers(raw)
        from bounce_handler.intake import Envelope, process

        envelope = Envelope(
            extension=extension,
            sender=opts["sender"] if opts["sender"] is not None else hdrs.get("return-path"),
            recipient=opts["recipient"] or hdrs.get("delivered-to"),
            original_recipient=opts["original_recipient"] or hdrs.get("x-original-to"),
            queue_id=opts["queue_id"],
            client_address=opts["client_address"],
            client_protocol=opts["client_protocol"],
        )
        outcome = process(
            raw,
            envelope,
            settings,
            time.time() if now is None else now,
            source="pipe",
            size=size,
            truncated=truncated,
        )
        outcome_name = outcome.name
        line = f"{outcome.name}: {outcome.detail}"
        first = outcome.events[0] if outcome.events else {}
        fields = [
            ("msg", outcome.message_id),
            ("kind", outcome.kind),
            ("recipients", len(outcome.events) or None),
            ("recipient", first.get("recipient")),
            ("status", first.get("status")),
            ("reason", first.get("reason")),
            ("sender", first.get("sender")),
            ("verified", None if not first else bool(first.get("verified"))),
            ("size", size),
            ("truncated", truncated or None),
            ("detail", None if outcome.events else outcome.detail),
        ]
    except UsageError as e:
        line = f"deferred: bad master.cf argv: {e}; {USAGE}"
    except BaseException as e:  # noqa: BLE001 - the durability contract: map everything
        line = f"deferred: {_describe(e)}"
    finally:
        elapsed = (time.perf_counter() - t0) * 1000
    code = EXIT[outcome_name]
    if code:
        # A deferral's reason can quote the store's URL or what a driver echoed of it
        # (libpq: 'invalid percent-encoded token: "Se%zzCret"'): mailq and the log
        # never show a password.
        from bounce_handler.redaction import redact, url_secrets

        url = settings.database.url if settings is not None else ""
        line = redact(line, *url_secrets(url))
    head = [("outcome", outcome_name), ("exit", code), ("token", extension)]
    fields = head + fields + [("elapsed_ms", f"{elapsed:.1f}")]
    if code:
        fields.append(("error", line.partition(": ")[2]))
    if not line.isprintable():
        # A hostile XVERP extension or header can carry CR/LF or ESC (found by
        # tests/hostile): Postfix copies this line into its log and the DSN, so it stays
        # one line of printable text.
        line = "".join(c if c.isprintable() else "?" for c in line)
    return code, line[:MAX_OUTPUT], fields, settings


def _describe(e: BaseException) -> str:
    """The reason a delivery is deferred, for mailq: known failures by name, else the type."""
    from bounce_handler.errors import BounceHandlerError

    if isinstance(e, BounceHandlerError):
        return str(e)
    name = type(e).__name__
    if name == "ConfigError":  # settings.ConfigError (VerpKeyError is a BounceHandlerError)
        return str(e)
    if isinstance(e, MemoryError):
        return "out of memory"
    if isinstance(e, OSError):
        return f"{e.strerror or name}{': ' + e.filename if e.filename else ''}"
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    return f"unexpected {name}: {e}"[:200]


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: returns 0 or 75, never raises."""
    try:
        code, line, fields, settings = run(
            sys.argv[1:] if argv is None else argv, sys.stdin.buffer
        )
        print(line, flush=True)
        if fields:
            _emit(settings, fields)
        return code
    except BaseException:  # noqa: BLE001 - even printing failed (closed stdout): still 0/75
        try:
            return code  # type: ignore[possibly-undefined]
        except NameError:
            return EX_TEMPFAIL


def entry() -> None:
    """The `bounce-handler` console script: main(), then exit without finalisation.

    Once main() has returned, the bounce is committed (or the decision to defer is made),
    the database connection is closed and the one output line is written; all that is
    left is the interpreter tearing down its modules, which costs ~3.5 ms a process here
    (measured with hyperfine: 30.0 ms vs 26.4 ms per bounce) for nothing. os._exit skips
    it, after flushing what Python buffers itself.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - a closed pipe: the exit status still matters
        pass
    import os

    os._exit(code)


if __name__ == "__main__":
    entry()
