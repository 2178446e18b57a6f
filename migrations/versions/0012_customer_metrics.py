"""Clientes list at scale: customer e-mail and last search, per-customer metrics (crm.metrics), indexes for search and sorting

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:00:00

``customer_metrics`` caches each customer's live orders, revenue, first and last purchase and churn band, so the
list filters and sorts through indexes instead of aggregating every order per page. The rows are derived data:
``crm.metrics.refresh_all`` fills them (the scheduler runs it daily, and the customers whose orders changed every
few minutes), so the upgrade gives every customer a row of zeros rather than computing churn inside a migration.

Search: on PostgreSQL trigram GIN indexes over lower(name), lower(city), lower(email) and phone let
``LIKE '%text%'`` use an index; SQLite scans (its deployments are small). Sorting by name uses an expression index
on both.
"""

from alembic import op
import sqlalchemy as sa

import models.base

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {
    "ix_customers_name_trgm": "lower(name)",
    "ix_customers_city_trgm": "lower(city)",
    "ix_customers_email_trgm": "lower(email)",
    "ix_customers_phone_trgm": "phone",
}

SORT_INDEXES = {
    "ix_customer_metrics_last_purchase": ("last_purchase_at", "customer_id"),
    "ix_customer_metrics_risk": ("churn_index", "customer_id"),
    "ix_customer_metrics_band_risk": ("churn_band", "churn_index", "customer_id"),
}


def upgrade() -> None:
    op.add_column('customers', sa.Column('email', sa.String(length=254), nullable=True))
    op.add_column('customers', sa.Column('last_search', models.base.JSONType, nullable=True))
    op.create_table(
        'customer_metrics',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('orders', sa.Integer(), nullable=False),
        sa.Column('revenue', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('first_purchase_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_purchase_at', models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('churn_index', sa.Float(), nullable=True),
        sa.Column('churn_band', sa.String(length=8), nullable=False),
        sa.Column('refreshed_at', models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_customer_metrics_customer_id_customers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_customer_metrics')),
    )
    # Every customer has a row (models.crm adds it on insert); existing ones get theirs here, as "no purchase yet"
    # until the first refresh fills them in.
    op.execute("INSERT INTO customer_metrics (customer_id, orders, revenue, churn_band, refreshed_at) "
               "SELECT id, 0, 0, 'inativo', CURRENT_TIMESTAMP FROM customers")
    op.create_index('ix_customer_metrics_revenue', 'customer_metrics', ['revenue', 'customer_id'])
    # The list sorts by last purchase and by risk DESC NULLS LAST (never bought / inactive at the end) with the
    # customer id as tiebreak, walking these backwards. SQLite puts NULLs first in an ascending index already;
    # PostgreSQL must be told.
    nulls_first = " NULLS FIRST" if op.get_bind().dialect.name == "postgresql" else ""
    for name, columns in SORT_INDEXES.items():
        listed = ", ".join(f"{c}{nulls_first}" if c not in ("customer_id", "churn_band") else c for c in columns)
        op.execute(f"CREATE INDEX {name} ON customer_metrics ({listed})")
    op.create_index('ix_orders_updated_at', 'orders', ['updated_at'])
    op.create_index('ix_opportunities_customer_seller', 'opportunities', ['customer_id', 'seller_id'])
    op.create_index(op.f('ix_customers_store_id'), 'customers', ['store_id'])
    op.execute("CREATE INDEX ix_customers_name_order ON customers ((name IS NULL), lower(name), phone, id)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, expression in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON customers USING gin (({expression}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP INDEX IF EXISTS ix_customers_name_order")
    op.drop_index('ix_orders_updated_at', table_name='orders')
    op.drop_index('ix_opportunities_customer_seller', table_name='opportunities')
    op.drop_index(op.f('ix_customers_store_id'), table_name='customers')
    for name in SORT_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index('ix_customer_metrics_revenue', table_name='customer_metrics')
    op.drop_table('customer_metrics')
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('last_search')
        batch.drop_column('email')
