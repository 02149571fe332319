"""Which intakes this Postfix feeds, found by following the bounce address as Postfix does.

An intake is a pipe(8) service running bounce-handler, or LMTP to `bounces daemon`;
a Postfix may feed several.  trivial-rewrite(8) picks the service from transport_maps.

The handler configurations come from the pipe services' argv (``--config``: what the
pipe reads) and from ``bounces --config`` (for LMTP, whose daemon reads that one).  Each
bounce address is looked up in transport_maps; the result names the master.cf service
that gets the bounce: a pipe service running bounce-handler (the pipe intake, its store
SQLite, the PostgreSQL spool or PostgreSQL directly) or an ``lmtp`` service (the daemon's
LMTP listener).  A pipe service the address does not go to is reported as unused, not as
a problem: the documented LMTP set-up keeps the pipe entry.
"""

from __future__ import annotations

import os
import sys

from bounce_handler.doctor.findings import OK, PROBLEM, Finding
from bounce_handler.doctor.postfix import Postconf, Service


class Intake:
    """One way bounces reach the handler, with the configuration that handles them."""

    __slots__ = ("kind", "address", "settings", "config", "service", "route", "routed")

    def __init__(self, kind: str, address: str, settings, config: str | None, service, route):
        self.kind = kind  # "pipe" or "lmtp"
        self.address = address  # the bare bounce address, bounces@domain
        self.settings = settings
        self.config = config  # the TOML file the handler reads (None: all defaults)
        self.service: Service | None = service
        self.route = route  # what transport_maps answered (None: default routing)
        self.routed = True  # False: the address does not reach this service

    @property
    def user(self) -> str | None:
        """The pipe's user= (without a :group), or None."""
        if self.kind != "pipe" or self.service is None:
            return None
        user = self.service.pipe_attrs()[0].get("user", "")
        return user.split(":")[0] or None

    @property
    def argv(self) -> list[str]:
        """The pipe's argv (empty for LMTP)."""
        if self.kind != "pipe" or self.service is None:
            return []
        return self.service.pipe_attrs()[1]

    @property
    def store(self) -> str:
        """sqlite, postgresql-spool or postgresql-direct (the daemon writes LMTP directly)."""
        url = self.settings.database.url
        if not url.startswith("postgresql"):
            return "sqlite"
        if self.kind == "pipe" and self.settings.database.pg_mode == "spool":
            return "postgresql-spool"
        return "postgresql-direct"

    def bounces(self) -> str:
        """The `bounces` command an administrator runs for this intake, as a path.

        The one installed beside the pipe's bounce-handler (the same venv), else the one
        beside this interpreter.
        """
        for d in (os.path.dirname(self.argv[0]) if self.argv else "", os.path.dirname(sys.argv[0])):
            if d and os.path.isabs(d) and os.path.exists(os.path.join(d, "bounces")):
                return os.path.join(d, "bounces")
        here = os.path.join(os.path.dirname(sys.executable), "bounces")
        return here if os.path.exists(here) else "bounces"

    def as_json(self) -> dict[str, object]:
        """The intake as `doctor --format json` lists it."""
        return {
            "kind": self.kind,
            "address": self.address,
            "service": self.service.name if self.service else None,
            "route": self.route,
            "routed": self.routed,
            "config": self.config,
            "user": self.user,
            "store": self.store,
        }


def is_handler(service: Service) -> bool:
    """A pipe service whose argv runs bounce-handler."""
    if service.command != "pipe":
        return False
    _attrs, argv, _o = service.pipe_attrs()
    return bool(argv) and os.path.basename(argv[0]).startswith("bounce-handler")


def is_lmtp(pc: Postconf, transport: str) -> bool:
    """Whether master.cf service `transport` is Postfix's lmtp client."""
    svc = pc.service(transport)
    return (svc.command == "lmtp") if svc else transport == "lmtp"


def bounce_address(pc: Postconf, settings) -> str:
    """[verp] prefix@domain; an empty domain is the host name (Postfix's $myhostname)."""
    domain = settings.verp.domain or pc.param("myhostname")
    return f"{settings.verp.prefix}@{domain}".lower()


def route(pc: Postconf, address: str) -> tuple[str, str, str] | None:
    """(table, key, value) transport_maps answers for `address`; None: default routing.

    Keys in transport(5) order: user@domain, domain, .parent domains, the ``*`` wildcard.
    """
    domain = address.rpartition("@")[2]
    labels = domain.split(".")
    keys = [address, domain, *("." + ".".join(labels[i:]) for i in range(1, len(labels))), "*"]
    return pc.lookup_maps("transport_maps", keys)


