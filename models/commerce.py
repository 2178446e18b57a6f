"""Carts and orders, from the bot or from the shop's events."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import ZERO, Base, enum_column, utcnow
from models.people import Customer


class CartStatus(str, enum.Enum):
    OPEN = "open"
    ABANDONED = "abandoned"
    CONVERTED = "converted"


class OrderStatus(str, enum.Enum):
    CREATED = "created"
    PAID = "paid"
    CANCELLED = "cancelled"


class Cart(Base):
    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The shop's cart id for carts from store events; None for carts the bot built.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="bot")
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[CartStatus] = mapped_column(enum_column(CartStatus), default=CartStatus.OPEN)
    currency: Mapped[str] = mapped_column(String(3), default="BRL")
    total: Mapped[Decimal] = mapped_column(default=ZERO)
    checkout_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed: segments.jobs.refresh_changed re-evaluates the customers whose carts changed.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    customer: Mapped[Customer] = relationship()
    items: Mapped[list["CartItem"]] = relationship(
        back_populates="cart", cascade="all, delete-orphan", order_by="CartItem.id"
    )

    def recompute_total(self) -> Decimal:
        self.total = sum((item.unit_price * item.quantity for item in self.items), ZERO)
        return self.total


class CartItem(Base):
    __tablename__ = "cart_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    # The variant bought (size, colour): set for the chat's carts and for shop carts whose SKU we know.
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal]

    cart: Mapped[Cart] = relationship(back_populates="items")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus))
    currency: Mapped[str] = mapped_column(String(3), default="BRL")
    total: Mapped[Decimal]
    coupon_code: Mapped[str | None] = mapped_column(String(64), index=True)
    # One of our recovery codes used when it should not have been: already_used (by another order), expired,
    # wrong_customer, disabled. The shop accepted the order anyway; the dashboard flags it.
    coupon_problem: Mapped[str | None] = mapped_column(String(16), index=True)
    seller_code: Mapped[str | None] = mapped_column(String(32), index=True)
    placed_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed: crm.metrics refreshes the customers whose orders changed since its last run.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    customer: Mapped[Customer] = relationship()
    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal]

    order: Mapped[Order] = relationship(back_populates="items")
