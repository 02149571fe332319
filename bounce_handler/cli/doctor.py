"""Check the live Postfix and handler configuration for the mistakes that lose bounces.

Reads `postconf` and `postconf -M` (of the instance in -c DIR, default /etc/postfix) and
the handler's configuration -- the file named by `--config` in the master.cf argv when
there is one, since that is what the pipe reads -- and reports, each with its fix:

  - a pipe service named `bounce` (it replaces Postfix's own bounce daemon: no DSNs at all)
  - no pipe service running bounce-handler, or an argv without ${extension}
  - recipient_delimiter missing or not the one [verp] expects
  - <transport>_destination_recipient_limit not 1 (pipe(8) then leaves ${extension} empty)
  - a time limit too short (pipe(8) kills the handler and BOUNCES the bounce: lost)
  - transport_maps not sending [verp] prefix@domain to the pipe service
  - an argv the pipe user cannot execute, a config it cannot read, a database (or
    spool) directory it cannot write
  - the database schema not at head (the pipe exits 75 until `bounces db upgrade`)

and warns (without failing) when the start-up caches `bounces config check` writes for
the pipe are missing or older than the config file: the pipe still works, slower.

Exit status 0 when everything checks out, 1 when a problem was found.

Examples:
    bounces doctor
    bounces doctor -c /etc/postfix-out        # a second Postfix instance
    bounces doctor --transport verpbounce     # only this master.cf service

"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_UNAVAILABLE, BounceHandlerError

OK, WARNING, PROBLEM = "ok", "warning", "PROBLEM"


class Finding:
    """One check: ``status`` ok, warning or PROBLEM, what was seen, and the fix."""

    __slots__ = ("status", "what", "fix")

    def __init__(self, status: str, what: str, fix: str | None = None) -> None:
        self.status = status
        self.what = what
        self.fix = fix

    def __repr__(self) -> str:
        return f"Finding({self.status!r}, {self.what!r})"


class Service:
    """One master.cf entry as `postconf -M` prints it (one logical line)."""

    __slots__ = ("name", "type", "unpriv", "chroot", "maxproc", "command", "args")

    def __init__(self, fields: list[str]) -> None:
        self.name, self.type = fields[0], fields[1]
        self.unpriv, self.chroot, self.maxproc = fields[3], fields[4], fields[6]
        self.command = fields[7]
        self.args = fields[8:]

    def pipe_attrs(self) -> tuple[dict[str, str], list[str], dict[str, str]]:
        """(attributes like flags/user, argv list, -o overrides) of a pipe service."""
        attrs: dict[str, str] = {}
        overrides: dict[str, str] = {}
        argv: list[str] = []
        i = 0
        while i < len(self.args):
            a = self.args[i]
            if a == "-o" and i + 1 < len(self.args):
                k, _, v = self.args[i + 1].partition("=")
                overrides[k] = v
                i += 2
                continue
            if a.startswith("argv="):
                argv = [a[5:], *self.args[i + 1 :]]
                break
            k, eq, v = a.partition("=")
            if eq:
                attrs[k] = v
            i += 1
        return attrs, argv, overrides


def register(sub) -> None:
    """Add `bounces doctor`."""
    p = verb_parser(sub, "doctor", __doc__)
    p.add_argument(
        "-c",
        "--postfix-config",
        metavar="DIR",
        help="Postfix configuration directory (default: the default instance)",
    )
    p.add_argument("--transport", help="check only this master.cf service")
    p.add_argument("--postconf", default=None, help=argparse.SUPPRESS)  # tests, odd installs
    p.set_defaults(func=run)


# -- reading Postfix ------------------------------------------------------------------------


class Postconf:
    """Runs postconf(1) against one instance."""

    def __init__(self, config_dir: str | None, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("postconf") or "/usr/sbin/postconf"
        if not os.path.exists(self.binary):
            raise BounceHandlerError(
                "postconf not found: is Postfix installed? (doctor reads its configuration)",
                EX_UNAVAILABLE,
            )
        self.config_dir = config_dir

    def run(self, *args: str) -> str:
        """Run postconf [-c DIR] ARGS; return its stdout (BounceHandlerError on failure)."""
        argv = [self.binary]
        if self.config_dir:
            argv += ["-c", self.config_dir]
        proc = subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise BounceHandlerError(
                f"{' '.join([*argv, *args])} failed: {proc.stderr.strip()}", EX_UNAVAILABLE
            )
        return proc.stdout

    def param(self, name: str) -> str:
        """A main.cf parameter, $expanded (postconf -xh)."""
        return self.run("-xh", name).strip()

    def services(self) -> list[Service]:
        """Every master.cf service."""
        out = []
        for line in self.run("-M").splitlines():
            fields = line.split()
            if len(fields) >= 8:
                out.append(Service(fields))
        return out


def time_seconds(value: str) -> float | None:
    """A Postfix time value (default unit: seconds; s m h d w) in seconds."""
    value = value.strip()
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    mult = units.get(value[-1].lower())
    number = value[:-1] if mult else value
    try:
        return float(number) * (mult or 1)
    except ValueError:
        return None


# -- permissions as another user ------------------------------------------------------------


class User:
    """A local account, for "can this user read/write/execute that" by mode bits."""

    def __init__(self, name: str) -> None:
        import pwd

        pw = pwd.getpwnam(name)  # KeyError: no such user
        self.name = name
        self.uid = pw.pw_uid
        self.gids = set(os.getgrouplist(name, pw.pw_gid))

    def may(self, path: str, bit: str) -> bool:
        """Whether the user has `bit` (r, w or x) on `path` itself."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if self.uid == 0:
            return bit != "x" or bool(st.st_mode & 0o111) or os.path.isdir(path)
        shift = {"r": 2, "w": 1, "x": 0}[bit]
        if st.st_uid == self.uid:
            return bool(st.st_mode >> (6 + shift) & 1)
        if st.st_gid in self.gids:
            return bool(st.st_mode >> (3 + shift) & 1)
        return bool(st.st_mode >> shift & 1)

    def reach(self, path: str) -> str | None:
        """None when every directory above `path` is traversable, else the first that is not."""
        path = os.path.abspath(path)
        parts = path.split("/")[1:-1]
        current = ""
        for part in parts:
            current += "/" + part
            if not self.may(current, "x"):
                return current
        return None

    def blocked(self, path: str, bits: str) -> str | None:
        """Why the user cannot use `path` with `bits` ("rx", "w"...), or None when it can."""
        where = self.reach(path)
        if where:
            return f"directory {where} is not searchable by {self.name}"
        if not os.path.exists(path):
            return f"{path} does not exist"
        for bit in bits:
            if not self.may(path, bit):
                word = {"r": "read", "w": "write", "x": "execute"}[bit]
                return f"{self.name} cannot {word} {path} ({_mode(path)})"
        return None


