"""Logged: where the pipe's structured line goes, and whether anything is there to take it.

``[log] target = "syslog"`` sends it to ``[log] syslog_socket`` (/dev/log), ``"file"``
appends it to ``[log] file``.  When that fails -- nothing listens on the socket (a
container, a host whose Postfix logs with ``maillog_file``), a file the pipe user may not
write -- the pipe writes the line to stderr, which pipe(8) copies into Postfix's log line
for the delivery: whole for a deferral, but for a successful delivery Postfix keeps only
the first 100 characters of the output (Postfix 3.7, "delivered via SERVICE service
(...)"), which the human line fills.  So the structured line is all but lost on success:
a warning, with the fix (the file target).  Postfix itself logs through syslog on
/dev/log, or to ``maillog_file`` through the ``postlog`` service (Postfix >= 3.4); with
neither, Postfix's log goes nowhere: a problem.
"""

from __future__ import annotations

import errno
import os
import socket

from bounce_handler.doctor.access import User
from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding
from bounce_handler.doctor.postfix import Postconf

DEV_LOG = "/dev/log"


def probe(path: str) -> str | None:
    """None when a syslog daemon accepts connections on `path`, else why not."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_UNIX, kind)
        try:
            s.settimeout(2)
            s.connect(path)
            return None
        except OSError as e:
            if kind == socket.SOCK_DGRAM and e.errno == errno.EPROTOTYPE:
                continue  # a stream socket: the pipe retries with SOCK_STREAM too
            if e.errno == errno.ENOENT:
                return "no such socket"
            if e.errno == errno.ECONNREFUSED:
                return "nothing listens on it"
            return e.strerror or type(e).__name__
        finally:
            s.close()
    return "not a socket"


def postfix_log(pc: Postconf) -> tuple[str | None, list[Finding]]:
    """Where Postfix logs (None: nowhere), and findings about it (once per instance)."""
    maillog = pc.param("maillog_file")
    if maillog:
        postlog = pc.service("postlog", "unix-dgram")
        if postlog is None or postlog.command != "postlogd":
            return None, [
                Finding(
                    PROBLEM,
                    f"maillog_file = {maillog} but master.cf has no postlog service: "
                    "Postfix's log (and the handler's lines in it) goes nowhere",
                    commands=[
                        pc.cmd(
                            "postconf",
                            "-M",
                            "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd",
                        )
                    ],
                    reload=True,
                    check="log.postfix",
                )
            ]
        return f"maillog_file {maillog}", [
            Finding(OK, f"Postfix logs to maillog_file {maillog}", check="log.postfix")
        ]
    why = probe(DEV_LOG)
    if why is None:
        return f"syslog ({DEV_LOG})", [
            Finding(OK, f"Postfix logs to syslog ({DEV_LOG})", check="log.postfix")
        ]
    return None, [
        Finding(
            PROBLEM,
            f"Postfix logs to syslog, but {DEV_LOG}: {why}, and maillog_file is not set: "
            "Postfix's log, the handler's lines in it, and every deferral reason go nowhere",
            commands=[
                pc.set_param_command("maillog_file", "/var/log/postfix.log"),
                *(
                    []
                    if pc.service("postlog", "unix-dgram")
                    else [
                        pc.cmd(
                            "postconf",
                            "-M",
                            "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd",
                        )
                    ]
                ),
            ],
            fix="(or start a syslog daemon: apt-get install rsyslog)",
            reload=True,
            check="log.postfix",
        )
    ]


def check_logging(intake, postfix_where: str | None) -> list[Finding]:
    """The pipe's structured line for one intake's configuration."""
    cfg = intake.settings
    target = cfg.log.target
    where = cfg.path or "the configuration"
    if target == "none":
        return [
            Finding(
                OK,
                "[log] target = none: no structured line (Postfix's log line still "
                "has the start of the handler's one-line outcome)",
                check="log.target",
                subject=where,
            )
        ]
    if target == "syslog":
        sock = cfg.log.syslog_socket
        why = probe(sock)
        user = _user(intake)
        if why is None and user is not None and user.blocked(sock, "w"):
            why = f"{user.name} may not connect ({user.blocked(sock, 'w')})"
        if why is None:
            return [
                Finding(
                    OK,
                    f"[log] target = syslog: {sock} accepts the structured line "
                    f"(facility mail, tag {cfg.log.syslog_ident})",
                    check="log.target",
                    subject=where,
                )
            ]
        return [
            _fallback(
                intake, f"[log] target = syslog, but {sock}: {why}", postfix_where, switch=True
            )
        ]
    if target == "file":
        path = cfg.log.file
        user = _user(intake)
        why = None
        if user is not None:
            if os.path.exists(path):
                why = user.blocked(path, "w")
            else:
                why = user.blocked(os.path.dirname(path) or ".", "wx")
        if why is None:
            return [Finding(OK, f"[log] target = file: {path}", check="log.target", subject=where)]
        return [_fallback(intake, f"[log] target = file, but {why}", postfix_where, switch=False)]
    if target == "stderr":
        return [_fallback(intake, "[log] target = stderr", postfix_where, switch=True, chosen=True)]
    return [
        _fallback(
            intake,
            f"[log] target = {target!r} is not syslog, file, stderr or none",
            postfix_where,
            switch=True,
        )
    ]


def _user(intake) -> User | None:
    try:
        return User(intake.user) if intake.user else None
    except KeyError:
        return None


def _fallback(
    intake, why: str, postfix_where: str | None, switch: bool, chosen: bool = False
) -> Finding:
    """The line goes to stderr: a warning, with the file target as the fix."""
    import shlex

    cfg = intake.settings
    where = cfg.path or "the configuration"
    path = cfg.log.file
    directory = os.path.dirname(path) or "."
    user = _user(intake)
    commands = []
    if user is not None:
        commands.append(
            f"install -d -m 0750 -o {shlex.quote(user.name)} -g {shlex.quote(user.group)} "
            f"{shlex.quote(directory)}"
        )
        if os.path.exists(path):
            commands.append(
                f"chown {shlex.quote(user.name)}:{shlex.quote(user.group)} {shlex.quote(path)}"
            )
    fix = None
    if switch:
        cfg_arg = f" --config {shlex.quote(cfg.path)}" if cfg.path else ""
        fix = f'set [log] target = "file" in {where} (file = "{path}"), then:'
        commands.append(f"{shlex.quote(intake.bounces())}{cfg_arg} config check")
    into = f"Postfix's log line for each delivery{', in ' + postfix_where if postfix_where else ''}"
    return Finding(
        WARNING,
        f"{why}: the pipe's structured line goes to stderr"
        + (" (chosen)" if chosen else "")
        + f", i.e. into {into}, and of a successful delivery Postfix keeps only the first "
        "100 characters of the handler's output: the structured line is lost",
        fix,
        commands=commands,
        check="log.target",
        subject=where,
    )
