"""The cart a shopper builds in the chat, and its checkout link on the shop's site."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.templating import brl
from models import Cart, CartItem, CartStatus, Customer, Product

MAX_QUANTITY = 99


def open_cart(session: Session, customer: Customer, *, create: bool, now: datetime) -> Cart | None:
    cart = session.scalar(select(Cart).where(Cart.customer_id == customer.id, Cart.source == "bot",
                                             Cart.status == CartStatus.OPEN).order_by(Cart.id.desc()).limit(1))
    if cart is None and create:
        cart = Cart(customer_id=customer.id, source="bot", status=CartStatus.OPEN, created_at=now, updated_at=now)
        session.add(cart)
    return cart


def add_product(cart: Cart, product: Product, quantity: int, now: datetime) -> None:
    for item in cart.items:
        if item.sku == product.sku:
            item.quantity = min(MAX_QUANTITY, item.quantity + quantity)
            break
    else:
        cart.items.append(CartItem(product_id=product.id, sku=product.sku, name=product.name,
                                   quantity=min(MAX_QUANTITY, quantity), unit_price=product.price))
    cart.recompute_total()
    cart.updated_at = now


def remove_item(cart: Cart, index: int, now: datetime) -> CartItem | None:
    """Remove the item at 1-based ``index``; None when there is no such item."""
    if not 1 <= index <= len(cart.items):
        return None
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
