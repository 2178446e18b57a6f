"""Builders for the opportunities tests: stores, sellers and customers with a location."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from models.people import upsert_customer
from models import Order, OrderItem, OrderStatus, Role, Store, User

TZ = ZoneInfo("America/Sao_Paulo")
NOON = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)  # 12:00 in São Paulo


def make_store(session, code: str, *, city: str, state: str, ddd: str) -> Store:
    store = Store(code=code, name=f"Loja {city}", city=city, state=state, ddd=ddd, active=True)
    session.add(store)
    session.flush()
    return store


def make_seller(session, name: str, store: Store | None, *, ddds: list[str] | None = None, max_portfolio: int = 300,
                hours: str = "8", idle: str = "0.30", minutes: int = 15, code: str | None = None,
                active: bool = True) -> User:
    seller = User(email=f"{name.lower()}@teste.loja", name=name, role=Role.SELLER, store_id=store.id if store else None,
                  region_ddds=ddds or [], max_portfolio=max_portfolio, hours_per_day=Decimal(hours),
                  idle_share=Decimal(idle), avg_conversation_minutes=minutes, seller_code=code, active=active)
    session.add(seller)
    session.flush()
    return seller


def make_user(session, name: str, role: Role, store: Store | None = None) -> User:
    user = User(email=f"{name.lower()}@teste.loja", name=name, role=role, store_id=store.id if store else None,
                region_ddds=[])
    session.add(user)
    session.flush()
    return user


def customer(session, phone: str, name: str | None = None):
    made = upsert_customer(session, phone, name)
    session.flush()
    return made


def make_order(session, buyer, external_id: str, total: str, placed_at: datetime, *, seller_code: str | None = None,
               quantity: int = 1, status: OrderStatus = OrderStatus.PAID) -> Order:
    order = Order(external_id=external_id, customer_id=buyer.id, status=status, total=Decimal(total),
                  seller_code=seller_code, placed_at=placed_at)
    order.items.append(OrderItem(sku="SKU-1", name="Produto", quantity=quantity, unit_price=Decimal(total)))
    session.add(order)
    session.flush()
    return order
