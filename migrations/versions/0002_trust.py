"""Trust and failure identity: what vouches for each event, one failure counted once.

bounce_events gains origin, sender_source, sasl_verified (bounce_handler/trust.py reads
them), failure_key and token_key with their (key, id) indexes, and the links
duplicate_of and replay_of; duplicate_of trails the report indexes so reports count each
failure once from the index alone.  flags gains verified (exported only when true).

Rows recorded before this revision keep NULL in the new columns: trust.py reads a NULL
sender_source on a verified row as "from the token" (intake.attribute_sender always
tried the token first), and they have no failure or token key (they were never
deduplicated).  Existing flags start unverified: they may
rest on the forged evidence this revision stops trusting, so they are not exported until
`bounces flags recompute` has judged them again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The report indexes: (name, columns before this revision).
REPORT_INDEXES = (
    ("ix_bounce_events_occurred_at", ["occurred_at"]),
    ("ix_bounce_events_sender_occurred_at", ["sender", "occurred_at"]),
    ("ix_bounce_events_recipient_occurred_at", ["recipient", "occurred_at"]),
    ("ix_bounce_events_domain_occurred_at", ["recipient_domain", "occurred_at"]),
    ("ix_bounce_events_reason_occurred_at", ["reason", "occurred_at"]),
    ("ix_bounce_events_status_occurred_at", ["status", "occurred_at"]),
    ("ix_bounce_events_kind_hard_occurred_at", ["kind", "hard", "occurred_at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("sender_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("sasl_verified", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("failure_key", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("token_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("replay_of", sa.Integer(), nullable=True))
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        for name, columns in REPORT_INDEXES:
            batch_op.drop_index(name)
            batch_op.create_index(name, [*columns, "duplicate_of"], unique=False)
        batch_op.create_index(
            "ix_bounce_events_failure_key_id", ["failure_key", "id"], unique=False
        )
        batch_op.create_index(
            "ix_bounce_events_token_key_id", ["token_key", "id"], unique=False,
            sqlite_where=sa.text("token_key IS NOT NULL"),
            postgresql_where=sa.text("token_key IS NOT NULL"),
        )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("verified")
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.drop_index("ix_bounce_events_token_key_id")
        batch_op.drop_index("ix_bounce_events_failure_key_id")
        for name, columns in REPORT_INDEXES:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        for column in (
            "replay_of", "duplicate_of", "token_key", "failure_key", "sasl_verified",
            "sender_source", "origin",
        ):
            batch_op.drop_column(column)
