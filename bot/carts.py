"""The cart a shopper builds in the chat: one line per variant (a size, a colour), capped by stock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.templating import brl
from models import Cart, CartItem, CartStatus, Customer, Variant

MAX_QUANTITY = 99


def open_cart(session: Session, customer: Customer, *, create: bool, now: datetime) -> Cart | None:
    cart = session.scalar(select(Cart).where(Cart.customer_id == customer.id, Cart.source == "bot",
                                             Cart.status == CartStatus.OPEN).order_by(Cart.id.desc()).limit(1))
    if cart is None and create:
        cart = Cart(customer_id=customer.id, source="bot", status=CartStatus.OPEN, created_at=now, updated_at=now)
        session.add(cart)
    return cart


@dataclass(frozen=True)
class Added:
    quantity: int  # what went into the cart this time (capped by stock)
    capped: bool  # fewer than asked: the stock did not allow more


def add_variant(cart: Cart, variant: Variant, quantity: int, now: datetime) -> Added:
    """Put ``quantity`` of ``variant`` in the cart (one line per variant), never beyond its stock."""
    line = next((item for item in cart.items if item.variant_id == variant.id or item.sku == variant.sku), None)
    held = line.quantity if line is not None else 0
    limit = MAX_QUANTITY if variant.stock is None else min(MAX_QUANTITY, max(0, variant.stock))
    wanted = held + quantity
    total = min(limit, wanted)
    if line is None:
        line = CartItem(product_id=variant.product_id, variant_id=variant.id, sku=variant.sku, name=variant.label(),
                        quantity=total, unit_price=variant.price)
        cart.items.append(line)
    else:
        line.quantity, line.unit_price, line.variant_id = total, variant.price, variant.id
    cart.recompute_total()
    cart.updated_at = now
    return Added(quantity=total - held, capped=total < wanted)


def remove_item(cart: Cart, index: int, now: datetime, quantity: int | None = None) -> CartItem | None:
    """Remove the item at 1-based ``index`` (or only ``quantity`` of it, when it holds more); None when there is
    no such item."""
    if not 1 <= index <= len(cart.items):
        return None
    if quantity is not None and 0 < quantity < cart.items[index - 1].quantity:
        item = cart.items[index - 1]
        item.quantity -= quantity
        cart.recompute_total()
        cart.updated_at = now
        return item
    item = cart.items.pop(index - 1)
    cart.recompute_total()
    cart.updated_at = now
    return item


# The cart summary lists at most this many lines (a web cart may hold hundreds; a WhatsApp message does not).
LISTED_LINES = 20


def summary_variables(cart: Cart) -> dict:
    return {
        "itens": [{"nome": i.name, "quantidade": i.quantity, "subtotal": brl(i.unit_price * i.quantity)}
                  for i in cart.items[:LISTED_LINES]],
        "mais": max(0, len(cart.items) - LISTED_LINES),
        "total": brl(cart.total),
    }
