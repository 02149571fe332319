"""Manual suppression entries: `bounces suppress add/remove/import/list`.

An entry says "treat this address as dead" (kind ``recipient``) or "hold mail from this
sender" (kind ``sender``: an envelope sender address, or a SASL login name); `bounces
export` merges them with the live flags.  Addresses are stored as the pipe stores them:
the domain lower-cased, the local part as given (RFC 5321 section 2.4: local parts are
case-sensitive, domains are not).
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import delete, func, insert, select, update

from bounce_handler.errors import EX_DATAERR, EX_USAGE, BounceHandlerError
from bounce_handler.reports import db

KINDS = ("recipient", "sender")


class BadEntry(BounceHandlerError):
    """A value that cannot be a suppression entry."""

    exit_code = EX_DATAERR


def normalize(value: str) -> str:
    """``<Alice@Example.NET>`` -> ``Alice@example.net``; rejects blanks and whitespace."""
    v = value.strip().strip("<>").strip()
    if not v:
        raise BadEntry("empty value")
    # An access(5) map key is one whitespace-free token, and a '#' starts a comment there.
    if any(c.isspace() or ord(c) < 32 for c in v) or v.startswith("#"):
        raise BadEntry(f"{value!r}: contains whitespace or starts with '#'")
    local, at, domain = v.rpartition("@")
    return f"{local}@{domain.lower()}" if at else v


def add(conn, kind: str, value: str, note: str | None, now, source: str = "manual") -> bool:
    """Add or update one entry; True if it is new."""
    if kind not in KINDS:
        raise BounceHandlerError(f"kind must be one of {', '.join(KINDS)}", EX_USAGE)
    v = normalize(value)
    t = db.suppressions
    found = conn.execute(select(t.c.id).where(_same(kind, v))).first()
    if found:
        if note is not None:
            conn.execute(update(t).where(t.c.id == found.id).values(note=note))
        return False
    conn.execute(insert(t).values(kind=kind, value=v, source=source, note=note, created_at=now))
    return True


def remove(conn, kind: str, value: str) -> bool:
    """Remove one entry; True if it existed."""
    return conn.execute(delete(db.suppressions).where(_same(kind, normalize(value)))
                        ).rowcount > 0


def _same(kind: str, value: str):
    # Case-insensitive, as Postfix's own lookups of the exported map are (postmap folds
    # keys to lower case): "Alice@" and "alice@" are one entry, not two.
    t = db.suppressions
    return (t.c.kind == kind) & (func.lower(t.c.value) == value.lower())


def entries(conn, kind: str | None = None) -> list[dict]:
    """Every entry (of one kind), oldest first."""
    t = db.suppressions
    q = select(t).order_by(t.c.kind, t.c.value)
    if kind:
        q = q.where(t.c.kind == kind)
    from bounce_handler.reports.render import utc_text

    return [
        {"kind": r.kind, "value": r.value, "source": r.source, "note": r.note,
         "created_at": utc_text(r.created_at)}
        for r in conn.execute(q)
    ]


def count(conn) -> int:
    """How many entries there are."""
    return conn.execute(select(func.count()).select_from(db.suppressions)).scalar_one()


def parse_import(text: str, default_kind: str | None) -> list[tuple[str, str, str | None]]:
    """(kind, value, note) rows from an import file.

    Two shapes: CSV with a header naming a ``value`` column (and optionally ``kind`` and
    ``note``: what `bounces export --format csv` writes), or one value per line with an
    optional ``,note``.  Blank lines and lines starting with '#' are skipped.  A cell that
    `bounces export` neutralised for spreadsheets (``'=...``: render.csv_cell) is read back
    as the value it stands for (render.csv_value).
    """
    from bounce_handler.reports.render import csv_value

    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    first = [c.strip().lower() for c in next(csv.reader([lines[0]]))]
    out = []
    if "value" in first:
        for row in csv.DictReader(io.StringIO("\n".join(lines))):
            row = {(k or "").strip().lower(): csv_value((v or "").strip())
                   for k, v in row.items()}
            kind = row.get("kind") or default_kind
            if kind not in KINDS:
                raise BadEntry(f"row {row}: kind must be one of {', '.join(KINDS)} "
                               "(a kind column, or --kind)")
            out.append((kind, row["value"], row.get("note") or None))
        return out
    if default_kind not in KINDS:
        raise BadEntry("a file without a header line needs --kind recipient|sender")
    for row in csv.reader(lines):
        if row:
            out.append((default_kind, csv_value(row[0].strip()),
                        ",".join(row[1:]).strip() or None))
    return out
