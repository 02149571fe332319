"""Routed: from transport_maps to the handler -- the service, its argv, its limits.

Pipe intake: ``<service>_destination_recipient_limit = 1`` (pipe(8) expands
``${extension}`` only for single-recipient deliveries), a time limit above what the
handler may legitimately wait (past it pipe(8) kills the handler and *bounces* the
bounce: lost), ``${extension}`` in argv after ``--`` (without it an extension starting
with "-" is read as an option: the handler defers every such bounce), no ``u`` flag
(it lower-cases ${extension}: signed tokens stop verifying), an unprivileged user, and
``recipient_delimiter`` agreeing with ``[verp]``; ``--client-address ${client_address}``
(a warning: without it the relay's own notices are only claims).  Other macros in argv
(``${sender}``...) are the handler's business, not doctor's.

LMTP intake: an ``lmtp`` service in master.cf, and the next hop transport_maps names
being where ``[daemon] lmtp_listen`` makes `bounces daemon` listen.
"""

from __future__ import annotations

import os

from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding
from bounce_handler.doctor.postfix import Postconf, time_seconds


def check_delimiter(pc: Postconf) -> list[Finding]:
    """recipient_delimiter is set (once per instance)."""
    delimiter = pc.param("recipient_delimiter")
    if not delimiter:
        return [
            Finding(
                PROBLEM,
                "recipient_delimiter is not set: bounces+TOKEN@ has no extension, the "
                "handler gets no VERP token (and the address may be rejected)",
                commands=[pc.set_param_command("recipient_delimiter", "+")],
                reload=True,
                check="routing.recipient-delimiter",
            )
        ]
    return [Finding(OK, f"recipient_delimiter = {delimiter}", check="routing.recipient-delimiter")]


def check_pipe(pc: Postconf, intake) -> list[Finding]:
    """The pipe service of one intake: limits, argv, flags, user, delimiter."""
    s = intake.service
    cfg = intake.settings
    attrs, argv, overrides = s.pipe_attrs()
    findings = [
        Finding(
            OK,
            f"master.cf: {s.name} is a pipe service running {argv[0]}",
            check="routing.service",
            subject=s.name,
        )
    ]
    limit = overrides.get(f"{s.name}_destination_recipient_limit") or pc.param(
        f"{s.name}_destination_recipient_limit"
    )
    if limit != "1":
        findings.append(
            Finding(
                PROBLEM,
                f"{s.name}_destination_recipient_limit = {limit or '(unset)'}: pipe(8) "
                "expands ${extension} only for single-recipient deliveries",
                commands=[pc.set_param_command(f"{s.name}_destination_recipient_limit", "1")],
                reload=True,
                check="routing.recipient-limit",
                subject=s.name,
            )
        )
    else:
        findings.append(
            Finding(
                OK,
                f"{s.name}_destination_recipient_limit = 1",
                check="routing.recipient-limit",
                subject=s.name,
            )
        )
    findings.extend(_time_limit(pc, s, overrides, cfg))
    findings.extend(_argv(pc, s, argv))
    findings.extend(_client_address(pc, s, argv))
    flags = attrs.get("flags", "")
    if "u" in flags:
        findings.append(
            Finding(
                PROBLEM,
                f"{s.name} flags={flags} has u: pipe(8) lower-cases ${{extension}}, so "
                "signed VERP tokens no longer verify (recorded, never counted)",
                commands=[
                    pc.set_service_command(
                        s,
                        s.with_argv(argv).replace(
                            f"flags={flags}", f"flags={flags.replace('u', '')}", 1
                        ),
                    )
                ],
                reload=True,
                check="routing.flags",
                subject=s.name,
            )
        )
    user = attrs.get("user", "")
    if not user:
        findings.append(
            Finding(
                PROBLEM,
                f"{s.name} has no user= attribute",
                f"add user=nobody (or a dedicated account) to the {s.name} entry",
                check="routing.user",
                subject=s.name,
            )
        )
    elif user.split(":")[0] in ("root", pc.param("mail_owner")):
        findings.append(
            Finding(
                PROBLEM,
                f"{s.name} runs as {user}: pipe(8) refuses root and the mail owner",
                "use user=nobody or a dedicated unprivileged account",
                check="routing.user",
                subject=s.name,
            )
        )
    delim = pc.param("recipient_delimiter")
    want = cfg.verp.recipient_delimiter[:1]
    if delim and want not in delim:
        findings.append(
            Finding(
                PROBLEM,
                f"[verp] recipient_delimiter {want!r} is not in Postfix's "
                f"recipient_delimiter {delim!r}",
                commands=[pc.set_param_command("recipient_delimiter", delim + want)],
                reload=True,
                check="routing.recipient-delimiter",
                subject=s.name,
            )
        )
    return findings


