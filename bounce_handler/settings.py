"""Settings: one TOML file, parsed once into a typed, frozen object.

Where the file is (first match wins):

1. ``--config PATH`` on the command line (both ``bounce-handler`` and ``bounces``);
2. the environment variable ``BOUNCE_HANDLER_CONFIG``;
3. ``/etc/bounce-handler/config.toml``.

A missing file at the *default* path means "all defaults" (a fresh install works); a
missing file that was named explicitly is an error, because a typo there would otherwise
silently send bounces to the wrong database.

Every key, its default and why it has that default is in ``SCHEMA`` below; ``bounces
config show`` prints it and ``deploy/config.toml`` is the commented example.  Unknown
sections or keys are errors, not warnings: a misspelt key that is silently ignored is the
classic way a threshold never fires.

This module is on the pipe's hot path, so it imports nothing heavy: no dataclasses (14 ms
in a fresh process here), no typing.  ``tomllib`` itself costs ~8 ms, so the parsed file
is cached in a marshal file next to it (see ``_cache_path``) when that directory is
writable by whoever runs ``bounces``; the cache is keyed by the TOML file's inode, size and
mtime, so a stale cache is never used.
"""

from __future__ import annotations

import os

DEFAULT_PATH = "/etc/bounce-handler/config.toml"
ENV_VAR = "BOUNCE_HANDLER_CONFIG"


class ConfigError(Exception):
    """The configuration file cannot be read or is not valid."""


