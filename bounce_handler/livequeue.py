"""The live queue as evidence for rule R8: throttling seen within minutes, not hours.

Postfix writes nothing about a deferral before ``delay_warning_time`` (4 h in the shipped
main.cf), so a provider throttling the relay -- Yahoo's ``421 4.7.0 [TSS04] Messages from
x.x.x.x temporarily deferred due to unexpected volume or user complaints``, Gmail's
``450 4.7.28 ... unusual rate of unsolicited mail`` -- reached rule R8 as delay notices
hours later, while ``postqueue -j`` (Postfix >= 3.1) shows it at once.  This module reads
the live queue and records the recipients it shows deferred by such a destination the way
the pipe records a bounce: a ``messages`` row and its ``bounce_events`` rows, through the
same writers, judged in the same transaction by the same judge::

    postqueue -j ──► entries ──► classify (classify.py) ──► R8's own test (core.is_throttle)
        ──► rows (kind 'delay', origin 'queue') ──► writer (store/lean.py, store/pg.py) + judge

``bounces queue --feed`` reads it once (cron, the systemd timer); ``bounces daemon`` every
``[queue] scan_interval`` seconds (daemon/queuescan.py).

The unit of observation
-----------------------
One recipient of one queued message: (this host's ``myhostname``, the queue ID with the
arrival time, the recipient).  Its identity is ``trust.failure_identity('delay', ...)`` of
``trust.queue_reference``: the very identity of the delay notice Postfix will write about
that recipient of that message (Reporting-MTA, X-Postfix-Queue-ID, Arrival-Date,
Final-Recipient).  Hence:

- the same deferral seen on every scan, and at every retry, is recorded once: a scan
  records only identities not stored yet (on SQLite inside the write transaction, so two
  scanners cannot both record one; on PostgreSQL a racing second row is linked to the
  first, ``duplicate_of``, and counts nowhere);
- the delay notice that may follow (and its postmaster copy) is a copy of it
  (``duplicate_of``), and the final DSN of the same recipient links to it (``queued_of``):
  neither counts again for R8 (trust.dedup_sql);
- a recipient whose notice was recorded first is not recorded from the queue.

Not once per retry: ``postqueue -j`` does not say when a recipient was last tried, and
when a destination throttles, Postfix's queue manager defers the rest of its queue
without trying ("delivery temporarily suspended"): counting retries or scans would count
Postfix's scheduling and our own scan rate, not the provider's refusals.  R8 counts
messages a destination holds up, as the delay notices always did -- only hours earlier.

What is recorded: only what R8 would count (the same test the judge applies: a reason in
``[rules.throttled_destination] reasons`` or a marker in the text), from the ``deferred``
and ``active`` queues (``hold`` is the administrator's, its reasons may be days old).
Nothing at all when R8 is disabled.

Trust (trust.py, docs/trust.md): the queue is the relay's own state, the strongest
evidence for R8 and none for anything else.  A queued message says nothing about whether
its recipient exists or its sender misbehaves, so a queue row never counts for R1-R7,
whatever ``include_unverified`` says, and carries no sender (the queued message's sender
is on its ``messages`` row, ``envelope_sender``, for whoever looks).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zlib

from bounce_handler import trust
from bounce_handler.classify import classify
from bounce_handler.errors import EX_UNAVAILABLE, BounceHandlerError, StoreUnavailable

# The queues whose delay reasons are live (qmgr's last attempt, or the one in progress).
FED_QUEUES = ("deferred", "active")
SOURCE = "queue"  # messages.source of the rows this module writes
DETECTOR = "postqueue"  # their detector
# How much of a delay reason is kept and read (the pipe keeps a diagnostic to the same).
MAX_REASON = 2000
# Queued messages written per SQLite transaction: the pipe waits on the write lock at
# most [database] busy_timeout (20 s); a few hundred rows and their judging take well
# under a second.
CHUNK = 200
# failure keys per `IN (...)` lookup
LOOKUP = 400

# Postfix's delay reasons: "host mx[ip] said: 421 4.7.0 ... (in reply to MAIL FROM
# command)", "host mx[ip] refused to talk to me: 421 ...", "delivery temporarily
# suspended: host mx[ip] refused to talk to me: ...", "connect to mx[ip]:25: ...".
# Linear patterns; the text is cut at MAX_REASON first.
HOST_SAID = re.compile(r"^host \S+\[[^\]]*\] said:\s*", re.IGNORECASE)
_HOST = re.compile(r"\bhost ([^\s\[\]]{1,255})\[", re.IGNORECASE)
_REPLY = re.compile(r"^([245]\d\d)[ -]")


class QueueUnavailable(BounceHandlerError):
    """postqueue or postconf could not be run, or failed (Postfix down, not installed)."""

    exit_code = EX_UNAVAILABLE


# --- reading the queue -----------------------------------------------------------------

def _postfix_binary(name: str, path: str | None = None) -> str:
    binary = shutil.which(path or name) or (
        f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
    )
    if not binary:
        raise QueueUnavailable(f"{path or name} not found (is Postfix installed here?)")
    return binary


def _run(argv: list[str], timeout: float) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QueueUnavailable(f"{' '.join(argv)}: {e}") from None
    if proc.returncode != 0:
        raise QueueUnavailable(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[:500]}"
        )
    return proc.stdout


def read_queue(config_dir: str = "", postqueue: str | None = None,
               timeout: float = 300) -> str:
    """``postqueue [-c DIR] -j``: one JSON object per queued message (QueueUnavailable)."""
    argv = [_postfix_binary("postqueue", postqueue)]
    argv += ["-c", config_dir] if config_dir else []
    return _run(argv + ["-j"], timeout)


def myhostname(config_dir: str = "") -> str:
    """The instance's ``myhostname``: what Postfix writes in a notice's Reporting-MTA."""
    argv = [_postfix_binary("postconf")] + (["-c", config_dir] if config_dir else [])
    name = _run(argv + ["-h", "myhostname"], 60).strip()
    if not name or any(c.isspace() for c in name):
        raise QueueUnavailable(f"postconf -h myhostname gave {name!r}")
    return name


def parse_lines(text: str) -> list[dict]:
    """The messages of ``postqueue -j`` output (blank lines skipped); ValueError if bad."""
    return [entry for entry, _line in entries(text)]


def entries(text: str) -> list[tuple[dict, str]]:
    """(message, its line) for every line of ``postqueue -j`` output; ValueError if bad."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append((json.loads(line), line))
            except ValueError as e:
                raise ValueError(f"postqueue -j output, line {n}: {e}") from None
    return out