def _mode(path: str) -> str:
    import grp
    import pwd
    import stat

    st = os.stat(path)
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{stat.filemode(st.st_mode)} {owner}:{group}"


def executable_problem(path: str, user: User) -> str | None:
    """Why `user` cannot execute `path` (following symlinks and a #! interpreter), or None."""
    if not os.path.isabs(path):
        return f"{path} is not an absolute path (pipe(8) runs with PATH=/usr/bin:/bin)"
    seen = set()
    todo = [path]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        why = user.blocked(p, "x")
        if why:
            return why
        real = os.path.realpath(p)
        if real != p:
            todo.append(real)
            continue
        try:
            with open(p, "rb") as fp:
                head = fp.read(256)
        except OSError:
            continue
        if head.startswith(b"#!"):
            # A script: the kernel runs its interpreter as the same user, and the
            # interpreter must read the script.
            why = user.blocked(p, "r")
            if why:
                return why
            interp = head[2:].split(b"\n", 1)[0].strip().split()[0].decode("utf-8", "replace")
            todo.append(interp)
    return None


def runs_as(user: str, argv0: str) -> str | None:
    """As root: actually run `argv0 --version` as `user` (what pipe(8) will do). None = ok."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    try:
        proc = subprocess.run(
            ["runuser", "-u", user, "--", argv0, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"running {argv0} --version as {user} failed: {e}"
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        return f"{argv0} --version as {user} exited {proc.returncode}: {out[-1] if out else ''}"
    return None


# -- the checks -----------------------------------------------------------------------------


def is_handler(service: Service) -> bool:
    """A pipe service whose argv runs bounce-handler."""
    if service.command != "pipe":
        return False
    _attrs, argv, _o = service.pipe_attrs()
    return bool(argv) and os.path.basename(argv[0]).startswith("bounce-handler")


def check_postfix(pc: Postconf, transport: str | None = None):
    """Findings about master.cf/main.cf; also returns [(service, user, config path)]."""
    findings: list[Finding] = []
    services = pc.services()
    handlers = [s for s in services if is_handler(s) and (transport in (None, s.name))]

    for s in services:
        if s.name == "bounce" and s.type == "unix" and s.command != "bounce":
            findings.append(
                Finding(
                    PROBLEM,
                    f"master.cf service `bounce` runs {s.command}, replacing Postfix's own "
                    "bounce daemon: Postfix can no longer write bounces or delay notices",
                    "rename the pipe entry (e.g. verpbounce) in master.cf and in transport_maps, "
                    "restore the stock line `bounce unix - - n - 0 bounce`, then `postfix reload`",
                )
            )
    if not handlers:
        findings.append(
            Finding(
                PROBLEM,
                "no pipe(8) service in master.cf runs bounce-handler"
                + (f" (looked for {transport})" if transport else ""),
                "append deploy/postfix/master.cf to master.cf, then `postfix reload`",
            )
        )
        return findings, []

    delimiter = pc.param("recipient_delimiter")
    if not delimiter:
        findings.append(
            Finding(
                PROBLEM,
                "recipient_delimiter is not set: bounces+TOKEN@ has no extension, the "
                "handler gets no VERP token (and the address may be rejected)",
                "postconf -e 'recipient_delimiter = +' && postfix reload",
            )
        )
    else:
        findings.append(Finding(OK, f"recipient_delimiter = {delimiter}"))

    targets = []
    for s in handlers:
        attrs, argv, overrides = s.pipe_attrs()
        findings.append(Finding(OK, f"master.cf: {s.name} is a pipe service running {argv[0]}"))
        limit = pc.param(f"{s.name}_destination_recipient_limit")
        if limit != "1":
            findings.append(
                Finding(
                    PROBLEM,
                    f"{s.name}_destination_recipient_limit = {limit or '(unset)'}: pipe(8) "
                    "expands ${extension} only for single-recipient deliveries",
                    f"postconf -e '{s.name}_destination_recipient_limit = 1' && postfix reload",
                )
            )
        else:
            findings.append(Finding(OK, f"{s.name}_destination_recipient_limit = 1"))
        if "${extension}" not in argv:
            findings.append(
                Finding(
                    PROBLEM,
                    f"{s.name} argv has no ${{extension}}: the VERP token never reaches "
                    "the handler",
                    "end the argv= in master.cf with ${extension}, then `postfix reload`",
                )
            )
        limit_value = overrides.get(f"{s.name}_time_limit") or pc.param(f"{s.name}_time_limit")
        user = attrs.get("user", "")
        config = None
        if "--config" in argv[:-1]:
            config = argv[argv.index("--config") + 1]
        else:
            config = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
        targets.append((s, user, config, time_seconds(limit_value), limit_value))
        if not user:
            findings.append(
                Finding(
                    PROBLEM,
                    f"{s.name} has no user= attribute",
                    f"add user=nobody (or a dedicated account) to the {s.name} entry",
                )
            )
        elif user.split(":")[0] in ("root", pc.param("mail_owner")):
            findings.append(
                Finding(
                    PROBLEM,
                    f"{s.name} runs as {user}: pipe(8) refuses root and the mail owner",
                    "use user=nobody or a dedicated unprivileged account",
                )
            )
    return findings, targets


def check_user_access(s: Service, user_name: str, settings) -> list[Finding]:
    """The pipe user vs. argv, config, database / spool."""
    findings: list[Finding] = []
    _attrs, argv, _o = s.pipe_attrs()
    try:
        user = User(user_name.split(":")[0])
    except KeyError:
        return [
            Finding(
                PROBLEM,
                f"{s.name}: user {user_name} does not exist",
                f"useradd --system {user_name}, or name an existing account in user=",
            )
        ]
    why = executable_problem(argv[0], user) or runs_as(user.name, argv[0])
    if why:
        findings.append(
            Finding(
                PROBLEM,
                f"{s.name}: the pipe user cannot run the handler: {why}",
                "install into a world-readable prefix (deploy/install.sh --prefix "
                "/opt/bounce-handler) and name its venv/bin/bounce-handler in argv=",
            )
        )
    else:
        findings.append(Finding(OK, f"{user.name} can execute {argv[0]}"))
    if settings.path:
        why = user.blocked(settings.path, "r")
        if why:
            findings.append(
                Finding(
                    PROBLEM,
                    f"the pipe user cannot read the config: {why}",
                    f"chgrp {_group_of(user)} {settings.path} && chmod 0640 {settings.path} "
                    "(and its directory 0750, same group)",
                )
            )
        else:
            findings.append(Finding(OK, f"{user.name} can read {settings.path}"))
    findings.extend(check_store_access(settings, user))
    return findings


def _group_of(user: User) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user.name).pw_gid).gr_name


def check_store_access(settings, user: User) -> list[Finding]:
    """The database file and its directory (SQLite), or the spool (PostgreSQL spool mode)."""
    url = settings.database.url
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        directory = os.path.dirname(path) or "."
        if not os.path.exists(path):
            return [
                Finding(
                    PROBLEM,
                    f"database {path} does not exist (the pipe exits 75 until it does)",
                    f"runuser -u {user.name} -- bounces --config {settings.path} db upgrade",
                )
            ]
        # SQLite writes the file and creates -wal/-shm beside it: both need write access,
        # and a -wal/-shm left by another user (a `bounces` run by root) must be writable.
        why = user.blocked(path, "rw") or user.blocked(directory, "wx")
        for side in (path + "-wal", path + "-shm"):
            if not why and os.path.exists(side):
                why = user.blocked(side, "rw")
        if why:
            return [
                Finding(
                    PROBLEM,
                    f"the pipe user cannot write the database: {why}",
                    f"chown {user.name}:{_group_of(user)} {directory} {path}* && "
                    f"chmod 0750 {directory}",
                )
            ]
        return [Finding(OK, f"{user.name} can write {path} and {directory}")]
    if url.startswith("postgresql") and settings.database.pg_mode == "spool":
        spool = settings.database.spool_dir
        why = user.blocked(spool, "wx")
        if why:
            return [
                Finding(
                    PROBLEM,
                    f"the pipe user cannot write the spool: {why}",
                    f"install -d -m 0770 -o {user.name} -g {_group_of(user)} {spool}",
                )
            ]
        return [Finding(OK, f"{user.name} can write the spool {spool}")]
    return []


def check_routing(pc: Postconf, s: Service, settings) -> list[Finding]:
    """transport_maps sends the bounce address ([verp] prefix@domain) to this service."""
    domain = settings.verp.domain
    if not domain:
        return []  # the host name: Postfix's own $myhostname; too many ways to route it
    address = f"{settings.verp.prefix}@{domain}"
    maps = [m for m in pc.param("transport_maps").replace(",", " ").split() if m]
    postmap = os.path.join(os.path.dirname(pc.binary), "postmap")
    found = None
    for table in maps:
        for key in (address, domain):
            argv = [postmap]
            if pc.config_dir:
                argv += ["-c", pc.config_dir]
            try:
                proc = subprocess.run(
                    [*argv, "-q", key, table],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    stdin=subprocess.DEVNULL,
                )
            except OSError:
                proc = None
            if proc is not None and proc.returncode == 0 and proc.stdout.strip():
                found = proc.stdout.strip()
                break
        if found:
            break
    if found is None or found.split(":", 1)[0] != s.name:
        return [
            Finding(
                PROBLEM,
                f"transport_maps routes {address} to {found or 'nothing (default routing)'}, "
                f"not to {s.name}: bounces never reach the handler",
                f"add `{address}  {s.name}:` to the transport table (postmap it) and "
                "`postfix reload`",
            )
        ]
    return [Finding(OK, f"transport_maps: {address} -> {found}")]


def check_schema(settings) -> list[Finding]:
    """Migrations at head."""
    from bounce_handler.store import engine

    try:
        current = engine.current_revision(settings)
        head = engine.head_revision()
    except Exception as e:  # noqa: BLE001 - any failure to look is itself the finding
        return [
            Finding(
                PROBLEM,
                f"cannot read the database schema version: {type(e).__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else ''}",
                "check [database] url, then `bounces db upgrade`",
            )
        ]
    if current != head:
        return [
            Finding(
                PROBLEM,
                f"database schema at {current or 'nothing (empty)'}, head is {head}: the "
                "pipe exits 75 (Postfix keeps retrying) until it is upgraded",
                "bounces db upgrade   (as the pipe user for a new SQLite file)",
            )
        ]
    return [Finding(OK, f"database schema at head ({head})")]


def check_caches(settings) -> list[Finding]:
    """The start-up caches beside the config: speed, not safety (a warning at most)."""
    if not settings.path:
        return []
    from bounce_handler import settings as settings_mod
    from bounce_handler.parse import lazyre

    stale = []
    if not settings_mod.cache_is_current(settings.path):
        stale.append("the parsed-config cache (the pipe parses the TOML, ~8 ms a bounce)")
    table = settings_mod.read_stamped(settings_mod.patterns_path(settings.path), lazyre.header())
    if not lazyre.verify(table):
        # Missing, from another Python, or with entries that are not their keys' (the
        # pipe then compiles every pattern itself).
        stale.append("the precompiled patterns (~7 ms more a vendor-format bounce)")
    if not stale:
        return [Finding(OK, f"the pipe's start-up caches for {settings.path} are current")]
    return [
        Finding(
            WARNING,
            f"missing or stale for {settings.path}: " + "; ".join(stale),
            f"bounces --config {settings.path} config check",
        )
    ]


def check_time_limit(s: Service, seconds, raw: str, settings) -> list[Finding]:
    """The pipe's time limit vs. how long the handler may legitimately wait."""
    # The handler waits up to busy_timeout for the store, plus ~10 s to connect to
    # PostgreSQL and a margin for a loaded machine; past the limit pipe(8) bounces.
    need = 2 * settings.database.busy_timeout + 20
    if seconds is None:
        return [
            Finding(
                PROBLEM,
                f"{s.name}_time_limit = {raw!r} is not a time",
                f"postconf -e '{s.name}_time_limit = 120s'",
            )
        ]
    if seconds < need:
        return [
            Finding(
                PROBLEM,
                f"{s.name}_time_limit = {raw} is shorter than {need:g}s (2 x busy_timeout + "
                "20 s): a handler waiting on a busy database would be killed, and pipe(8) "
                "bounces the bounce (lost)",
                f"postconf -e '{s.name}_time_limit = 120s' && postfix reload",
            )
        ]
    return [Finding(OK, f"{s.name}_time_limit = {raw} (>= {need:g}s)")]


