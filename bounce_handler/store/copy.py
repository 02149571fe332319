"""`bounces db copy`: every table of one store into another, SQLite <-> PostgreSQL.

The way from the embedded default to a shared PostgreSQL (and back): after switching
``[database] url`` the events recorded before would otherwise stay behind.

What is copied: every table of the models (store/models.py: messages, raw messages,
bounce events, quarantine, flags with their ids, the audit trail, flag evidence, alert
state, suppressions, and whatever a later migration adds there), rows with their own
primary keys, so flag #12 stays flag #12 and ``bounces show 1234`` names the same bounce.
The target's schema is made by alembic (``bounces db upgrade``); the source must be at
head already (its tables must be what the models say).

How, so that it can be interrupted and run again:

- the source is read in one snapshot (a read transaction: SQLite in WAL mode, PostgreSQL
  REPEATABLE READ), table by table in foreign-key order, each in primary-key order, in
  batches; each batch is one transaction on the target, so what is committed stays;
- append-only tables (``APPEND_ONLY``: the big ones) resume after the target's highest
  key, and insert with ON CONFLICT DO NOTHING: a run killed at any point and started again
  finishes with every row once;
- the other tables (flags, alert state, suppressions, quarantine, anything unknown) are
  small and change in place (a flag is acked, cleared, updated): they are copied whole on
  every run, ON CONFLICT (key) DO UPDATE, and rows the source no longer has are deleted
  from the target; so a second run after a change brings the target up to date;
- at the end every table's row count and highest key are compared between the snapshot
  and the target (``verify``); any difference is an error, never a warning;
- on PostgreSQL every serial key's sequence is set past the highest copied id, so the next
  row the pipe or the daemon writes does not collide with a copied one.

A target that holds rows of another store (its last row of an append-only table differs
from the source's row with the same key, or it has keys beyond the source's) is refused:
the copy never mixes two histories.  Text PostgreSQL cannot store (a NUL in an old SQLite
row) stops the copy with the table and key of the row, instead of a bare driver error.

Bounces arriving meanwhile are not in the snapshot: hold the bounce transport while
copying (``postconf -e defer_transports=verpbounce; postfix reload``; deploy/README.md).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Table, delete, func, select, text, tuple_
from sqlalchemy.exc import DBAPIError

from bounce_handler.errors import EX_DATAERR, EX_USAGE, BounceHandlerError

# Tables whose rows are only ever inserted (and deleted by `bounces prune`), never
# updated: resumed after the target's highest key.  Everything else is re-synced whole.
APPEND_ONLY = ("messages", "raw_messages", "bounce_events", "flag_events", "flag_evidence")

# Rows per target transaction.  A raw message is up to [intake] max_message_bytes
# compressed; a thousand of the others are ~1 MB.
BATCH = 1000
RAW_BATCH = 100


class CopyError(BounceHandlerError):
    """The copy cannot (or must not) go on: a foreign target, refused data, a mismatch."""

    exit_code = EX_DATAERR


class TableResult:
    """What happened to one table."""

    __slots__ = ("name", "source", "target", "copied", "removed", "ok")

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = 0
        self.target = 0
        self.copied = 0
        self.removed = 0
        self.ok = False

    def as_dict(self) -> dict:
        """Plain values (`--format json`)."""
        return {k: getattr(self, k) for k in self.__slots__}


def tables() -> list[Table]:
    """Every table of the models, parents before children."""
    from bounce_handler.store.models import Base

    return list(Base.metadata.sorted_tables)


def copy(source, target, *, batch: int = BATCH,
         progress: Callable[[str, int], Callable[[int], None]] | None = None
         ) -> list[TableResult]:
    """Copy every table from the `source` engine to the `target` engine (at head already).

    `progress(table, total)` returns a function called with each batch's row count.
    Returns one TableResult per table; raises CopyError when the result does not verify.
    """
    if batch < 1:
        raise BounceHandlerError("--batch must be at least 1", EX_USAGE)
    results = []
    with _snapshot(source) as src:
        for table in tables():
            res = TableResult(table.name)
            results.append(res)
            res.source = _count(src, table)
            with target.connect() as dst:
                if table.name in APPEND_ONLY:
                    _append(src, dst, table, res, batch, progress)
                else:
                    _resync(src, dst, table, res, batch, progress)
        with target.connect() as dst:
            if dst.dialect.name == "postgresql":
                _set_sequences(dst)
            verify(src, dst, results)
    return results


class _snapshot:
    """A read-only connection that sees one state of the source throughout."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.conn = None

    def __enter__(self):
        if self.engine.dialect.name == "postgresql":
            self.conn = self.engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True)
            self.conn.begin()
        else:
            self.conn = self.engine.connect()
            # pysqlite begins transactions only for writes: an explicit BEGIN makes every
            # SELECT below read the same WAL snapshot.
            self.conn.exec_driver_sql("BEGIN")
        return self.conn

    def __exit__(self, *exc) -> None:
        try:
            self.conn.rollback()
        finally:
            self.conn.close()


def _key(table: Table):
    return list(table.primary_key.columns)


def _count(conn, table: Table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _last_key(conn, table: Table):
    """The highest primary key (a tuple), or None for an empty table."""
    cols = _key(table)
    row = conn.execute(select(*cols).order_by(*(c.desc() for c in cols)).limit(1)).first()
    return tuple(row) if row is not None else None


def _after(table: Table, key):
    cols = _key(table)
    if key is None:
        return None
    if len(cols) == 1:
        return cols[0] > key[0]
    return tuple_(*cols) > tuple_(*key)


def _batches(src, table: Table, start, size: int):
    """The source's rows after `start`, in key order, `size` at a time (keyset paging)."""
    cols = _key(table)
    last = start
    while True:
        q = select(table).order_by(*cols).limit(size)
        cond = _after(table, last)
        if cond is not None:
            q = q.where(cond)
        rows = [dict(r._mapping) for r in src.execute(q)]
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][c.name] for c in cols)