# section -> key -> (type, default, why).  The one place a setting is declared.
SCHEMA: dict[str, dict[str, tuple[type, object, str]]] = {
    "database": {
        "url": (
            str,
            "sqlite:////var/lib/bounce-handler/bounces.db",
            "SQLAlchemy URL of the store. SQLite (one file, WAL) for one relay; "
            "postgresql+psycopg://... when several relays share one database.",
        ),
        "busy_timeout": (
            float,
            20.0,
            "Seconds a pipe process waits for a SQLite write lock before giving up with "
            "exit 75 (Postfix retries). Sized for ~100 concurrent pipe processes that each "
            "hold the lock for ~1 ms; far below pipe's default 1000 s command_time_limit.",
        ),
        "spool_dir": (
            str,
            "/var/spool/bounce-handler",
            "For a PostgreSQL store: where the pipe drops each recorded bounce as a "
            "durable file for the resident daemon to drain, so the pipe never imports "
            "the PostgreSQL driver (~150 ms a process).",
        ),
        "pg_mode": (
            str,
            "spool",
            "For a PostgreSQL store: 'spool' makes the pipe write each bounce as a durable "
            "file under spool_dir that `bounces daemon` moves into PostgreSQL (the pipe "
            "stays at ~2x a bare python start); 'direct' makes every pipe process import "
            "psycopg and write itself (~150 ms more per bounce, but no daemon needed).",
        ),
    },
    "intake": {
        "max_message_bytes": (
            int,
            10 * 1024 * 1024,
            "Read at most this much of a message from stdin; the rest is read and "
            "discarded (so Postfix sees a clean pipe) and the row says truncated. 10 MiB "
            "is Postfix's own default message_size_limit (10240000).",
        ),
        "keep_raw": (
            bool,
            True,
            "Keep every message, zlib-compressed, so a bounce can be re-parsed or shown "
            "later and nothing is ever lost.",
        ),
        "raw_retention_days": (
            int,
            90,
            "`bounces prune` drops kept raw messages older than this (the parsed rows stay).",
        ),
        "relay": (
            str,
            "",
            "Name of this relay, stored on every row so several relays can share one "
            "PostgreSQL store. Empty means the host name.",
        ),
    },
    "log": {
        "target": (
            str,
            "syslog",
            "Where the pipe writes its one structured line per invocation: 'syslog' "
            "(facility mail, next to Postfix's own maillog lines), 'file' (appended to "
            "[log] file: the choice where no syslog daemon runs, e.g. a Postfix logging "
            "with maillog_file), 'stderr' or 'none'. A line syslog or the file cannot "
            "take goes to stderr, which pipe(8) copies into Postfix's log line for the "
            "delivery (whole for a deferral, the first 100 characters of the output for "
            "a success). The short human line on stdout is always written: Postfix copies "
            "it into mailq and the DSN when it defers.",
        ),
        "format": (str, "logfmt", "'logfmt' (key=value) or 'json', the shapes structlog gives."),
        "syslog_ident": (
            str,
            "bounce-handler",
            "The tag of each line (syslog and file), so `grep bounce-handler "
            "/var/log/mail.log` finds every line.",
        ),
        "file": (
            str,
            "/var/log/bounce-handler/pipe.log",
            "For target = 'file': the file each pipe process appends its line to "
            "(created 0640; its directory must be writable by the pipe user, see "
            "`bounces doctor`). Opened per process, so logrotate needs no signal.",
        ),
        "syslog_socket": (
            str,
            "/dev/log",
            "The syslog daemon's socket (rsyslog, syslog-ng and journald listen on "
            "/dev/log). The line is never dropped: when it cannot be delivered there "
            "(no such socket, nobody listening) it goes to stderr, and `bounces doctor` "
            "warns.",
        ),
    },
    "verp": {
        "prefix": (
            str,
            "bounces",
            "Local part of the bounce address before the delimiter: bounces+TOKEN@domain.",
        ),
        "domain": (str, "", "Domain of the bounce address. Empty means the host name."),
        "recipient_delimiter": (
            str,
            "+",
            "Must match Postfix's recipient_delimiter (the first character is used).",
        ),
        "verp_delimiters": (
            str,
            "+=",
            "Must match Postfix's default_verp_delimiters: XVERP's bounces+user=domain form.",
        ),
        "key_file": (
            str,
            "/etc/bounce-handler/verp.keys",
            "HMAC keys for signed tokens, one 'KEYID SECRET-HEX' per line, the first one "
            "signs; all verify. Mode 0640, group of the pipe user: never world-readable.",
        ),
        "max_age_days": (
            int,
            30,
            "A signed token older than this fails verification (reason 'expired'). Postfix "
            "gives up on a message after maximal_queue_lifetime (5 days) and remote MTAs "
            "rarely bounce later than a week, so 30 days is generous.",
        ),
        "require_signed": (
            bool,
            False,
            "Bounces to XVERP addresses (bounces+alice=example.com@, which anyone can "
            "write) are always recorded with verified=false, verify_reason 'unsigned'. "
            "False: the judge still counts such claims ('unsigned' rows, so XVERP-only "
            "senders keep working; 'no-token' ones; recipients a token does not sign) for "
            "flags that are reported but never exported; true: only verified evidence "
            "counts (signed tokens, and Postfix's own notices when master.cf passes "
            "${client_address}): set it once every sender is signed. Forged-looking "
            "tokens (bad-tag, expired, unknown-key, malformed) never count. "
            "docs/trust.md has the whole table.",
        ),
    },
    "daemon": {
        "socketmap_listen": (
            str,
            "inet:127.0.0.1:10027",
            "Where `bounces daemon` answers Postfix's socketmap lookups (inet:HOST:PORT "
            "or unix:PATH).",
        ),
        "lmtp_listen": (
            str,
            "",
            "Where `bounces daemon` accepts bounces over LMTP (unix:PATH or "
            "inet:HOST:PORT); empty disables it.",
        ),
        "sender_domains": (
            str,
            "",
            "Envelope senders in these domains (comma or space separated; '.example.com' "
            "also matches subdomains; '*' any domain) get a signed per-sender bounce "
            "address from the socketmap's 'sender' map. Empty rewrites nothing: "
            "rewriting a foreign domain's sender would take its bounces away from it.",
        ),
        "lmtp_time_limit": (
            float,
            30.0,
            "Seconds the LMTP service lets the parse of one message take before it stops it "
            "and keeps the message quarantined with why (the pipe's equivalent is Postfix's "
            "<transport>_time_limit). A 10 MiB message parses in well under 2 s; 30 s is "
            "far above that and far below Postfix's lmtp_data_done_timeout (600 s).",
        ),
        "forward_to_sender": (
            bool,
            False,
            "Pass bounces to socketmap-signed addresses on to the original sender too: "
            "the socketmap's 'forward' map (in virtual_alias_maps, see "
            "deploy/postfix/socketmap.md) answers 'itself, sender' for verified tokens "
            "only, so a forged bounce is recorded but reaches no one.",
        ),
    },
    "queue": {
        "scan_interval": (
            float,
            0.0,
            "Seconds between two readings of Postfix's live queue (`postqueue -j`) by "
            "`bounces daemon`, which records the recipients deferred by a throttling "
            "destination for rule R8 (bounces queue --feed does one reading, for cron). "
            "Postfix sends nothing about a deferral before delay_warning_time (hours), "
            "the queue shows it at once. 0: the daemon does not read the queue (the "
            "shipped cron job and systemd timer run `bounces queue --feed` every minute "
            "instead); set 60 to let a running daemon do it, and drop that job.",
        ),
        "postfix_config": (
            str,
            "",
            "The configuration directory of the Postfix instance whose queue is read "
            "(postqueue -c, postconf -c); empty: the default instance.",
        ),
    },
    "alert": {
        "to": (str, "root", "Where `bounces alert` mails new flags (through local sendmail)."),
        "sendmail": (str, "/usr/sbin/sendmail", "The sendmail(1) binary used by `bounces alert`."),
        "webhook_url": (str, "", "If set, `bounces alert --via webhook` POSTs JSON here."),
        "metrics_file": (
            str,
            "",
            "If set, `bounces alert` also writes Prometheus text-format metrics here (for "
            "node_exporter's textfile collector).",
        ),
    },
}

