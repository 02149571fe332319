"""The rows one message becomes, and the one boundary their text crosses on the way to a store.

``Batch`` is what intake hands a writer (store/lean.py, store/pg.py, store/spool.py, the
LMTP group committer): a ``messages`` row, its ``bounce_events`` rows, the compressed raw
bytes and, when it is quarantined, a ``quarantine`` row; column names are the models'.

Every text value of those rows comes from a stranger (an argv macro, a DSN field, a
decoded header) and must be storable in SQLite *and* PostgreSQL, first time, forever:

- NUL: PostgreSQL refuses it in text ("invalid byte sequence for encoding UTF8: 0x00"),
  and a writer that mapped that to "store unavailable" wedged the spool drain behind one
  message;
- a lone surrogate (a punycode field decoding to U+D800, argv bytes that are not
  UTF-8 arriving as PEP 383 escapes): no driver can encode it, so the pipe deferred the
  same message until Postfix gave up;
- control characters in a column that is one line (an address, a status, a subject):
  CR/LF/ESC there end up in terminals, logs and access maps;
- length: PostgreSQL refuses a value longer than its ``varchar(n)``.

``clean_text`` fixes each of these in one place, and every writer builds its INSERT values
through ``values`` (which cleans), so no writer can forget a column.  Nothing is dropped
silently: a bad character becomes U+FFFD (not nothing: ``alice@exa<NUL>mple.net`` must not
become the real, different address ``alice@example.net``), an over-long value ends in
"…".  ``COLUMNS`` lists every text column with its size; tests/test_store_rows.py checks it
against store/models.py column by column (the pipe cannot import the models: SQLAlchemy
costs ~300 ms), so a column added to the models without an entry here fails the tests.

When a store still refuses a message's rows (a data error, not an outage: a constraint, a
value it cannot take), the writer does not retry it forever: ``set_aside`` turns the batch
into a quarantined message holding only values this program made itself, with why, and
the raw bytes when they are kept; see store/lean.py ``write`` and store/pg.py.

No imports: this module is on the pipe's hot path.
"""

from __future__ import annotations


class Batch:
    """The rows one message becomes, ready for a writer (column names = the models').

    ``aside`` is None, or why a writer had to set the message's own rows aside and store
    it as quarantined instead (see ``set_aside``).
    """

    __slots__ = ("message", "raw", "events", "quarantine", "now", "aside")

    def __init__(self, message, raw, events, quarantine, now, aside=None) -> None:
        self.message = message
        self.raw = raw
        self.events = events
        self.quarantine = quarantine
        self.now = now
        self.aside = aside


# What a Text column (no size in the schema) keeps at most: a diagnostic can be a whole
# SMTP transcript, and one hostile message must not make a row of megabytes.
TEXT_LIMIT = 2000

# table -> column -> (limit in characters, one line?).  A String(n) column is one line of at
# most n characters (PostgreSQL varchar(n) counts characters, as len() does); a Text
# column keeps its line breaks and TEXT_LIMIT characters.  Checked against the models by
# tests/test_store_rows.py.
COLUMNS: dict[str, dict[str, tuple[int, bool]]] = {
    "messages": {
        "digest": (64, True),
        "source": (16, True),
        "relay": (255, True),
        "queue_id": (64, True),
        "envelope_sender": (512, True),
        "envelope_recipient": (512, True),
        "original_recipient": (512, True),
        "extension": (512, True),
        "kind": (16, True),
        "disposition": (16, True),
        "note": (TEXT_LIMIT, False),
        "detector": (64, True),
        "header_message_id": (998, True),
        "subject": (998, True),
    },
    "bounce_events": {
        "kind": (16, True),
        "recipient": (512, True),
        "recipient_domain": (255, True),
        "original_recipient": (512, True),
        "action": (16, True),
        "status": (16, True),
        "reply_code": (3, True),
        "reason": (32, True),
        "diagnostic": (TEXT_LIMIT, False),
        "remote_mta": (255, True),
        "detector": (64, True),
        "sender": (512, True),
        "sasl_login": (255, True),
        "verp_token": (512, True),
        "verify_reason": (32, True),
        "original_message_id": (998, True),
        "origin": (8, True),
        "sender_source": (16, True),
        "failure_key": (32, True),
        "token_key": (255, True),
    },
    "raw_messages": {
        "compression": (8, True),
    },
    "quarantine": {
        "reason": (64, True),
        "detail": (TEXT_LIMIT, False),
    },
}

