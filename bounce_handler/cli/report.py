"""Report bounces over a period, grouped, with the live flags on top and a per-hour chart.

The period is --since (default 24h) to --until (default now): a duration back from
--until (90m, 24h, 7d, 2w), 'today', 'yesterday', or an ISO date or date-time in UTC
(2026-11-24, 2026-11-24T10:00). Groups are the --top N busiest keys, busiest first;
--by day and --by hour list every bucket of the period in order instead.

--format table prints the open/acked flags, the totals, a one-line chart of bounces per
hour over the period and the grouping (colour only on a terminal); json prints all of it
as one document; csv prints the grouping only (key,count,share,first,last,flag), ending
with an "(others)" row for the events outside the --top N groups, as the table does.
Times in json and csv are RFC 3339 UTC (2026-11-24T10:15:00Z).

The flags come most urgent first: every compromised sender, then every throttled
destination, then the --top N newest dead recipients and a digest of the rest (how many,
by domain, the commands for the full list and the export).  A windowed flag's evidence
is shown as the judge counts it now (its stored numbers are refreshed at most once a
minute while bounces arrive).

Examples:
    bounces report
    bounces report --since 7d --by sender --top 10
    bounces report --since 2026-11-01 --until 2026-11-08 --by day --format csv
    bounces report --since yesterday --until today --by domain --format json

"""

from __future__ import annotations

from bounce_handler.cli import verb_parser

FORMATS = ("table", "json", "csv")