# Sections whose tables are free-form and validated by their owner (the judge's rules).
FREE_SECTIONS = ("rules",)


# -- what each value must mean, beyond its type ---------------------------------------------
# TOML reads `inf`, `nan` and `1e300` as floats and -1 as an int: all of them passed the
# type check and then meant something else (busy_timeout = inf waited 0 s, -1 bytes was
# no limit at all).  Each check returns None or what is wrong; tests/test_settings.py
# checks every number and every enumeration in SCHEMA has one.


def _number(low: float, high: float, unit: str):
    def check(value) -> str | None:
        # `value != value` is NaN; inf fails the range.  No math import on the hot path.
        if value != value or not (low <= value <= high):
            return f"must be a finite number of {unit} from {low!r} to {high!r}"
        return None

    return check


def _one_of(*choices: str):
    def check(value) -> str | None:
        if value not in choices:
            return "must be one of " + ", ".join(repr(c) for c in choices)
        return None

    return check


def _line(allow_empty: bool, max_len: int = 255, no_space: bool = False):
    def check(value) -> str | None:
        if not value and not allow_empty:
            return "must not be empty"
        if len(value) > max_len or not value.isprintable() or (no_space and " " in value):
            return (
                f"must be printable text{' without spaces' if no_space else ''} of at most "
                f"{max_len} characters"
            )
        return None

    return check


def _store_url(value) -> str | None:
    if value.startswith("sqlite:///"):
        path = value[len("sqlite:///") :].split("?", 1)[0]
        if not path or path == ":memory:":
            return "must name a SQLite file (an in-memory database cannot keep bounces)"
        return None
    if value.partition("://")[0] in ("postgresql", "postgresql+psycopg"):
        return None
    return (
        "must be sqlite:////ABSOLUTE/PATH or postgresql+psycopg://USER@HOST/DB "
        f"(scheme {value.partition(':')[0]!r} is not supported)"
    )


def _listen(value) -> str | None:
    if value and not value.startswith(("inet:", "unix:")):
        return "must be empty, inet:HOST:PORT or unix:/ABSOLUTE/PATH"
    return None


def _delimiters(value) -> str | None:
    if len(value) != 2 or not value.isprintable() or " " in value:
        return "must be exactly two characters, like Postfix's default_verp_delimiters (+=)"
    return None


def _scan_interval(value) -> str | None:
    # 0 is "off"; below a second the daemon would run postqueue back to back.
    if value != value or not (value == 0 or 1 <= value <= 86400):
        return "must be 0 (off) or a finite number of seconds from 1 to 86400"
    return None


