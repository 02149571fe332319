"""`bounces doctor`'s checks: the whole path a bounce takes, for each intake Postfix feeds.

One module per concern, in the order a bounce meets them:

    intakes.py      which intakes (pipe into SQLite, pipe through the spool into
                    PostgreSQL, LMTP into the daemon, several at once), found by following
                    the bounce address through transport_maps
    accept.py       accepted from the internet: the bounce domain's class, recipient
                    validation, smtpd restrictions against the null sender
    routing.py      routed: the service, its argv (`-- ${extension}`), its limits; the LMTP
                    next hop against [daemon] lmtp_listen
    permissions.py  runnable and readable as the pipe user: binary, config, VERP key file,
                    caches, the SQLite file or the spool tree
    schema.py       the store reachable and at the migrations' head
    logs.py         logged: the syslog socket or the configured target; Postfix's own log
    backlog.py      not silently backing up: deferred/held bounces in Postfix's queue, the
                    spool, the daemon answering

``diagnose`` runs them and returns a ``findings.Report``; cli/doctor.py prints it.
Reading Postfix goes through postfix.py (postconf, postmap -q, postqueue), permissions
through access.py.  Every finding that is not ok carries its fix, as commands when it can
be one; tests/e2e/test_doctor_paths.py applies them as printed and expects a pass.
"""

from __future__ import annotations

from bounce_handler.doctor.findings import OK, PROBLEM, WARNING, Finding, Report

__all__ = ["OK", "PROBLEM", "WARNING", "Finding", "Report", "diagnose"]


def diagnose(
    settings,
    postfix_config: str | None = None,
    transport: str | None = None,
    postconf_binary: str | None = None,
) -> Report:
    """Every check for every intake of the Postfix instance in `postfix_config`."""
    from bounce_handler.doctor import accept, backlog, logs, permissions, routing, schema
    from bounce_handler.doctor.intakes import discover
    from bounce_handler.doctor.postfix import Postconf

    pc = Postconf(postfix_config, postconf_binary)
    report = Report(postfix_config, pc.reload_command())
    findings, intakes = discover(pc, settings, transport)
    report.add(findings)
    report.intakes = [i.as_json() for i in intakes]
    if not intakes:
        return report
    pipes = [i for i in intakes if i.kind == "pipe"]
    lmtps = [i for i in intakes if i.kind == "lmtp"]

    # Routed: the service and its limits.
    if pipes:
        report.add(routing.check_delimiter(pc))
    for i in pipes:
        report.add(routing.check_pipe(pc, i))
    for i in lmtps:
        report.add(routing.check_lmtp(pc, i))

    # Accepted from the internet.
    for address in _unique(i.address for i in intakes):
        report.add(accept.check_accepted(pc, address))

    # Runnable and readable as the pipe user; the store; the caches.
    for i in pipes:
        if i.user:
            report.add(permissions.check_access(i))
    for i in _unique_by(intakes, lambda i: (i.settings.database.url, i.user)):
        report.add(schema.check_schema(i))
    for i in _unique_by(pipes, lambda i: (i.config, i.user)):
        report.add(permissions.check_caches(i))

    # Logged.
    if pipes:
        where, found = logs.postfix_log(pc)
        report.add(found)
        for i in _unique_by(pipes, lambda i: (i.config, i.user)):
            report.add(logs.check_logging(i, where))

    # Not silently backing up.
    found, running = backlog.check_queue(pc, intakes)
    report.add(found)
    report.postfix_running = running
    spools = [i for i in pipes if i.store == "postgresql-spool"]
    for i in _unique_by(spools, lambda i: i.settings.database.spool_dir):
        report.add(backlog.check_spool(i))
    for i in lmtps:
        report.add(backlog.check_daemon(pc, i))
    return report


def _unique(values):
    seen = set()
    for v in values:
        if v not in seen:
            seen.add(v)
            yield v


def _unique_by(items, key):
    seen = set()
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            yield item
