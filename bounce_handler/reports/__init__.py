"""The library under the administrator's verbs: queries over the store, returning plain rows.

One module per concern (summary, show, alerts, exports, suppressions, qshape, prune,
metrics); the `bounces` verbs in ``bounce_handler/cli/`` parse arguments, call these and
print.  Queries are SQLAlchemy Core over the models' tables, so they run on SQLite and
PostgreSQL alike.  This package file imports nothing heavy: the CLI reads the constants
below while building its parser, before any verb runs.
"""

from __future__ import annotations

# Event kinds that have rows in bounce_events (intake.COUNTED_KINDS).
KINDS = ("bounce", "delay", "complaint")
# `bounces report --by` choices: keys first, then time buckets.
GROUPINGS = ("sender", "recipient", "domain", "reason", "status", "day", "hour")
