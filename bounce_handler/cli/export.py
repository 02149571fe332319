"""Export dead recipients or compromised senders as a Postfix access map, CSV or JSON.

What is exported: the live (open or acked) flags of that kind, plus the manual entries
of `bounces suppress`.

--format postfix (the default) writes an access(5) table: dead recipients with REJECT
(5.1.1 and a text) or --action discard; compromised senders with HOLD (their mail waits
in the hold queue for review) or --action reject, keyed by envelope sender
(check_sender_access) or, with --key sasl, by SASL login (check_sasl_access).  With -o
FILE the file is replaced atomically and, when Postfix's postmap is installed, indexed
(FILE.db for hash:) in the same step; without -o it goes to stdout.

main.cf:
    smtpd_recipient_restrictions = ...,
        check_recipient_access hash:/etc/postfix/dead_recipients, ...
    smtpd_sender_restrictions = check_sasl_access hash:/etc/postfix/compromised_senders

Examples:
    bounces export dead-recipients -o /etc/postfix/dead_recipients
    bounces export compromised-senders --key sasl -o /etc/postfix/compromised_senders
    bounces export dead-recipients --format csv -o dead.csv
    bounces export compromised-senders --format json

"""

from __future__ import annotations

import sys

from bounce_handler.cli import verb_parser
from bounce_handler.errors import EX_USAGE, BounceHandlerError

ACTIONS = {"dead-recipients": ("reject", "discard"), "compromised-senders": ("hold", "reject")}


def register(sub) -> None:
    """Add `bounces export`."""
    p = verb_parser(sub, "export", __doc__)
    p.add_argument("what", choices=tuple(ACTIONS))
    p.add_argument("--format", choices=("postfix", "csv", "json"), default="postfix")
    p.add_argument("-o", "--output", metavar="FILE", help="write here (atomically)")
    p.add_argument("--action", choices=("reject", "discard", "hold"),
                   help="postfix format: reject|discard (recipients, default reject), "
                   "hold|reject (senders, default hold)")
    p.add_argument("--key", choices=("sender", "sasl"), default="sender",
                   help="compromised senders: key by envelope sender or SASL login")
    p.add_argument("--map-type", default="hash", metavar="TYPE",
                   help="postmap table type for -o (default hash; btree, lmdb, cdb)")
    p.add_argument("--no-postmap", action="store_true", help="do not run postmap on -o FILE")
    p.add_argument("-c", dest="postfix_config", metavar="DIR",
                   help="Postfix configuration directory for postmap (postmap -c)")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces export`."""
    import csv
    import io

    from bounce_handler.reports import db, exports
    from bounce_handler.reports.period import utcnow

    action = args.action or ACTIONS[args.what][0]
    if action not in ACTIONS[args.what]:
        raise BounceHandlerError(
            f"--action {action} does not apply to {args.what} "
            f"(use {' or '.join(ACTIONS[args.what])})", EX_USAGE)
    if args.key == "sasl" and args.what != "compromised-senders":
        raise BounceHandlerError("--key sasl applies to compromised-senders only", EX_USAGE)

    def warn(msg: str) -> None:
        print(f"bounces: {msg}", file=sys.stderr)

    with db.connect(settings) as conn:
        entries = exports.collect(conn, args.what, key=args.key, warn=warn)
    if args.format == "postfix":
        text = exports.postfix_text(args.what, entries, action,
                                    utcnow().strftime("%Y-%m-%d %H:%M:%S"), key=args.key)
    elif args.format == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerows(
            [["" if v is None else v for v in row] for row in exports.csv_rows(args.what, entries)]
        )
        text = buf.getvalue()
    else:
        text = exports.json_text(args.what, entries)

    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return 0
    map_type = None
    if args.format == "postfix" and not args.no_postmap:
        postmap = exports.find_postmap()
        if postmap:
            map_type = args.map_type
        else:
            warn(f"postmap not found (Postfix not installed here?): wrote {args.output} "
                 f"only; run `postmap {args.map_type}:{args.output}` where Postfix runs")
    try:
        indexed = exports.write_atomic(args.output, text, map_type=map_type,
                                       config_dir=args.postfix_config)
    except OSError as e:
        raise BounceHandlerError(f"cannot write {args.output}: {e.strerror}") from None
    note = f" and {indexed}" if indexed else ""
    print(f"wrote {len(entries)} {args.what} to {args.output}{note}", file=sys.stderr)
    return 0
