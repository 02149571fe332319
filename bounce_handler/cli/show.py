r"""Show one bounce: its parsed fields, the flags it contributed to, and the kept message.

ID is a bounce event id (`bounces flags show` lists a flag's evidence by event id); with
--message it is a message id instead (every message has one, including quarantined ones,
which have no events).  An address instead of an id lists that address's latest events,
as recipient or sender, with their ids.  --raw prints the kept message exactly as it was
received (decompressed), nothing else; on a terminal its control characters are shown as
escapes (\x1b) rather than sent to the terminal (pipe it, e.g. into less, for the bytes).
Times in json are RFC 3339 UTC (2026-11-24T10:15:00Z).

Examples:
    bounces show 1234
    bounces show 1234 --raw | less
    bounces show --message 88 --format json
    bounces show alice@example.net

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_USAGE, BounceHandlerError


def register(sub) -> None:
    """Add `bounces show`."""
    p = verb_parser(sub, "show", __doc__)
    p.add_argument("id", metavar="ID|ADDRESS", help="bounce event id, or an address")
    p.add_argument("--message", action="store_true", help="ID is a message id")
    p.add_argument("--raw", action="store_true", help="print the kept raw message only")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces show`."""
    from bounce_handler.reports import db, render, show

    ident = args.id.strip()
    with db.connect(settings) as conn:
        if not ident.isdigit():
            if "@" not in ident:
                raise BounceHandlerError(f"{ident!r} is neither an id nor an address", EX_USAGE)
            rows = show.for_address(conn, ident)
            if args.format == "json":
                render.write_json(rows)
            else:
                _address_table(ident, rows, render.console())
            return 0 if rows else 1
        if args.message:
            doc = show.message(conn, int(ident))
            message_id = int(ident)
        else:
            doc = show.event(conn, int(ident))
            message_id = doc["message_id"]
        if args.raw:
            data = show.raw(conn, message_id)
            out = sys.stdout.buffer
            if sys.stdout.isatty():
                # The bytes are a stranger's: on a terminal, ESC and friends are shown,
                # not obeyed (render.visible); through a pipe they stay exact.
                text = data.decode("utf-8", "backslashreplace").replace("\r\n", "\n")
                data = render.visible(text, newlines=True)
                data = data.encode("utf-8") + (b"" if data.endswith("\n") else b"\n")
            out.write(data)
            out.flush()
            return 0
    if args.format == "json":
        render.write_json(doc)
    else:
        _detail(doc, render.console(), is_message=args.message)
    return 0


def _fields_table(title: str, fields: dict, skip=()):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in fields.items():
        if k in skip or v is None or v == "":
            continue
        t.add_row(k, escape(str(v)))
    return t


def _detail(doc: dict, con, *, is_message: bool) -> None:
    from rich.markup import escape

    if is_message:
        con.print(_fields_table(f"Message #{doc['id']}", doc,
                                skip=("events", "flags", "quarantine")))
        if doc.get("quarantine"):
            q = doc["quarantine"]
            con.print(f"[yellow]Quarantined: {escape(q['reason'])}: "
                      f"{escape(q.get('detail') or '')}[/yellow]")
        for e in doc["events"]:
            con.print(_fields_table(f"Event #{e['id']}", e, skip=("message_id",)))
    else:
        con.print(_fields_table(f"Bounce event #{doc['id']}", doc, skip=("message", "flags")))
        m = doc["message"]
        con.print(_fields_table(f"Message #{m['id']}", m, skip=("quarantine",)))
    if doc["flags"]:
        con.print("[bold]Flags it is evidence for:[/bold]")
        for f in doc["flags"]:
            con.print(f"  #{f['id']} {f['kind']} {escape(f['subject'])} \\[{f['state']}] "
                      f"rule {f['rule']}, raised {f['raised_at']}")
    else:
        con.print("Evidence for no flag.")


def _address_table(address: str, rows: list[dict], con) -> None:
    """The address's latest events, one line each where the terminal allows.

    The short columns never wrap; only the other party's address folds, in the width that
    is left.  The queried address is in the title, so a column that would repeat it on
    every row (recipient, when it is only ever the recipient) is left out.
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        con.print(f"No events for {escape(address)}.")
        return
    low = address.strip().strip("<>").lower()
    as_rcpt = sum(1 for r in rows if (r["recipient"] or "").lower() == low)
    as_sender = sum(1 for r in rows if (r["sender"] or "").lower() == low)
    roles = [f"{n} as {role}" for n, role in ((as_rcpt, "recipient"), (as_sender, "sender"))
             if n]
    t = Table(title=f"Latest events for {escape(address)} ({', '.join(roles) or 'newest first'})",
              title_justify="left", box=box.SIMPLE_HEAD)
    narrow = con.width < 100
    for col in ("id", "occurred_at", "kind", "status", "reason"):
        t.add_column(col, no_wrap=True, justify="right" if col == "id" else "left")
    show = [c for c, n in (("recipient", len(rows) - as_rcpt), ("sender", len(rows) - as_sender))
            if n]
    for col in show:
        t.add_column(col, overflow="fold", min_width=12)
    for r in rows:
        when = str(r["occurred_at"] or "")[:19].replace("T", " ")
        cells = [str(r["id"]), when[5:16] if narrow else when, r["kind"], r["status"] or "-",
                 r["reason"]]
        cells += [escape(r[c] or "-") for c in show]
        t.add_row(*cells)
    con.print(t)
