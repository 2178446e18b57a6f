"""Opportunity deadlines by type and priority, a manager setting

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 12:00:00

``crm_settings.deadline_hours`` stays NULL on existing rows: NULL means the default rules
(``crm.opportunities.DEFAULT_DEADLINE_HOURS``), counted in the store's opening hours.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('crm_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_hours', json_type, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crm_settings', schema=None) as batch_op:
        batch_op.drop_column('deadline_hours')