def explain(reason: str) -> tuple[str | None, str]:
    """(enhanced status, classified reason) of one delay reason (classify.py decides)."""
    status, why, _hard, _code = _classified(reason)
    return status, why


def _classified(reason: str):
    text = HOST_SAID.sub("", " ".join((reason or "")[:MAX_REASON].split()))
    m = _REPLY.match(text)
    code = m.group(1) if m else None
    status, why, hard = classify(None, text, action="delayed", reply_code=code)
    return status, why, hard, code


# --- what the queue shows ----------------------------------------------------------------

class Candidate:
    """One queued message with the rows of its recipients a throttling destination defers."""

    __slots__ = ("queue_id", "sender", "line", "events")

    def __init__(self, queue_id: str, sender: str | None, line: str, events: list) -> None:
        self.queue_id = queue_id
        self.sender = sender
        self.line = line
        self.events = events


def _address(value) -> str | None:
    """A recipient as the pipe stores one: domain lower-cased (RFC 5321 2.4), bounded."""
    if not isinstance(value, str):
        return None
    value = value.strip().strip("<>").strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or len(value) > 512:
        return None
    return f"{local}@{domain.lower()}"


def _queue_id(value) -> str | None:
    # Postfix queue IDs: short (hex) or long (base 52 digits and letters, with a
    # separator "z"); never anything but ASCII letters and digits.
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isascii() and value.isalnum():
        return value
    return None