def _time_limit(pc: Postconf, s, overrides, cfg) -> list[Finding]:
    """The pipe's time limit vs. how long the handler may legitimately wait."""
    raw = overrides.get(f"{s.name}_time_limit") or pc.param(f"{s.name}_time_limit")
    seconds = time_seconds(raw)
    # The handler waits up to busy_timeout for the store, plus ~10 s to connect to
    # PostgreSQL and a margin for a loaded machine; past the limit pipe(8) bounces.
    need = 2 * cfg.database.busy_timeout + 20
    fix = [pc.set_param_command(f"{s.name}_time_limit", f"{max(120, int(need) + 1)}s")]
    if seconds is None:
        return [
            Finding(
                PROBLEM,
                f"{s.name}_time_limit = {raw!r} is not a time",
                commands=fix,
                reload=True,
                check="routing.time-limit",
                subject=s.name,
            )
        ]
    if seconds < need:
        return [
            Finding(
                PROBLEM,
                f"{s.name}_time_limit = {raw} is shorter than {need:g}s (2 x busy_timeout + "
                "20 s): a handler waiting on a busy database would be killed, and pipe(8) "
                "bounces the bounce (lost)",
                commands=fix,
                reload=True,
                check="routing.time-limit",
                subject=s.name,
            )
        ]
    return [
        Finding(
            OK,
            f"{s.name}_time_limit = {raw} (>= {need:g}s)",
            check="routing.time-limit",
            subject=s.name,
        )
    ]


def _options_ended(argv: list[str]) -> list[str]:
    """The argv with ``${extension}`` after a ``--``, as _argv's fix makes it (argv if so)."""
    if "${extension}" not in argv:
        return [*argv, "--", "${extension}"]
    at = argv.index("${extension}")
    if "--" not in argv[1:at]:
        return [*argv[:at], "--", *argv[at:]]
    return argv


def _argv(pc: Postconf, s, argv: list[str]) -> list[Finding]:
    """${extension} present, after `--`."""
    fixed = _options_ended(argv)
    if fixed is argv:
        return [
            Finding(
                OK,
                f"{s.name} argv ends its options with -- before ${{extension}}",
                check="routing.argv",
                subject=s.name,
            )
        ]
    if "${extension}" not in argv:
        what = f"{s.name} argv has no ${{extension}}: the VERP token never reaches the handler"
    else:
        what = (
            f"{s.name} argv has ${{extension}} without `--` before it: an extension "
            "that starts with '-' is read as an option, and the handler defers that "
            "bounce for ever"
        )
    return [
        Finding(
            PROBLEM,
            what,
            commands=[pc.set_service_command(s, s.with_argv(fixed))],
            reload=True,
            check="routing.argv",
            subject=s.name,
        )
    ]


def _client_address(pc: Postconf, s, argv: list[str]) -> list[Finding]:
    """``--client-address ${client_address}`` in argv (a warning: nothing is lost without it).

    It is how the handler knows a notice came from this relay's own bounce daemon (the
    macro is empty then): without it Postfix's own DSNs and notify_classes copies are
    claims, never verified, so their flags are never exported, and with
    ``require_signed`` they count nowhere (docs/trust.md).
    """
    if any("${client_address}" in a for a in argv[1:]):
        return [
            Finding(
                OK,
                f"{s.name} argv passes ${{client_address}}: the relay's own notices verify",
                check="routing.client-address",
                subject=s.name,
            )
        ]
    # From the argv as _argv's fix leaves it, so that both fixes applied in order pass:
    # the macro goes before the `--` that ends the options.
    argv = _options_ended(argv)
    at = argv.index("${extension}")
    dashes = max(i for i in range(1, at) if argv[i] == "--")
    fixed = [*argv[:dashes], "--client-address", "${client_address}", *argv[dashes:]]
    return [
        Finding(
            WARNING,
            f"{s.name} argv has no --client-address ${{client_address}}: notices this "
            "relay's own Postfix writes (its DSNs, the notify_classes copies) cannot be told "
            "from a stranger's, so they count only as claims: reported, never exported, "
            "and nowhere with require_signed",
            commands=[pc.set_service_command(s, s.with_argv(fixed))],
            reload=True,
            check="routing.client-address",
            subject=s.name,
        )
    ]


# -- LMTP -----------------------------------------------------------------------------------


