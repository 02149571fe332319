"""Check the configuration file and show every setting with its default and why.

`check` parses the file (the same code the pipe uses, [rules] included) and refreshes
the cache the pipe reads, so run it after every edit: the pipe sees a changed file
anyway (the cache is keyed by the file's device, inode, size and mtime, and by the
settings this version knows), but a fresh cache saves it ~8 ms a bounce.

`show` prints every setting in effect as TOML, the [rules.*] tables included (with
their defaults filled in); --defaults adds each key's default and why.  The output is a
valid configuration file (the database password masked).

Examples:
    bounces config check
    bounces config show
    bounces --config ./test.toml config show --defaults

"""

from __future__ import annotations

from bounce_handler.cli import verb_parser


def register(sub) -> None:
    """Add `bounces config`."""
    p = verb_parser(sub, "config", __doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("check", help="validate the file and refresh the pipe's cache")
    show = actions.add_parser("show", help="print the effective settings as TOML")
    show.add_argument("--defaults", action="store_true", help="with each key's why")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces config ACTION`."""
    if args.action == "check":
        from bounce_handler.cli import caches

        # The [rules] tables are the judge's to validate; a typo there would otherwise
        # only surface as the pipe deferring every bounce (exit 75).
        from bounce_handler.judge.rules import for_settings

        for_settings(settings)
        cache = caches.write(settings)
        where = settings.path or "(no file: all defaults)"
        print(f"{where}: ok" + (f"; cache {cache}" if cache else ""))
        return 0
    print(render_toml(settings, with_docs=args.defaults))
    return 0


def render_toml(settings, with_docs: bool = False) -> str:
    """The settings as a TOML document (secrets in the database URL masked)."""
    import textwrap

    from bounce_handler.settings import SCHEMA

    lines: list[str] = []
    for section, keys in SCHEMA.items():
        lines.append(f"[{section}]")
        values = getattr(settings, section).as_dict()
        for key, (_typ, default, why) in keys.items():
            if with_docs:
                for w in textwrap.wrap(why, 88):
                    lines.append(f"# {w}")
                lines.append(f"# default: {_toml_value(default)}")
            value = values[key]
            if section == "database" and key == "url":
                from bounce_handler.redaction import redact, url_secrets

                # user:password@ and ?password= alike (SQLAlchemy's hide_password
                # masks only the first).
                value = redact(value, *url_secrets(value))
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    # The judge's tables (judge/rules.py OPTIONS): effective values, defaults filled in.
    from bounce_handler.judge.rules import OPTIONS, for_settings

    effective = for_settings(settings).as_dict()
    for section, keys in OPTIONS.items():
        lines.append(f"[rules.{section}]")
        for key, (_typ, default, why) in keys.items():
            if with_docs:
                for w in textwrap.wrap(why, 88):
                    lines.append(f"# {w}")
                lines.append(f"# default: {_toml_value(default)}")
            lines.append(f"{key} = {_toml_value(effective[section][key])}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: object) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v) if isinstance(v, (set, frozenset)) else v
        return "[" + ", ".join(_toml_value(x) for x in items) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}"
                                for k, x in v.items()) + " }"
    return json.dumps(v)  # a TOML basic string is a JSON string for our values
