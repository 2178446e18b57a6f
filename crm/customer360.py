"""The "Clientes" module's sections for one customer: Visão geral (period values against the period before, the
monthly sales history, the last purchase), Risco de perda (``crm.churn``), Contato (contact, consent, shared
notes), Produtos recomendados (``crm.recommendations``) and Mais comprados.

Plain functions over a Session; the API (``GET /api/customers/PHONE``) and the pages call them, after the access
rules (``crm.access``) said the user may see the customer. Live orders only (created or paid): a cancelled order is
not a sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import churn, recommendations
from models import NOTE_KINDS, Customer, CustomerNote, Order, OrderItem, OrderStatus, Store, User

LIVE = (OrderStatus.CREATED, OrderStatus.PAID)
PERIODS = (30, 90, 180, 365)  # days a user may choose for Visão geral
DEFAULT_PERIOD = 90
HISTORY_MONTHS = 12
NOTES_LIMIT = 100
MAX_NOTE = 2000
CENT = Decimal("0.01")


class NoteInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass(frozen=True)
class PeriodValues:
    revenue: Decimal
    orders: int
    items: int
    products: int = 0  # distinct SKUs bought
    coupon_orders: int = 0  # orders that used a coupon code

    @property
    def average_ticket(self) -> Decimal:
        return self.revenue / self.orders if self.orders else Decimal(0)

    @property
    def items_per_order(self) -> Decimal:
        return Decimal(self.items) / self.orders if self.orders else Decimal(0)

    def as_json(self) -> dict:
        return {"revenue": _money(self.revenue), "orders": self.orders, "average_ticket": _money(self.average_ticket),
                "items_per_order": str(self.items_per_order.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)),
                "distinct_products": self.products, "coupon_orders": self.coupon_orders}


def period_values(session: Session, customer_id: int, start: datetime, end: datetime) -> PeriodValues:
    """Revenue, orders, items, distinct products and orders with a coupon of the customer's live orders placed
    in [start, end)."""
    placed = (Order.customer_id == customer_id, Order.status.in_(LIVE), Order.placed_at >= start,
              Order.placed_at < end)
    revenue, orders, coupons = session.execute(
        select(func.coalesce(func.sum(Order.total), 0), func.count(Order.id), func.count(Order.coupon_code))
        .where(*placed)).one()
    items, products = session.execute(
        select(func.coalesce(func.sum(OrderItem.quantity), 0), func.count(func.distinct(OrderItem.sku)))
        .join(Order, Order.id == OrderItem.order_id).where(*placed)).one()
    return PeriodValues(Decimal(str(revenue)), int(orders), int(items or 0), int(products or 0), int(coupons or 0))


def _month_start(moment: datetime, back: int = 0) -> datetime:
    year, month = moment.year, moment.month - back
    while month <= 0:
        month += 12
        year -= 1
    return datetime(year, month, 1, tzinfo=timezone.utc)


def monthly_history(session: Session, customer_id: int, now: datetime, months: int = HISTORY_MONTHS) -> list[dict]:
    """The last ``months`` calendar months (UTC), oldest first, with revenue and orders (zeros included, so a
    chart shows the gaps)."""
    start = _month_start(now, months - 1)
    rows = session.execute(
        select(Order.placed_at, Order.total)
        .where(Order.customer_id == customer_id, Order.status.in_(LIVE), Order.placed_at >= start,
               Order.placed_at <= now)).all()  # one customer's year of orders: bounded
    buckets = {(_month_start(now, back).year, _month_start(now, back).month): [Decimal(0), 0]
               for back in range(months)}
    for placed_at, total in rows:
        placed = placed_at if placed_at.tzinfo else placed_at.replace(tzinfo=timezone.utc)
        bucket = buckets.get((placed.year, placed.month))
        if bucket is not None:
            bucket[0] += Decimal(str(total))
            bucket[1] += 1
    return [{"month": f"{year:04d}-{month:02d}", "revenue": _money(value), "orders": count}
            for (year, month), (value, count) in sorted(buckets.items())]


def last_purchase(session: Session, customer_id: int) -> dict | None:
    order = session.scalar(select(Order).where(Order.customer_id == customer_id, Order.status.in_(LIVE))
                           .order_by(Order.placed_at.desc(), Order.id.desc()).limit(1))
    if order is None:
        return None
    seller = session.scalar(select(User).where(User.seller_code == order.seller_code)) if order.seller_code else None
    return {"id": order.external_id, "placed_at": _iso(order.placed_at), "total": _money(order.total),
            "status": order.status.value, "seller_code": order.seller_code,
            "seller": seller.name if seller is not None else None,
            "store": seller.store.name if seller is not None and seller.store is not None else None,
            "items": [{"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": _money(i.unit_price)}
                      for i in order.items]}


def overview(session: Session, customer: Customer, now: datetime, period_days: int = DEFAULT_PERIOD) -> dict:
    """Visão geral: the period's values and the period before, all-time KPIs, monthly history, last purchase."""
    span = timedelta(days=period_days)
    current = period_values(session, customer.id, now - span, now)
    before = period_values(session, customer.id, now - 2 * span, now - span)
    lifetime = period_values(session, customer.id, datetime(2000, 1, 1, tzinfo=timezone.utc), now + timedelta(seconds=1))
    first, latest = session.execute(select(func.min(Order.placed_at), func.max(Order.placed_at))
                                    .where(Order.customer_id == customer.id, Order.status.in_(LIVE),
                                           Order.placed_at <= now)).one()
    interval = None  # the mean days between purchases, over the whole history
    if first is not None and lifetime.orders > 1:
        interval = round((latest - first).total_seconds() / 86400 / (lifetime.orders - 1), 1)
    return {
        "period_days": period_days,
        "period": current.as_json(),
        "previous_period": before.as_json(),
        "lifetime": {**lifetime.as_json(), "first_purchase_at": _iso(first),
                     "days_since_last_purchase": int((now - latest).total_seconds() // 86400) if latest else None,
                     "average_interval_days": interval},
        "history": monthly_history(session, customer.id, now),
        "last_purchase": last_purchase(session, customer.id),
    }


def note_json(note: CustomerNote) -> dict:
    return {"id": note.id, "kind": note.kind, "text": note.text, "created_at": _iso(note.created_at),
            "author": note.author.name if note.author is not None else None, "opportunity_id": note.opportunity_id}


def notes(session: Session, customer_id: int, limit: int = NOTES_LIMIT) -> list[CustomerNote]:
    """The customer's shared notes, newest first."""
    return list(session.scalars(select(CustomerNote).where(CustomerNote.customer_id == customer_id)
                                .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc()).limit(limit)))


