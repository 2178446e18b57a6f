"""The product catalog the bot searches."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, utcnow


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal]
    category: Mapped[str | None] = mapped_column(String(80), index=True)
    brand: Mapped[str | None] = mapped_column(String(80))
    # Free-form attributes the bot can match on: {"cor": "preto", "tamanhos": ["40", "41", "42"]}.
    attributes: Mapped[dict] = mapped_column(JSONType, default=dict)
    url: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