def observe(listing, mta: str, rules) -> tuple[list[Candidate], int]:
    """The candidates for R8 in a queue listing (``entries``), and how many were malformed.

    Pure: no clock, no store.  ``mta`` is the instance's myhostname; ``rules`` the parsed
    rules (core.is_throttle's test, the one the judge applies).
    """
    from bounce_handler.judge.core import is_throttle

    out, malformed = [], 0
    # A throttling destination answers every recipient with the same words: classify each
    # text once per reading (bench/live_queue_bench.py: it was half of a re-reading).
    explained: dict[str, tuple] = {}
    for entry, line in listing:
        if not isinstance(entry, dict):
            malformed += 1
            continue
        if entry.get("queue_name") not in FED_QUEUES:
            continue
        qid = _queue_id(entry.get("queue_id"))
        arrival = entry.get("arrival_time")
        recipients = entry.get("recipients")
        if (qid is None or type(arrival) is not int or arrival <= 0
                or not isinstance(recipients, list)):
            malformed += 1
            continue
        reference = trust.queue_reference(mta, qid, arrival)
        events, seen = [], set()
        for r in recipients:
            if not isinstance(r, dict):
                malformed += 1
                continue
            address = _address(r.get("address"))
            reason = r.get("delay_reason")
            if address is None or not isinstance(reason, str) or not reason.strip():
                continue  # not deferred (yet), or nothing to read
            diagnostic = " ".join(reason[:MAX_REASON].split())
            verdict = explained.get(diagnostic)
            if verdict is None:
                if len(explained) > 10000:
                    explained.clear()
                verdict = explained[diagnostic] = _classified(diagnostic)
            status, why, hard, code = verdict
            if not is_throttle({"reason": why, "diagnostic": diagnostic}, rules.dest):
                continue
            if address.lower() in seen:
                continue
            seen.add(address.lower())
            host = _HOST.search(diagnostic)
            events.append({
                "kind": "delay",
                "recipient": address,
                "recipient_domain": address.rpartition("@")[2][:255],
                "original_recipient": None,
                "action": "delayed",
                "status": status,
                "reply_code": code,
                "reason": why,
                "hard": None if hard is None else (1 if hard else 0),
                "diagnostic": diagnostic,
                "remote_mta": host.group(1) if host else None,
                "detector": DETECTOR,
                # No sender: a queue row is no evidence about one (module docstring).
                "sender": None,
                "sasl_login": None,
                "verp_token": None,
                "verified": 0,
                "verify_reason": None,
                "original_message_id": None,
                "origin": trust.QUEUE,
                "sender_source": None,
                "sasl_verified": 0,
                "failure_key": trust.failure_identity("delay", address, True, reference),
                "token_key": None,
            })
        if events:
            sender = entry.get("sender")
            out.append(Candidate(qid, sender if isinstance(sender, str) else None, line,
                                 events))
    return out, malformed


def batch_for(candidate: Candidate, known, settings, now: float, relay: str):
    """The rows of a candidate's observations not stored yet (a store.rows.Batch), or None.

    ``known``: the failure keys already in the store.  ``now``: epoch seconds of the scan,
    the row's time (recompute replays with it: it is also the message's received_at).
    """
    from bounce_handler.intake import utc_text
    from bounce_handler.store.rows import Batch

    events = [dict(e) for e in candidate.events if e["failure_key"] not in known]
    if not events:
        return None
    try:
        from _sha256 import sha256  # the builtin, as intake.message_digest
    except ImportError:  # pragma: no cover - interpreters without the builtin module
        from hashlib import sha256
    keys = sorted(e["failure_key"] for e in events)
    digest = sha256("\0".join(["postqueue", *keys]).encode()).hexdigest()
    stamp = utc_text(now)
    for e in events:
        e["occurred_at"] = stamp
    line = candidate.line.encode("utf-8", "replace")
    n = len(events)
    message = {
        "digest": digest,
        "received_at": stamp,
        "source": SOURCE,
        "relay": relay,
        "queue_id": candidate.queue_id,
        "envelope_sender": candidate.sender,
        "envelope_recipient": None,
        "original_recipient": None,
        "extension": None,
        "kind": "delay",
        "disposition": "recorded",
        "note": f"seen in the live queue (postqueue -j): {n} recipient"
                f"{'s' if n > 1 else ''} deferred by a throttling destination",
        "detector": DETECTOR,
        "size": len(line),
        "truncated": 0,
        "header_message_id": None,
        "subject": None,
    }
    raw = zlib.compress(line, 6) if settings.intake.keep_raw else None
    return Batch(message, raw, events, None, now)


