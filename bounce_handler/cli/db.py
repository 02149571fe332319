r"""Create or upgrade the store's schema, and show where it is.

The schema is owned by the alembic migrations shipped with the package; run this after
every upgrade of bounce-handler (the pipe exits 75, and Postfix keeps the bounces queued,
while the database is behind).

`copy --to URL` copies every table of the store (--from URL, default [database] url) into
another one, SQLite into PostgreSQL or back: the target's schema is made first (as `db
upgrade` does), rows keep their ids (flag #12 stays #12), PostgreSQL's sequences are set
past them, and at the end every table's row count and highest id are compared (exit 65 if
anything differs).  Interrupted, it resumes where it stopped when run again; run again
after a change, it brings the target up to date; it refuses a target holding another
store's rows.  Hold the bounce transport meanwhile (deploy/README.md, "From SQLite to
PostgreSQL"), then switch [database] url.  A progress bar on a terminal; --format json
for the per-table figures.

Examples:
    bounces db upgrade
    bounces db current
    bounces --config /etc/bounce-handler/config.toml db downgrade base
    bounces db copy --to postgresql+psycopg://bounces:SECRET@db.example/bounces
    bounces db copy --from postgresql+psycopg://bounces@db.example/bounces \
        --to sqlite:////var/lib/bounce-handler/bounces.db

"""

from __future__ import annotations

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_USAGE, BounceHandlerError, StoreUnavailable


def register(sub) -> None:
    """Add `bounces db`."""
    p = verb_parser(sub, "db", __doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    up = actions.add_parser("upgrade", help="apply migrations (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    down = actions.add_parser("downgrade", help="undo migrations down to REVISION (or 'base')")
    down.add_argument("revision")
    actions.add_parser("current", help="print the revision the database is at, and head")
    cp = actions.add_parser(
        "copy", help="copy every table into another store (SQLite <-> PostgreSQL)",
        description="Copy the store into another one. "
        "Example: bounces db copy --to postgresql+psycopg://bounces:SECRET@db/bounces")
    cp.add_argument("--to", required=True, metavar="URL", help="the target store's URL")
    cp.add_argument("--from", dest="source", metavar="URL",
                    help="the source store's URL (default: [database] url)")
    cp.add_argument("--batch", type=int, default=1000, metavar="N",
                    help="rows per target transaction (default 1000)")
    cp.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces db ACTION`."""
    from sqlalchemy.exc import OperationalError

    from bounce_handler.cli import caches
    from bounce_handler.store import engine

    url = settings.database.url
    if args.action == "copy":
        return _copy(args, settings)
    try:
        if args.action == "upgrade":
            engine.upgrade(settings, args.revision)
            # The pipe reads the config through this cache (tomllib costs ~8 ms a bounce),
            # and its patterns precompiled (~7 ms a vendor-format bounce).
            caches.write(settings)
            print(f"database at {engine.current_revision(settings)} ({_safe(url)})")
        elif args.action == "downgrade":
            engine.downgrade(settings, args.revision)
            print(f"database at {engine.current_revision(settings) or 'base'} ({_safe(url)})")
        else:
            current = engine.current_revision(settings)
            head = engine.head_revision()
            state = "up to date" if current == head else "needs `bounces db upgrade`"
            print(f"current {current or 'none'}, head {head}: {state} ({_safe(url)})")
            return 0 if current == head else 1
    except OperationalError as e:
        raise StoreUnavailable(_safe(f"{url}: {e.orig}", url)) from None
    except OSError as e:
        raise BounceHandlerError(_safe(f"{url}: {e}", url)) from None
    return 0


def _safe(text: str, url: str | None = None) -> str:
    """`text` with every password masked (secrets never appear in output).

    The URL's own (user:password@ or ?password=), and whatever a driver echoed of it.
    """
    from bounce_handler.redaction import redact, url_secrets

    return redact(text, *url_secrets(url or text))


def _copy(args, settings) -> int:
    """`bounces db copy`: schema on the target, every table, sequences, verification."""
    import sys
    from contextlib import ExitStack

    from sqlalchemy.exc import OperationalError

    from bounce_handler import settings as settings_mod
    from bounce_handler.reports import render
    from bounce_handler.reports.db import engine_for
    from bounce_handler.store import copy, engine

    source_url = args.source or settings.database.url
    if source_url == args.to:
        raise BounceHandlerError("--to names the source store itself", EX_USAGE)

    def at(url: str):
        return settings_mod.from_dict(
            {"database": {"url": url, "busy_timeout": settings.database.busy_timeout}})

    src_settings, dst_settings = at(source_url), at(args.to)
    head = engine.head_revision()
    con = render.console(file=sys.stderr)
    where = source_url  # which store an OperationalError is about
    try:
        src = engine_for(src_settings)  # a missing SQLite file is an error, not created
        current = engine.current_revision(src_settings)
        if current != head:
            raise BounceHandlerError(
                f"the source is at {current or 'no revision'}, not {head}: run `bounces db "
                f"upgrade` on it first ({_safe(source_url)})", EX_USAGE)
        where = args.to
        engine.upgrade(dst_settings)
        dst = engine.make_engine(dst_settings)
        where = f"{source_url} -> {args.to}"
        try:
            with ExitStack() as stack:
                results = copy.copy(src, dst, batch=args.batch,
                                    progress=_progress(stack, con))
        finally:
            src.dispose()
            dst.dispose()
    except OperationalError as e:
        named = " -> ".join(_safe(u) for u in where.split(" -> "))
        raise StoreUnavailable(f"{named}: {e.orig}") from None
    if args.format == "json":
        render.write_json({"from": _safe(source_url), "to": _safe(args.to), "verified": True,
                           "tables": [r.as_dict() for r in results]})
        return 0
    print(f"copied {_safe(source_url)} -> {_safe(args.to)}")
    print(f"{'table':<16} {'source':>10} {'target':>10} {'this run':>10}")
    for r in results:
        removed = f", {r.removed:,} removed" if r.removed else ""
        print(f"{r.name:<16} {r.source:>10,} {r.target:>10,} {r.copied:>10,}{removed}")
    print("verified: every table has the same number of rows and the same highest id")
    return 0


def _progress(stack, con):
    """A per-table progress bar on a terminal (stderr), else None."""
    if not con.is_terminal:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = stack.enter_context(Progress(
        "[progress.description]{task.description:<14}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=con))

    def start(name: str, total: int):
        task = bar.add_task(name, total=total)
        return lambda n: bar.advance(task, n)

    return start
