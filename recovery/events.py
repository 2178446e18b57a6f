"""Shop events (carts and orders): validated field by field, applied once, in order.

The store webhooks (`web.store_webhooks`) verify the signature and parse the JSON; everything after that is
here, as plain functions over a Session, so tests and future importers can call them directly.

Idempotency: every applied event leaves a `StoreEvent` row, unique on (event, id, time), where time is the
cart's ``updated_at`` or the order's ``created_at``. A redelivery finds its row and changes nothing.

Money is a decimal *string* ("79.90"). JSON numbers are refused for money: a float cannot say 0.1 exactly,
and guessing what the shop meant is worse than a clear 400.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.people import upsert_customer
from core.inputs import (
    EARLIEST, LATEST, MAX_COUPON_CODE, MAX_CUSTOMER_NAME, MAX_EXTERNAL_ID, MAX_PHONE_TEXT, MAX_SELLER_CODE, MAX_SKU,
    MAX_URL, MONEY, EMAIL, MAX_EMAIL,
)
from core.phones import InvalidPhone, mask_phone, normalize_phone
from core.runtime import Runtime
from models import (
    AttemptStatus, Cart, CartItem, CartStatus, Order, OrderItem, OrderStatus, RecoveryAttempt, StoreEvent,
)
from recovery import coupons, tracker
from recovery.config import load_settings

log = logging.getLogger(__name__)

CART_EVENTS = ("cart.updated", "cart.abandoned")
ORDER_EVENTS = ("order.created", "order.paid", "order.cancelled")
CURRENCIES = ("BRL",)

MAX_ID = MAX_EXTERNAL_ID
MAX_ITEMS = 200
MAX_ITEM_NAME = 200  # longer names are cut, not refused: they are labels
MAX_QUANTITY = 99_999
MONEY_LIKE = re.compile(r"^-?\d+(\.\d+)?$")

Result = Literal["applied", "duplicate"]


class EventInvalid(ValueError):
    """The event does not follow the contract. ``fields`` maps dotted paths (``items[0].unit_price``) to a
    message for the shop's developers (pt-BR)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class EventCustomer:
    phone: str  # E.164
    name: str | None
    email: str | None = None  # kept on the customer (searched in the Clientes list), never written to


@dataclass(frozen=True)
class EventItem:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class CartEvent:
    event: str
    id: str
    customer: EventCustomer
    items: tuple[EventItem, ...]
    total: Decimal
    currency: str
    checkout_url: str | None
    updated_at: datetime  # UTC


@dataclass(frozen=True)
class OrderEvent:
    event: str
    id: str
    customer: EventCustomer
    items: tuple[EventItem, ...]
    total: Decimal
    currency: str
    coupon_code: str | None
    seller_code: str | None
    created_at: datetime  # UTC

    @property
    def status(self) -> OrderStatus:
        return OrderStatus(self.event.removeprefix("order."))


# --- validation ------------------------------------------------------------------------------------------

_MISSING = object()


