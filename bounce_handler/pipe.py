"""bounce-handler: the entrypoint Postfix's pipe(8) transport runs, once per bounce.

master.cf (see deploy/postfix/master.cf for the full entry and why each flag):

    verpbounce unix - n n - 20 pipe
      flags=DORq null_sender= user=nobody
      argv=/opt/bounce-handler/venv/bin/bounce-handler ${extension}

Usage:

    bounce-handler [--config PATH] [--sender S] [--recipient R]
                   [--original-recipient R] [--queue-id ID] [EXTENSION]

EXTENSION is Postfix's ${extension} (the VERP token after "bounces+").  The options take
the other pipe(8) macros when the master.cf entry passes them; without them the envelope
is read from the Return-Path/Delivered-To/X-Original-To headers that flags=R, D and O
prepend.  Options come before the positional argument; `--` ends them (an extension may
start with "-").

The exit status is the durability contract with Postfix (pipe(8) maps sysexits):

    0   recorded, a duplicate of a recorded message, deliberately ignored (an auto-reply),
        or quarantined (not understood: kept with why)  -> Postfix deletes its copy
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
}

USAGE = (
    "usage: bounce-handler [--config PATH] [--sender S] [--recipient R] "
    "[--original-recipient R] [--queue-id ID] [EXTENSION]"
)


class UsageError(Exception):
    """The master.cf argv is wrong: an administrator's mistake, so defer (75), not bounce."""


def parse_argv(argv: list[str]) -> dict[str, str | None]:
    """Options first, then at most one positional EXTENSION. Raises UsageError."""
    opts: dict[str, str | None] = {v: None for v in OPTIONS.values()}
    opts["extension"] = None
    opts["help"] = opts["version"] = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-h", "--help"):
            opts["help"] = "1"
        elif arg == "--version":
            opts["version"] = "1"
        elif arg.split("=", 1)[0] in OPTIONS:
            name, eq, value = arg.partition("=")
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value")
                value = argv[i]
            opts[OPTIONS[name]] = value
        elif arg.startswith("--"):
            raise UsageError(f"unknown option {arg[:40]!r}")
        else:
            break
        i += 1
    rest = argv[i:]
    if len(rest) > 1:
        raise UsageError(f"expected one EXTENSION argument, got {len(rest)}")
    if rest:
        opts["extension"] = rest[0]
    return opts


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
    """The one structured line per invocation: syslog (facility mail), stderr or nowhere."""
    target = settings.log.target if settings is not None else "stderr"
    if target == "none":
        return
    if settings is not None and settings.log.format == "json":
        import json  # only for administrators who chose JSON lines

        line = json.dumps({k: v for k, v in fields if v is not None}, ensure_ascii=True)
    else:
        line = _logfmt(fields)
    if target == "syslog":
        try:
            import syslog

            syslog.openlog(settings.log.syslog_ident, syslog.LOG_PID, syslog.LOG_MAIL)
            level = syslog.LOG_WARNING if fields[0][1] == "tempfail" else syslog.LOG_INFO
            syslog.syslog(level, line)
            return
        except Exception:  # no /dev/log: fall through to stderr rather than lose the line
            pass
    sys.stderr.write(line + "\n")


def run(argv: list[str], stdin, now: float | None = None) -> tuple[int, str, list, object]:
    """Handle one delivery; return (exit status, output line, log fields, settings or None)."""
    t0 = time.perf_counter()
    settings = None
    outcome_name = "tempfail"
    line = "deferred: internal error"
    fields: list[tuple[str, object]] = []
    extension = None
    try:
        opts = parse_argv(argv)
        extension = opts["extension"]
        if opts["help"]:
            return 0, USAGE, [], None
        if opts["version"]:
            from bounce_handler import __version__

            return 0, f"bounce-handler {__version__}", [], None
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