GIB = 1024 * 1024 * 1024
CHECKS = {
    ("database", "url"): _store_url,
    # SQLite's busy timeout and PostgreSQL's statement_timeout take int milliseconds;
    # an hour is far beyond any sane wait (and pipe(8)'s time limit).
    ("database", "busy_timeout"): _number(0.001, 3600, "seconds"),
    ("database", "spool_dir"): _line(False, 4096),
    ("database", "pg_mode"): _one_of("spool", "direct"),
    # stdin.read(max_message_bytes) allocates that much up front.
    ("intake", "max_message_bytes"): _number(1024, GIB, "bytes"),
    ("intake", "raw_retention_days"): _number(1, 36500, "days"),
    ("intake", "relay"): _line(True, 255),
    ("log", "target"): _one_of("syslog", "file", "stderr", "none"),
    ("log", "format"): _one_of("logfmt", "json"),
    ("log", "syslog_ident"): _line(False, 64, no_space=True),
    ("log", "syslog_socket"): _line(False, 4096),
    ("log", "file"): _line(False, 4096),
    ("verp", "prefix"): _line(False, 32, no_space=True),
    ("verp", "domain"): _line(True, 255, no_space=True),
    ("verp", "recipient_delimiter"): _line(False, 8, no_space=True),
    ("verp", "verp_delimiters"): _delimiters,
    ("verp", "key_file"): _line(False, 4096),
    # The day stamp is modulo 1024 days (verp.py); 1023 means "issued tomorrow".
    ("verp", "max_age_days"): _number(1, 1022, "days"),
    ("daemon", "socketmap_listen"): _listen,
    ("daemon", "lmtp_listen"): _listen,
    ("daemon", "lmtp_time_limit"): _number(1, 3600, "seconds"),
    ("queue", "scan_interval"): _scan_interval,
    ("queue", "postfix_config"): _line(True, 4096),
}


class _Frozen:
    """Base of the settings classes: attributes are set once, in ``__init__``."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"settings are frozen: cannot set {name}")

    def as_dict(self) -> dict[str, object]:
        """The section as a plain dict (for `bounces config show`)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.as_dict() == other.as_dict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))


def _section_class(name: str) -> type:
    keys = tuple(SCHEMA[name])

    def __init__(self: _Frozen, values: dict[str, object]) -> None:
        for k in keys:
            object.__setattr__(self, k, values[k])

    return type(
        name.capitalize() + "Settings",
        (_Frozen,),
        {"__slots__": keys, "__init__": __init__, "__doc__": f"The [{name}] section."},
    )


DatabaseSettings = _section_class("database")
IntakeSettings = _section_class("intake")
LogSettings = _section_class("log")
VerpSettings = _section_class("verp")
DaemonSettings = _section_class("daemon")
QueueSettings = _section_class("queue")
AlertSettings = _section_class("alert")


class Settings(_Frozen):
    """The whole configuration. ``path`` is the file it came from (or None)."""

    __slots__ = ("path", "database", "intake", "log", "verp", "daemon", "queue", "alert",
                 "rules")

    if False:  # attribute types for readers and type checkers, without importing typing
        path: str | None
        database: DatabaseSettings
        intake: IntakeSettings
        log: LogSettings
        verp: VerpSettings
        daemon: DaemonSettings
        queue: QueueSettings
        alert: AlertSettings
        rules: dict[str, dict[str, object]]

    def __init__(self, path: str | None, sections: dict[str, dict[str, object]]) -> None:
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "database", DatabaseSettings(sections["database"]))
        object.__setattr__(self, "intake", IntakeSettings(sections["intake"]))
        object.__setattr__(self, "log", LogSettings(sections["log"]))
        object.__setattr__(self, "verp", VerpSettings(sections["verp"]))
        object.__setattr__(self, "daemon", DaemonSettings(sections["daemon"]))
        object.__setattr__(self, "queue", QueueSettings(sections["queue"]))
        object.__setattr__(self, "alert", AlertSettings(sections["alert"]))
        object.__setattr__(self, "rules", sections.get("rules") or {})

    def as_dict(self) -> dict[str, object]:
        """Every section as plain dicts."""
        out: dict[str, object] = {"path": self.path}
        for name in SCHEMA:
            out[name] = getattr(self, name).as_dict()
        out["rules"] = self.rules
        return out


