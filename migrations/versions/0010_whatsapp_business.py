"""WhatsApp Business: synced provider templates and the recovery's template mapping, Meta ids and marketing
consent on customers, how each message went out, the shop's rotatable webhook secret

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 16:30:00

``whatsapp_templates`` is rebuilt: its old rows (one ContentSid per message kind, never filled by anything but
hand) cannot say what the provider approved; the next ``flask templates sync`` fills the new table.
``messages.provider_sid`` grows to 128 characters for Meta's wamids.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import models.base

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
TEMPLATE_STATUSES = ('approved', 'pending', 'rejected', 'paused', 'disabled', 'unsubmitted', 'removed')


def upgrade() -> None:
    op.drop_table('whatsapp_templates')
    op.create_table(
        'whatsapp_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('external_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=512), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=32), nullable=True),
        sa.Column('status', sa.Enum(*TEMPLATE_STATUSES, name='templatestatus', native_enum=False,
                                    create_constraint=True, length=24), nullable=False),
        sa.Column('rejection_reason', sa.String(length=255), nullable=True),
        sa.Column('header', sa.Text(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('footer', sa.Text(), nullable=True),
        sa.Column('placeholders', json_type, nullable=False),
        sa.Column('buttons', json_type, nullable=False),
        sa.Column('synced_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_templates')),
        sa.UniqueConstraint('provider', 'external_id', name=op.f('uq_whatsapp_templates_provider')),
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('provider_sid', existing_type=sa.String(length=64), type_=sa.String(length=128),
                              existing_nullable=True)
        batch_op.add_column(sa.Column('template_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sent_as', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('interactive', json_type, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_messages_template_id_whatsapp_templates'), 'whatsapp_templates',
                                    ['template_id'], ['id'])
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wa_id', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('marketing_opted_out_at', models.base.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('recovery_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('whatsapp_template_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('whatsapp_template_params', json_type, server_default=sa.text("'{}'"),
                                      nullable=False))
        batch_op.add_column(sa.Column('variant_b_whatsapp_template_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('variant_b_whatsapp_template_params', json_type,
                                      server_default=sa.text("'{}'"), nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_recovery_settings_whatsapp_template_id_whatsapp_templates'),
                                    'whatsapp_templates', ['whatsapp_template_id'], ['id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_recovery_settings_variant_b_whatsapp_template_id_whatsapp_templates'),
            'whatsapp_templates', ['variant_b_whatsapp_template_id'], ['id'])
    op.create_table(
        'webhook_secrets',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('secret_encrypted', sa.Text(), nullable=False),
        sa.Column('previous_encrypted', sa.Text(), nullable=True),
        sa.Column('previous_valid_until', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('hint', sa.String(length=8), nullable=False),
        sa.Column('rotated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('rotated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['rotated_by_id'], ['users.id'], name=op.f('fk_webhook_secrets_rotated_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_webhook_secrets')),
    )


def downgrade() -> None:
    op.drop_table('webhook_secrets')
    with op.batch_alter_table('recovery_settings', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_recovery_settings_variant_b_whatsapp_template_id_whatsapp_templates'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_recovery_settings_whatsapp_template_id_whatsapp_templates'),
                                 type_='foreignkey')
        batch_op.drop_column('variant_b_whatsapp_template_params')
        batch_op.drop_column('variant_b_whatsapp_template_id')
        batch_op.drop_column('whatsapp_template_params')
        batch_op.drop_column('whatsapp_template_id')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('marketing_opted_out_at')
        batch_op.drop_column('wa_id')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_template_id_whatsapp_templates'), type_='foreignkey')
        batch_op.drop_column('interactive')
        batch_op.drop_column('sent_as')
        batch_op.drop_column('template_id')
        batch_op.alter_column('provider_sid', existing_type=sa.String(length=128), type_=sa.String(length=64),
                              existing_nullable=True)
    op.drop_table('whatsapp_templates')
    op.create_table(
        'whatsapp_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('content_sid', sa.String(length=64), nullable=False),
        sa.Column('variables', json_type, nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_templates')),
        sa.UniqueConstraint('kind', name=op.f('uq_whatsapp_templates_kind')),
    )
