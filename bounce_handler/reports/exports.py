"""`bounces export`: live flags plus manual suppressions, as Postfix access maps or lists.

Dead recipients become an access(5) table for

    smtpd_recipient_restrictions = ..., check_recipient_access hash:/etc/postfix/dead_recipients

with ``REJECT`` (the client gets a 5xx with our text) or ``DISCARD`` (accepted and
dropped; the text only goes to the log).  Compromised senders become a table for
``check_sender_access`` (keyed by envelope sender) or ``check_sasl_access`` (keyed by SASL
login name, Postfix >= 2.11) with ``HOLD``: their mail waits in the hold queue
(``postqueue -p``, ``postsuper -H``/``-d``) until someone reviews it, instead of leaving.

access(5), "ENHANCED STATUS CODES": text after REJECT may begin with an RFC 3463 code;
without one Postfix says 5.7.1, so dead recipients carry 5.1.1 ("bad destination mailbox").

The file is replaced atomically: written to a temporary name in the same directory,
``postmap``-ed there, and both the source and the indexed file renamed into place (a
``smtpd`` opening the map mid-way sees the old file or the new, never half of one).

What may become a key (bounce_handler/trust.py, docs/trust.md): only flags whose rule held
on verified evidence (``flags.verified``), SASL logins only from the relay's own Received:
header of a local notice, and every key a complete address (or login): access(5) reads a
bare domain, a bare local part or ``user@`` as a wildcard, and postmaster must stay
reachable.  ``collect`` leaves anything else out with a warning, and ``postfix_text``
refuses to write a line that would still break that.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from sqlalchemy import desc, select

from bounce_handler import trust
from bounce_handler.errors import EX_SOFTWARE, EX_USAGE, BounceHandlerError
from bounce_handler.reports import db
from bounce_handler.reports.suppressions import BadEntry, normalize

DEAD = "dead-recipient"
COMPROMISED = "compromised-sender"
WHAT = {"dead-recipients": (DEAD, "recipient"), "compromised-senders": (COMPROMISED, "sender")}

# postmap's output file per map type (postmap(1), "the file has the .db/.lmdb/.cdb suffix").
INDEXED_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}


class Entry:
    """One line of an export."""

    __slots__ = ("value", "source", "note", "since")

    def __init__(self, value: str, source: str, note: str | None, since) -> None:
        self.value = value
        self.source = source  # "flag #12 R1" or "manual"
        self.note = note
        self.since = since

    def as_dict(self) -> dict:
        """Plain values (JSON, CSV); `since` in RFC 3339 UTC."""
        from bounce_handler.reports.render import utc_text

        return {"value": self.value, "source": self.source, "note": self.note,
                "since": utc_text(self.since)}


def collect(conn, what: str, key: str = "sender", warn=None,
            left_out: list | None = None) -> list[Entry]:
    """The entries of `what` (dead-recipients | compromised-senders), flags first.

    key="sasl" (compromised senders only) maps each flagged sender to the SASL login
    names its bounced mail was submitted with (bounce_events.sasl_login, where the
    relay's own Received: header of a local notice gave it): the key check_sasl_access
    looks up.  A flagged sender with no such login is reported to `warn` and left out (and
    appended to `left_out`, so the caller can say the map is incomplete).
    Flags whose rule did not hold on verified evidence are left out (and reported).
    """
    flag_kind, supp_kind = WHAT[what]
    fl, sup = db.flags, db.suppressions
    seen: dict[str, Entry] = {}
    key_type = "sasl" if key == "sasl" else "address"
    rows = conn.execute(
        select(fl.c.id, fl.c.subject, fl.c.rule, fl.c.raised_at, fl.c.verified)
        .where(fl.c.kind == flag_kind, fl.c.state.in_(db.LIVE_STATES))
        .order_by(fl.c.raised_at, fl.c.id)
    ).all()
    for r in rows:
        if not r.verified:
            if warn:
                warn(f"flag #{r.id} ({r.subject}): its rule does not hold on verified "
                     "evidence alone (docs/trust.md); left out of the export")
            continue
        values = [r.subject]
        if key == "sasl":
            values = _logins(conn, r.subject)
            if not values and warn:
                warn(f"flag #{r.id} ({r.subject}): no SASL login recorded by a verified "
                     "notice for this sender; left out of the check_sasl_access map")
            if not values and left_out is not None:
                left_out.append(f"flag #{r.id} ({r.subject})")
        for v in values:
            _put(seen, v, f"flag #{r.id} {r.rule}", None, r.raised_at, warn, key_type)
    for r in conn.execute(select(sup).where(sup.c.kind == supp_kind).order_by(sup.c.value)):
        values = [r.value]
        if key == "sasl" and "@" in r.value:
            values = _logins(conn, r.value) or [r.value]
        for v in values:
            _put(seen, v, r.source, r.note, r.created_at, warn, key_type)
    return list(seen.values())


def _put(seen: dict, value: str, source: str, note, since, warn, key_type: str) -> None:
    try:
        v = normalize(value)
    except BadEntry as e:
        if warn:
            warn(f"skipped {e}")
        return
    problem = trust.export_key_problem(v, key_type)
    if problem:
        if warn:
            warn(f"skipped {v!r} ({source}): {problem}")
        return
    k = v.lower()  # Postfix folds map keys to lower case (postmap(1) without -f)
    if k not in seen:
        seen[k] = Entry(v, source, note, since)


def _logins(conn, sender: str) -> list[str]:
    # Only logins the relay itself wrote (sasl_verified): a forged bounce can carry any
    # Received: header, and 50 of them must not push the real login out either.
    ev = db.events
    rows = conn.execute(
        select(ev.c.sasl_login)
        .where(ev.c.sender == sender, ev.c.sasl_login.is_not(None),
               ev.c.sasl_verified.is_(True), ev.c.duplicate_of.is_(None))
        .order_by(desc(ev.c.occurred_at))
        .limit(50)
    ).scalars()
    out = []
    for login in rows:
        if login and login not in out:
            out.append(login)
    return out


def postfix_text(what: str, entries: list[Entry], action: str, generated: str,
                 key: str = "sender") -> str:
    """The access(5) source file.

    Raises BounceHandlerError rather than write a key access(5) would read as a wildcard
    (``collect`` leaves such values out; this is the last line of defence).
    """
    action = action.upper()
    key_type = "sasl" if key == "sasl" else "address"
    for e in entries:
        problem = trust.export_key_problem(e.value, key_type)
        if problem:
            raise BounceHandlerError(f"refusing to export {e.value!r}: {problem}", EX_SOFTWARE)
    lines = [
        f"# bounce-handler: {what}, generated {generated} UTC by `bounces export`.",
        "# Do not edit: the next export replaces this file. Manual entries:",
        "# bounces suppress add " + ("recipient" if what == "dead-recipients" else "sender")
        + " ADDRESS",
    ]
    for e in entries:
        why = e.source + (f": {e.note}" if e.note else "")
        why = " ".join(why.split())  # one line: a newline would end the table entry
        if what == "dead-recipients":
            if action == "REJECT":
                result = f"REJECT 5.1.1 Recipient address known to bounce ({why})"
            else:
                result = f"DISCARD recipient known to bounce ({why})"
        else:
            if action == "HOLD":
                result = f"HOLD sender flagged as compromised ({why})"
            else:
                result = f"REJECT 5.7.1 Sender flagged as compromised ({why})"
        lines.append(f"{e.value}\t{result}")
    return "\n".join(lines) + "\n"


def csv_rows(what: str, entries: list[Entry]):
    """Header + rows (`bounces suppress import` reads this back)."""
    kind = WHAT[what][1]
    yield ["value", "kind", "source", "note", "since"]
    for e in entries:
        d = e.as_dict()
        yield [d["value"], kind, d["source"], d["note"], d["since"]]


def json_text(what: str, entries: list[Entry]) -> str:
    """The JSON document (render.json_text: every string printable)."""
    from bounce_handler.reports import render

    return render.json_text({"export": what, "entries": [e.as_dict() for e in entries]}) + "\n"


def write_atomic(path: str, data: str, *, map_type: str | None = None,
                 postmap: str | None = None, config_dir: str | None = None) -> str | None:
    """Replace `path` with `data`; with `map_type`, index it with postmap first.

    `config_dir` is passed to postmap as -c (it reads main.cf there; the default is
    /etc/postfix, or $MAIL_CONFIG).

    Returns the indexed file's path (or None when nothing was postmap-ed).
    """
    path = os.path.abspath(path)
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".{base}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        os.chmod(tmp, 0o644)
        indexed = None
        if map_type:
            if map_type not in INDEXED_SUFFIX:
                raise BounceHandlerError(
                    f"map type {map_type!r}: use one of {', '.join(INDEXED_SUFFIX)}", EX_USAGE
                )
            binary = postmap or shutil.which("postmap") or "/usr/sbin/postmap"
            argv = [binary] + (["-c", config_dir] if config_dir else []) + [f"{map_type}:{tmp}"]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                hint = (" (-c DIR names the Postfix configuration directory)"
                        if "main.cf" in proc.stderr else "")
                raise BounceHandlerError(
                    f"postmap {map_type}:{tmp} failed: {proc.stderr.strip()}{hint}", EX_SOFTWARE
                )
            suffix = INDEXED_SUFFIX[map_type]
            indexed = path + suffix
            os.replace(tmp + suffix, indexed)
        os.replace(tmp, path)
        return indexed
    finally:
        for leftover in (tmp, *(tmp + s for s in set(INDEXED_SUFFIX.values()))):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def find_postmap() -> str | None:
    """The postmap binary, or None when Postfix is not installed here."""
    found = shutil.which("postmap")
    if found:
        return found
    return "/usr/sbin/postmap" if os.access("/usr/sbin/postmap", os.X_OK) else None
