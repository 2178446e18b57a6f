"""Order status for the shopper's own phone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.templating import brl
from models import Customer, Order, OrderStatus

STATUS_PT = {OrderStatus.CREATED: "recebido", OrderStatus.PAID: "pago", OrderStatus.CANCELLED: "cancelado"}


def recent_orders(session: Session, customer: Customer, tz: ZoneInfo, limit: int = 3) -> list[dict]:
    orders = session.scalars(select(Order).where(Order.customer_id == customer.id)
                             .order_by(Order.placed_at.desc()).limit(limit))
    return [
        {
            "numero": order.external_id,
            "data": format_date(order.placed_at.astimezone(tz).date(), "dd/MM/yyyy", locale="pt_BR"),
            "total": brl(order.total),
            "status": STATUS_PT[order.status],
        }
        for order in orders
    ]
