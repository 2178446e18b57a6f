"""Customer notes: shared notes on a customer (Contato tab), including the note typed when finishing an opportunity

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:45:00

The notes sellers already typed when finishing opportunities are copied in, so they appear on the customer's
timeline too.
"""

from alembic import op
import sqlalchemy as sa

import models.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'customer_notes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('opportunity_id', sa.Integer(), nullable=True),
        sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_customer_notes_author_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_notes_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'],
                                name=op.f('fk_customer_notes_opportunity_id_opportunities'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_notes')),
        sa.UniqueConstraint('opportunity_id', name=op.f('uq_customer_notes_opportunity_id')),
    )
    op.create_index('ix_customer_notes_customer_created', 'customer_notes', ['customer_id', 'created_at'])
    op.execute(
        "INSERT INTO customer_notes (customer_id, author_id, kind, text, opportunity_id, created_at) "
        "SELECT customer_id, seller_id, 'oportunidade', result_note, id, COALESCE(finished_at, updated_at) "
        "FROM opportunities WHERE result_note IS NOT NULL AND result_note <> ''")


def downgrade() -> None:
    op.drop_index('ix_customer_notes_customer_created', table_name='customer_notes')
    op.drop_table('customer_notes')