def _insert(dst, table: Table, update: bool):
    """INSERT ... ON CONFLICT (key) DO NOTHING / DO UPDATE, in the target's dialect."""
    if dst.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    key = [c.name for c in _key(table)]
    rest = [c.name for c in table.columns if c.name not in key]
    if update and rest:
        return stmt.on_conflict_do_update(index_elements=key,
                                          set_={c: stmt.excluded[c] for c in rest})
    return stmt.on_conflict_do_nothing(index_elements=key)


def _write(dst, table: Table, rows: list[dict], update: bool) -> None:
    """One batch, one transaction; a row the target refuses is named."""
    try:
        with dst.begin():
            dst.execute(_insert(dst, table, update), rows)
    except DBAPIError as e:
        if e.connection_invalidated:
            raise
        # Find the row (one by one, each its own transaction) to say which it is.
        for row in rows:
            try:
                with dst.begin():
                    dst.execute(_insert(dst, table, update), [row])
            except DBAPIError as one:
                if one.connection_invalidated:
                    raise
                key = ", ".join(f"{c.name}={row[c.name]!r}" for c in _key(table))
                raise CopyError(
                    f"{table.name} ({key}): the target refused this row: "
                    f"{str(one.orig).strip().splitlines()[0]}"
                ) from None
        # Every row went in on its own: the batch's error was not about its data.


def _same_row(src, dst, table: Table, key) -> bool:
    cols = _key(table)
    cond = cols[0] == key[0] if len(cols) == 1 else tuple_(*cols) == tuple_(*key)
    a = src.execute(select(table).where(cond)).first()
    b = dst.execute(select(table).where(cond)).first()
    dst.rollback()
    return a is not None and b is not None and tuple(a) == tuple(b)


def _append(src, dst, table: Table, res: TableResult, batch: int, progress) -> None:
    start = _last_key(dst, table)
    dst.rollback()  # end the implicit read transaction before batches begin their own
    if start is not None:
        # Resuming: the target's last row must be the source's row with that key, and the
        # source must reach at least that far; otherwise it is another store's history.
        src_last = _last_key(src, table)
        if src_last is None or tuple(start) > tuple(src_last) or not _same_row(
                src, dst, table, start):
            raise CopyError(
                f"the target's {table.name} holds rows that are not this source's (its "
                f"row {start} differs or is beyond the source's last): copy into an empty "
                "database, or into one an earlier `bounces db copy` from this source filled"
            )
    cond = _after(table, start)
    q = select(func.count()).select_from(table)
    todo = src.execute(q.where(cond) if cond is not None else q).scalar_one()
    advance = progress(table.name, todo) if progress else None
    size = RAW_BATCH if table.name == "raw_messages" else batch
    for rows in _batches(src, table, start, min(size, batch)):
        _write(dst, table, rows, update=False)
        res.copied += len(rows)
        if advance:
            advance(len(rows))


def _resync(src, dst, table: Table, res: TableResult, batch: int, progress) -> None:
    advance = progress(table.name, res.source) if progress else None
    for rows in _batches(src, table, None, batch):
        _write(dst, table, rows, update=True)
        res.copied += len(rows)
        if advance:
            advance(len(rows))
    # Rows the source no longer has (a suppression removed since the last run).  Keys are
    # compared in Python: these tables are small, and a NOT IN over two databases cannot
    # be one query.
    cols = _key(table)
    have = {tuple(r) for r in src.execute(select(*cols))}
    gone = [tuple(r) for r in dst.execute(select(*cols)) if tuple(r) not in have]
    dst.rollback()
    for i in range(0, len(gone), batch):
        chunk = gone[i : i + batch]
        with dst.begin():
            if len(cols) == 1:
                dst.execute(delete(table).where(cols[0].in_([k[0] for k in chunk])))
            else:
                dst.execute(delete(table).where(tuple_(*cols).in_(chunk)))
        res.removed += len(chunk)


def _set_sequences(dst) -> None:
    """Every serial/identity key's sequence past the highest id (PostgreSQL)."""
    with dst.begin():
        for table in tables():
            cols = _key(table)
            if len(cols) != 1 or cols[0].type.python_type is not int:
                continue
            name, col = table.name, cols[0].name
            seq = dst.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                              {"t": name, "c": col}).scalar()
            if seq is None:
                continue
            top = dst.execute(text(f'SELECT max("{col}") FROM "{name}"')).scalar()
            # setval(seq, n, false): the next value is n itself.
            dst.execute(text("SELECT setval(:s, :n, false)"), {"s": seq, "n": (top or 0) + 1})


def verify(src, dst, results: list[TableResult]) -> None:
    """Compare every table's row count and highest key; CopyError on any difference."""
    by_name = {r.name: r for r in results}
    bad = []
    for table in tables():
        res = by_name[table.name]
        res.source = _count(src, table)
        res.target = _count(dst, table)
        same_top = _last_key(src, table) == _last_key(dst, table)
        res.ok = res.source == res.target and same_top
        if not res.ok:
            bad.append(f"{table.name}: source {res.source:,} rows, target {res.target:,}"
                       + ("" if same_top else ", highest keys differ"))
    dst.rollback()
    if bad:
        raise CopyError(
            "the copy does not verify: " + "; ".join(bad) + " (rows deleted from the source "
            "since an earlier run, e.g. by `bounces prune`, stay in the target: copy into an "
            "empty database)"
        )
