"""Show the live Postfix queue by destination domain and age, like qshape, with why.

Reads `postqueue -j` (-c DIR for a non-default Postfix instance; --input FILE reads saved
output instead) and counts the recipients of the deferred queue (--queue to pick
another, or all) per destination domain in age buckets of 5, 10, 20 ... 1280 minutes
and older.  Below, each deferral reason, classified by the same classifier the bounces
go through, with how many recipients wait on it: "421 4.7.0 [TSS04] Messages from *
temporarily deferred ... ratelimited x412" next to the throttled-destination flags.

--feed also records, for rule R8, each recipient the live queue shows deferred by a
throttling destination (the reasons and texts R8 counts), once per recipient of a queued
message however often it is read, and judges them at once: a throttled destination is
flagged within minutes, not when Postfix's delay notices come (delay_warning_time, hours
later; they, and the final bounce, then count no second time).  For cron or a systemd
timer every minute (deploy/); `bounces daemon` does the same every [queue] scan_interval
seconds when that is set.  With --quiet it prints nothing unless something failed.
Exit status: 0, 69 postqueue/postconf failed, 75 the store cannot take it now.

Examples:
    bounces queue
    bounces queue -c /etc/postfix-out --top 10
    bounces queue --queue all --by sender --format json
    postqueue -j > q.json; bounces queue --input q.json
    bounces queue --feed --quiet

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_SOFTWARE, EX_USAGE, BounceHandlerError


def register(sub) -> None:
    """Add `bounces queue`."""
    p = verb_parser(sub, "queue", __doc__)
    p.add_argument("-c", dest="config_dir", metavar="DIR",
                   help="Postfix configuration directory (postqueue -c; default: "
                   "[queue] postfix_config)")
    p.add_argument("--input", metavar="FILE", help="read `postqueue -j` output from FILE ('-')")
    p.add_argument("--postqueue", default=None, metavar="PATH",
                   help="the postqueue binary (default: from PATH, else /usr/sbin)")
    p.add_argument("--queue", choices=("deferred", "active", "incoming", "hold", "all"),
                   default="deferred")
    p.add_argument("--by", choices=("recipient", "sender"), default="recipient",
                   help="group by recipient domain (default) or sender domain (qshape -s)")
    p.add_argument("--top", type=int, default=20, metavar="N")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--feed", action="store_true",
                   help="record the throttling deferrals for rule R8 and judge them "
                   "(the live queue only, not --input)")
    p.add_argument("--quiet", action="store_true",
                   help="with --feed: print nothing unless something failed (cron)")
    p.set_defaults(func=run)


def _read(args, config_dir: str) -> str:
    from bounce_handler.livequeue import read_queue

    if args.input:
        if args.input == "-":
            return sys.stdin.read()
        try:
            with open(args.input) as fp:
                return fp.read()
        except OSError as e:
            raise BounceHandlerError(f"cannot read {args.input}: {e.strerror}") from None
    return read_queue(config_dir, args.postqueue)


def run(args, settings) -> int:
    """Run `bounces queue`."""
    import time

    from bounce_handler.reports import qshape, render

    if args.feed and args.input:
        # The rows are dated when the queue is read: a saved listing says nothing of when.
        raise BounceHandlerError("--feed reads the live queue; it cannot take --input",
                                 EX_USAGE)
    config_dir = settings.queue.postfix_config if args.config_dir is None else args.config_dir
    text = _read(args, config_dir)
    now = time.time()
    try:
        messages = qshape.parse_lines(text)
    except ValueError as e:
        raise BounceHandlerError(str(e)) from None
    stats = None
    if args.feed:
        from bounce_handler.livequeue import feed

        stats = feed(settings, text, now, config_dir=config_dir)
        if stats.disabled or stats.failed or stats.malformed:
            print(f"bounces: {stats.summary()}", file=sys.stderr)
        if args.quiet:
            return EX_SOFTWARE if stats.failed else 0
    doc = qshape.shape(messages, now, queue=args.queue, by=args.by, top=max(1, args.top))
    doc["throttled_flags"] = _throttled_flags(settings)
    if stats is not None:
        doc["feed"] = stats.as_dict()
    if args.format == "json":
        render.write_json(doc)
    else:
        _table(doc, render.console())
        if stats is not None:
            print(stats.summary())
    return EX_SOFTWARE if stats is not None and stats.failed else 0


def _throttled_flags(settings) -> list[dict] | None:
    """The live throttled-destination flags from the store (None when it cannot be read).

    The queue is Postfix's view of a throttling destination, the flags are the bounce
    side's: shown together, "deferred x412 at yahoo.com" meets "flag #8 raised 10:02".
    """
    from sqlalchemy import select

    from bounce_handler.reports import db

    fl = db.flags
    try:
        with db.connect(settings) as conn:
            rows = conn.execute(
                select(fl.c.id, fl.c.subject, fl.c.state, fl.c.rule, fl.c.raised_at)
                .where(fl.c.kind == "throttled-destination", fl.c.state.in_(db.LIVE_STATES))
                .order_by(fl.c.raised_at)
            ).all()
    except BounceHandlerError as e:
        print(f"bounces: throttled-destination flags not shown: {e}", file=sys.stderr)
        return None
    from bounce_handler.reports.render import utc_text

    return [{"id": r.id, "subject": r.subject, "state": r.state, "rule": r.rule,
             "raised_at": utc_text(r.raised_at)} for r in rows]


def _table(doc: dict, con) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"{doc['queue']} queue: {doc['messages']} messages, "
              f"{doc['total']['total']} recipients, by {doc['by']} domain and age (minutes)",
              title_justify="left")
    t.add_column("domain", overflow="fold")
    t.add_column("T", justify="right")
    for label in doc["buckets_minutes"]:
        t.add_column(label, justify="right")
    t.add_row("[bold]TOTAL[/bold]", f"[bold]{doc['total']['total']}[/bold]",
              *(str(n) for n in doc["total"]["buckets"]))
    for r in doc["domains"]:
        t.add_row(escape(r["domain"]), str(r["total"]), *(str(n) for n in r["buckets"]))
    con.print(t)
    if doc["more_domains"]:
        con.print(f"  ... and {doc['more_domains']} more domains (--top)")
    if doc["reasons"]:
        rt = Table(title="Deferral reasons", title_justify="left")
        rt.add_column("domain", overflow="fold")
        rt.add_column("count", justify="right")
        rt.add_column("reason")
        rt.add_column("status")
        rt.add_column("text", overflow="fold")
        for e in doc["reasons"]:
            rt.add_row(escape(e["domain"]), f"×{e['count']}", e["reason"], e["status"] or "",
                       escape(e["signature"]))
        con.print(rt)
    if doc.get("throttled_flags"):
        con.print("[bold]Throttled-destination flags (bounce side):[/bold]")
        for f in doc["throttled_flags"]:
            con.print(f"  #{f['id']} {escape(f['subject'])} \\[{f['state']}] rule {f['rule']}, "
                      f"raised {f['raised_at'][:16].replace('T', ' ')} "
                      f"(bounces flags show {f['id']})")
