"""Who gets an opportunity: the portfolio owner, else the least loaded eligible seller nearest the customer.

Seed rules: a customer already in an active seller's portfolio goes to that seller; otherwise location first
(the phone's DDD, then city, then state, then the customer's branch, then the whole brand) and capacity second
(a maximum portfolio size and the "limitador de sugestões" daily cap). Among the eligible the least loaded wins
(fewest open opportunities, then smallest portfolio), ties to the one assigned longest ago.

Concurrency: the opportunity row and the chosen seller's row are locked (``FOR UPDATE``; ``SKIP LOCKED`` for
sellers another assignment holds) and the seller's load is re-read under the lock, so a seller deactivated
meanwhile is never chosen, caps hold under parallel workers, and nothing is assigned twice. On SQLite the
database's single writer gives the same guarantees.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, time as dtime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload
from unidecode import unidecode

from crm.opportunities import hand_to
from models import (
    Customer, Database, Opportunity, OpportunityEvent, OpportunityStatus, Role, User,
)

log = logging.getLogger(__name__)

HELD = (OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS)
TIERS = ("ddd", "city", "state", "store", "brand")
RETRYABLE_PG_CODES = {"40P01", "40001"}  # deadlock detected, serialization failure


class SellersBusy(Exception):
    """Every suitable seller was locked by a concurrent assignment: retry in a new transaction."""


def daily_cap(seller: User) -> int:
    """The seed's "limitador de sugestões": minutes of idle time in a working day / average conversation."""
    minutes = Decimal(seller.avg_conversation_minutes or 0)
    if minutes <= 0:
        return 0
    return math.floor(Decimal(seller.hours_per_day) * 60 * Decimal(seller.idle_share) / minutes)


def local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """Start of the store's current day, in UTC: the daily cap resets here."""
    local_day = now.astimezone(tz).date()
    return datetime.combine(local_day, dtime.min, tzinfo=tz).astimezone(timezone.utc)


@dataclass(frozen=True)
class Load:
    open: int = 0
    portfolio: int = 0
    today: int = 0


def loads(session: Session, seller_ids: list[int], day_start: datetime) -> dict[int, Load]:
    if not seller_ids:
        return {}
    held = dict(session.execute(
        select(Opportunity.seller_id, func.count()).where(Opportunity.seller_id.in_(seller_ids),
                                                          Opportunity.status.in_(HELD))
        .group_by(Opportunity.seller_id)).all())
    portfolio = dict(session.execute(
        select(Customer.owner_seller_id, func.count()).where(Customer.owner_seller_id.in_(seller_ids))
        .group_by(Customer.owner_seller_id)).all())
    today = dict(session.execute(
        select(OpportunityEvent.to_seller_id, func.count()).where(
            OpportunityEvent.to_seller_id.in_(seller_ids), OpportunityEvent.kind == "assigned",
            OpportunityEvent.at >= day_start)
        .group_by(OpportunityEvent.to_seller_id)).all())
    return {sid: Load(held.get(sid, 0), portfolio.get(sid, 0), today.get(sid, 0)) for sid in seller_ids}


def has_room(seller: User, load: Load) -> bool:
    return load.portfolio < seller.max_portfolio and load.today < daily_cap(seller)


def _fold(text: str | None) -> str:
    return unidecode(text or "").strip().casefold()


def seller_ddds(seller: User) -> set[str]:
    if seller.region_ddds:
        return set(seller.region_ddds)
    return {seller.store.ddd} if seller.store is not None and seller.store.ddd else set()


def tier_of(seller: User, customer: Customer) -> str:
    """The nearest tier at which ``seller`` serves ``customer``."""
    store = seller.store
    if customer.ddd and customer.ddd in seller_ddds(seller):
        return "ddd"
    if store is not None and customer.city and _fold(store.city) == _fold(customer.city):
        return "city"
    if store is not None and customer.state and (store.state or "").upper() == customer.state.upper():
        return "state"
    if customer.store_id is not None and seller.store_id == customer.store_id:
        return "store"
    return "brand"


