"""Refill the tracker from the database after Redis lost its data (`flask --app app recovery rebuild`).

Only shoppers with an interaction inside the maximum age can still be due, so this reads recent rows,
not the whole history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from core.runtime import Runtime
from models import AttemptStatus, Cart, CartItem, CartStatus, Customer, Message, Order, OrderStatus, RecoveryAttempt
from recovery.config import load_settings
from recovery.eligibility import purchase_block
from recovery.tracker import Tracker, truncate_ms

INTERACTION_KINDS = ("shopper", "bot")
CHUNK = 1000


@dataclass(frozen=True)
class RebuildSummary:
    examined: int
    tracked: int

    def as_json(self) -> dict:
        return {"examined": self.examined, "tracked": self.tracked}


def last_interactions(session: Session, since: datetime) -> dict[int, datetime]:
    latest: dict[int, datetime] = {}
    message_rows = session.execute(
        select(Message.customer_id, func.max(Message.created_at))
        .where(Message.created_at >= since, Message.kind.in_(INTERACTION_KINDS))
        .group_by(Message.customer_id))
    cart_rows = session.execute(
        select(Cart.customer_id, func.max(Cart.updated_at))
        .where(Cart.updated_at >= since, Cart.status != CartStatus.CONVERTED)
        .group_by(Cart.customer_id))
    for customer_id, moment in [*message_rows, *cart_rows]:
        moment = _aware(moment)
        if customer_id not in latest or moment > latest[customer_id]:
            latest[customer_id] = moment
    return latest


def _aware(moment: datetime) -> datetime:
    # func.max() bypasses the column type on SQLite and hands back a naive UTC value or a string.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def rebuild(session: Session, runtime: Runtime, now: datetime) -> RebuildSummary:
    settings = load_settings(session)
    delay = timedelta(minutes=settings.delay_minutes)
    since = now - timedelta(hours=settings.max_age_hours)
    latest = last_interactions(session, since)
    tracker = Tracker(runtime)
    tracked = 0
    ids = sorted(latest)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        opted_out = set(session.scalars(select(Customer.id).where(Customer.id.in_(chunk),
                                                                  Customer.opted_out_at.is_not(None))))
        last_order = dict(session.execute(
            select(Order.customer_id, func.max(Order.placed_at))
            .where(Order.customer_id.in_(chunk), Order.status != OrderStatus.CANCELLED)
            .group_by(Order.customer_id)).all())
        last_cart = dict(session.execute(
            select(Cart.customer_id, func.max(Cart.created_at))
            .where(Cart.customer_id.in_(chunk), exists().where(CartItem.cart_id == Cart.id))
            .group_by(Cart.customer_id)).all())
        attempts: dict[int, list[RecoveryAttempt]] = {}
        for attempt in session.scalars(select(RecoveryAttempt).where(RecoveryAttempt.customer_id.in_(chunk),
                                                                     RecoveryAttempt.interaction_at >= since)):
            attempts.setdefault(attempt.customer_id, []).append(attempt)
        for customer_id in chunk:
            interaction = truncate_ms(latest[customer_id])
            if customer_id in opted_out:
                continue
            ordered_at, cart_at = last_order.get(customer_id), last_cart.get(customer_id)
            if purchase_block(_aware(ordered_at) if ordered_at else None, _aware(cart_at) if cart_at else None,
                              interaction) is not None:
                continue  # the tick would refuse it anyway (recovery.eligibility)
            due = interaction + delay
            done = False
            for attempt in attempts.get(customer_id, []):
                if attempt.interaction_at >= interaction:
                    if attempt.status in (AttemptStatus.SENT, AttemptStatus.SKIPPED):
                        done = True
                    elif attempt.status is AttemptStatus.DEFERRED:
                        due = attempt.due_at
            if not done and tracker.note(customer_id, interaction, due):
                tracked += 1
    return RebuildSummary(examined=len(ids), tracked=tracked)