def handler_config(service: Service) -> str | None:
    """The ``--config`` in a pipe service's argv, or None."""
    _attrs, argv, _o = service.pipe_attrs()
    if "--config" in argv[:-1]:
        return argv[argv.index("--config") + 1]
    return next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)


def discover(pc: Postconf, settings, transport: str | None = None):
    """(findings, intakes): every intake this instance feeds, and what is wrong on the way."""
    from bounce_handler import settings as settings_mod

    findings: list[Finding] = []
    intakes: list[Intake] = []
    seen: set[str] = set()
    for s in pc.services():
        if s.name == "bounce" and s.type == "unix" and s.command != "bounce":
            findings.append(
                Finding(
                    PROBLEM,
                    f"master.cf service `bounce` runs {s.command}, replacing Postfix's own "
                    "bounce daemon: Postfix can no longer write bounces or delay notices",
                    "rename the pipe entry (e.g. verpbounce) in master.cf and in transport_maps, "
                    "restore the stock line `bounce unix - - n - 0 bounce`, then `postfix reload`",
                    check="routing.bounce-service",
                    subject=s.name,
                )
            )
    handlers = [s for s in pc.services() if is_handler(s) and transport in (None, s.name)]

    for s in handlers:
        config = handler_config(s)
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
                    check="intake.config",
                    subject=s.name,
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
                        check="intake.config",
                        subject=s.name,
                    )
                )
                continue
            findings.append(
                Finding(OK, f"{s.name} uses config {config}", check="intake.config", subject=s.name)
            )
        address = bounce_address(pc, cfg)
        found = route(pc, address)
        value = found[2] if found else None
        target = value.split(":", 1)[0] if value else None
        seen.add(address)
        if target and target != s.name and is_lmtp(pc, target):
            findings.append(
                Finding(
                    OK,
                    f"{s.name} is not in use: {address} goes over LMTP ({value})",
                    check="intake.unused",
                    subject=s.name,
                )
            )
            if not any(i.kind == "lmtp" and i.address == address for i in intakes):
                intakes.append(Intake("lmtp", address, cfg, cfg.path, pc.service(target), value))
            continue
        intake = Intake("pipe", address, cfg, cfg.path or None, s, value)
        intakes.append(intake)
        if target == s.name:
            findings.append(
                Finding(
                    OK,
                    f"transport_maps: {address} -> {value}",
                    check="routing.transport",
                    subject=address,
                )
            )
        else:
            intake.routed = False
            findings.append(_misrouted(pc, address, found, s.name, f"{s.name}:"))

    if transport is None or is_lmtp(pc, transport):
        address = bounce_address(pc, settings)
        if address not in seen:
            found = route(pc, address)
            value = found[2] if found else None
            target = value.split(":", 1)[0] if value else None
            if target and is_lmtp(pc, target):
                intakes.append(
                    Intake("lmtp", address, settings, settings.path, pc.service(target), value)
                )
            elif not handlers:
                findings.append(
                    Finding(
                        PROBLEM,
                        "no pipe(8) service in master.cf runs bounce-handler"
                        + (f" (looked for {transport})" if transport else "")
                        + f", and {address} is not routed over LMTP "
                        f"(transport_maps: {value or 'nothing, default routing'})",
                        "append deploy/postfix/master.cf to master.cf and route the bounce "
                        "address to it (deploy/README.md step 3), or to `bounces daemon` over "
                        "LMTP (deploy/spool-and-lmtp.md), then `postfix reload`",
                        check="intake.none",
                        subject=address,
                    )
                )
    return findings, intakes


def _misrouted(pc: Postconf, address: str, found, service: str, value: str) -> Finding:
    """transport_maps does not send `address` to `service`: the finding and its fix."""
    tables = pc.list_param("transport_maps")
    commands: list[str] | None = None
    if found is not None:
        commands = pc.set_entry_commands(found[0], address, value)
    elif tables:
        commands = pc.set_entry_commands(tables[0], address, value)
    else:
        kind = pc.param("default_database_type") or "hash"
        table = f"{kind}:{os.path.join(pc.config_dir or '/etc/postfix', 'transport')}"
        commands = pc.set_entry_commands(table, address, value)
        if commands is not None:
            commands.append(pc.set_param_command("transport_maps", table))
    return Finding(
        PROBLEM,
        f"transport_maps routes {address} to "
        f"{found[2] if found else 'nothing (default routing)'}, not to {service}: "
        "bounces never reach the handler",
        None
        if commands
        else f"add `{address}  {value}` to the transport table (postmap it) and `postfix reload`",
        commands=commands,
        reload=True,
        check="routing.transport",
        subject=address,
    )
