"""Create or upgrade the store's schema, and show where it is.

The schema is owned by the alembic migrations shipped with the package; run this after
every upgrade of bounce-handler (the pipe exits 75, and Postfix keeps the bounces queued,
while the database is behind).

Examples:
    bounces db upgrade
    bounces db current
    bounces --config /etc/bounce-handler/config.toml db downgrade base

"""

from __future__ import annotations

from bounce_handler.cli import verb_parser
from bounce_handler.errors import BounceHandlerError, StoreUnavailable


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
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces db ACTION`."""
    from sqlalchemy.exc import OperationalError

    from bounce_handler.cli import caches
    from bounce_handler.store import engine

    url = settings.database.url
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
        raise StoreUnavailable(f"{_safe(url)}: {e.orig}") from None
    except OSError as e:
        raise BounceHandlerError(f"{_safe(url)}: {e}") from None
    return 0


def _safe(url: str) -> str:
    """The URL with any password masked (secrets never appear in output)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
