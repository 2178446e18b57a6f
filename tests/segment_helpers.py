"""A small store for the segment tests: two products, a branch, two sellers and helpers for customers, orders,
carts and recovery attempts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from models import (
    AttemptStatus, Cart, CartItem, CartStatus, Customer, CustomerMetrics, Order, OrderItem, OrderStatus, Product,
    RecoveryAttempt, Role, Store, User, Variant,
)

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)
PRODUCTS = (
    ("tenis-corrida", "Calçados", "Veloz", {"material": "couro"}, "SKU-T42", "42", "Preto"),
    ("camiseta-basica", "Roupas", "Leve", {"material": "algodao"}, "SKU-CM", "M", "Branco"),
    ("bone-aba", "Acessórios", "Veloz", {"material": "algodao"}, "SKU-BN", "U", "Preto"),
)


def catalog(session) -> dict[str, Product]:
    products = {}
    for key, category, brand, attributes, sku, size, color in PRODUCTS:
        product = Product(key=key, name=key.replace("-", " ").title(), price=Decimal("99.90"), category=category,
                          brand=brand, attributes=attributes)
        product.variants = [Variant(sku=sku, size=size, color=color, options={}, price=Decimal("99.90"))]
        session.add(product)
        products[key] = product
    session.flush()
    return products


def branch_and_sellers(session) -> tuple[Store, User, User]:
    store = Store(code="L1", name="Loja Paulista", city="São Paulo", state="SP", ddd="11")
    session.add(store)
    session.flush()
    sellers = [User(email=f"vendedor{i}@loja.example", name=f"Vendedor {i}", role=Role.SELLER, store_id=store.id)
               for i in (1, 2)]
    session.add_all(sellers)
    session.flush()
    return store, sellers[0], sellers[1]


def make_customer(session, phone: str, name: str, **fields) -> Customer:
    person = Customer(phone=phone, name=name, tags=fields.pop("tags", []), **fields)
    session.add(person)
    session.flush()
    return person


def buy(session, who: Customer, external_id: str, product: Product, total: str, at: datetime,
        status: OrderStatus = OrderStatus.PAID) -> Order:
    variant = product.variants[0]
    order = Order(external_id=external_id, customer_id=who.id, status=status, total=Decimal(total), placed_at=at)
    order.items = [OrderItem(sku=variant.sku, name=product.name, quantity=1, unit_price=Decimal(total))]
    session.add(order)
    session.flush()
    return order


def leave_cart(session, who: Customer, product: Product, at: datetime, status: CartStatus = CartStatus.ABANDONED,
               with_variant: bool = True) -> Cart:
    variant = product.variants[0]
    cart = Cart(customer_id=who.id, status=status, source="shop", created_at=at, updated_at=at)
    cart.items = [CartItem(product_id=product.id, variant_id=variant.id if with_variant else None, sku=variant.sku,
                           name=product.name, quantity=1, unit_price=variant.price)]
    session.add(cart)
    session.flush()
    return cart


def attempt(session, who: Customer, at: datetime, *, recovered_order: Order | None = None,
            status: AttemptStatus = AttemptStatus.SENT) -> RecoveryAttempt:
    row = RecoveryAttempt(customer_id=who.id, interaction_at=at, due_at=at, status=status, sent_at=at,
                          recovered_order_id=recovered_order.id if recovered_order else None,
                          recovered_at=at if recovered_order else None)
    session.add(row)
    session.flush()
    return row


def set_figures(session, who: Customer, **figures) -> None:
    row = session.get(CustomerMetrics, who.id)
    for key, value in figures.items():
        setattr(row, key, value)
    session.flush()


def days(n: float) -> timedelta:
    return timedelta(days=n)
