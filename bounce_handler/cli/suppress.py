"""Manage manual suppression entries (included in `bounces export`).

KIND is 'recipient' (treat the address as dead) or 'sender' (hold mail from this
envelope sender or SASL login).  import reads a file ('-' for stdin): CSV with a header
line naming a 'value' column (and optionally 'kind' and 'note'; what `bounces export
--format csv` writes), or one value per line with an optional ',note'.

Examples:
    bounces suppress add recipient alice@example.net --note "left the company"
    bounces suppress remove recipient alice@example.net
    bounces suppress import --kind recipient old-list.txt
    bounces suppress list --format csv

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser
from bounce_handler.errors import BounceHandlerError

KINDS = ("recipient", "sender")


def register(sub) -> None:
    """Add `bounces suppress`."""
    p = verb_parser(sub, "suppress", __doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="add (or re-annotate) an entry")
    add.add_argument("kind", choices=KINDS)
    add.add_argument("value", metavar="ADDRESS")
    add.add_argument("--note", help="why (shown in exports)")
    rm = actions.add_parser("remove", help="remove an entry")
    rm.add_argument("kind", choices=KINDS)
    rm.add_argument("value", metavar="ADDRESS")
    imp = actions.add_parser("import", help="add every entry of a file ('-': stdin)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--kind", choices=KINDS, help="kind of a file without a kind column")
    ls = actions.add_parser("list", help="print the entries")
    ls.add_argument("--kind", choices=KINDS)
    ls.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces suppress ACTION`."""
    from bounce_handler.reports import db, render, suppressions
    from bounce_handler.reports.period import utcnow

    now = utcnow()
    if args.action == "list":
        with db.connect(settings) as conn:
            rows = suppressions.entries(conn, args.kind)
        if args.format == "json":
            render.write_json(rows)
        elif args.format == "csv":
            render.write_csv(["value", "kind", "source", "note", "since"],
                             ([r["value"], r["kind"], r["source"], r["note"], r["created_at"]]
                              for r in rows))
        else:
            _table(rows, render.console())
        return 0
    if args.action == "import":
        try:
            if args.file == "-":
                text = sys.stdin.read()
            else:
                with open(args.file, encoding="utf-8") as fp:
                    text = fp.read()
        except OSError as e:
            raise BounceHandlerError(f"cannot read {args.file}: {e.strerror}") from None
        rows = suppressions.parse_import(text, args.kind)
        con = render.console(file=sys.stderr)
        added = 0
        with db.connect(settings, write=True) as conn, \
                render.progress(con, "importing", len(rows)) as advance:
            for kind, value, note in rows:
                added += suppressions.add(conn, kind, value, note, now, source="import")
                advance()
        print(f"imported {len(rows)} entries: {added} new, {len(rows) - added} already there")
        return 0
    with db.connect(settings, write=True) as conn:
        if args.action == "add":
            new = suppressions.add(conn, args.kind, args.value, args.note, now)
            print(f"{'added' if new else 'already there'}: {args.kind} "
                  f"{suppressions.normalize(args.value)}")
            return 0
        gone = suppressions.remove(conn, args.kind, args.value)
    if not gone:
        print(f"no {args.kind} entry {args.value}", file=sys.stderr)
        return 1
    print(f"removed: {args.kind} {suppressions.normalize(args.value)}")
    return 0


def _table(rows, con) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        con.print("No suppression entries.")
        return
    t = Table(title=f"Suppressions: {len(rows)}", title_justify="left")
    for col in ("kind", "value", "source", "note", "since"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["kind"], escape(r["value"]), r["source"], escape(r["note"] or ""),
                  r["created_at"][:16].replace("T", " "))
    con.print(t)
