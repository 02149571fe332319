"""The one schema: SQLAlchemy 2 models for every table.

Alembic (``migrations/``) owns how the schema gets into a database; this module owns what it
is.  The pipe's hot path writes through the DB-API (``store.lean``) to stay clear of
SQLAlchemy's ~300 ms import; ``tests/test_store_schema.py`` proves its statements match
these models column for column.

Times are stored as UTC ``DateTime`` (naive, UTC by convention, the same on SQLite and
PostgreSQL) so that windows and reports are plain range scans on indexed columns.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so migrations can drop and alter them on every engine
# (SQLite's batch mode needs names to find them).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base bound to the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class Message(Base):
    """One row per message received, whatever became of it (the intake ledger).

    ``digest`` is the idempotency key: SHA-256 over the envelope recipient and the bytes
    read, so a message Postfix delivers again (after a crash, or an exit 75 following a
    partial write) maps to the row it already has.  ``disposition`` says what became of
    it: recorded (bounce events written), ignored (an auto-reply or a delivery report:
    nothing to count, logged as such) or quarantined (not understood: kept, with why).
    Messages in = recorded + ignored + quarantined, always.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))  # pipe, lmtp, import
    relay: Mapped[str] = mapped_column(String(255), default="")
    queue_id: Mapped[str | None] = mapped_column(String(64))
    envelope_sender: Mapped[str | None] = mapped_column(String(512))
    envelope_recipient: Mapped[str | None] = mapped_column(String(512))
    original_recipient: Mapped[str | None] = mapped_column(String(512))
    extension: Mapped[str | None] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    disposition: Mapped[str] = mapped_column(String(16), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    detector: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    header_message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str | None] = mapped_column(String(998))

    raw: Mapped[RawMessage | None] = relationship(back_populates="message")
    events: Mapped[list[BounceEvent]] = relationship(back_populates="message")


class RawMessage(Base):
    """The bytes of a message as read (zlib-compressed), pruned after a retention period."""

    __tablename__ = "raw_messages"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    stored_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    compression: Mapped[str] = mapped_column(String(8), default="zlib")
    content: Mapped[bytes] = mapped_column(LargeBinary)

    message: Mapped[Message] = relationship(back_populates="raw")


