"""Initial schema: messages, raw messages, bounce events, quarantine, flags, alerts.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_state',
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('last_flag_event_id', sa.Integer(), nullable=False),
    sa.Column('last_run_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_alert_state'))
    )
    op.create_table('flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=512), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('raised_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('acked_at', sa.DateTime(), nullable=True),
    sa.Column('cleared_at', sa.DateTime(), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('advice', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flags'))
    )
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.create_index('ix_flags_state_raised_at', ['state', 'raised_at'], unique=False)
        batch_op.create_index('ix_flags_kind_subject', ['kind', 'subject'], unique=False)
        batch_op.create_index('uq_flags_kind_subject_live', ['kind', 'subject'], unique=True, sqlite_where=sa.text("state != 'cleared'"), postgresql_where=sa.text("state != 'cleared'"))

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('relay', sa.String(length=255), nullable=False),
    sa.Column('queue_id', sa.String(length=64), nullable=True),
    sa.Column('envelope_sender', sa.String(length=512), nullable=True),
    sa.Column('envelope_recipient', sa.String(length=512), nullable=True),
    sa.Column('original_recipient', sa.String(length=512), nullable=True),
    sa.Column('extension', sa.String(length=512), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('disposition', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('detector', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('header_message_id', sa.String(length=998), nullable=True),
    sa.Column('subject', sa.String(length=998), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages')),
    sa.UniqueConstraint('digest', name=op.f('uq_messages_digest'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_disposition'), ['disposition'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_received_at'), ['received_at'], unique=False)

    op.create_table('suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=512), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_suppressions_kind_value'))
    )
    op.create_table('bounce_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('recipient', sa.String(length=512), nullable=False),
    sa.Column('recipient_domain', sa.String(length=255), nullable=False),
    sa.Column('original_recipient', sa.String(length=512), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('reply_code', sa.String(length=3), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('hard', sa.Boolean(), nullable=True),
    sa.Column('diagnostic', sa.Text(), nullable=True),
    sa.Column('remote_mta', sa.String(length=255), nullable=True),
    sa.Column('detector', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=512), nullable=True),
    sa.Column('sasl_login', sa.String(length=255), nullable=True),
    sa.Column('verp_token', sa.String(length=512), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('verify_reason', sa.String(length=32), nullable=True),
    sa.Column('original_message_id', sa.String(length=998), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_bounce_events_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bounce_events')),
    sa.UniqueConstraint('message_id', 'recipient', name=op.f('uq_bounce_events_message_id_recipient'))
    )
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.create_index('ix_bounce_events_domain_occurred_at', ['recipient_domain', 'occurred_at'], unique=False)
        batch_op.create_index('ix_bounce_events_occurred_at', ['occurred_at'], unique=False)
        batch_op.create_index('ix_bounce_events_reason_occurred_at', ['reason', 'occurred_at'], unique=False)
        batch_op.create_index('ix_bounce_events_recipient_occurred_at', ['recipient', 'occurred_at'], unique=False)
        batch_op.create_index('ix_bounce_events_sender_occurred_at', ['sender', 'occurred_at'], unique=False)
        batch_op.create_index('ix_bounce_events_status_occurred_at', ['status', 'occurred_at'], unique=False)
        batch_op.create_index('ix_bounce_events_kind_hard_occurred_at', ['kind', 'hard', 'occurred_at'], unique=False)

    op.create_table('flag_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_flag_events_flag_id_flags'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag_events'))
    )
    with op.batch_alter_table('flag_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_events_flag_id'), ['flag_id'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_quarantine_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine')),
    sa.UniqueConstraint('message_id', name=op.f('uq_quarantine_message_id'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_created_at'), ['created_at'], unique=False)

    op.create_table('raw_messages',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('stored_at', sa.DateTime(), nullable=False),
    sa.Column('compression', sa.String(length=8), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_raw_messages_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_raw_messages'))
    )
    with op.batch_alter_table('raw_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_raw_messages_stored_at'), ['stored_at'], unique=False)

    op.create_table('flag_evidence',
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['bounce_events.id'], name=op.f('fk_flag_evidence_event_id_bounce_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_flag_evidence_flag_id_flags'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('flag_id', 'event_id', name=op.f('pk_flag_evidence'))
    )
    with op.batch_alter_table('flag_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_evidence_event_id'), ['event_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('flag_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_evidence_event_id'))

    op.drop_table('flag_evidence')
    with op.batch_alter_table('raw_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_raw_messages_stored_at'))

    op.drop_table('raw_messages')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_created_at'))

    op.drop_table('quarantine')
    with op.batch_alter_table('flag_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_events_flag_id'))
        batch_op.drop_index(batch_op.f('ix_flag_events_at'))

    op.drop_table('flag_events')
    with op.batch_alter_table('bounce_events', schema=None) as batch_op:
        batch_op.drop_index('ix_bounce_events_kind_hard_occurred_at')
        batch_op.drop_index('ix_bounce_events_status_occurred_at')
        batch_op.drop_index('ix_bounce_events_sender_occurred_at')
        batch_op.drop_index('ix_bounce_events_recipient_occurred_at')
        batch_op.drop_index('ix_bounce_events_reason_occurred_at')
        batch_op.drop_index('ix_bounce_events_occurred_at')
        batch_op.drop_index('ix_bounce_events_domain_occurred_at')

    op.drop_table('bounce_events')
    op.drop_table('suppressions')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_received_at'))
        batch_op.drop_index(batch_op.f('ix_messages_disposition'))

    op.drop_table('messages')
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_index('uq_flags_kind_subject_live', sqlite_where=sa.text("state != 'cleared'"), postgresql_where=sa.text("state != 'cleared'"))
        batch_op.drop_index('ix_flags_state_raised_at')
        batch_op.drop_index('ix_flags_kind_subject')

    op.drop_table('flags')
    op.drop_table('alert_state')
