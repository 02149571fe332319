"""Delete old bounce rows and old kept raw messages (housekeeping, for cron).

--older-than AGE (a duration: 180d, 26w) removes messages received before then, with
their events, raw copies and quarantine entries; flags and their history stay.  Raw
copies go earlier, after [intake] raw_retention_days (or --raw-older-than), the parsed
rows staying; a quarantined message keeps its bytes as long as its row.  --dry-run
counts without deleting.  A progress bar shows on a terminal.

Examples:
    bounces prune --older-than 180d
    bounces prune --older-than 1y --raw-older-than 30d
    bounces prune --older-than 90d --dry-run

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser


def register(sub) -> None:
    """Add `bounces prune`."""
    p = verb_parser(sub, "prune", __doc__)
    p.add_argument("--older-than", metavar="AGE", default="180d",
                   help="delete rows older than this (default 180d)")
    p.add_argument("--raw-older-than", metavar="AGE",
                   help="delete kept raw messages older than this "
                   "(default: [intake] raw_retention_days)")
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    p.set_defaults(func=run)


def _age(text: str):
    from bounce_handler.reports.period import parse_duration

    return parse_duration(text)


def run(args, settings) -> int:
    """Run `bounces prune`."""
    from datetime import timedelta

    from bounce_handler.reports import db, prune, render
    from bounce_handler.reports.period import utcnow

    now = utcnow()
    rows_before = now - _age(args.older_than)
    raw_age = (_age(args.raw_older_than) if args.raw_older_than
               else timedelta(days=settings.intake.raw_retention_days))
    raw_before = max(now - raw_age, rows_before)  # raw never outlives its row anyway
    with db.connect(settings) as conn:
        todo = prune.plan(conn, rows_before, raw_before)
    when = f"before {rows_before:%Y-%m-%d %H:%M} UTC"
    if args.dry_run:
        print(f"would delete {todo['messages']:,} messages received {when} (with their "
              f"events), and raw copies stored before {raw_before:%Y-%m-%d %H:%M} UTC "
              f"(at most {todo['raw_messages']:,})")
        return 0
    con = render.console(file=sys.stderr)
    with render.progress(con, "pruning messages", todo["messages"]) as advance:
        messages, events = prune.prune_messages(settings, rows_before, advance)
    with render.progress(con, "pruning raw copies", todo["raw_messages"]) as advance:
        raws = prune.prune_raw(settings, raw_before, advance)
    if messages or raws:
        prune.optimize(settings)
    print(f"deleted {messages:,} messages ({events:,} events) received {when}, "
          f"and {raws:,} more raw copies stored before {raw_before:%Y-%m-%d %H:%M} UTC")
    return 0
