"""Check the live Postfix and handler configuration for the mistakes that lose bounces.

Follows the bounce address ([verp] prefix@domain, of the config in each bounce-handler
pipe service's argv and of --config) through the Postfix instance in -c DIR (default
/etc/postfix) and checks the whole path a bounce takes for each intake it finds -- pipe
into SQLite, pipe through the spool into PostgreSQL, LMTP into `bounces daemon`:

  accepted  the bounce domain in relay_domains / mydestination / a virtual domain, the
            address valid for it, no smtpd restriction refusing the null sender
  routed    transport_maps to the service; pipe: recipient limit 1, a time limit the
            handler cannot outlast, `-- ${extension}` in argv, an unprivileged user;
            LMTP: the next hop is where [daemon] lmtp_listen listens
  runnable  as the pipe user: the handler, the config, the VERP key file, the caches,
            the SQLite file and directory or the spool and each of tmp/ new/ bad/
  stored    the database reachable, its schema at head
  logged    the syslog socket (else the pipe's line falls back into Postfix's log line)
            or the configured target; Postfix's own log
  flowing   no bounce deferred or held in Postfix's queue, no spool backlog, the
            daemon answering LMTP

Each finding that is not ok carries its fix: shell commands to run as root, in order,
as printed (then `postfix reload` once, printed last), or a sentence where the fix is an
edit or a decision.

Exit status 0 when no problem was found (warnings allowed), 1 when one was; 69 when
postconf cannot run.

--format json prints one object for monitoring (stable keys; new ones may be added):
  format           1
  postfix_config   the -c DIR, or null for the default instance
  status           "ok", "warning" or "problem" (the worst finding)
  exit             the exit status (0 or 1)
  problems, warnings   counts
  reload           the `postfix reload` command when a fix needs it, else null
  postfix_running  whether postqueue could read the queue (null: not asked)
  intakes          [{kind: "pipe"|"lmtp", address, service, route, routed, config,
                     user, store: "sqlite"|"postgresql-spool"|"postgresql-direct"}]
  findings         [{check, status: "ok"|"warning"|"problem", subject, what, fix,
                     commands: [...], reload}], `check` a stable name such as
                     routing.transport, accept.domain, access.key-file, log.target,
                     backlog.deferred

Examples:
    bounces doctor
    bounces doctor -c /etc/postfix-out        # a second Postfix instance
    bounces doctor --transport verpbounce     # only this master.cf service
    bounces doctor --format json | jq -r '.findings[] | select(.status != "ok") | .what'

"""

from __future__ import annotations

import argparse
import json

from bounce_handler.cli import verb_parser
from bounce_handler.doctor.postfix import time_seconds  # noqa: F401 - tests/e2e import it here


def register(sub) -> None:
    """Add `bounces doctor`."""
    p = verb_parser(sub, "doctor", __doc__)
    p.add_argument(
        "-c",
        "--postfix-config",
        metavar="DIR",
        help="Postfix configuration directory (default: the default instance)",
    )
    p.add_argument("--transport", help="check only this master.cf service")
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or json"
    )
    p.add_argument("--postconf", default=None, help=argparse.SUPPRESS)  # tests, odd installs
    p.set_defaults(func=run)


def run(args, settings) -> int:
    """Run `bounces doctor`."""
    from bounce_handler.doctor import diagnose

    report = diagnose(settings, args.postfix_config, args.transport, args.postconf)
    if args.format == "json":
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(report.text())
    return report.exit_status
