"""Sales from sellers' contacts, per period, per seller and per store (the seed's "Vendas a partir de contatos").

* suggested: opportunities assigned to the seller in the period (from the event record);
* started / finished: conversations the seller moved to in progress / finished in the period;
* attributed sales and revenue: orders placed in the period (not cancelled) that carry the seller's code, or,
  failing that, were placed within the attribution window after the seller's latest contact with that
  customer; each order is credited to one seller at most;
* conversion: of the conversations started in the period, the share followed by an order from that customer
  within the window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from crm.opportunities import crm_settings
from models import Customer, Opportunity, OpportunityEvent, Order, OrderItem, OrderStatus, Role, Store, User

RATE = Decimal("0.0001")


@dataclass
class SellerSale:
    order_id: int
    customer_id: int
    customer_name: str | None
    customer_phone: str
    contact_at: datetime | None  # None: credited by the seller code alone
    placed_at: datetime
    items: int
    total: Decimal


@dataclass
class Line:
    """One seller's (or one store's, or everyone's) figures."""

    key: int | None
    name: str
    suggested: int = 0
    started: int = 0
    finished: int = 0
    converted: int = 0
    sales: int = 0
    revenue: Decimal = field(default_factory=lambda: Decimal("0.00"))
    rank: int | None = None
    store_id: int | None = None

    @property
    def conversion_rate(self) -> Decimal:
        if not self.started:
            return Decimal("0")
        return (Decimal(self.converted) / Decimal(self.started)).quantize(RATE, ROUND_HALF_UP)

    def add(self, other: "Line") -> None:
        for name in ("suggested", "started", "finished", "converted", "sales"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.revenue += other.revenue

    def as_json(self) -> dict:
        return {"id": self.key, "name": self.name, "suggested": self.suggested, "started": self.started,
                "finished": self.finished, "sales": self.sales, "revenue": str(self.revenue),
                "conversion_rate": str(self.conversion_rate), "rank": self.rank}


@dataclass
class Report:
    start: datetime
    end: datetime
    sellers: list[Line]  # ranked
    stores: list[Line]
    total: Line
    sales_by_seller: dict[int, list[SellerSale]]

    def as_json(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "sellers": [s.as_json() for s in self.sellers], "stores": [s.as_json() for s in self.stores],
                "total": self.total.as_json()}


def _event_counts(session: Session, start: datetime, end: datetime, condition) -> dict[int, int]:
    return dict(session.execute(
        select(OpportunityEvent.to_seller_id, func.count()).where(
            condition, OpportunityEvent.at >= start, OpportunityEvent.at < end,
            OpportunityEvent.to_seller_id.is_not(None))
        .group_by(OpportunityEvent.to_seller_id)).all())


def attributed_sales(session: Session, start: datetime, end: datetime, window: timedelta
                     ) -> dict[int, list[SellerSale]]:
    """seller id -> the orders placed in [start, end) credited to them."""
    codes = dict(session.execute(select(User.seller_code, User.id).where(User.seller_code.is_not(None))).all())
    orders = session.execute(
        select(Order.id, Order.customer_id, Order.seller_code, Order.placed_at, Order.total,
               Customer.name, Customer.phone)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.placed_at >= start, Order.placed_at < end, Order.status != OrderStatus.CANCELLED)).all()
    if not orders:
        return {}
    order_ids = [o.id for o in orders]
    items = dict(session.execute(select(OrderItem.order_id, func.sum(OrderItem.quantity))
                                 .where(OrderItem.order_id.in_(order_ids)).group_by(OrderItem.order_id)).all())
    # Contacts that can explain an order of the period: started up to one window before the period.
    contacts: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for customer_id, started_at, seller_id in session.execute(
            select(Opportunity.customer_id, Opportunity.started_at, Opportunity.seller_id).where(
                Opportunity.started_at.is_not(None), Opportunity.seller_id.is_not(None),
                Opportunity.started_at >= start - window, Opportunity.started_at < end,
                Opportunity.customer_id.in_({o.customer_id for o in orders}))):
        contacts[customer_id].append((started_at, seller_id))
    credited: dict[int, list[SellerSale]] = defaultdict(list)
    for order in orders:
        seller_id = codes.get(order.seller_code) if order.seller_code else None
        earlier = [c for c in contacts.get(order.customer_id, []) if order.placed_at - window <= c[0] <= order.placed_at]
        latest = max(earlier, default=None)
        if seller_id is None and latest is not None:
            seller_id = latest[1]
        if seller_id is None:
            continue
        contact_at = max((c[0] for c in earlier if c[1] == seller_id), default=None)
        credited[seller_id].append(SellerSale(order.id, order.customer_id, order.name, order.phone, contact_at,
                                              order.placed_at, int(items.get(order.id) or 0), order.total))
    return credited


