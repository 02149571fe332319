"""The live queue as evidence for R8: bounce_events.queued_of.

Rows read from Postfix's live queue (``bounce_handler/livequeue.py``) are ordinary
bounce_events rows (kind 'delay', origin 'queue', their own messages row with source
'queue'), so they need no column of their own.  What is new is the link from a final DSN
to the queue row of the same recipient of the same message: ``queued_of``.  Such a DSN
counts everywhere as the bounce it is, but not again for rule R8 (trust.dedup_sql).

A link, not a foreign key, like duplicate_of: `bounces prune` may delete the queue row
first.  No index: it is only ever read on the rows a window query already selected.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.drop_column("queued_of")
