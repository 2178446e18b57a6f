"""inbound messages record when they were processed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:55:00
"""

from alembic import op
import sqlalchemy as sa
import models.base

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processed_at', models.base.UTCDateTime(timezone=True), nullable=True))
    # Messages received before this version were handled by then: the sweep must not answer them again.
    op.execute("UPDATE messages SET processed_at = created_at WHERE direction = 'inbound'")


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('processed_at')
