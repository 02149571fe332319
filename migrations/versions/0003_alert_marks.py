"""Alert bookkeeping per flag: which notice of each flag each alert channel has reported.

``alert_state.last_flag_event_id`` was a single position in flag_events per channel: a
flag was alerted when its 'raised' audit line lay beyond it.  That position is only right
while flag_events ids grow in commit order and nothing rewrites the table: `bounces flags
recompute` rewrote it from low ids (the pending flags fell behind the position and were
never alerted), and on PostgreSQL two writers can commit ids out of order (a flag raised
by the slower one is skipped).  ``alert_marks`` remembers, per channel and flag, the id of
the flag's newest notice (raised / withdrawn / restored) the channel has reported, so a
flag is pending exactly when it has a notice newer than its mark, whatever happens to the
ids of other rows.  ``ix_flag_events_action_flag_id`` finds each flag's newest notice
without scanning the 'updated' lines; ``ix_flags_kind_state_raised_at`` lets reports and
alerts list the live flags most urgent kind first without sorting every dead recipient.

The upgrade carries each channel's position over: flags whose 'raised' line lies at or
before it count as reported.  The downgrade drops the table (alert_state keeps the
position, which `bounces alert` goes on advancing).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_marks',
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('flag_event_id', sa.Integer(), nullable=False),
    sa.Column('alerted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_alert_marks_flag_id_flags'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('channel', 'flag_id', name=op.f('pk_alert_marks'))
    )
    with op.batch_alter_table('alert_marks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_marks_flag_id'), ['flag_id'], unique=False)
    with op.batch_alter_table('flag_events', schema=None) as batch_op:
        batch_op.create_index('ix_flag_events_action_flag_id', ['action', 'flag_id'], unique=False)
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.create_index('ix_flags_kind_state_raised_at', ['kind', 'state', 'raised_at'], unique=False)
    op.execute(
        "INSERT INTO alert_marks (channel, flag_id, flag_event_id, alerted_at) "
        "SELECT s.channel, e.flag_id, max(e.id), max(s.last_run_at) FROM alert_state s "
        "JOIN flag_events e ON e.id <= s.last_flag_event_id AND e.action = 'raised' "
        "GROUP BY s.channel, e.flag_id"
    )


def downgrade() -> None:
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_index('ix_flags_kind_state_raised_at')
    with op.batch_alter_table('flag_events', schema=None) as batch_op:
        batch_op.drop_index('ix_flag_events_action_flag_id')
    with op.batch_alter_table('alert_marks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_marks_flag_id'))
    op.drop_table('alert_marks')