def lmtp_endpoint(pc: Postconf, nexthop: str, chrooted: bool) -> tuple[str, str] | None:
    """("inet", "host:port") or ("unix", absolute path) of a Postfix LMTP next hop.

    lmtp(8): ``inet:host:port``, ``unix:path`` (relative paths, and every path of a
    chrooted client, are under queue_directory), ``[host]:port``, ``host:port``, port
    24 by default.
    """
    kind, sep, rest = nexthop.partition(":")
    if sep and kind == "unix":
        path = rest
        if not path.startswith("/") or chrooted:
            path = os.path.join(pc.param("queue_directory"), path.lstrip("/"))
        return "unix", os.path.normpath(path)
    if sep and kind == "inet":
        nexthop = rest
    host, sep, port = nexthop.rpartition(":")
    if not sep:
        host, port = nexthop, "24"
    return "inet", f"{host.strip('[]')}:{port}"


def listen_endpoint(listen: str) -> tuple[str, str] | None:
    """("inet", "host:port") or ("unix", path) of ``[daemon] lmtp_listen``."""
    kind, sep, rest = listen.partition(":")
    if not sep or kind not in ("inet", "unix"):
        return None
    if kind == "unix":
        return "unix", os.path.normpath(rest)
    return "inet", rest


def check_lmtp(pc: Postconf, intake) -> list[Finding]:
    """The lmtp service and its next hop against [daemon] lmtp_listen."""
    value = intake.route or ""
    transport, _, nexthop = value.partition(":")
    findings: list[Finding] = []
    svc = intake.service
    if svc is None:
        return [
            Finding(
                PROBLEM,
                f"transport_maps sends {intake.address} to {value}, but master.cf has no "
                f"{transport} service: Postfix defers every bounce (unknown mail transport)",
                commands=[
                    pc.cmd("postconf", "-M", f"{transport}/unix={transport} unix - - n - - lmtp")
                ],
                reload=True,
                check="routing.service",
                subject=intake.address,
            )
        ]
    findings.append(
        Finding(
            OK,
            f"transport_maps: {intake.address} -> {value} (LMTP)",
            check="routing.transport",
            subject=intake.address,
        )
    )
    listen = intake.settings.daemon.lmtp_listen
    where = intake.config or "the configuration"
    if not listen:
        findings.append(
            Finding(
                PROBLEM,
                f"{intake.address} goes over LMTP to {nexthop}, but [daemon] lmtp_listen is "
                f"empty in {where}: `bounces daemon` does not accept LMTP",
                f'set [daemon] lmtp_listen = "{_as_listen(nexthop)}" in {where}, then restart '
                "`bounces daemon`",
                check="routing.lmtp-nexthop",
                subject=intake.address,
            )
        )
        return findings
    there = lmtp_endpoint(pc, nexthop, svc.chrooted())
    here = listen_endpoint(listen)
    if there != here:
        want = f"{transport}:{listen}"
        if here and here[0] == "unix" and svc.chrooted():
            want = None  # a chrooted client cannot reach an absolute path outside the jail
        commands = (
            pc.set_entry_commands(intake_table(pc, intake), intake.address, want) if want else None
        )
        findings.append(
            Finding(
                PROBLEM,
                f"{intake.address} goes over LMTP to {nexthop}, but `bounces daemon` listens on "
                f"{listen} ([daemon] lmtp_listen in {where}): Postfix defers every bounce",
                None
                if commands
                else (
                    f"route {intake.address} to {transport}:{listen} in transport_maps (with "
                    f"`chroot = n` for the {transport} service if the socket is outside "
                    f"{pc.param('queue_directory')})"
                ),
                commands=commands,
                reload=True,
                check="routing.lmtp-nexthop",
                subject=intake.address,
            )
        )
    else:
        findings.append(
            Finding(
                OK,
                f"LMTP next hop {nexthop} is where `bounces daemon` listens ({listen})",
                check="routing.lmtp-nexthop",
                subject=intake.address,
            )
        )
    return findings


def intake_table(pc: Postconf, intake) -> str:
    """The transport table that answered for the intake's address (the first one if none)."""
    from bounce_handler.doctor.intakes import route

    found = route(pc, intake.address)
    if found:
        return found[0]
    tables = pc.list_param("transport_maps")
    return tables[0] if tables else ""


def _as_listen(nexthop: str) -> str:
    kind, sep, rest = nexthop.partition(":")
    if sep and kind in ("inet", "unix"):
        return nexthop
    return f"inet:{nexthop}"
