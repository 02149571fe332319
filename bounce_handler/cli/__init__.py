"""`bounces`: the administrator's command line, one module per verb.

    bounces [--config PATH] VERB [ARGS...]

Each verb lives in ``bounce_handler/cli/<verb>.py`` with ``register(subparsers)`` and
``run(args, settings) -> int``; its module docstring is its help text (first line the
summary, the rest the description with an example), and ``tests/test_cli_help.py`` checks
every verb has one.  Verbs import their heavy dependencies inside ``run`` so that
``bounces --help`` stays quick.

Errors: verbs raise ``BounceHandlerError`` (or a subclass); this module prints its message
as one line on stderr and exits with its code.  Anything else is a bug: printed with a
traceback and exit 70 (EX_SOFTWARE).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bounce_handler import __version__
from bounce_handler.errors import EX_SOFTWARE, BounceHandlerError

# The verbs, in the order `bounces --help` lists them. A verb whose module is missing is
# a packaging bug, not something to skip quietly.
VERBS = (
    "db",
    "config",
    "parse",
    "verp",
    "flags",
    "report",
    "show",
    "alert",
    "export",
    "suppress",
    "queue",
    "prune",
    "doctor",
    "daemon",
)


def _verb_modules():
    for name in VERBS:
        try:
            yield name, importlib.import_module(f"bounce_handler.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"bounce_handler.cli.{name}":
                raise


def build_parser() -> argparse.ArgumentParser:
    """The whole `bounces` argument parser (used by main and by the help-text test)."""
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
    for _name, module in _verb_modules():
        module.register(sub)
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
    parser = build_parser()
    args = parser.parse_args(argv)
    from bounce_handler import settings as settings_mod

    try:
        settings = settings_mod.load(args.config)
        return int(args.func(args, settings) or 0)
    except settings_mod.ConfigError as e:
        print(f"bounces: {e}", file=sys.stderr)
        return 78  # EX_CONFIG
    except BounceHandlerError as e:
        print(f"bounces: {e}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