class BounceEvent(Base):
    """One failed (or delayed, or complained-about) recipient of one message.

    ``sender`` is the local sender the bounce is attributed to (the signed VERP identity,
    the original envelope sender of a Postfix notice, or the XVERP-less Return-Path), the
    key the compromised-sender rules count by; ``verified`` is False when the VERP token
    did not verify (forged-looking), and the judge ignores such rows by default.

    What vouches for the row (bounce_handler/trust.py decides what it may cause):
    ``origin`` ('local': Postfix's own bounce daemon wrote it; 'network'; NULL: not
    known), ``sender_source`` (where ``sender`` was read), ``sasl_verified`` (the login
    is from the relay's own Received: header of a local notice).  One failure arriving
    twice (the DSN and Postfix's postmaster copy, a redelivery) shares ``failure_key``;
    the later copies link to the first in ``duplicate_of`` and reports count only rows
    without one.  Rows backed by one verified token share ``token_key``; a later one that
    is not local links to the first in ``replay_of``.

    ``origin = 'queue'`` rows are not bounces: a recipient this relay's live queue showed
    deferred by a throttling destination (``bounce_handler/livequeue.py``, kind 'delay',
    evidence for rule R8 only).  The final DSN Postfix later writes for the same recipient
    of the same message links to that row in ``queued_of``: it counts everywhere as the
    bounce it is, but not again for R8.
    """

    __tablename__ = "bounce_events"
    __table_args__ = (
        UniqueConstraint("message_id", "recipient"),
        # duplicate_of trails the report indexes so `duplicate_of IS NULL` (count each
        # failure once) is read from the index itself: the reports stay range counts over
        # covering indexes (bench/report_bench.py: 1 M rows in < 1 s).
        Index("ix_bounce_events_occurred_at", "occurred_at", "duplicate_of"),
        Index("ix_bounce_events_sender_occurred_at", "sender", "occurred_at", "duplicate_of"),
        Index(
            "ix_bounce_events_recipient_occurred_at", "recipient", "occurred_at", "duplicate_of"
        ),
        Index(
            "ix_bounce_events_domain_occurred_at", "recipient_domain", "occurred_at",
            "duplicate_of",
        ),
        Index("ix_bounce_events_reason_occurred_at", "reason", "occurred_at", "duplicate_of"),
        # `bounces report`: --by status, and the totals by kind and hard/soft, are range
        # counts over these covering indexes.
        Index("ix_bounce_events_status_occurred_at", "status", "occurred_at", "duplicate_of"),
        Index(
            "ix_bounce_events_kind_hard_occurred_at", "kind", "hard", "occurred_at",
            "duplicate_of",
        ),
        # The writers link copies (store/lean.py link_copies) and the judge finds an
        # earlier admitted copy (trust.dedup_sql) through these, in id order.
        Index("ix_bounce_events_failure_key_id", "failure_key", "id"),
        # Partial: most rows carry no verified token, and the pipe should not pay an index
        # write for them (`token_key = ?` implies the WHERE, so lookups use it).
        Index(
            "ix_bounce_events_token_key_id", "token_key", "id",
            sqlite_where=text("token_key IS NOT NULL"),
            postgresql_where=text("token_key IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(16))  # bounce, delay, complaint
    recipient: Mapped[str] = mapped_column(String(512))
    recipient_domain: Mapped[str] = mapped_column(String(255))
    original_recipient: Mapped[str | None] = mapped_column(String(512))
    action: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    reply_code: Mapped[str | None] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(32))
    hard: Mapped[bool | None] = mapped_column(Boolean)
    diagnostic: Mapped[str | None] = mapped_column(Text)
    remote_mta: Mapped[str | None] = mapped_column(String(255))
    detector: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str | None] = mapped_column(String(512))
    sasl_login: Mapped[str | None] = mapped_column(String(255))
    verp_token: Mapped[str | None] = mapped_column(String(512))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verify_reason: Mapped[str | None] = mapped_column(String(32))
    original_message_id: Mapped[str | None] = mapped_column(String(998))
    origin: Mapped[str | None] = mapped_column(String(8))
    sender_source: Mapped[str | None] = mapped_column(String(16))
    sasl_verified: Mapped[bool | None] = mapped_column(Boolean)
    failure_key: Mapped[str | None] = mapped_column(String(32))
    token_key: Mapped[str | None] = mapped_column(String(255))
    # Links, not foreign keys: `bounces prune` may delete the first copy before a later one.
    duplicate_of: Mapped[int | None] = mapped_column(Integer)
    replay_of: Mapped[int | None] = mapped_column(Integer)
    queued_of: Mapped[int | None] = mapped_column(Integer)

    message: Mapped[Message] = relationship(back_populates="events")


class Quarantine(Base):
    """A message that could not be understood: kept (its raw row) with why, never dropped."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    released_at: Mapped[datetime | None] = mapped_column(DateTime)


class Flag(Base):
    """A condition the threshold engine raised: compromised sender, dead recipient, ...

    Lifecycle: open -> acked -> cleared.  At most one flag per (kind, subject) is not
    cleared at a time (a partial unique index), so a flag is raised once, not once per
    bounce; after clearing, the condition returning raises a new one.  A flag that
    `bounces flags recompute` withdrew (the rules no longer support it) is ``cleared``
    with ``cleared_at`` NULL: out of the live set, cleared by no one, bounding nothing
    (judge/recompute.py).
    """

    __tablename__ = "flags"
    __table_args__ = (
        Index(
            "uq_flags_kind_subject_live",
            "kind",
            "subject",
            unique=True,
            sqlite_where=text("state != 'cleared'"),
            postgresql_where=text("state != 'cleared'"),
        ),
        Index("ix_flags_state_raised_at", "state", "raised_at"),
        # The judge looks up the newest flag for a (kind, subject), cleared ones included
        # (their cleared_at bounds what counts again), on every bounce: judge/lean.py.
        Index("ix_flags_kind_subject", "kind", "subject"),
        # Reports and alerts: live flags per kind, open first, newest first, and their
        # counts, without reading a table of 300,000 dead recipients (reports/summary.py).
        Index("ix_flags_kind_state_raised_at", "kind", "state", "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), default="open")
    rule: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime)
    evidence: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    advice: Mapped[str | None] = mapped_column(Text)
    # The rule holds on verified evidence alone (trust.py): only such flags are exported.
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class FlagEvent(Base):
    """The audit trail: every raise, update, ack and clear, with the rule and its numbers.

    ``bounces flags recompute`` adds 'recomputed', 'withdrawn' and 'restored' lines (actor
    ``recompute``).  'raised', 'withdrawn' and 'restored' are a flag's *notices*, what
    `bounces alert` reports (reports/alerts.py).
    """

    __tablename__ = "flag_events"
    __table_args__ = (
        # `bounces alert`: each flag's newest notice, without reading the 'updated' lines.
        Index("ix_flag_events_action_flag_id", "action", "flag_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    action: Mapped[str] = mapped_column(String(16))  # raised, updated, acked, cleared
    actor: Mapped[str] = mapped_column(String(64), default="judge")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class FlagEvidence(Base):
    """Which bounce events a flag was raised on (for `bounces show`)."""

    __tablename__ = "flag_evidence"

    flag_id: Mapped[int] = mapped_column(
        ForeignKey("flags.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        ForeignKey("bounce_events.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AlertState(Base):
    """One row per alert channel: its lock (two cron runs never alert twice) and last run.

    ``last_flag_event_id`` is the newest notice the channel has reported (informational:
    what is pending is decided per flag, by ``alert_marks``).
    """

    __tablename__ = "alert_state"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_flag_event_id: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime)


class AlertMark(Base):
    """Which notice of a flag a channel has reported: the flag_events id of the newest one.

    A flag is pending for a channel while it has a notice (raised, withdrawn, restored)
    with a higher id than its mark, or no mark at all; so nothing depends on the order in
    which flag_events ids were handed out or committed (reports/alerts.py).
    """

    __tablename__ = "alert_marks"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    flag_id: Mapped[int] = mapped_column(
        ForeignKey("flags.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    flag_event_id: Mapped[int] = mapped_column(Integer)
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Suppression(Base):
    """Manual suppression entries (`bounces suppress add/remove/import`)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # recipient, sender
    value: Mapped[str] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(String(16), default="manual")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
