"""Alert on the flags raised since the last run, once; for cron and systemd timers.

Each channel keeps its place in the database (alert_state), so a flag is reported once
however often this runs, and two overlapping runs never both report it.  If delivery
fails the flags stay pending and the next run retries.  A channel's first run reports
the live flags raised before it (not the cleared ones of the past).

Channels (--via): sendmail (default: [alert] sendmail, to [alert] to, default root),
webhook (POST JSON to [alert] webhook_url) or stdout (print the text; cron mails it).
--metrics FILE (or [alert] metrics_file) also writes Prometheus text-format metrics for
node_exporter's textfile collector.

Exit status (for monitoring: Nagios-style, 0 OK, 1 WARNING, 2 CRITICAL):
    0   no flag is open (acked flags are someone's work in progress: not "open")
    1   flags are open, all of them alerted by an earlier run
    2   flags were raised since the last run and have just been alerted
    75  the alert could not be delivered (sendmail/webhook failed) or the store is
        unavailable: nothing was marked as sent, the next run tries again

Examples:
    bounces alert
    bounces alert --via stdout --metrics /var/lib/node_exporter/textfile/bounces.prom
    bounces alert --via webhook
    bounces alert --dry-run --via stdout

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_USAGE, BounceHandlerError

EXIT_NOTHING_OPEN = 0
EXIT_OPEN = 1
EXIT_NEW = 2


def register(sub) -> None:
    """Add `bounces alert`."""
    p = verb_parser(sub, "alert", __doc__)
    p.add_argument("--via", choices=("sendmail", "webhook", "stdout"), default="sendmail",
                   help="where the alert goes (default sendmail)")
    p.add_argument("--to", metavar="ADDRESS", help="recipient (default: [alert] to)")
    p.add_argument("--metrics", metavar="FILE",
                   help="also write Prometheus metrics here (default: [alert] metrics_file)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be sent; send nothing, mark nothing")
    p.add_argument("--quiet", action="store_true", help="no summary line on stdout")
    p.set_defaults(func=run)


def _channel(args, settings) -> tuple[str, str]:
    """(channel name for alert_state, target)."""
    if args.via == "sendmail":
        to = args.to or settings.alert.to
        return f"sendmail:{to}", to
    if args.via == "webhook":
        url = settings.alert.webhook_url
        if not url:
            raise BounceHandlerError("--via webhook needs [alert] webhook_url in the config",
                                     EX_USAGE)
        return f"webhook:{url.split('?', 1)[0]}"[:64], url
    return "stdout", "-"


def run(args, settings) -> int:
    """Run `bounces alert`."""
    import socket

    from bounce_handler.reports import alerts, db, deliver, metrics
    from bounce_handler.reports.period import utcnow
    from bounce_handler.reports.render import visible

    now = utcnow()
    channel, target = _channel(args, settings)
    relay = settings.intake.relay or socket.gethostname()

    if args.dry_run:
        with db.connect(settings) as conn:
            pending = alerts.peek(conn, channel)
            counts = alerts.open_counts(conn)
        if pending:
            subject, body = alerts.compose(pending, counts, relay)
            print(visible(f"Would send to {channel}:\nSubject: {subject}\n\n{body}",
                          newlines=True), end="")
        else:
            print(f"Nothing new for {channel}.")
        return _status(counts, bool(pending))

    claim = alerts.claim(settings, channel, now)
    with db.connect(settings) as conn:
        counts = alerts.open_counts(conn)
        metrics_file = args.metrics or settings.alert.metrics_file
        if metrics_file:
            try:
                metrics.write(metrics_file, metrics.collect(conn, now))
            except OSError as e:
                # Metrics are a side channel: report, but never hold back the alert itself.
                print(f"bounces: cannot write metrics to {metrics_file}: {e}", file=sys.stderr)
    if claim.flags:
        subject, body = alerts.compose(claim.flags, counts, relay)
        try:
            if args.via == "sendmail":
                deliver.sendmail(settings.alert.sendmail, target, subject, body)
            elif args.via == "webhook":
                deliver.webhook(target, subject, body, claim.flags)
            else:
                # The flags' subjects and evidence come from bounces (render.visible).
                sys.stdout.write(visible(f"Subject: {subject}\n\n{body}", newlines=True))
                sys.stdout.flush()
        except BaseException:
            alerts.release(settings, claim)
            raise
        if not args.quiet and args.via != "stdout":
            print(f"alerted {len(claim.flags)} new flag(s) via {channel}")
    elif not args.quiet and args.via != "stdout":
        print(f"nothing new for {channel}")
    return _status(counts, bool(claim.flags))


def _status(counts: dict, new: bool) -> int:
    if new:
        return EXIT_NEW
    if any(v["open"] for v in counts.values()):
        return EXIT_OPEN
    return EXIT_NOTHING_OPEN
