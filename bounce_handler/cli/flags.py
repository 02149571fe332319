"""List, acknowledge, clear and recompute the flags the threshold engine raised.

Flags are compromised-sender, dead-recipient and throttled-destination conditions, raised
once per subject as the bounce that crosses a threshold is recorded. Ack one when you are
on it (it keeps collecting evidence), clear it when it is resolved (it is raised again only
if the condition returns afterwards). `recompute` rebuilds the live flags from the whole
history after a change to [rules]; `rules` prints the numbered rules in effect.

Examples:
    bounces flags list
    bounces flags list --kind compromised-sender --format json
    bounces flags show 12
    bounces flags ack 12 --note "password reset, ticket 4711"
    bounces flags clear 12
    bounces flags recompute
    bounces flags rules

"""

from __future__ import annotations

import builtins

from bounce_handler.cli import verb_parser

KINDS = ("compromised-sender", "dead-recipient", "throttled-destination")


def print(*values, **kw) -> None:  # noqa: A001 - on purpose: every print below goes through it
    """``print`` for this verb, through ``render.visible``.

    Each line it writes quotes the store (subjects, evidence, advice, recipients), i.e.
    text from bounces: control characters are shown as escapes, never sent to the
    terminal.  JSON output is unchanged by it: ``json.dumps`` escapes everything
    non-ASCII here.
    """
    from bounce_handler.reports.render import visible

    builtins.print(*(visible(v, newlines=True) for v in values), **kw)


