"""`bounces`: the administrator's command line, one module per verb.

    bounces [--config PATH] VERB [ARGS...]

Each verb lives in ``bounce_handler/cli/<verb>.py`` with ``register(subparsers)`` and
``run(args, settings) -> int``; its module docstring is its help text (first line the
summary, the rest the description with an example), and ``tests/test_cli_help.py`` checks
every verb has one.  Only the verb being run is imported, and verbs import their heavy
dependencies inside ``run``, so that `bounces parse` and `bounces --help` start quickly.

Errors: verbs raise ``BounceHandlerError`` (or a subclass); this module prints its message
as one line on stderr (through ``reports.render.visible``: a message may quote a value from
a bounce) and exits with its code.  Anything else is a bug: printed with a
traceback and exit 70 (EX_SOFTWARE).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bounce_handler import __version__
from bounce_handler.errors import EX_SOFTWARE, BounceHandlerError

# The verbs, in the order `bounces --help` lists them, with their one-line summaries.
# Only the verb being run is imported (the others cost ~50 ms of imports together); the
# summaries are repeated here for the top-level help, and tests/test_cli_help.py checks
# each is its module docstring's first line.
VERBS = {
    "db": "Create or upgrade the store's schema, and show where it is.",
    "config": "Check the configuration file and show every setting with its default and why.",
    "parse": "Show what the parser sees in bounce messages (files, directories, mbox files, "
    "stdin).",
    "verp": "Make VERP keys, and encode or decode signed bounce addresses.",
    "flags": "List, acknowledge, clear and recompute the flags the threshold engine raised.",
    "report": "Report bounces over a period, grouped, with the live flags on top and a "
    "per-hour chart.",
    "show": "Show one bounce: its parsed fields, the flags it contributed to, and the kept "
    "message.",
    "alert": "Alert on the flags raised since the last run, once; for cron and systemd timers.",
    "export": "Export dead recipients or compromised senders as a Postfix access map, CSV or "
    "JSON.",
    "suppress": "Manage manual suppression entries (included in `bounces export`).",
    "queue": "Show the live Postfix queue by destination domain and age, like qshape, with why.",
    "prune": "Delete old bounce rows and old kept raw messages (housekeeping, for cron).",
    "doctor": "Check the live Postfix and handler configuration for the mistakes that lose "
    "bounces.",
    "daemon": "Run the resident daemon: Postfix socketmap lookups (and LMTP intake when "
    "configured).",
}


def verb_module(name: str):
    """Import one verb's module."""
    return importlib.import_module(f"bounce_handler.cli.{name}")


def _chosen_verb(argv: list[str]) -> str | None:
    """The verb on the command line (skipping the global options), if any."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return arg if arg in VERBS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `bounces` parser: every verb listed, only the chosen one (or all) fully built."""
    parser = argparse.ArgumentParser(
        prog="bounces",
        description="Inspect, judge and report the bounces bounce-handler recorded.",
        epilog="Configuration: --config PATH, else $BOUNCE_HANDLER_CONFIG, "
        "else /etc/bounce-handler/config.toml.",
    )
    parser.add_argument("--config", metavar="PATH", help="configuration file (TOML)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    chosen = None if argv is None else _chosen_verb(argv)
    for name, summary in VERBS.items():
        if argv is None or name == chosen:
            verb_module(name).register(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def verb_parser(sub, name: str, module_doc: str | None, **kw) -> argparse.ArgumentParser:
    """Add a verb's parser whose help and description come from its module docstring."""
    doc = (module_doc or "").strip()
    summary = doc.splitlines()[0] if doc else ""
    return sub.add_parser(
        name,
        help=summary,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kw,
    )


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    from bounce_handler import settings as settings_mod

    settings = None
    try:
        settings = settings_mod.load(args.config)
        return int(args.func(args, settings) or 0)
    except settings_mod.ConfigError as e:
        _error(e, settings)
        return 78  # EX_CONFIG
    except BounceHandlerError as e:
        _error(e, settings)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `bounces report | head`: the reader went away; not an error worth a traceback.
        return 0
    except Exception:
        import traceback

        traceback.print_exc()
        return EX_SOFTWARE


def _error(e: BaseException, settings) -> None:
    """Print the one error line.

    The store's passwords masked (whatever echoed them), a driver's multi-line message
    joined, anything else shown, not obeyed.
    """
    from bounce_handler.redaction import redact, url_secrets
    from bounce_handler.reports.render import visible

    url = settings.database.url if settings is not None else ""
    text = "; ".join(ln.strip() for ln in str(e).split("\n") if ln.strip())
    print(f"bounces: {visible(redact(text, *url_secrets(url)))}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