def _converted(session: Session, start: datetime, end: datetime, window: timedelta) -> dict[int, int]:
    """seller id -> conversations started in the period followed by an order within the window."""
    bought = select(Order.id).where(
        Order.customer_id == Opportunity.customer_id, Order.status != OrderStatus.CANCELLED,
        Order.placed_at >= Opportunity.started_at).correlate(Opportunity)
    rows = session.execute(
        select(Opportunity.seller_id, Opportunity.started_at, Opportunity.customer_id).where(
            Opportunity.started_at >= start, Opportunity.started_at < end, Opportunity.seller_id.is_not(None),
            bought.exists())).all()
    if not rows:
        return {}
    placed = defaultdict(list)
    for customer_id, placed_at in session.execute(
            select(Order.customer_id, Order.placed_at).where(
                Order.customer_id.in_({r.customer_id for r in rows}), Order.status != OrderStatus.CANCELLED,
                Order.placed_at >= start, Order.placed_at < end + window)):
        placed[customer_id].append(placed_at)
    counts: dict[int, int] = defaultdict(int)
    for seller_id, started_at, customer_id in rows:
        if any(started_at <= p <= started_at + window for p in placed[customer_id]):
            counts[seller_id] += 1
    return counts


def report(session: Session, start: datetime, end: datetime, *, store_id: int | None = None,
           seller_id: int | None = None) -> Report:
    window = timedelta(days=crm_settings(session).attribution_days)
    suggested = _event_counts(session, start, end, OpportunityEvent.kind == "assigned")
    started = _event_counts(session, start, end, and_(OpportunityEvent.kind == "status",
                                                      OpportunityEvent.to_status == "in_progress"))
    finished = _event_counts(session, start, end, and_(OpportunityEvent.kind == "status",
                                                       OpportunityEvent.to_status == "finished"))
    converted = _converted(session, start, end, window)
    sales = attributed_sales(session, start, end, window)

    query = select(User).where(User.role == Role.SELLER).order_by(User.name, User.id)
    if store_id is not None:
        query = query.where(User.store_id == store_id)
    if seller_id is not None:
        query = query.where(User.id == seller_id)
    lines = []
    for seller in session.scalars(query):
        line = Line(seller.id, seller.name, suggested.get(seller.id, 0), started.get(seller.id, 0),
                    finished.get(seller.id, 0), converted.get(seller.id, 0), len(sales.get(seller.id, [])),
                    sum((s.total for s in sales.get(seller.id, [])), Decimal("0.00")), store_id=seller.store_id)
        if seller.active or line.suggested or line.started or line.finished or line.sales:
            lines.append(line)
    lines.sort(key=lambda l: (-l.revenue, -l.sales, -l.conversion_rate, l.name))
    for position, line in enumerate(lines, start=1):
        line.rank = position
    store_names = dict(session.execute(select(Store.id, Store.name)).all())
    stores: dict[int | None, Line] = {}
    total = Line(None, "Total")
    for line in lines:
        store = stores.setdefault(line.store_id, Line(line.store_id, store_names.get(line.store_id, "Sem loja")))
        store.add(line)
        total.add(line)
    ranked_stores = sorted(stores.values(), key=lambda l: (-l.revenue, l.name))
    for position, store in enumerate(ranked_stores, start=1):
        store.rank = position
    kept = {line.key for line in lines}
    return Report(start, end, lines, ranked_stores, total,
                  {sid: sorted(v, key=lambda s: s.placed_at) for sid, v in sales.items() if sid in kept})