# --- recording -----------------------------------------------------------------------------

class FeedStats:
    """What one reading of the queue did."""

    __slots__ = ("messages", "deferred", "recorded", "known", "malformed", "failed",
                 "raised", "disabled", "errors")

    def __init__(self) -> None:
        self.messages = 0  # queued messages read
        self.deferred = 0  # recipients deferred by a throttling destination
        self.recorded = 0  # of those, recorded now
        self.known = 0  # of those, recorded before (an earlier scan, or a notice)
        self.malformed = 0  # entries or recipients postqueue gave in a shape not understood
        self.failed = 0  # queued messages whose rows could not be written (a bug)
        self.raised: list[tuple[str, str, str]] = []  # (kind, subject, rule) of new flags
        self.disabled = False  # R8 is off: nothing is recorded
        self.errors: list[str] = []

    def as_dict(self) -> dict:
        """Plain values (`bounces queue --feed --format json`)."""
        return {k: getattr(self, k) for k in self.__slots__}

    def summary(self) -> str:
        """One line for a log or a terminal."""
        if self.disabled:
            return ("live queue not recorded: rule R8 is disabled "
                    "([rules.throttled_destination])")
        text = (f"live queue: {self.messages} messages, {self.deferred} recipients deferred "
                f"by a throttling destination, {self.recorded} recorded now, "
                f"{self.known} before")
        if self.raised:
            text += "; raised " + ", ".join(f"{k} {s} ({r})" for k, s, r in self.raised)
        if self.malformed:
            text += f"; {self.malformed} entries not understood"
        if self.failed:
            text += f"; {self.failed} not written: {'; '.join(self.errors[:3])}"
        return text


def feed(settings, text: str, now: float, *, mta: str | None = None,
         config_dir: str | None = None, writer=None) -> FeedStats:
    """Record what R8 counts in one ``postqueue -j`` listing; judge it; return the stats.

    ``mta``: the instance's myhostname (``postconf -h myhostname`` when None);
    ``writer``: a PgWriter to reuse (the daemon keeps one), else one is made.  Raises
    StoreUnavailable (the store cannot take it now: nothing is lost, the next reading
    records it), QueueUnavailable, ValueError (output that is not postqueue -j's).
    """
    from bounce_handler import intake
    from bounce_handler.judge.core import RAISE
    from bounce_handler.judge.rules import for_settings

    stats = FeedStats()
    rules = for_settings(settings)
    listing = entries(text)
    stats.messages = len(listing)
    if not (rules.dest.enabled and rules.dest.min_deferrals):
        stats.disabled = True
        return stats
    if mta is None:
        mta = myhostname(settings.queue.postfix_config if config_dir is None else config_dir)
    candidates, stats.malformed = observe(listing, mta, rules)
    stats.deferred = sum(len(c.events) for c in candidates)
    if not candidates:
        return stats
    judge = intake.judge_for(settings)

    def hook(conn, events, at):
        decisions = judge(conn, events, at) if judge is not None else []
        stats.raised += [(d.kind, d.subject, d.rule) for d in decisions if d.action == RAISE]
        return decisions

    relay = settings.intake.relay or os.uname().nodename
    url = settings.database.url
    if url.startswith("sqlite"):
        _record_sqlite(settings, candidates, now, relay, hook, stats)
    elif url.startswith("postgresql"):
        _record_pg(settings, candidates, now, relay, hook, stats, writer)
    else:
        raise StoreUnavailable(f"unsupported database URL scheme {url.split(':', 1)[0]!r}")
    return stats


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _known(one_all, keys: list[str]) -> set[str]:
    """The failure keys among `keys` already in bounce_events (``one_all(sql, params)``)."""
    found: set[str] = set()
    for part in _chunks(sorted(set(keys)), LOOKUP):
        marks = ", ".join("?" * len(part))
        found.update(r[0] for r in one_all(
            f"SELECT DISTINCT failure_key FROM bounce_events WHERE failure_key IN ({marks})",
            part))
    return found