REPLACEMENT = "\ufffd"
ELLIPSIS = "…"


def clean_text(value, limit: int, one_line: bool = True):
    """`value` as every store can keep it; anything that is not a str is returned as is.

    Lone surrogates become U+FFFD; NUL becomes U+FFFD; in a one-line column, white space
    other than " " (CR, LF, TAB, NBSP, U+2028 ...) becomes " " and every other character
    Python does not call printable (C0/C1 controls, ESC, DEL, bidi overrides and other
    format characters, unassigned code points) becomes U+FFFD; then at most `limit`
    characters, the last one "…" when cut.  Idempotent.
    """
    if type(value) is not str:
        return value
    # Most values are short printable ASCII, returned as they are after three C calls (a
    # row is cleaned twice on its way to a store: clean_batch, then values).
    if value.isascii():
        if len(value) <= limit and (value.isprintable() if one_line else "\x00" not in value):
            return value
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join(REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in value)
    if one_line:
        if not value.isprintable():
            value = "".join(
                c if c.isprintable() else (" " if c.isspace() else REPLACEMENT) for c in value
            )
    elif "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    if len(value) > limit:
        value = value[: limit - 1] + ELLIPSIS
    return value


def clean_row(table: str, row: dict) -> dict:
    """Clean every text column of `row` (a dict of one `table`'s columns) in place."""
    for column, (limit, one_line) in COLUMNS[table].items():
        value = row.get(column)
        if value is not None:
            row[column] = clean_text(value, limit, one_line)
    return row


def values(table: str, row: dict, columns: tuple[str, ...]) -> list:
    """The INSERT parameters for `columns` of `row`, cleaned.

    The row is cleaned in place, so what a judge hook reads afterwards is what was stored.
    """
    clean_row(table, row)
    return [row.get(c) for c in columns]


def clean_batch(batch: Batch) -> Batch:
    """Clean every row of `batch` in place; return it.

    An event whose cleaned recipient repeats an earlier one of the same message is
    dropped: two addresses that differ only in what was cut or replaced would otherwise
    break UNIQUE (message_id, recipient).
    """
    clean_row("messages", batch.message)
    seen = set()
    events = []
    for ev in batch.events:
        clean_row("bounce_events", ev)
        key = ev.get("recipient")
        if key in seen:
            continue
        seen.add(key)
        events.append(ev)
    if len(events) != len(batch.events):
        batch.events[:] = events
    if batch.quarantine is not None:
        clean_row("quarantine", batch.quarantine)
    return batch


# The messages columns set_aside keeps: all of them values this program made (a digest,
# a time, a counter, its own relay name), none taken from the message.
_OWN_MESSAGE_COLUMNS = ("digest", "received_at", "source", "relay", "size", "truncated")


def set_aside(batch: Batch, why: str) -> Batch:
    """Turn `batch` (in place) into a quarantined message the store can always take.

    For a message whose own rows a store refused with a data error: its events are
    dropped, its message row keeps only values this program made, and a quarantine row
    says why, with the raw bytes when ``[intake] keep_raw`` kept them (the digest stays,
    so a redelivery is still a duplicate).
    """
    old = batch.message
    if batch.raw is None:
        why += " (raw message not kept: [intake] keep_raw = false)"
    message = {k: old.get(k) for k in _OWN_MESSAGE_COLUMNS}
    # NOT NULL columns keep a value even when the batch was damaged (a spool file).
    message.update(
        source=message["source"] or "unknown",
        relay=message["relay"] or "",
        size=message["size"] or 0,
        truncated=message["truncated"] or 0,
        kind="unknown",
        disposition="quarantined",
        detector=None,
    )
    message["note"] = why
    batch.message = message
    batch.events = []
    batch.quarantine = {"reason": "unstorable", "detail": why}
    batch.aside = why
    return clean_batch(batch)
