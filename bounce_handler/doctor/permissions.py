"""Runnable and readable as the pipe user: everything one bounce touches, by that user.

pipe(8) runs the handler as ``user=``; each of these, when that user cannot use it, makes
the handler exit 75 for every bounce (Postfix keeps them queued and retries until
maximal_queue_lifetime, then bounces them -- and a bounce of a bounce is discarded):

  - argv[0], every directory above it and a #! interpreter (executable);
  - the config file (read) and the VERP key file (read: every signed token needs it);
  - the SQLite database and its directory (write: SQLite creates -wal and -shm there),
    or the PostgreSQL spool and *each* of tmp/, new/ (the pipe writes) and bad/ (the
    drain, same user, sets files aside there).

The start-up caches beside the config (``bounces config check``) only cost speed when
missing, stale or unreadable: a warning.
"""

from __future__ import annotations

import os
import shlex

from bounce_handler.doctor.access import User, executable_problem, runs_as
from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding

SPOOL_SUBDIRS = ("tmp", "new", "bad")


def check_access(intake) -> list[Finding]:
    """Every path of one pipe intake, as its user."""
    s = intake.service
    cfg = intake.settings
    try:
        user = User(intake.user)
    except KeyError:
        return [
            Finding(
                PROBLEM,
                f"{s.name}: user {intake.user} does not exist",
                commands=[f"useradd --system {shlex.quote(intake.user)}"],
                check="access.user",
                subject=s.name,
            )
        ]
    findings = [_binary(intake, user)]
    if cfg.path:
        findings.append(_readable(user, cfg.path, "access.config", "the config"))
    findings.extend(_key_file(intake, user))
    findings.extend(_store(intake, user))
    return findings


def _binary(intake, user: User) -> Finding:
    argv0 = intake.argv[0]
    why = executable_problem(argv0, user) or runs_as(user.name, argv0)
    if why:
        return Finding(
            PROBLEM,
            f"{intake.service.name}: the pipe user cannot run the handler: {why}",
            "install into a world-readable prefix (deploy/install.sh --prefix "
            "/opt/bounce-handler) and name its venv/bin/bounce-handler in argv=",
            check="access.binary",
            subject=intake.service.name,
        )
    return Finding(
        OK, f"{user.name} can execute {argv0}", check="access.binary", subject=intake.service.name
    )


def _readable(user: User, path: str, check: str, what: str) -> Finding:
    why = user.blocked(path, "r")
    if why:
        return Finding(
            PROBLEM,
            f"the pipe user cannot read {what}: {why}: every bounce defers",
            commands=user.read_commands(path),
            check=check,
            subject=path,
        )
    return Finding(OK, f"{user.name} can read {path}", check=check, subject=path)


def _key_file(intake, user: User) -> list[Finding]:
    cfg = intake.settings
    path = cfg.verp.key_file
    if not os.path.exists(path):
        cfg_arg = f" --config {shlex.quote(cfg.path)}" if cfg.path else ""
        keygen = (
            f"{shlex.quote(intake.bounces())}{cfg_arg} verp keygen "
            f"--group {shlex.quote(user.group)}"
        )
        if cfg.daemon.sender_domains:
            # The daemon's socketmap signs return paths: every bounce to them needs the key.
            return [
                Finding(
                    PROBLEM,
                    f"VERP key file {path} does not exist, and [daemon] sender_domains signs "
                    "return paths: every signed bounce defers",
                    commands=[keygen, *user.search_commands(path)],
                    check="access.key-file",
                    subject=path,
                )
            ]
        return [
            Finding(
                OK,
                f"no VERP key file {path}: unsigned (XVERP) tokens only; a signed token would "
                "defer until `bounces verp keygen`",
                check="access.key-file",
                subject=path,
            )
        ]
    f = _readable(user, path, "access.key-file", "the VERP key file")
    if f.status == PROBLEM:
        f.what = f.what.replace("every bounce defers", "every signed bounce defers")
    return [f]