def register(sub) -> None:
    """Add `bounces report`."""
    from bounce_handler.reports import GROUPINGS, KINDS

    p = verb_parser(sub, "report", __doc__)
    p.add_argument("--since", metavar="WHEN", default="24h",
                   help="start of the period (default: 24h ago)")
    p.add_argument("--until", metavar="WHEN", help="end of the period (default: now)")
    p.add_argument("--by", choices=GROUPINGS, default="reason", help="grouping (default reason)")
    p.add_argument("--top", type=_positive, default=20, metavar="N",
                   help="show the N largest groups and the N newest dead-recipient flags "
                   "(default 20; compromised senders and throttled destinations: all)")
    p.add_argument("--kind", choices=KINDS, help="only this kind of event (default: all)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def run(args, settings) -> int:
    """Run `bounces report`."""
    from bounce_handler.judge import rules
    from bounce_handler.reports import db, render, summary
    from bounce_handler.reports.period import Period, utcnow

    now = utcnow()
    period = Period.parse(args.since, args.until, now)
    provider_of = rules.parse(settings.rules).provider_of if args.by == "domain" else None
    try:
        judged_by = rules.for_settings(settings)
    except rules.ConfigError:
        judged_by = None  # the pipe says so loudly; the report still shows what is stored
    with db.connections(settings, 2) as (conn, side):
        rep = summary.build(conn, period, by=args.by, top=args.top, kind=args.kind, now=now,
                            side=side, provider_of=provider_of, rules=judged_by)
    if args.format == "json":
        render.write_json(rep.as_dict())
    elif args.format == "csv":
        rows = [[_key_text(g.key), g.count, f"{g.share:.4f}", render.utc_text(g.first),
                 render.utc_text(g.last), _flag_text(g.flag)] for g in rep.groups]
        if rep.others:
            share = rep.others / rep.total if rep.total else 0.0
            rows.append(["(others)", rep.others, f"{share:.4f}", None, None, ""])
        render.write_csv(["key", "count", "share", "first", "last", "flag"], rows)
    else:
        _table(rep, render.console())
    return 0


def _key_text(key) -> str:
    from bounce_handler.reports.render import utc_text

    if hasattr(key, "isoformat"):
        return utc_text(key)
    return "" if key is None else str(key)


def _flag_text(flag) -> str:
    return f"#{flag['id']} {flag['state']} {flag['rule']}" if flag else ""


def _table(rep, con) -> None:
    from rich.markup import escape
    from rich.table import Table

    from bounce_handler.reports.render import short_time

    p = rep.period
    wide = con.width >= 100
    when = short_time if wide else _compact_time
    what = f" ({rep.kind} only)" if rep.kind else ""
    con.print(f"[bold]Bounces {short_time(p.start)} .. {short_time(p.end)} UTC{what}[/bold]")

    if rep.flags:
        t = Table(title=f"Live flags: {rep.flags_live} ({_by_kind(rep.flags_by_kind)})",
                  title_justify="left")
        cols = ["id", "kind", "subject", "state", "rule", "raised"]
        # The advice column only when a flag has advice (throttled destinations do): an
        # empty column would take the room the evidence needs, or be cut off the edge.
        advice = wide and any(f["advice"] for f in rep.flags)
        cols += (["evidence", "advice"] if advice else ["evidence"]) if wide else []
        # An address is read whole: the subject column is as wide as the longest (up to 40),
        # and only the free-text columns fold.
        subject_width = min(40, max(16, *(len(f["subject"]) for f in rep.flags)))
        for col in cols:
            folds = col in ("subject", "advice", "evidence")
            t.add_column(col, overflow="fold" if folds else "ellipsis", no_wrap=not folds,
                         min_width=subject_width if col == "subject" else None)
        for f in rep.flags:
            style = "bold red" if f["state"] == "open" else "yellow"
            row = [str(f["id"]), f["kind"], escape(f["subject"]), f"[{style}]{f['state']}[/]",
                   f["rule"], _compact_time(f["raised_at"])]  # the year is in the heading
            if wide:
                row.append(escape(_evidence_text(f)))
                if advice:
                    row.append(escape(_first_line(f["advice"])))
            t.add_row(*row)
        con.print(t)
        _dead_digest(rep, con)
    else:
        con.print("No live flags.")

    parts = []
    for kind, row in rep.totals.items():
        if row["total"]:
            detail = f"{row['hard']:,} hard, {row['soft']:,} soft"
            parts.append(f"{row['total']:,} {kind} ({detail})" if kind == "bounce"
                         else f"{row['total']:,} {kind}")
    con.print(f"Total: {rep.total:,} events" + (": " + "; ".join(parts) if parts else ""))
    if rep.quarantined:
        con.print(f"[yellow]Quarantined (not understood): {rep.quarantined:,}[/yellow]")

    _chart(rep, con)

    t = Table(title=f"By {rep.by}", title_justify="left")
    count_w = max([len(f"{g.count:,}") for g in rep.groups] + [len(f"{rep.others:,}"), 5])
    if rep.by in ("day", "hour"):
        t.add_column(rep.by, no_wrap=True)
        t.add_column("count", justify="right", no_wrap=True)
        t.add_column("share", justify="right", no_wrap=True)
        key_w = 10 if rep.by == "day" else 16
        bar_w = max(5, min(40, con.width - key_w - count_w - 6 - 13))
        t.add_column("", no_wrap=True, overflow="crop", width=bar_w)
        peak = max((g.count for g in rep.groups), default=0)
        for g in rep.groups:
            key = g.key.strftime("%Y-%m-%d" if rep.by == "day" else "%Y-%m-%d %H:00")
            bar = "█" * (round(g.count / peak * bar_w) if peak else 0)
            t.add_row(key, f"{g.count:,}", f"{g.share:.1%}", f"[cyan]{bar}[/cyan]")
        con.print(t)
        return

    flag_w = max([len(f"#{g.flag['id']} {g.flag['rule']}") for g in rep.groups if g.flag]
                 + [0])
    with_flags = flag_w > 0
    time_w = 16 if wide else 11
    fixed = [count_w, 6, time_w] + ([time_w] if wide else [])
    fixed += [max(4, flag_w)] if with_flags else []
    # Borders and padding: 3 per column plus 1. The key column (addresses) gets the rest,
    # folding inside it rather than pushing the table past the terminal's edge.
    room = con.width - sum(fixed) - 3 * (len(fixed) + 1) - 1
    longest = max([len(str(g.key or "(none)")) for g in rep.groups] + [len(rep.by), 8])
    t.add_column(rep.by, overflow="fold", width=max(8, min(longest, room)))
    t.add_column("count", justify="right", no_wrap=True)
    t.add_column("share", justify="right", no_wrap=True)
    if wide:
        t.add_column("first", no_wrap=True)
    t.add_column("last", no_wrap=True)
    if with_flags:
        t.add_column("flag", no_wrap=True, overflow="ellipsis")
    for g in rep.groups:
        row = [escape(g.key) if g.key is not None else "(none)", f"{g.count:,}",
               f"{g.share:.1%}"]
        row += [when(g.first)] if wide else []
        row += [when(g.last)]
        if with_flags:
            row.append(f"[bold red]#{g.flag['id']} {g.flag['rule']}[/]" if g.flag else "")
        t.add_row(*row)
    if rep.others:
        pad = [""] * (len(fixed) - 2)
        t.add_row("[dim](others)[/dim]", f"{rep.others:,}",
                  f"{rep.others / rep.total:.1%}" if rep.total else "", *pad)
    con.print(t)


# The evidence numbers worth a table cell (flags.py `flags list` shows the same ones).
EVIDENCE_KEYS = ("bounces", "domains", "spam", "complaints", "deferrals", "days", "status",
                 "reason")


def _by_kind(by_kind: dict) -> str:
    """``1 compromised sender, 6 dead recipients``: live flags per kind, most urgent first."""
    nouns = {"compromised-sender": "compromised sender",
             "throttled-destination": "throttled destination",
             "dead-recipient": "dead recipient"}
    parts = []
    for kind, n in by_kind.items():
        total = n["open"] + n["acked"]
        noun = nouns.get(kind, kind)
        parts.append(f"{total} {noun}{'' if total == 1 else 's'}")
    return ", ".join(parts)


def _evidence_text(f: dict) -> str:
    """The flag's numbers, as they stand now when the judge counts more than it stored."""
    now = f.get("evidence_now")
    e = now["evidence"] if now else (f.get("evidence") or {})
    # (A throttled destination's "domains" is its list of domains, not a count.)
    text = " ".join(f"{k}={e[k]}" for k in EVIDENCE_KEYS
                    if e.get(k) is not None and not isinstance(e[k], (list, dict)))
    if now:
        text += f" (to {now['as_of'][5:16]})"
    return text


def _dead_digest(rep, con) -> None:
    """The dead recipients not listed: how many, where, and how to get them all."""
    from rich.markup import escape

    d = rep.dead_recipients
    rest = d["live"] - d["listed"]
    if rest <= 0:
        return
    where = ", ".join(f"{escape(x['domain'])} {x['count']:,}" for x in d["by_domain"])
    more = d["domains"] - len(d["by_domain"])
    where += f", {more:,} more domains" if more > 0 else ""
    con.print(f"  ... and {rest:,} more dead recipients ({d['live']:,} live, "
              f"{d['raised_in_period']:,} raised in the period; by domain: {where})")
    con.print(f"  all of them: {d['list_command']}; as a Postfix access map: "
              f"{d['export_command']}")


def _first_line(advice: str | None) -> str:
    """The advice's first line (the rest, often a config snippet: `bounces flags show`)."""
    lines = [ln.lstrip("# ").strip() for ln in (advice or "").splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[0] + (" (more: bounces flags show)" if len(lines) > 1 else "")


def _compact_time(value) -> str:
    """``11-24 10:15``: month, day and time, for narrow terminals."""
    from bounce_handler.reports.render import short_time

    text = short_time(value)
    return text[5:] if len(text) == 16 else text


def _chart(rep, con) -> None:
    """One line of bounces per hour (or per few hours) over the period, with its ends."""
    from bounce_handler.reports.render import resample, short_time, sparkline

    values = [n for _, n in rep.series]
    if not values:
        return
    line = sparkline(resample(values, max(10, min(con.width - 2, 160))))
    hours = int(rep.bucket.total_seconds() // 3600) * -(-len(values) // len(line))
    unit = "hour" if hours == 1 else f"{hours} hours"
    peak = max(resample(values, len(line)))
    con.print(f"Per {unit}, peak {peak:,}:")
    con.print(f"[cyan]{line}[/cyan]")
    first, last = short_time(rep.series[0][0]), short_time(rep.series[-1][0])
    if len(line) >= len(first) + len(last) + 2:
        con.print(f"[dim]{first}{' ' * (len(line) - len(first) - len(last))}{last}[/dim]")
    else:
        con.print(f"[dim]{first} .. {last}[/dim]")
