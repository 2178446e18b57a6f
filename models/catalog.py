"""The product catalog: products and their variants (each size/colour a SKU with its own price and stock)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, utcnow


class Product(Base):
    """What a shopper looks for ("Tênis Corrida Preto"); what they buy is one of its variants."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The product's own code, grouping its variants in imports: our `product` column, Shopify's Handle,
    # Nuvemshop's "Identificador URL". Not a SKU: each variant has its own.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # The lowest price among its active variants (kept by catalog writes): what a list shows as "a partir de".
    price: Mapped[Decimal]
    category: Mapped[str | None] = mapped_column(String(80), index=True)
    brand: Mapped[str | None] = mapped_column(String(80))
    # Other attributes the shop describes the product with: {"material": "couro", "genero": "feminino"}.
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    url: Mapped[str | None] = mapped_column(String(500))
    image_url: Mapped[str | None] = mapped_column(String(500))
    # The shop platform's own id (Shopify product id, Nuvemshop product id), for links and sync.
    platform_product_id: Mapped[str | None] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    variants: Mapped[list["Variant"]] = relationship(back_populates="product", cascade="all, delete-orphan",
                                                     order_by="Variant.id")


class Variant(Base):
    """One sellable SKU of a product: a size and/or colour (and any other option the shop uses), its price and
    stock. ``stock`` None means the shop does not track it (always available)."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[str | None] = mapped_column(String(32))
    color: Mapped[str | None] = mapped_column(String(40))
    # Every option as the shop names it: {"Tamanho": "42", "Cor": "Preto", "Material": "Couro"}.
    options: Mapped[dict] = mapped_column(JSONType, default=dict)
    price: Mapped[Decimal]
    compare_at_price: Mapped[Decimal | None]
    stock: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    platform_variant_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    product: Mapped[Product] = relationship(back_populates="variants")

    @property
    def available(self) -> bool:
        return self.active and (self.stock is None or self.stock > 0)

    def label(self) -> str:
        """'Tênis Corrida Preto 42': the product with the options that tell this variant apart."""
        extra = [v for v in (self.size,) if v and v.lower() not in ("único", "unico", "u")]
        return " ".join([self.product.name, *extra])
