"""Sellers' portfolios: activation, deactivation with redistribution, and the daily re-point to the seller who
sold most to each customer.

Lock order everywhere: sellers (by id), then customers and opportunities. Assignment takes seller locks the
same way, so these can run on several workers at once without deadlocking, and nothing is left with, or
given to, an inactive seller.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm.opportunities import OpportunityError, hand_to, move
from models import (
    Customer, Opportunity, OpportunityStatus, Order, OrderStatus, Role, User,
)

HELD = (OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS)
EVEN = "even"
CHUNK = 1000  # ids per IN (...) list: SQLite limits bound parameters


@dataclass(frozen=True)
class Redistribution:
    customers: int
    opportunities: int
    targets: dict[int, int]  # seller id -> customers received


def _lock_sellers(session: Session, ids: list[int]) -> list[User]:
    return list(session.scalars(select(User).where(User.id.in_(ids)).order_by(User.id)
                                .with_for_update().execution_options(populate_existing=True)))


def set_active(session: Session, seller: User, active: bool) -> None:
    _lock_sellers(session, [seller.id])
    seller.active = active


def deactivate(session: Session, seller: User, now: datetime, *, to: int | str | None, actor: User | None = None
               ) -> Redistribution:
    """Deactivate ``seller`` and move their portfolio and open opportunities.

    ``to`` is a seller id (everything to that seller), ``"even"`` (balanced over the store's other active
    sellers: each customer, in id order, to whoever holds the fewest at that moment; repeatable), or None
    (customers released and open opportunities back to backlog, where assignment picks them up again).
    """
    if seller.role is not Role.SELLER:
        raise OpportunityError("seller", "o usuário não é vendedor")
    if to == EVEN:
        target_ids = list(session.scalars(select(User.id).where(
            User.role == Role.SELLER, User.active.is_(True), User.store_id == seller.store_id, User.id != seller.id)))
        if not target_ids:
            raise OpportunityError("to", "não há outro vendedor ativo nesta loja para receber a carteira")
    elif to is None:
        target_ids = []
    else:
        if int(to) == seller.id:
            raise OpportunityError("to", "escolha outro vendedor para receber a carteira")
        target_ids = [int(to)]
    locked = {u.id: u for u in _lock_sellers(session, sorted({seller.id, *target_ids}))}
    targets = [locked[i] for i in target_ids if i in locked and locked[i].active and locked[i].role is Role.SELLER]
    if len(targets) != len(target_ids):
        raise OpportunityError("to", "o vendedor escolhido não está ativo")
    seller.active = False

    customer_ids = list(session.scalars(select(Customer.id).where(Customer.owner_seller_id == seller.id)
                                        .order_by(Customer.id).with_for_update()))
    open_opps = list(session.scalars(select(Opportunity).where(
        Opportunity.seller_id == seller.id, Opportunity.status.in_(HELD)).order_by(Opportunity.id).with_for_update()))
    plan = _plan(session, customer_ids, open_opps, targets)
    received: dict[int, int] = defaultdict(int)
    for target_id, ids in _group(plan).items():
        for start in range(0, len(ids), CHUNK):
            session.execute(update(Customer).where(Customer.id.in_(ids[start:start + CHUNK]))
                            .values(owner_seller_id=target_id).execution_options(synchronize_session=False))
        received[target_id] += len(ids)
    if not targets:
        session.execute(update(Customer).where(Customer.owner_seller_id == seller.id).values(owner_seller_id=None)
                        .execution_options(synchronize_session=False))
    detail = f"vendedor {seller.id} inativado"
    for opportunity in open_opps:
        target_id = plan.get(opportunity.customer_id)
        if target_id is None:
            move(session, opportunity, OpportunityStatus.BACKLOG, now, actor=actor)
        else:
            hand_to(session, opportunity, locked[target_id], now, kind="reassigned", actor=actor, detail=detail)
    session.expire_all()
    return Redistribution(len(customer_ids), len(open_opps), dict(received))


def _plan(session: Session, customer_ids: list[int], open_opps: list[Opportunity], targets: list[User]
          ) -> dict[int, int]:
    """customer id -> new owner. Balanced: a heap of (current portfolio size, seller id)."""
    if not targets:
        return {}
    everyone = sorted(set(customer_ids) | {o.customer_id for o in open_opps})
    if len(targets) == 1:
        return {cid: targets[0].id for cid in everyone}
    sizes = dict(session.execute(select(Customer.owner_seller_id, func.count()).where(
        Customer.owner_seller_id.in_([t.id for t in targets])).group_by(Customer.owner_seller_id)).all())
    heap = [(sizes.get(t.id, 0), t.id) for t in targets]
    heapq.heapify(heap)
    plan = {}
    for cid in everyone:
        size, sid = heapq.heappop(heap)
        plan[cid] = sid
        heapq.heappush(heap, (size + 1, sid))
    return plan


def _group(plan: dict[int, int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for customer_id, seller_id in plan.items():
        grouped[seller_id].append(customer_id)
    return grouped


def repoint_owners(session: Session) -> int:
    """Daily (seed rule): each customer's owner becomes the active seller who sold most to them (orders with
    that seller's code; ties to the larger revenue, then the most recent sale). Customers without such sales
    keep their owner. Returns how many owners changed. Cost: one pass over the orders that carry a seller code.
    """
    sellers = dict(session.execute(select(User.seller_code, User.id).where(
        User.role == Role.SELLER, User.active.is_(True), User.seller_code.is_not(None))).all())
    if not sellers:
        return 0
    rows = session.execute(
        select(Order.customer_id, Order.seller_code, func.count(), func.sum(Order.total), func.max(Order.placed_at))
        .where(Order.seller_code.in_(list(sellers)), Order.status != OrderStatus.CANCELLED)
        .group_by(Order.customer_id, Order.seller_code))
    best: dict[int, tuple] = {}
    for customer_id, code, count, revenue, last in rows:
        score = (count, revenue, last, -sellers[code])
        if customer_id not in best or score > best[customer_id][0]:
            best[customer_id] = (score, sellers[code])
    changed = 0
    by_seller: dict[int, list[int]] = defaultdict(list)
    for customer_id, (_, seller_id) in best.items():
        by_seller[seller_id].append(customer_id)
    for seller_id in sorted(by_seller):
        if not _lock_sellers(session, [seller_id]) or not session.get(User, seller_id).active:
            continue
        ids = by_seller[seller_id]
        for start in range(0, len(ids), CHUNK):
            result = session.execute(update(Customer).where(
                Customer.id.in_(ids[start:start + CHUNK]),
                (Customer.owner_seller_id.is_(None)) | (Customer.owner_seller_id != seller_id))
                .values(owner_seller_id=seller_id).execution_options(synchronize_session=False))
            changed += result.rowcount
    return changed
