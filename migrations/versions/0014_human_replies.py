"""Human replies: who wrote an outbound message (messages.author_id) and when a person last wrote to the shopper
(customers.human_replied_at, which pauses the bot)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00

Sellers and managers answer shoppers from the console and the seller app through the store's number; the bot stays
silent while a person holds the conversation (bot.human_replies). Existing messages keep a NULL author (the bot, the
recoverer or the shopper wrote them).
"""

from alembic import op
import sqlalchemy as sa

import models.base

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_messages_author_id_users'), 'users', ['author_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('human_replied_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('human_replied_at')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_messages_author_id_users'), type_='foreignkey')
        batch_op.drop_column('author_id')