def register(sub) -> None:
    """Add `bounces flags`."""
    p = verb_parser(sub, "flags", __doc__)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    ls = actions.add_parser(
        "list",
        help="list flags (default: the live ones, open and acked)",
        description="List flags, newest first. Example: bounces flags list --state all",
    )
    ls.add_argument(
        "--state",
        choices=("live", "open", "acked", "cleared", "all"),
        default="live",
        help="which flags (default: live = open and acked)",
    )
    ls.add_argument("--kind", choices=KINDS, help="only this kind of flag")
    ls.add_argument("--limit", type=int, default=None, help="at most this many flags")
    ls.add_argument("--format", choices=("text", "json"), default="text")

    show = actions.add_parser(
        "show",
        help="one flag with its evidence, advice and audit trail",
        description="Show one flag. Example: bounces flags show 12 --format json",
    )
    show.add_argument("id", type=int)
    show.add_argument("--format", choices=("text", "json"), default="text")

    for name, text in (
        ("ack", "acknowledge flags: seen, being handled (they stay live)"),
        ("clear", "clear flags: resolved (raised again only if the condition returns)"),
    ):
        a = actions.add_parser(
            name, help=text, description=f"{text[0].upper()}{text[1:]}. "
            f"Example: bounces flags {name} 12 13 --note 'ticket 4711'"
        )
        a.add_argument("ids", type=int, nargs="+", metavar="ID")
        a.add_argument("--note", help="kept in the audit trail")

    actions.add_parser(
        "recompute",
        help="rebuild the live flags from the whole history under the current [rules]",
        description="Replay every recorded bounce through the current rules and lay the "
        "result onto the existing flags: a flag that still holds keeps its id and its "
        "state (acked stays acked), one the rules no longer support is withdrawn (it "
        "leaves the live set and the exports; `bounces alert` says so), a new one gets a "
        "new id; cleared flags stay cleared. Same rules and history: nothing changes. "
        "Example: bounces flags recompute",
    )
    actions.add_parser(
        "rules",
        help="print the numbered rules and the effective [rules] options",
        description="Print the rules. Example: bounces flags rules",
    )
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces flags ACTION`."""
    from bounce_handler.judge import rules as rules_mod

    if args.action == "rules":
        return _rules(rules_mod.for_settings(settings))
    from bounce_handler.judge import lifecycle

    conn = lifecycle.connect(settings)
    try:
        if args.action == "list":
            return _list(conn, args, _rules_or_none(rules_mod, settings))
        if args.action == "show":
            return _show(conn, args, _rules_or_none(rules_mod, settings))
        if args.action in ("ack", "clear"):
            return _step(conn, args)
        return _recompute(conn, rules_mod.for_settings(settings))
    finally:
        conn.close()


def _rules_or_none(rules_mod, settings):
    """The rules, to show windowed evidence as it stands now; None if [rules] is broken.

    (The pipe says so loudly; listing what is stored must still work.)
    """
    try:
        return rules_mod.for_settings(settings)
    except rules_mod.ConfigError:
        return None


def _states(choice: str) -> tuple[str, ...]:
    return {
        "live": ("open", "acked"),
        "all": ("open", "acked", "cleared"),
    }.get(choice, (choice,))


def _list(conn, args, rules) -> int:
    from bounce_handler.judge import current, lifecycle

    flags = lifecycle.list_flags(conn, _states(args.state), args.kind, args.limit)
    if rules is not None:
        current.attach(conn, flags, rules)
    if args.format == "json":
        import json

        print(json.dumps(flags, indent=2))
        return 0
    if not flags:
        print("no flags")
        return 0
    for f in flags:
        state = "withdrawn" if f.get("withdrawn") else f["state"]
        print(
            f"{f['id']:>6}  {state:<9}  {f['kind']:<21}  {f['rule']:<3}  "
            f"{f['raised_at']}  {f['subject']}  {_summary(f)}"
        )
    return 0


def _summary(f: dict) -> str:
    """The flag's numbers; a windowed flag's as the judge counts them now (judge/current.py)."""
    keys = ("bounces", "domains", "spam", "complaints", "deferrals", "days", "status", "reason")
    now = f.get("evidence_now")
    e = now["evidence"] if now else f["evidence"]
    # (A throttled destination's "domains" is its list of domains, not a count.)
    text = " ".join(f"{k}={e[k]}" for k in keys
                    if e.get(k) is not None and not isinstance(e[k], (list, dict)))
    return text + (f" (window to {now['as_of']})" if now else "")


def _show(conn, args, rules) -> int:
    from bounce_handler.judge import current, lifecycle

    f = lifecycle.get(conn, args.id)
    if rules is not None:
        current.attach(conn, [f], rules)
    if args.format == "json":
        import json

        print(json.dumps(f, indent=2))
        return 0
    state = "withdrawn by recompute" if f.get("withdrawn") else f["state"]
    print(f"flag {f['id']}: {f['kind']} {f['subject']} ({state}, rule {f['rule']})")
    print(f"  raised {f['raised_at']}, updated {f['updated_at']}"
          + (f", acked {f['acked_at']}" if f["acked_at"] else "")
          + (f", cleared {f['cleared_at']}" if f["cleared_at"] else ""))
    print("  evidence: " + ", ".join(f"{k}={v}" for k, v in f["evidence"].items()))
    if f.get("evidence_now"):
        now = f["evidence_now"]
        print(f"  evidence now (window to {now['as_of']}): "
              + ", ".join(f"{k}={v}" for k, v in now["evidence"].items()))
    if f["advice"]:
        print("  advice:")
        for line in f["advice"].splitlines():
            print("    " + line)
    print("  audit trail:")
    for h in f["history"]:
        print(f"    {h['at']}  {h['action']:<8} {h['actor']:<10} "
              + ", ".join(f"{k}={v}" for k, v in h["detail"].items()))
    print(f"  bounce events ({len(f['events'])} linked):")
    for e in f["events"]:
        print(f"    #{e['id']} {e['occurred_at']} {e['kind']} {e['recipient']} "
              f"{e['status'] or '-'} {e['reason']}")
    return 0


def _actor() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers): still record something
        return "admin"


def _step(conn, args) -> int:
    import time

    from bounce_handler.judge import lifecycle

    step = lifecycle.ack if args.action == "ack" else lifecycle.clear
    for flag_id in args.ids:
        out = step(conn, flag_id, time.time(), _actor(), args.note)
        verb = "acked" if args.action == "ack" else "cleared"
        print(f"flag {flag_id} {verb}" if out["changed"] else f"flag {flag_id} already {verb}")
    return 0


def _recompute(conn, rules) -> int:
    import sys
    import time

    from bounce_handler.judge import recompute

    total = recompute.count_events(conn)
    started = time.monotonic()
    if sys.stderr.isatty() and total:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            "{task.completed:,}/{task.total:,}",
            TimeRemainingColumn(),
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("replaying bounces", total=total)
            stats = recompute.recompute(conn, rules, lambda n: bar.advance(task, n))
    else:
        stats = recompute.recompute(conn, rules)
    print(
        f"replayed {stats['events']:,} bounce events in {time.monotonic() - started:.1f}s: "
        f"{stats['kept']} live flags kept (same ids; {stats['changed']} with new evidence), "
        f"{stats['raised']} new, {stats['withdrawn']} withdrawn, {stats['restored']} restored"
    )
    for label, key in (("withdrawn (the current [rules] no longer support them; they left "
                        "the live set and the exports)", "withdrawn_ids"),
                       ("restored (supported again)", "restored_ids")):
        if stats[key]:
            ids = ", ".join(f"#{i}" for i in stats[key][:50])
            more = f" and {len(stats[key]) - 50} more" if len(stats[key]) > 50 else ""
            print(f"  {label}: {ids}{more}")
    if stats["raised"] or stats["withdrawn"] or stats["restored"]:
        print("  `bounces alert` reports the new, withdrawn and restored flags on its next run")
    return 0


def _rules(rules) -> int:
    from bounce_handler.judge.rules import RULES

    for number, kind, text in RULES:
        print(f"{number}  {kind}: {text}")
    print()
    for section, values in rules.as_dict().items():
        print(f"[rules.{section}]")
        for k, v in values.items():
            print(f"{k} = {_toml(v)}")
        print()
    return 0


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return repr(v)