def _record_sqlite(settings, candidates, now, relay, hook, stats) -> None:
    """Group-commit the candidates (CHUNK queued messages a transaction): one fsync each."""
    from bounce_handler.store import lean

    sqlite3 = lean.sqlite3
    writer = lean.SqliteWriter(lean.sqlite_path(settings.database.url),
                               settings.database.busy_timeout)
    conn = writer.connect()
    try:
        for chunk in _chunks(candidates, CHUNK):
            try:
                conn.execute("BEGIN IMMEDIATE")
                lean._check_schema(conn)
                known = _known(lambda sql, p: conn.execute(sql, p).fetchall(),
                               [e["failure_key"] for c in chunk for e in c.events])
                for c in chunk:
                    batch = batch_for(c, known, settings, now, relay)
                    fresh = len(batch.events) if batch is not None else 0
                    stats.known += len(c.events) - fresh
                    if batch is None:
                        continue
                    digest = batch.message["digest"]
                    if conn.execute("SELECT 1 FROM messages WHERE digest = ?",
                                    (digest,)).fetchone():
                        stats.known += fresh  # an identical reading recorded them
                        continue
                    try:
                        lean.write(conn, batch, hook)
                    except Exception as e:  # noqa: BLE001 - sorted out here
                        if isinstance(e, sqlite3.OperationalError) or \
                                type(e) is sqlite3.DatabaseError:
                            raise  # the store, not this message: the whole reading waits
                        _failed(stats, c, e)  # one message's bug: the others go on
                        continue
                    if batch.aside is None:
                        stats.recorded += fresh
                    else:
                        _failed(stats, c, batch.aside)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise StoreUnavailable(
                    lean._explain(e, writer.path, writer.busy_timeout)) from None
    finally:
        conn.close()


def _record_pg(settings, candidates, now, relay, hook, stats, writer) -> None:
    """One transaction per queued message through the direct PostgreSQL writer."""
    from bounce_handler.judge.sql import Db
    from bounce_handler.store.pg import writer_for_settings

    own = writer is None
    writer = writer or writer_for_settings(settings, keep_connection=True)
    try:
        conn = writer.connect()
        try:
            db = Db(conn)
            known = _known(db.all, [e["failure_key"] for c in candidates for e in c.events])
            conn.rollback()
        finally:
            conn.close()
        for c in candidates:
            batch = batch_for(c, known, settings, now, relay)
            fresh = len(batch.events) if batch is not None else 0
            stats.known += len(c.events) - fresh
            if batch is None:
                continue
            try:
                _, created = writer.record(batch, hook)
            except StoreUnavailable:
                raise
            except Exception as e:  # noqa: BLE001 - one message's bug: the others go on
                _failed(stats, c, e)
                continue
            if not created:
                stats.known += fresh  # an identical reading recorded them
            elif batch.aside is None:
                stats.recorded += fresh
            else:
                _failed(stats, c, batch.aside)
    finally:
        if own:
            writer.close()


def _failed(stats, candidate, e) -> None:
    stats.failed += 1
    why = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
    stats.errors.append(f"{candidate.queue_id}: {why}"[:300])
