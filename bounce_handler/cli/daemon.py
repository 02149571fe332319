"""Run the resident daemon: Postfix socketmap lookups (and LMTP intake when configured).

Services come from [daemon]: socketmap_listen (signed per-sender bounce addresses for
sender_canonical_maps, see deploy/postfix/socketmap.md) and lmtp_listen (bounces over
LMTP; empty disables it); and from [queue] scan_interval: read Postfix's live queue that
often and record the throttling deferrals for rule R8 (what `bounces queue --feed` does
once; 0 disables it).  The options override them for this run; an empty value (or 0)
disables a service.  Runs in the foreground, logs to stderr (the journal under systemd,
see deploy/systemd/bounce-handler-daemon.service) and stops on SIGTERM or SIGINT.

Examples:
    bounces daemon
    bounces daemon --socketmap inet:127.0.0.1:10027 --lmtp ''
    bounces daemon --socketmap '' --queue-scan 30
    bounces daemon --drain-once
    bounces --config /etc/bounce-handler/config.toml daemon --log-level debug

"""

from __future__ import annotations

from bounce_handler.cli import verb_parser


def register(sub) -> None:
    """Add `bounces daemon`."""
    p = verb_parser(sub, "daemon", __doc__)
    p.add_argument("--socketmap", metavar="SPEC", help="inet:HOST:PORT or unix:PATH")
    p.add_argument("--lmtp", metavar="SPEC", help="inet:HOST:PORT or unix:PATH")
    p.add_argument("--queue-scan", metavar="SECONDS", type=_seconds,
                   help="read the live queue this often (0: not at all); default "
                   "[queue] scan_interval")
    p.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    p.add_argument(
        "--drain-once",
        action="store_true",
        help="move what the pipe spooled for PostgreSQL into it, then exit (cron, tests); "
        "exit 75 when the store is down",
    )
    p.set_defaults(func=run)


def _seconds(text: str) -> float:
    import argparse

    from bounce_handler.settings import CHECKS

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    problem = CHECKS[("queue", "scan_interval")](value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def services_for(settings, socketmap: str | None = None, lmtp: str | None = None,
                 queue_scan: float | None = None) -> list:
    """The services [daemon] and [queue] (or the overrides) ask for, in start order."""
    services = []
    spec = settings.daemon.socketmap_listen if socketmap is None else socketmap
    if spec:
        from bounce_handler.daemon.socketmap import SocketmapService

        services.append(SocketmapService(settings, spec))
    spec = settings.daemon.lmtp_listen if lmtp is None else lmtp
    if spec:
        # daemon/lmtp.py provides LmtpService(settings, listen) with the same
        # start/stop/address/name interface (see daemon/server.py).
        from bounce_handler.daemon.lmtp import LmtpService

        services.append(LmtpService(settings, spec))
    if spool_mode(settings):
        # pg_mode = "spool": the pipe drops bounces in spool_dir; this moves them into
        # PostgreSQL (see deploy/spool-and-lmtp.md).
        from bounce_handler.daemon.drain import DrainService

        services.append(DrainService(settings))
    interval = settings.queue.scan_interval if queue_scan is None else queue_scan
    if interval:
        # Postfix's live queue, for rule R8 (bounce_handler/livequeue.py).
        from bounce_handler.daemon.queuescan import QueueScanService

        services.append(QueueScanService(settings, interval))
    return services


def spool_mode(settings) -> bool:
    """True when the pipe spools (PostgreSQL store, pg_mode = "spool")."""
    return settings.database.url.startswith("postgresql") and (
        settings.database.pg_mode == "spool"
    )


def run(args, settings) -> int:
    """Run `bounces daemon` until SIGTERM/SIGINT."""
    import logging
    import sys

    from bounce_handler.daemon import server

    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, args.log_level.upper()),
        format="%(levelname)s %(name)s: %(message)s",
    )
    from bounce_handler.redaction import log_redaction

    log_redaction(settings.database.url)
    if getattr(args, "drain_once", False):
        from bounce_handler.daemon.drain import DrainService
        from bounce_handler.errors import EX_TEMPFAIL

        stats = DrainService(settings).drain_all()
        print(
            f"drained {stats.drained}, duplicates {stats.duplicates}, bad {stats.bad}, "
            f"left {stats.left}" + (f": {stats.error}" if stats.error else "")
        )
        return EX_TEMPFAIL if stats.error or stats.left else 0
    services = services_for(settings, args.socketmap, args.lmtp, args.queue_scan)
    return server.run(services)
