"""products have variants (one SKU per size/colour, with price and stock); cart lines point at a variant

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00

Today's products become one variant per listed size (attributes "tamanhos"), with the product's colour ("cor")
and price and untracked stock. A product with one size (or none) keeps its SKU for that variant, so carts and
orders that name it still match; with several sizes each variant is ``<sku>-<size>``. The product's old SKU stays
as its key.
"""

import json
import re

from alembic import op
import sqlalchemy as sa
import models.base

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

money = sa.Numeric(precision=12, scale=2, asdecimal=True)


def _variant_sku(key: str, size: str | None, several: bool) -> str:
    if not several or not size:
        return key
    suffix = re.sub(r"[^A-Za-z0-9]+", "-", size).strip("-").upper() or "U"
    return f"{key}-{suffix}"[:64]


def _loads(value):
    if value is None:
        return {}
    return value if isinstance(value, dict) else json.loads(value)


def upgrade() -> None:
    # Two passes: SQLite's rebuild loses a unique constraint created on a column renamed in the same batch.
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_products_sku'), type_='unique')
        batch_op.alter_column('sku', new_column_name='key', existing_type=sa.String(length=64),
                              existing_nullable=False)
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_products_key'), ['key'])
        batch_op.add_column(sa.Column('image_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('platform_product_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_products_platform_product_id'), ['platform_product_id'], unique=False)

    op.create_table('variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('size', sa.String(length=32), nullable=True),
    sa.Column('color', sa.String(length=40), nullable=True),
    sa.Column('options', sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('price', money, nullable=False),
    sa.Column('compare_at_price', money, nullable=True),
    sa.Column('stock', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('platform_variant_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_variants_product_id_products'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_variants')),
    sa.UniqueConstraint('sku', name=op.f('uq_variants_sku'))
    )
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_variants_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_variants_platform_variant_id'), ['platform_variant_id'], unique=False)

    with op.batch_alter_table('cart_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_cart_items_variant_id_variants'), 'variants', ['variant_id'],
                                    ['id'], ondelete='SET NULL')

    _variants_from_listed_sizes()


def _variants_from_listed_sizes() -> None:
    bind = op.get_bind()
    products = sa.table('products', sa.column('id'), sa.column('key'), sa.column('price'),
                        sa.column('attributes', sa.JSON()), sa.column('active'), sa.column('created_at'))
    variants = sa.table('variants', sa.column('product_id'), sa.column('sku'), sa.column('size'), sa.column('color'),
                        sa.column('options', sa.JSON()), sa.column('price'), sa.column('stock'), sa.column('active'),
                        sa.column('created_at'), sa.column('updated_at'))
    taken: set[str] = set()
    rows = []
    for product in bind.execute(sa.select(products)).mappings():
        attributes = _loads(product['attributes'])
        sizes = attributes.pop('tamanhos', None) or [None]
        sizes = [str(s).strip() or None if s is not None else None
                 for s in (sizes if isinstance(sizes, list) else [sizes])] or [None]
        colour = attributes.pop('cor', None)
        colour = str(colour).strip().capitalize()[:40] if colour else None
        for size in dict.fromkeys(sizes):
            sku = _variant_sku(product['key'], size, len(sizes) > 1)
            while sku in taken:  # two sizes that collapse to one suffix ("P/M", "P-M")
                sku = f"{sku[:60]}-{len(taken) % 1000}"
            taken.add(sku)
            options = {k: v for k, v in (("Tamanho", size), ("Cor", colour)) if v}
            rows.append({'product_id': product['id'], 'sku': sku, 'size': size[:32] if size else None,
                         'color': colour, 'options': options, 'price': product['price'], 'stock': None,
                         'active': product['active'], 'created_at': product['created_at'],
                         'updated_at': product['created_at']})
        bind.execute(sa.update(products).where(products.c.id == product['id']).values(attributes=attributes))
    if rows:
        bind.execute(sa.insert(variants), rows)
    # Cart lines that name a SKU we now know as a variant point at it.
    bind.execute(sa.text(
        "UPDATE cart_items SET variant_id = (SELECT v.id FROM variants v WHERE v.sku = cart_items.sku) "
        "WHERE variant_id IS NULL"))


def downgrade() -> None:
    with op.batch_alter_table('cart_items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cart_items_variant_id_variants'), type_='foreignkey')
        batch_op.drop_column('variant_id')

    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_variants_platform_variant_id'))
        batch_op.drop_index(batch_op.f('ix_variants_product_id'))
    op.drop_table('variants')

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_platform_product_id'))
        batch_op.drop_column('platform_product_id')
        batch_op.drop_column('image_url')
        batch_op.drop_constraint(batch_op.f('uq_products_key'), type_='unique')
        batch_op.alter_column('key', new_column_name='sku', existing_type=sa.String(length=64),
                              existing_nullable=False)
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_products_sku'), ['sku'])