def _store(intake, user: User) -> list[Finding]:
    """The database file and its directory (SQLite), or the spool tree (spool mode)."""
    cfg = intake.settings
    url = cfg.database.url
    group = shlex.quote(user.group)
    owner = f"{shlex.quote(user.name)}:{group}"
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        directory = os.path.dirname(path) or "."
        if not os.path.exists(path):
            cfg_arg = f" --config {shlex.quote(cfg.path)}" if cfg.path else ""
            return [
                Finding(
                    PROBLEM,
                    f"database {path} does not exist (the pipe exits 75 until it does)",
                    commands=[
                        f"runuser -u {shlex.quote(user.name)} -- "
                        f"{shlex.quote(intake.bounces())}{cfg_arg} db upgrade"
                    ],
                    check="access.database",
                    subject=path,
                )
            ]
        # SQLite writes the file and creates -wal/-shm beside it: both need write access,
        # and a -wal/-shm left by another user (a `bounces` run by root) must be writable.
        why = user.blocked(path, "rw") or user.blocked(directory, "wx")
        for side in (path + "-wal", path + "-shm"):
            if not why and os.path.exists(side):
                why = user.blocked(side, "rw")
        if why:
            qd, qp = shlex.quote(directory), shlex.quote(path)
            return [
                Finding(
                    PROBLEM,
                    f"the pipe user cannot write the database: {why}",
                    commands=[
                        *user.search_commands(directory + "/"),
                        f"chown {owner} {qd} {qp}*",
                        f"chmod 0750 {qd}",
                    ],
                    check="access.database",
                    subject=path,
                )
            ]
        return [
            Finding(
                OK,
                f"{user.name} can write {path} and {directory}",
                check="access.database",
                subject=path,
            )
        ]
    if url.startswith("postgresql") and cfg.database.pg_mode == "spool":
        spool = cfg.database.spool_dir
        # The pipe: search the spool, write tmp/, link into new/ and fsync it (open for
        # reading).  The drain, as the same user: read and delete in new/, move to bad/.
        need = [(spool, "x")] + [(os.path.join(spool, d), "rwx") for d in SPOOL_SUBDIRS]
        blocked = [why for p, bits in need if (why := user.blocked(p, bits))]
        if blocked:
            dirs = " ".join(shlex.quote(p) for p, _ in need)
            return [
                Finding(
                    PROBLEM,
                    "the pipe user cannot use the spool: " + "; ".join(blocked),
                    commands=[
                        *user.search_commands(spool + "/"),
                        f"install -d -m 0770 -o {shlex.quote(user.name)} -g {group} {dirs}",
                    ],
                    check="access.spool",
                    subject=spool,
                )
            ]
        return [
            Finding(
                OK,
                f"{user.name} can write the spool {spool} and its tmp/ new/ bad/",
                check="access.spool",
                subject=spool,
            )
        ]
    return []


def check_caches(intake) -> list[Finding]:
    """The start-up caches beside the config: speed, not safety (a warning at most)."""
    cfg = intake.settings
    if not cfg.path:
        return []
    from bounce_handler import settings as settings_mod
    from bounce_handler.parse import lazyre

    cache = settings_mod.cache_path(cfg.path)
    patterns = settings_mod.patterns_path(cfg.path)
    stale = []
    if not settings_mod.cache_is_current(cfg.path):
        stale.append("the parsed-config cache (the pipe parses the TOML, ~8 ms a bounce)")
    if not lazyre.verify(settings_mod.read_stamped(patterns, lazyre.header())):
        # Missing, from another Python, or with entries that are not their keys' (the
        # pipe then compiles every pattern itself).
        stale.append("the precompiled patterns (~7 ms more a vendor-format bounce)")
    if stale:
        cmd = f"{shlex.quote(intake.bounces())} --config {shlex.quote(cfg.path)} config check"
        return [
            Finding(
                WARNING,
                f"missing or stale for {cfg.path}: " + "; ".join(stale),
                commands=[cmd],
                check="access.caches",
                subject=cfg.path,
            )
        ]
    unreadable = []
    commands: list[str] = []
    if intake.user:
        try:
            user = User(intake.user)
        except KeyError:
            user = None
        for path in (cache, patterns) if user else ():
            if user.blocked(path, "r"):
                unreadable.append(os.path.basename(path))
                commands.extend(c for c in user.read_commands(path) if c not in commands)
    if unreadable:
        return [
            Finding(
                WARNING,
                f"the pipe user cannot read {' and '.join(unreadable)} beside {cfg.path}: "
                "every bounce pays for parsing the TOML and compiling the patterns",
                commands=commands,
                check="access.caches",
                subject=cfg.path,
            )
        ]
    return [
        Finding(
            OK,
            f"the pipe's start-up caches for {cfg.path} are current",
            check="access.caches",
            subject=cfg.path,
        )
    ]