def validate(raw: dict[str, object], where: str = "config") -> dict[str, dict[str, object]]:
    """Check a parsed TOML document against SCHEMA and fill in the defaults."""
    out: dict[str, dict[str, object]] = {}
    for section in raw:
        if section not in SCHEMA and section not in FREE_SECTIONS:
            raise ConfigError(f"{where}: unknown section [{section}]")
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for key in given:
            if key not in keys:
                raise ConfigError(f"{where}: unknown key {key!r} in [{section}]")
        values: dict[str, object] = {}
        for key, (typ, default, _why) in keys.items():
            value = given.get(key, default)
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not typ:
                raise ConfigError(
                    f"{where}: [{section}] {key} must be {typ.__name__}, got {value!r}"
                )
            check = CHECKS.get((section, key))
            problem = check(value) if check is not None else None
            if problem:
                # Never the URL itself: it may carry a password.
                got = "" if key == "url" else f", got {value!r}"
                raise ConfigError(f"{where}: [{section}] {key} {problem}{got}")
            values[key] = value
        out[section] = values
    for section in FREE_SECTIONS:
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        out[section] = given
    return out


def config_path(explicit: str | None = None) -> tuple[str, bool]:
    """Return (path, named): the file to read and whether the user named it."""
    if explicit:
        return explicit, True
    env = os.environ.get(ENV_VAR)
    if env:
        return env, True
    return DEFAULT_PATH, False


def _cache_path(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, "." + tail + ".cache")


def cache_path(path: str) -> str:
    """Where ``write_cache`` puts the parsed-config cache (for `bounces doctor`)."""
    return _cache_path(path)


def patterns_path(path: str) -> str:
    """Where the precompiled regular expressions live (cli/caches.py, parse/lazyre.py)."""
    head, tail = os.path.split(path)
    return os.path.join(head, "." + tail + ".patterns")


def _stamp(st: os.stat_result) -> tuple:
    # The file's identity and the schema's shape: a cache written before an upgrade that
    # added a key must not be used (it would lack the key).
    shape = tuple((name, tuple(keys)) for name, keys in SCHEMA.items())
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, shape)


def read_stamped(path: str, stamp) -> object | None:
    """The data of a ``(stamp, data)`` marshal file if its stamp is ``stamp``, else None.

    The format of the caches left beside the config (``write_cache``'s, and the pattern
    table parse/lazyre.py uses); missing, unreadable or foreign files give None.
    """
    import marshal

    try:
        with open(path, "rb") as fp:
            found, data = marshal.load(fp)
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return data if found == stamp else None


def write_stamped(path: str, stamp, data, like: os.stat_result) -> None:
    """Write ``(stamp, data)`` to ``path`` atomically, with ``like``'s mode and owner.

    Raises OSError (the temporary file is removed).
    """
    import marshal

    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, like.st_mode & 0o777)
    try:
        with os.fdopen(fd, "wb") as fp:
            marshal.dump((stamp, data), fp)
        try:
            os.chown(tmp, like.st_uid, like.st_gid)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_cache(path: str, st: os.stat_result) -> dict | None:
    return read_stamped(_cache_path(path), _stamp(st))


def cache_is_current(path: str) -> bool:
    """Whether the pipe would use the cache beside ``path`` (for `bounces doctor`)."""
    try:
        return _read_cache(path, os.stat(path)) is not None
    except OSError:
        return False


def write_cache(settings: Settings) -> str | None:
    """Write the marshal cache beside the config file; return its path, or None.

    Called by ``bounces`` verbs run by the administrator (through cli/caches.py, which
    also writes the parser's pattern table beside it); the pipe only reads it.  The cache
    gets the same mode as the TOML file (it holds the same secrets).
    """
    if not settings.path:
        return None
    try:
        st = os.stat(settings.path)
        cache = _cache_path(settings.path)
        data = {k: v for k, v in settings.as_dict().items() if k != "path"}
        write_stamped(cache, _stamp(st), data, st)
    except OSError:
        return None
    return cache


def load(explicit: str | None = None) -> Settings:
    """Find, read and validate the configuration. Raises ConfigError."""
    path, named = config_path(explicit)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if named:
            raise ConfigError(f"config file {path} does not exist") from None
        return Settings(None, validate({}))
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    cached = _read_cache(path, st)
    if cached is not None:
        return Settings(path, cached)
    try:
        with open(path, "rb") as fp:
            text = fp.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    import tomllib

    try:
        raw = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return Settings(path, validate(raw, path))


def defaults() -> Settings:
    """All defaults (tests start from this and override what they need)."""
    return Settings(None, validate({}))


def from_dict(raw: dict[str, object], path: str | None = None) -> Settings:
    """Settings from an already-parsed document (tests, `bounces config check`)."""
    return Settings(path, validate(raw, path or "config"))
