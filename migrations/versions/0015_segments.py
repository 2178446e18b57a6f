"""Dynamic customer segments: segments, their members, manual exclusions, event feed and daily counts; the
customer's birthday and source (campaign/referral), and indexes for "customers and carts changed since"

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 02:00:00

``segments.membership`` keeps the membership rows; a fresh install has no segment, so nothing is backfilled.
``customers.updated_at`` and ``carts.updated_at`` are indexed so the scheduled incremental refresh
(``segments.jobs.refresh_changed``) reads only what changed.
"""

from alembic import op
import sqlalchemy as sa

import models.base

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birthday', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(length=120), nullable=True))
    op.create_index(op.f('ix_customers_updated_at'), 'customers', ['updated_at'])
    op.create_index(op.f('ix_carts_updated_at'), 'carts', ['updated_at'])
    op.create_table(
        'segments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('entry_conditions', models.base.JSONType, nullable=False),
        sa.Column('exit_conditions', models.base.JSONType, nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_recomputed_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_segments_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
        sa.UniqueConstraint('name', name=op.f('uq_segments_name')),
    )
    op.create_table(
        'segment_members',
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('entered_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('entry_run', sa.BigInteger(), nullable=True),
        sa.Column('exit_run', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_segment_members_customer_id_customers'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name=op.f('fk_segment_members_segment_id_segments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_segment_members')),
    )
    op.create_index('ix_segment_members_customer', 'segment_members', ['customer_id'])
    op.create_table(
        'segment_exclusions',
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('removed_by_id', sa.Integer(), nullable=True),
        sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_segment_exclusions_customer_id_customers'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['removed_by_id'], ['users.id'],
                                name=op.f('fk_segment_exclusions_removed_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name=op.f('fk_segment_exclusions_segment_id_segments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('segment_id', 'customer_id', name=op.f('pk_segment_exclusions')),
    )
    op.create_table(
        'segment_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('cause', sa.String(length=200), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_segment_events_actor_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_segment_events_customer_id_customers'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name=op.f('fk_segment_events_segment_id_segments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_segment_events')),
    )
    op.create_index('ix_segment_events_segment_id', 'segment_events', ['segment_id', 'id'])
    op.create_index('ix_segment_events_customer', 'segment_events', ['customer_id', 'id'])
    op.create_table(
        'segment_counts',
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('members', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name=op.f('fk_segment_counts_segment_id_segments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('segment_id', 'day', name=op.f('pk_segment_counts')),
    )


def downgrade() -> None:
    op.drop_table('segment_counts')
    op.drop_index('ix_segment_events_customer', table_name='segment_events')
    op.drop_index('ix_segment_events_segment_id', table_name='segment_events')
    op.drop_table('segment_events')
    op.drop_table('segment_exclusions')
    op.drop_index('ix_segment_members_customer', table_name='segment_members')
    op.drop_table('segment_members')
    op.drop_table('segments')
    op.drop_index(op.f('ix_carts_updated_at'), table_name='carts')
    op.drop_index(op.f('ix_customers_updated_at'), table_name='customers')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('source')
        batch_op.drop_column('birthday')
