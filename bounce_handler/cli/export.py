"""Export dead recipients or compromised senders as a Postfix access map, CSV or JSON.

What is exported: the live (open or acked) flags of that kind, plus the manual entries
of `bounces suppress`.

--format postfix (the default) writes an access(5) table: dead recipients with REJECT
(5.1.1 and a text) or --action discard; compromised senders with HOLD (their mail waits
in the hold queue for review) or --action reject, keyed by envelope sender
(check_sender_access) or, with --key sasl, by SASL login (check_sasl_access).  With -o
FILE the file is replaced atomically and, when Postfix's postmap is installed, indexed
(FILE.db for hash:) in the same step; without -o it goes to stdout.  The directory of
FILE must exist (deploy/install.sh creates /var/lib/bounce-handler/maps for the cron
jobs).  CSV cells are neutralised for spreadsheets ('=...', see `bounces suppress
import`, which reads them back); times are RFC 3339 UTC.

Exit status: 0 written; 1 written, but incomplete: with --key sasl, a compromised sender
for whom no SASL login is recorded cannot be in a check_sasl_access map (each is named
on stderr; hold it with check_sender_access instead, or `bounces suppress add sender
LOGIN`); 73 FILE cannot be written (its directory missing, say); 70 postmap failed; 75
the store is unavailable; 64 a bad option.
--quiet leaves out the "wrote N ..." line (for cron, which mails any output); warnings
and errors are still printed.

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

EX_CANTCREAT = 73  # sysexits.h: a (user) output file cannot be created

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
    p.add_argument("--quiet", action="store_true",
                   help="no summary line on success (cron); warnings and errors still shown")
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces export`."""
    from bounce_handler.reports import db, exports, render
    from bounce_handler.reports.period import utcnow

    action = args.action or ACTIONS[args.what][0]
    if action not in ACTIONS[args.what]:
        raise BounceHandlerError(
            f"--action {action} does not apply to {args.what} "
            f"(use {' or '.join(ACTIONS[args.what])})", EX_USAGE)
    if args.key == "sasl" and args.what != "compromised-senders":
        raise BounceHandlerError("--key sasl applies to compromised-senders only", EX_USAGE)

    def warn(msg: str) -> None:
        print(f"bounces: {render.visible(msg)}", file=sys.stderr)

    left_out: list[str] = []
    with db.connect(settings) as conn:
        entries = exports.collect(conn, args.what, key=args.key, warn=warn, left_out=left_out)
    if args.format == "postfix":
        text = exports.postfix_text(args.what, entries, action,
                                    utcnow().strftime("%Y-%m-%d %H:%M:%S"), key=args.key)
    elif args.format == "csv":
        header, *rows = exports.csv_rows(args.what, entries)
        text = render.csv_text(header, rows)
    else:
        text = exports.json_text(args.what, entries)

    status = _incomplete(left_out, warn)
    if not args.output or args.output == "-":
        render.write_data(text)
        return status
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
        hint = ""
        if isinstance(e, FileNotFoundError):
            import os

            hint = (f" (create the directory: install -d -m 0755 "
                    f"{os.path.dirname(os.path.abspath(args.output))})")
        raise BounceHandlerError(f"cannot write {args.output}: {e.strerror}{hint}",
                                 EX_CANTCREAT) from None
    note = f" and {indexed}" if indexed else ""
    if not args.quiet:
        print(f"wrote {len(entries)} {args.what} to {args.output}{note}", file=sys.stderr)
    return status


def _incomplete(left_out: list[str], warn) -> int:
    """1 when flagged senders could not be keyed (--key sasl without a login), else 0."""
    if not left_out:
        return 0
    warn(f"the map is incomplete: {len(left_out)} compromised sender(s) without a recorded "
         "SASL login are not in it (" + ", ".join(left_out[:10])
         + (", ..." if len(left_out) > 10 else "") + "); hold them by envelope sender "
         "(bounces export compromised-senders, check_sender_access) or by login "
         "(bounces suppress add sender LOGIN)")
    return 1