def active_sellers(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role == Role.SELLER, User.active.is_(True))
                                .options(selectinload(User.store)).order_by(User.id)))


def _lock_active_seller(session: Session, seller_id: int, *, wait: bool) -> User | None:
    query = select(User).where(User.id == seller_id, User.role == Role.SELLER, User.active.is_(True))
    query = query.with_for_update(skip_locked=not wait)
    # populate_existing: the locked row's current values, not the ones this session read before the lock.
    return session.scalar(query.execution_options(populate_existing=True))


def _give(session: Session, opportunity: Opportunity, seller: User, now: datetime, detail: str) -> User:
    customer = opportunity.customer
    seen_owner = customer.owner_seller_id
    if seen_owner != seller.id:
        # Compare-and-set on the owner this assignment saw (none, or an inactive seller): a concurrent
        # redistribution or re-point that changed it wins, and this assignment starts over.
        unchanged = Customer.owner_seller_id.is_(None) if seen_owner is None else Customer.owner_seller_id == seen_owner
        claimed = session.execute(update(Customer).where(Customer.id == customer.id, unchanged)
                                  .values(owner_seller_id=seller.id).execution_options(synchronize_session="fetch"))
        if claimed.rowcount != 1:
            raise SellersBusy()
    seller.last_assigned_at = now
    hand_to(session, opportunity, seller, now, kind="assigned", detail=detail)
    return seller


def assign(session: Session, opportunity: Opportunity, now: datetime, tz: ZoneInfo,
           roster: list[User] | None = None) -> User | None:
    """Assign a backlog opportunity (the caller holds its row lock) or leave it in backlog. Returns the seller.
    ``roster`` lets a batch share one read of the active sellers; it is re-checked under lock anyway."""
    if opportunity.status is not OpportunityStatus.BACKLOG:
        return None
    customer = opportunity.customer
    if customer.owner_seller_id is not None:
        owner = _lock_active_seller(session, customer.owner_seller_id, wait=True)
        session.refresh(customer, ["owner_seller_id"])
        if owner is not None and customer.owner_seller_id == owner.id:
            return _give(session, opportunity, owner, now, "portfolio")
    day_start = local_midnight(now, tz)
    sellers = roster if roster is not None else active_sellers(session)
    by_tier: dict[str, list[User]] = {tier: [] for tier in TIERS}
    for seller in sellers:
        by_tier[tier_of(seller, customer)].append(seller)
    # Each tier widens the circle: a nearer seller is always preferred while one has room.
    for tier in TIERS:
        circle = by_tier[tier]
        if not circle:
            continue
        current = loads(session, [s.id for s in circle], day_start)
        ranked = sorted((s for s in circle if has_room(s, current[s.id])),
                        key=lambda s: (current[s.id].open, current[s.id].portfolio,
                                       s.last_assigned_at or datetime.min.replace(tzinfo=timezone.utc), s.id))
        busy = False
        for candidate in ranked:
            locked = _lock_active_seller(session, candidate.id, wait=False)
            if locked is None:
                busy = busy or session.scalar(select(User.active).where(User.id == candidate.id)) is True
                continue
            if has_room(locked, loads(session, [locked.id], day_start)[locked.id]):
                return _give(session, opportunity, locked, now, tier)
        if busy:
            raise SellersBusy()
    return None