def diagnose(
    settings,
    postfix_config: str | None = None,
    transport: str | None = None,
    postconf_binary: str | None = None,
) -> list[Finding]:
    """Every finding, in order."""
    from bounce_handler import settings as settings_mod

    pc = Postconf(postfix_config, postconf_binary)
    findings, targets = check_postfix(pc, transport)
    checked_configs = set()
    for s, user, config, seconds, raw in targets:
        cfg = settings
        if not config:
            # pipe(8) passes no environment of ours: without --config in argv the handler
            # reads the default path, whatever `bounces --config` says here.
            config = settings_mod.DEFAULT_PATH
            findings.append(
                Finding(
                    OK,
                    f"{s.name} argv has no --config: the handler reads {config}"
                    + ("" if os.path.exists(config) else " (absent: all defaults)"),
                )
            )
        if os.path.abspath(config) != os.path.abspath(settings.path or ""):
            try:
                cfg = (
                    settings_mod.load(config)
                    if os.path.exists(config) or config != settings_mod.DEFAULT_PATH
                    else settings_mod.defaults()
                )
            except settings_mod.ConfigError as e:
                findings.append(
                    Finding(
                        PROBLEM,
                        f"{s.name}: the config in argv is unusable: {e}",
                        f"fix {config} (bounces --config {config} config check)",
                    )
                )
                continue
            findings.append(Finding(OK, f"{s.name} uses config {config}"))
        findings.extend(check_time_limit(s, seconds, raw, cfg))
        findings.extend(check_routing(pc, s, cfg))
        if user:
            findings.extend(check_user_access(s, user, cfg))
        delim = pc.param("recipient_delimiter")
        if delim and cfg.verp.recipient_delimiter[:1] not in delim:
            findings.append(
                Finding(
                    PROBLEM,
                    f"[verp] recipient_delimiter {cfg.verp.recipient_delimiter[:1]!r} is not "
                    f"in Postfix's recipient_delimiter {delim!r}",
                    "make them the same character",
                )
            )
        key = cfg.path or "(defaults)"
        if key not in checked_configs:
            checked_configs.add(key)
            findings.extend(check_schema(cfg))
            findings.extend(check_caches(cfg))
    return findings


def run(args, settings) -> int:
    """Run `bounces doctor`."""
    findings = diagnose(settings, args.postfix_config, args.transport, args.postconf)
    problems = 0
    for f in findings:
        print(f"{f.status:<8} {f.what}")
        if f.status == PROBLEM:
            problems += 1
        if f.status != OK and f.fix:
            print(f"{'':<8} fix: {f.fix}")
    where = args.postfix_config or "the default Postfix instance"
    if problems:
        print(f"{problems} problem{'s' if problems > 1 else ''} found in {where}.")
        return 1
    print(f"no problems found in {where}.")
    return 0