class _Checker:
    """Collects every field error of one payload instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def text(self, value: Any, path: str, *, max_len: int, required: bool = True, cut: bool = False) -> str | None:
        if value is _MISSING or value is None:
            if required:
                self.fail(path, "obrigatório")
            return None
        if not isinstance(value, str):
            self.fail(path, "deve ser um texto")
            return None
        if not _storable(value):
            self.fail(path, "contém caracteres inválidos")
            return None
        value = value.strip()
        if not value:
            if required:
                self.fail(path, "não pode ficar vazio")
            return None
        if len(value) > max_len:
            if cut:
                return value[:max_len]
            self.fail(path, f"no máximo {max_len} caracteres")
            return None
        return value

    def money(self, value: Any, path: str) -> Decimal | None:
        if value is _MISSING or value is None:
            self.fail(path, "obrigatório")
            return None
        if isinstance(value, bool) or isinstance(value, (int, float)):
            self.fail(path, 'valor em dinheiro deve ser um texto decimal, por exemplo "79.90"')
            return None
        if not isinstance(value, str):
            self.fail(path, 'deve ser um texto decimal, por exemplo "79.90"')
            return None
        if MONEY.fullmatch(value):
            try:
                return Decimal(value)
            except InvalidOperation:  # pragma: no cover - the pattern only lets valid decimals through
                pass
        if MONEY_LIKE.fullmatch(value):
            if value.startswith("-"):
                self.fail(path, "não pode ser negativo")
            elif "." in value and len(value.split(".", 1)[1]) > 2:
                self.fail(path, "no máximo 2 casas decimais")
            else:
                self.fail(path, "valor alto demais (máximo 9999999999.99)")
            return None
        self.fail(path, 'deve ser um texto decimal com ponto, por exemplo "79.90"')
        return None

    def moment(self, value: Any, path: str) -> datetime | None:
        if value is _MISSING or value is None:
            self.fail(path, "obrigatório")
            return None
        if not isinstance(value, str) or not value.strip() or not value.isascii():
            self.fail(path, "deve ser uma data e hora ISO-8601 com fuso, por exemplo 2026-11-22T10:00:00-03:00")
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(path, "data e hora inválida; use ISO-8601 com fuso, por exemplo 2026-11-22T10:00:00-03:00")
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(path, "informe o fuso horário (por exemplo -03:00 ou Z)")
            return None
        try:
            moment = parsed.astimezone(timezone.utc)
        except (OverflowError, ValueError):
            self.fail(path, "data fora do intervalo aceito")
            return None
        if not EARLIEST <= moment < LATEST:
            self.fail(path, "data fora do intervalo aceito (2000 a 2099)")
            return None
        return moment

    def customer(self, value: Any) -> EventCustomer | None:
        if value is _MISSING or value is None:
            self.fail("customer", "obrigatório")
            return None
        if not isinstance(value, dict):
            self.fail("customer", "deve ser um objeto")
            return None
        raw_phone = self.text(value.get("phone", _MISSING), "customer.phone", max_len=MAX_PHONE_TEXT)
        phone = None
        if raw_phone is not None:
            try:
                phone = normalize_phone(raw_phone)
            except InvalidPhone:
                self.fail("customer.phone",
                          "telefone inválido; use o formato internacional, por exemplo +5511999990001")
        name = self.text(value.get("name", _MISSING), "customer.name", max_len=MAX_CUSTOMER_NAME, required=False,
                         cut=True)
        email = self.text(value.get("email", _MISSING), "customer.email", max_len=MAX_EMAIL, required=False)
        if email is not None and not EMAIL.match(email):
            self.fail("customer.email", "e-mail inválido")
            email = None
        return EventCustomer(phone, name, email) if phone else None

    def items(self, value: Any) -> tuple[EventItem, ...] | None:
        if value is _MISSING or value is None:
            self.fail("items", "obrigatório (use [] para nenhum item)")
            return None
        if not isinstance(value, list):
            self.fail("items", "deve ser uma lista")
            return None
        if len(value) > MAX_ITEMS:
            self.fail("items", f"no máximo {MAX_ITEMS} itens")
            return None
        out: list[EventItem] = []
        ok = True
        for index, raw in enumerate(value):
            path = f"items[{index}]"
            if not isinstance(raw, dict):
                self.fail(path, "deve ser um objeto")
                ok = False
                continue
            sku = self.text(raw.get("sku", _MISSING), f"{path}.sku", max_len=MAX_SKU)
            name = self.text(raw.get("name", _MISSING), f"{path}.name", max_len=MAX_ITEM_NAME, cut=True)
            quantity = self.quantity(raw.get("quantity", _MISSING), f"{path}.quantity")
            unit_price = self.money(raw.get("unit_price", _MISSING), f"{path}.unit_price")
            if sku is None or name is None or quantity is None or unit_price is None:
                ok = False
                continue
            out.append(EventItem(sku, name, quantity, unit_price))
        return tuple(out) if ok else None

    def quantity(self, value: Any, path: str) -> int | None:
        if value is _MISSING or value is None:
            self.fail(path, "obrigatório")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "deve ser um número inteiro")
            return None
        if not 1 <= value <= MAX_QUANTITY:
            self.fail(path, f"deve estar entre 1 e {MAX_QUANTITY}")
            return None
        return value

    def currency(self, value: Any) -> str | None:
        if value is _MISSING or value is None:
            self.fail("currency", "obrigatório")
            return None
        if value not in CURRENCIES:
            self.fail("currency", "apenas BRL é aceito")
            return None
        return value

    def event(self, value: Any, allowed: tuple[str, ...], other: tuple[str, ...], other_path: str) -> str | None:
        if value is _MISSING or value is None:
            self.fail("event", "obrigatório")
            return None
        if isinstance(value, str) and value in allowed:
            return value
        if isinstance(value, str) and value in other:
            self.fail("event", f"evento {value} não é aceito aqui; envie para {other_path}")
        else:
            self.fail("event", f"use um de: {', '.join(allowed)}")
        return None

    def url(self, value: Any, path: str) -> str | None:
        text = self.text(value, path, max_len=MAX_URL, required=False)
        if text is None:
            return None
        if not text.isascii() or any(c.isspace() for c in text):
            self.fail(path, "URL inválida")
            return None
        parsed = urlparse(text)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            self.fail(path, "use uma URL http:// ou https://")
            return None
        return text


def _storable(value: str) -> bool:
    """No NUL (PostgreSQL refuses it in text) and no lone surrogates (not encodable as UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _body(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise EventInvalid({"body": "o corpo deve ser um objeto JSON"})
    return payload


def validate_cart_event(payload: Any) -> CartEvent:
    """The cart event in ``payload`` (a parsed JSON value), or EventInvalid naming every bad field.

    Unknown top-level fields are ignored. ``checkout_url`` may be absent or null (the message then links to
    the shop's generic checkout).
    """
    body = _body(payload)
    check = _Checker()
    event = check.event(body.get("event", _MISSING), CART_EVENTS, ORDER_EVENTS, "/webhooks/store/orders")
    external_id = check.text(body.get("id", _MISSING), "id", max_len=MAX_ID)
    customer = check.customer(body.get("customer", _MISSING))
    items = check.items(body.get("items", _MISSING))
    total = check.money(body.get("total", _MISSING), "total")
    currency = check.currency(body.get("currency", _MISSING))
    checkout_url = check.url(body.get("checkout_url"), "checkout_url")
    updated_at = check.moment(body.get("updated_at", _MISSING), "updated_at")
    if check.errors:
        raise EventInvalid(check.errors)
    return CartEvent(event=event, id=external_id, customer=customer, items=items, total=total, currency=currency,
                     checkout_url=checkout_url, updated_at=updated_at)


def validate_order_event(payload: Any) -> OrderEvent:
    """The order event in ``payload``, or EventInvalid naming every bad field. Unknown fields are ignored."""
    body = _body(payload)
    check = _Checker()
    event = check.event(body.get("event", _MISSING), ORDER_EVENTS, CART_EVENTS, "/webhooks/store/carts")
    external_id = check.text(body.get("id", _MISSING), "id", max_len=MAX_ID)
    customer = check.customer(body.get("customer", _MISSING))
    items = check.items(body.get("items", _MISSING))
    total = check.money(body.get("total", _MISSING), "total")
    currency = check.currency(body.get("currency", _MISSING))
    coupon_code = check.text(body.get("coupon_code"), "coupon_code", max_len=MAX_COUPON_CODE, required=False)
    seller_code = check.text(body.get("seller_code"), "seller_code", max_len=MAX_SELLER_CODE, required=False)
    created_at = check.moment(body.get("created_at", _MISSING), "created_at")
    if check.errors:
        raise EventInvalid(check.errors)
    return OrderEvent(event=event, id=external_id, customer=customer, items=items, total=total, currency=currency,
                      coupon_code=coupon_code, seller_code=seller_code, created_at=created_at)


# --- applying --------------------------------------------------------------------------------------------

def _record(session: Session, event: str, external_id: str, occurred_at: datetime, now: datetime) -> bool:
    """Insert the event's StoreEvent row; False when it is already there (a redelivery)."""
    try:
        with session.begin_nested():
            session.add(StoreEvent(event=event, external_id=external_id, occurred_at=occurred_at, received_at=now))
    except IntegrityError:
        return False
    return True


def _locked(session: Session, query):
    # Two different updates of one cart/order at once must not both read the old row and then race to
    # write: on PostgreSQL the row is locked; SQLite serialises writers anyway.
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def _get_or_create(session: Session, model, external_id: str, build):
    """The row with this external id (locked), or a new one built by ``build()``; safe against a concurrent
    insert of the same id. Returns (row, created)."""
    row = _locked(session, select(model).where(model.external_id == external_id))
    if row is not None:
        return row, False
    row = build()
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        row = _locked(session, select(model).where(model.external_id == external_id))
        if row is None:
            raise
        return row, False
    return row, True


def apply_cart_event(session: Session, runtime: Runtime, event: CartEvent, now: datetime) -> Result:
    """Store the cart's latest contents and (re)start the shopper's recovery countdown. Commits.

    An event older than the stored cart is recorded as processed but changes nothing; a converted cart stays
    converted and does not restart the countdown (the purchase is done).
    """
    if not _record(session, event.event, event.id, event.updated_at, now):
        session.rollback()
        return "duplicate"
    customer = upsert_customer(session, event.customer.phone, event.customer.name, event.customer.email)

    def build() -> Cart:
        return Cart(external_id=event.id, source="store", customer_id=customer.id, currency=event.currency,
                    total=event.total, status=CartStatus.OPEN, created_at=min(event.updated_at, now),
                    updated_at=event.updated_at)

    cart, created = _get_or_create(session, Cart, event.id, build)
    stale = not created and cart.updated_at is not None and event.updated_at < cart.updated_at
    track = False
    if not stale:
        cart.customer_id = customer.id
        cart.source = "store"
        cart.items = [CartItem(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price)
                      for i in event.items]
        cart.total = event.total
        cart.currency = event.currency
        cart.checkout_url = event.checkout_url
        cart.updated_at = event.updated_at
        if cart.status is not CartStatus.CONVERTED:
            cart.status = CartStatus.ABANDONED if event.event == "cart.abandoned" else CartStatus.OPEN
            track = True
    customer_id, opted_out = customer.id, customer.opted_out
    session.commit()

    if opted_out:
        tracker.forget(runtime, customer_id)
    elif track:
        tracker.note_interaction(session, runtime, customer_id, min(event.updated_at, now))
    log.info("store event %s %s for %s applied%s", event.event, event.id, mask_phone(event.customer.phone),
             " (older than the stored cart: contents kept)" if stale else "")
    return "applied"


# created < paid; cancelled is final.
ORDER_RANK = {OrderStatus.CREATED: 0, OrderStatus.PAID: 1, OrderStatus.CANCELLED: 2}


def apply_order_event(session: Session, runtime: Runtime, event: OrderEvent, now: datetime) -> Result:
    """Store the order; for a live (created/paid) order, close the shopper's carts, stop their recovery,
    credit the recovery message that brought it and redeem its coupon. Commits.

    The status never moves backwards: an event whose status ranks below the stored one (``order.created``
    after ``order.paid``, anything after ``order.cancelled``) is recorded as processed and changes nothing.
    """
    if not _record(session, event.event, event.id, event.created_at, now):
        session.rollback()
        return "duplicate"
    customer = upsert_customer(session, event.customer.phone, event.customer.name, event.customer.email)
    status = event.status

    def build() -> Order:
        return Order(external_id=event.id, customer_id=customer.id, status=status, currency=event.currency,
                     total=event.total, placed_at=event.created_at, received_at=now)

    order, created = _get_or_create(session, Order, event.id, build)
    backwards = not created and ORDER_RANK[status] < ORDER_RANK[order.status]
    live = False
    if not backwards:
        order.customer_id = customer.id
        order.status = status
        order.items = [OrderItem(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price)
                       for i in event.items]
        order.total = event.total
        order.currency = event.currency
        order.coupon_code = event.coupon_code
        order.seller_code = event.seller_code
        order.placed_at = event.created_at
        session.flush()
        live = status in (OrderStatus.CREATED, OrderStatus.PAID)
        if live:
            _close_carts(session, customer.id)
            _attribute(session, customer.id, order)
            if event.coupon_code:
                problem = coupons.redeem(session, code=event.coupon_code, customer_id=customer.id,
                                         order_id=order.id, now=min(event.created_at, now))
                if problem is not None:
                    order.coupon_problem = problem
                    log.warning("order %s used coupon %s: %s", event.id, event.coupon_code[:6] + "…", problem)
    customer_id = customer.id
    session.commit()

    if live:
        tracker.forget(runtime, customer_id)
    log.info("store event %s %s for %s applied%s", event.event, event.id, mask_phone(event.customer.phone),
             " (status would move backwards: ignored)" if backwards else "")
    return "applied"


def _close_carts(session: Session, customer_id: int) -> None:
    carts = session.scalars(select(Cart).where(
        Cart.customer_id == customer_id, Cart.status.in_([CartStatus.OPEN, CartStatus.ABANDONED])))
    for cart in carts:
        cart.status = CartStatus.CONVERTED


def _attribute(session: Session, customer_id: int, order: Order) -> RecoveryAttempt | None:
    """Credit the shopper's latest recovery message sent within the attribution window before the order.

    One message per order: a paid event after the created one finds the order already credited.
    """
    already = session.scalar(select(RecoveryAttempt.id).where(RecoveryAttempt.recovered_order_id == order.id))
    if already is not None:
        return None
    window = timedelta(days=load_settings(session).attribution_days)
    attempt = session.scalar(
        select(RecoveryAttempt)
        .where(RecoveryAttempt.customer_id == customer_id,
               RecoveryAttempt.status == AttemptStatus.SENT,
               RecoveryAttempt.sent_at >= order.placed_at - window,
               RecoveryAttempt.sent_at <= order.placed_at,
               RecoveryAttempt.recovered_order_id.is_(None))
        .order_by(RecoveryAttempt.sent_at.desc(), RecoveryAttempt.id.desc())
        .limit(1))
    if attempt is None:
        return None
    attempt.recovered_order_id = order.id
    attempt.recovered_at = order.placed_at
    return attempt


__all__ = [
    "CART_EVENTS", "ORDER_EVENTS", "CartEvent", "OrderEvent", "EventCustomer", "EventItem", "EventInvalid",
    "validate_cart_event", "validate_order_event", "apply_cart_event", "apply_order_event",
]
