"""the store's opening hours and a handoff's response time; example questions for each FAQ topic

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00

``crm_settings.opening_hours`` stays NULL on existing rows: NULL means the default hours (``crm.hours``).
``handoff_response_minutes`` (30) and ``faq_entries.examples`` (``[]``) are filled by their server defaults.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('crm_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opening_hours', json_type, nullable=True))
        batch_op.add_column(sa.Column('handoff_response_minutes', sa.Integer(), server_default=sa.text('30'),
                                      nullable=False))
    with op.batch_alter_table('faq_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('examples', json_type, server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('faq_entries', schema=None) as batch_op:
        batch_op.drop_column('examples')
    with op.batch_alter_table('crm_settings', schema=None) as batch_op:
        batch_op.drop_column('handoff_response_minutes')
        batch_op.drop_column('opening_hours')
