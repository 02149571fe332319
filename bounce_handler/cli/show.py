"""Show one bounce: its parsed fields, the flags it contributed to, and the kept message.

ID is a bounce event id (`bounces flags show` lists a flag's evidence by event id); with
--message it is a message id instead (every message has one, including quarantined ones,
which have no events).  An address instead of an id lists that address's latest events,
as recipient or sender, with their ids.  --raw prints the kept
message exactly as it was received (decompressed), nothing else.

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
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        con.print(f"No events for {escape(address)}.")
        return
    t = Table(title=f"Latest events for {escape(address)}", title_justify="left")
    for col in ("id", "occurred_at", "kind", "recipient", "sender", "status", "reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r["id"]), str(r["occurred_at"])[:19].replace("T", " "), r["kind"],
                  escape(r["recipient"] or ""), escape(r["sender"] or ""), r["status"] or "",
                  r["reason"])
    con.print(t)
