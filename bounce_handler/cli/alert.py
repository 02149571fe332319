"""Alert on the flags raised since the last run, once; for cron and systemd timers.

Each channel remembers, per flag, what it has reported (alert_marks), so a flag is
reported once however often this runs, two overlapping runs never both report it, and
`bounces flags recompute` neither hides a pending flag nor repeats an alerted one (it
keeps flag ids; a flag it withdraws, because the current rules no longer support it, is
reported as withdrawn).  If delivery fails the flags stay pending and the next run
retries.  A channel's first run reports the live flags raised before it (not the cleared
ones of the past).

The mail puts the most urgent first: compromised senders, then throttled destinations,
then dead recipients (more than 10 of those at once come as a digest: counts by domain,
the newest, and the commands for the full list and the export).  --kind KIND (repeatable)
alerts on those kinds only; the others stay pending for a run that includes them (e.g.
page on compromised senders every minute, mail the rest hourly).

Channels (--via): sendmail (default: [alert] sendmail, to [alert] to, default root),
webhook (POST JSON to [alert] webhook_url) or stdout (print the text; cron mails it).
--metrics FILE (or [alert] metrics_file) also writes Prometheus text-format metrics for
node_exporter's textfile collector.

Exit status (for monitoring: Nagios-style, 0 OK, 1 WARNING, 2 CRITICAL), over the
--kind kinds when given:
    0   no flag is open (acked flags are someone's work in progress: not "open")
    1   flags are open, all of them alerted by an earlier run (a run that only reported
        withdrawals exits 1 or 0 too: nothing new to act on)
    2   flags were raised since the last run and have just been alerted
    75  the alert could not be delivered (sendmail/webhook failed) or the store is
        unavailable: nothing was marked as sent, the next run tries again

Examples:
    bounces alert
    bounces alert --via stdout --metrics /var/lib/node_exporter/textfile/bounces.prom
    bounces alert --via webhook
    bounces alert --dry-run --via stdout
    bounces alert --kind compromised-sender --kind throttled-destination

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_USAGE, BounceHandlerError
from bounce_handler.judge.rules import SEVERITY

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
    p.add_argument("--kind", action="append", choices=SEVERITY, metavar="KIND",
                   help="only flags of this kind (repeatable; default: every kind): "
                   + ", ".join(SEVERITY))
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

    kinds = tuple(dict.fromkeys(args.kind)) if args.kind else None
    if args.dry_run:
        with db.connect(settings) as conn:
            pending, summary = alerts.peek(conn, channel, kinds)
            counts = alerts.open_counts(conn, kinds)
        _evidence_now(settings, pending)
        if pending:
            subject, body = alerts.compose(pending, counts, relay, summary)
            print(visible(f"Would send to {channel}:\nSubject: {subject}\n\n{body}",
                          newlines=True), end="")
        else:
            print(f"Nothing new for {channel}.")
        return _status(counts, bool(summary["new"]))

    claim = alerts.claim(settings, channel, now, kinds)
    with db.connect(settings) as conn:
        counts = alerts.open_counts(conn, kinds)
        metrics_file = args.metrics or settings.alert.metrics_file
        if metrics_file:
            try:
                metrics.write(metrics_file, metrics.collect(conn, now))
            except OSError as e:
                # Metrics are a side channel: report, but never hold back the alert itself.
                print(f"bounces: cannot write metrics to {metrics_file}: {e}", file=sys.stderr)
    if claim.ids:
        _evidence_now(settings, claim.flags)
        subject, body = alerts.compose(claim.flags, counts, relay, claim.summary)
        try:
            if args.via == "sendmail":
                deliver.sendmail(settings.alert.sendmail, target, subject, body)
            elif args.via == "webhook":
                deliver.webhook(target, subject, body, claim.flags, claim.summary)
            else:
                # The flags' subjects and evidence come from bounces (render.visible).
                sys.stdout.write(visible(f"Subject: {subject}\n\n{body}", newlines=True))
                sys.stdout.flush()
        except BaseException:
            alerts.release(settings, claim)
            raise
        if not args.quiet and args.via != "stdout":
            gone = claim.summary["withdrawn"]
            print(f"alerted {sum(claim.summary['new'].values())} new flag(s) via {channel}"
                  + (f", {gone} withdrawn" if gone else ""))
    elif not args.quiet and args.via != "stdout":
        print(f"nothing new for {channel}")
    return _status(counts, claim.any_new)


def _evidence_now(settings, flags: list[dict]) -> None:
    """Windowed flags' numbers as the judge counts them now (judge/current.py).

    Best effort: the alert itself must go out even if [rules] cannot be parsed (the pipe
    reports that loudly) or the store hiccups here.
    """
    if not any(f["kind"] in ("compromised-sender", "throttled-destination") for f in flags):
        return
    from bounce_handler.errors import BounceHandlerError
    from bounce_handler.judge import current, lifecycle
    from bounce_handler.judge.rules import for_settings
    from bounce_handler.settings import ConfigError

    try:
        rules = for_settings(settings)
        conn = lifecycle.connect(settings)
    except (BounceHandlerError, ConfigError) as e:
        print(f"bounces: evidence shown as stored: {e}", file=sys.stderr)
        return
    try:
        current.attach(conn, flags, rules)
    finally:
        conn.close()


def _status(counts: dict, new: bool) -> int:
    if new:
        return EXIT_NEW
    if any(v["open"] for v in counts.values()):
        return EXIT_OPEN
    return EXIT_NOTHING_OPEN