class NoCapacity(ValueError):
    """The chosen seller cannot take more work today: the pt-BR reason for the person who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def reassign(session: Session, opportunity: Opportunity, seller_id: int, now: datetime, tz: ZoneInfo, *,
             actor: User) -> User:
    """A manager gives an open opportunity to another active seller, within that seller's capacity: their
    maximum portfolio (unless the customer is already theirs) and their daily cap, counting what they were
    given today (assigned or reassigned). The event records who did it. The caller checks that ``actor`` may
    hand work to the seller (crm.access.may_hand_to) and holds the opportunity's row lock."""
    target = _lock_active_seller(session, seller_id, wait=True)
    if target is None:
        raise NoCapacity("escolha um vendedor ativo")
    if target.id == opportunity.seller_id:
        raise NoCapacity("a oportunidade já é deste vendedor")
    day_start = local_midnight(now, tz)
    load = loads(session, [target.id], day_start)[target.id]
    given_today = session.scalar(select(func.count()).select_from(OpportunityEvent).where(
        OpportunityEvent.to_seller_id == target.id, OpportunityEvent.kind.in_(("assigned", "reassigned")),
        OpportunityEvent.at >= day_start)) or 0
    cap = daily_cap(target)
    name = target.name or target.email
    if given_today >= cap:
        raise NoCapacity(f"{name} já recebeu {given_today} de {cap} sugestões hoje (limitador de sugestões)")
    if opportunity.customer.owner_seller_id != target.id and load.portfolio >= target.max_portfolio:
        raise NoCapacity(f"a carteira de {name} está cheia ({load.portfolio} de {target.max_portfolio} clientes)")
    hand_to(session, opportunity, target, now, kind="reassigned", actor=actor, detail="manager")
    return target


def _retryable(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_PG_CODES


def assign_by_id(database: Database, opportunity_id: int, now: datetime, tz: ZoneInfo, *,
                 attempts: int = 5, roster: list[User] | None = None) -> int | None:
    """Assign one backlog opportunity in its own transaction, skipping it when another worker holds it.
    Returns the seller id, or None when it stays in backlog. ``roster``: see `assign`."""
    for attempt in range(attempts):
        with database.session() as session:
            try:
                opportunity = session.scalar(
                    select(Opportunity).where(Opportunity.id == opportunity_id,
                                              Opportunity.status == OpportunityStatus.BACKLOG)
                    .with_for_update(skip_locked=True))
                if opportunity is None:
                    return None  # gone, already assigned, or another worker is on it
                seller = assign(session, opportunity, now, tz, roster=roster)
                session.commit()
                return seller.id if seller else None
            except SellersBusy:
                session.rollback()
            except OperationalError as exc:
                session.rollback()
                if not _retryable(exc):
                    raise
        time.sleep(0.02 * (attempt + 1))
    log.info("opportunity %s left in backlog: sellers busy", opportunity_id)
    return None


def assign_backlog(database: Database, now: datetime, tz: ZoneInfo, *, limit: int = 500) -> dict[str, int]:
    """The periodic retry: highest priority and oldest first. Cost: O(limit) opportunities, each O(sellers)."""
    with database.session() as session:
        ids = list(session.scalars(select(Opportunity.id).where(Opportunity.status == OpportunityStatus.BACKLOG)
                                   .order_by(Opportunity.priority.desc(), Opportunity.created_at, Opportunity.id)
                                   .limit(limit)))
    assigned = assign_many(database, ids, now, tz)
    return {"considered": len(ids), "assigned": assigned, "backlog": len(ids) - assigned}


ROSTER_BATCH = 500


def assign_many(database: Database, ids: list[int], now: datetime, tz: ZoneInfo) -> int:
    """Assign these opportunities, one transaction each, reading the active sellers once per batch: that read
    was 40 % of an assignment (py-spy, bench/assignment.py). A seller deactivated meanwhile is refused under
    the row lock; one activated meanwhile joins at the next batch."""
    assigned = 0
    for start in range(0, len(ids), ROSTER_BATCH):
        with database.session() as session:
            roster = active_sellers(session)
        for opportunity_id in ids[start:start + ROSTER_BATCH]:
            if assign_by_id(database, opportunity_id, now, tz, roster=roster) is not None:
                assigned += 1
    return assigned
