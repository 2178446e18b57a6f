"""recovery

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:20:19.604965
"""

from alembic import op
import sqlalchemy as sa
import models.base


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coupon_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('percent', 'fixed', 'free_shipping', name='couponkind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('value', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('min_order', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('recovery_only', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_rules'))
    )
    op.create_table('store_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_store_events')),
    sa.UniqueConstraint('event', 'external_id', 'occurred_at', name=op.f('uq_store_events_event'))
    )
    op.create_table('recovery_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('delay_minutes', sa.Integer(), nullable=False),
    sa.Column('coupon_rule_id', sa.Integer(), nullable=True),
    sa.Column('coupon_validity_hours', sa.Integer(), nullable=False),
    sa.Column('frequency_count', sa.Integer(), nullable=False),
    sa.Column('frequency_unit', sa.Enum('hours', 'days', name='frequencyunit', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('coupon_use_pause_days', sa.Integer(), nullable=False),
    sa.Column('template', sa.Text(), nullable=False),
    sa.Column('quiet_start', sa.String(length=5), nullable=False),
    sa.Column('quiet_end', sa.String(length=5), nullable=False),
    sa.Column('variant_b_template', sa.Text(), nullable=True),
    sa.Column('variant_b_coupon_rule_id', sa.Integer(), nullable=True),
    sa.Column('variant_b_percent', sa.Integer(), nullable=False),
    sa.Column('attribution_days', sa.Integer(), nullable=False),
    sa.Column('max_age_hours', sa.Integer(), nullable=False),
    sa.Column('coupon_url_pattern', sa.String(length=300), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_rule_id'], ['coupon_rules.id'], name=op.f('fk_recovery_settings_coupon_rule_id_coupon_rules')),
    sa.ForeignKeyConstraint(['variant_b_coupon_rule_id'], ['coupon_rules.id'], name=op.f('fk_recovery_settings_variant_b_coupon_rule_id_coupon_rules')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_settings'))
    )
    op.create_table('recovery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('interaction_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('claimed', 'deferred', 'sent', 'skipped', name='attemptstatus', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('skip_reason', sa.String(length=40), nullable=True),
    sa.Column('variant', sa.String(length=1), nullable=False),
    sa.Column('coupon_rule_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recovered_order_id', sa.Integer(), nullable=True),
    sa.Column('recovered_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['coupon_rule_id'], ['coupon_rules.id'], name=op.f('fk_recovery_attempts_coupon_rule_id_coupon_rules')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_recovery_attempts_customer_id_customers')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_recovery_attempts_message_id_messages')),
    sa.ForeignKeyConstraint(['recovered_order_id'], ['orders.id'], name=op.f('fk_recovery_attempts_recovered_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_attempts')),
    sa.UniqueConstraint('customer_id', 'interaction_at', name=op.f('uq_recovery_attempts_customer_id'))
    )
    with op.batch_alter_table('recovery_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_attempts_coupon_rule_id'), ['coupon_rule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_attempts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_attempts_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_attempts_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_attempts_sent_at'), ['sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_attempts_skip_reason'), ['skip_reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_attempts_status'), ['status'], unique=False)

    op.create_table('coupons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redeemed_order_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['recovery_attempts.id'], name=op.f('fk_coupons_attempt_id_recovery_attempts')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_coupons_customer_id_customers')),
    sa.ForeignKeyConstraint(['redeemed_order_id'], ['orders.id'], name=op.f('fk_coupons_redeemed_order_id_orders')),
    sa.ForeignKeyConstraint(['rule_id'], ['coupon_rules.id'], name=op.f('fk_coupons_rule_id_coupon_rules')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('attempt_id', name=op.f('uq_coupons_attempt_id')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_rule_id'), ['rule_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_rule_id'))
        batch_op.drop_index(batch_op.f('ix_coupons_expires_at'))
        batch_op.drop_index(batch_op.f('ix_coupons_customer_id'))

    op.drop_table('coupons')
    with op.batch_alter_table('recovery_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_status'))
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_skip_reason'))
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_sent_at'))
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_due_at'))
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_customer_id'))
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_created_at'))
        batch_op.drop_index(batch_op.f('ix_recovery_attempts_coupon_rule_id'))

    op.drop_table('recovery_attempts')
    op.drop_table('recovery_settings')
    op.drop_table('store_events')
    op.drop_table('coupon_rules')