def add_note(session: Session, customer: Customer, author: User, kind: str, text: str, now: datetime) -> CustomerNote:
    """A note any user who may see the customer adds; NoteInvalid names the field. Flushes, does not commit."""
    text = (text or "").strip()
    if kind not in NOTE_KINDS or kind == "oportunidade":
        raise NoteInvalid("kind", "escolha o tipo da anotação")
    if not text:
        raise NoteInvalid("text", "escreva a anotação")
    if len(text) > MAX_NOTE or "\x00" in text:
        raise NoteInvalid("text", f"no máximo {MAX_NOTE} caracteres")
    note = CustomerNote(customer_id=customer.id, author_id=author.id, kind=kind, text=text, created_at=now)
    session.add(note)
    session.flush()
    return note


def contact(session: Session, customer: Customer) -> dict:
    owner = customer.owner_seller
    store = session.get(Store, customer.store_id) if customer.store_id else None
    return {"phone": customer.phone, "name": customer.name, "ddd": customer.ddd, "city": customer.city,
            "state": customer.state, "store": store.name if store is not None else None,
            "owner": {"id": owner.id, "name": owner.name} if owner is not None else None,
            "consent": {"opted_out": customer.opted_out, "opted_out_at": _iso(customer.opted_out_at),
                        "marketing_opted_out_at": _iso(customer.marketing_opted_out_at)}}


def sections(session: Session, customer: Customer, now: datetime, *, group_by: str = "name",
             period_days: int = DEFAULT_PERIOD) -> dict:
    """Every section of the module, as the API answers them. ``group_by`` must be valid
    (``recommendations.valid_grouping``)."""
    return {
        "overview": overview(session, customer, now, period_days),
        "churn": churn.customer_churn(session, customer.id, now).as_json(),
        "contact": contact(session, customer),
        "notes": [note_json(n) for n in notes(session, customer.id)],
        "recommended": {name: [r.as_json() for r in items]
                        for name, items in recommendations.recommendations(session, customer.id, now).items()},
        "most_bought": recommendations.most_bought(session, customer.id, group_by=group_by),
    }
