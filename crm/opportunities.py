"""Opportunities: creation from every source, the status machine, and the append-only event record.

Plain functions over a Session; they flush but never commit, so a caller's transaction holds the change and its
event together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from crm.handoffs import sync_handoff
from crm.hours import add_open_minutes, store_hours
from models import (
    OPEN_STATUSES, CrmSettings, Customer, CustomerNote, Opportunity, OpportunityEvent, OpportunityResult, OpportunityStatus,
    OpportunityType, User,
)

PRIORITIES = {"low": 1, "normal": 2, "high": 3}
PRIORITY_NAMES = {value: name for name, value in PRIORITIES.items()}

# Reasons of behavior opportunities (the seed's behavioural triggers, plus the bot's and the recoverer's).
BEHAVIOR_REASONS = {
    "cart_abandoned", "product_browsing", "repeated_visits", "strategic_search", "asked_for_person",
    "recovery_replied", "recovery_not_converted",
}
# Suggestions the system makes on its own respect quarantine; a shopper asking for a person, a manager's explicit
# choice and a seller's own contact do not. An opted-out customer gets no new opportunity at all, except when
# they themselves ask for a person.
AUTOMATIC_TYPES = (OpportunityType.BEHAVIOR, OpportunityType.SEGMENT)
EXEMPT_REASONS = {"asked_for_person"}

# Deadlines by type and priority, in hours of the store's opening hours (a shopper who asked for a person is due
# after crm_settings.handoff_response_minutes instead: crm.sources). The brand changes them on the rules page.
DEADLINE_TYPES = tuple(t.value for t in OpportunityType)
DEADLINE_PRIORITIES = ("high", "normal", "low")
DEADLINE_LIMITS = (1, 720)
DEFAULT_DEADLINE_HOURS = {
    "behavior": {"high": 4, "normal": 8, "low": 24},
    "segment": {"high": 8, "normal": 24, "low": 48},
    "manual": {"high": 4, "normal": 16, "low": 40},
    "contact": {"high": 4, "normal": 8, "low": 16},
}
# Used when a caller has no store time zone at hand (the store's one is passed wherever it is known).
DEFAULT_TZ = ZoneInfo("America/Sao_Paulo")

# Which status may follow which. Reassignment (assigned -> assigned, new seller) goes through reassign().
TRANSITIONS = {
    OpportunityStatus.BACKLOG: {OpportunityStatus.ASSIGNED, OpportunityStatus.FINISHED},
    OpportunityStatus.ASSIGNED: {OpportunityStatus.IN_PROGRESS, OpportunityStatus.FINISHED, OpportunityStatus.BACKLOG},
    OpportunityStatus.IN_PROGRESS: {OpportunityStatus.FINISHED},
    OpportunityStatus.FINISHED: set(),
}


class OpportunityError(ValueError):
    """A refused change, with the field it concerns and a pt-BR message for the person who asked."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def crm_settings(session: Session) -> CrmSettings:
    row = session.get(CrmSettings, 1)
    if row is None:
        row = CrmSettings(id=1)
        session.add(row)
        session.flush()
    return row


def deadline_rules(settings: CrmSettings) -> dict[str, dict[str, int]]:
    """The saved deadlines over the defaults: every type × priority has a number of opening hours."""
    saved = settings.deadline_hours if isinstance(settings.deadline_hours, dict) else {}
    rules = {}
    for type_name in DEADLINE_TYPES:
        row = saved.get(type_name) if isinstance(saved.get(type_name), dict) else {}
        rules[type_name] = {}
        for priority in DEADLINE_PRIORITIES:
            value = row.get(priority)
            low, high = DEADLINE_LIMITS
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
            rules[type_name][priority] = value if ok else DEFAULT_DEADLINE_HOURS[type_name][priority]
    return rules


def deadline_for(session: Session, type: OpportunityType, priority: int, now: datetime,
                 tz: ZoneInfo | None = None) -> datetime:
    """When an opportunity of this type and priority is due: the rule's hours counted in opening hours only
    (a request at 20:30 with 2 h to go is due 1 h 30 after the store opens the next day)."""
    hours = deadline_rules(crm_settings(session))[type.value][PRIORITY_NAMES.get(priority, "normal")]
    return add_open_minutes(store_hours(session), now, hours * 60, tz or DEFAULT_TZ)


def record(session: Session, opportunity: Opportunity, kind: str, now: datetime, *, actor: User | None = None,
           from_status: OpportunityStatus | None = None, to_status: OpportunityStatus | None = None,
           from_seller_id: int | None = None, to_seller_id: int | None = None, detail: str | None = None) -> None:
    session.add(OpportunityEvent(
        opportunity_id=opportunity.id, at=now, actor_id=actor.id if actor else None, kind=kind,
        from_status=from_status.value if from_status else None, to_status=to_status.value if to_status else None,
        from_seller_id=from_seller_id, to_seller_id=to_seller_id, detail=detail))


def open_opportunity(session: Session, customer_id: int) -> Opportunity | None:
    return session.scalar(select(Opportunity).where(
        Opportunity.customer_id == customer_id, Opportunity.status.in_(OPEN_STATUSES)))


def in_quarantine(session: Session, customer_id: int, days: int, now: datetime) -> bool:
    """Contacted by a seller (a conversation started) in the last ``days`` days."""
    if days <= 0:
        return False
    return bool(session.scalar(select(exists().where(
        Opportunity.customer_id == customer_id, Opportunity.started_at.is_not(None),
        Opportunity.started_at > now - timedelta(days=days)))))


@dataclass(frozen=True)
class Created:
    opportunity: Opportunity | None
    created: bool
    skipped: str | None = None  # why nothing was created: quarantine, opted_out, duplicate_source


def create(session: Session, customer: Customer, *, type: OpportunityType, reason: str, now: datetime,
           priority: int = PRIORITIES["normal"], actor: User | None = None, campaign: str | None = None,
           message: str | None = None, deadline: datetime | None = None, recommended_skus: list[str] | None = None,
           source_ref: str | None = None, handoff_id: int | None = None, tz: ZoneInfo | None = None) -> Created:
    """A new opportunity in backlog, or the customer's open one (one open per customer; a higher priority or
    a nearer deadline from the new source is kept). Nothing is created for a source that already fired, nor,
    for automatic suggestions, for a quarantined or opted-out customer. Without a deadline, the brand's rule for
    the type and priority applies (``deadline_for``)."""
    if source_ref is not None:
        earlier = session.scalar(select(Opportunity).where(Opportunity.source_ref == source_ref))
        if earlier is not None:
            return Created(earlier, False, "duplicate_source")
    if customer.opted_out_at is not None and reason not in EXEMPT_REASONS:
        return Created(None, False, "opted_out")
    if type in AUTOMATIC_TYPES and reason not in EXEMPT_REASONS:
        if in_quarantine(session, customer.id, crm_settings(session).quarantine_days, now):
            return Created(None, False, "quarantine")
    if deadline is None:
        deadline = deadline_for(session, type, priority, now, tz)
    existing = open_opportunity(session, customer.id)
    if existing is not None:
        if priority > existing.priority:
            existing.priority = priority
        if deadline is not None and (existing.deadline is None or deadline < existing.deadline):
            existing.deadline = deadline
        if handoff_id is not None and existing.handoff_id is None:
            existing.handoff_id = handoff_id
        record(session, existing, "merged", now, actor=actor, detail=f"{type.value}:{reason}"[:200])
        session.flush()
        sync_handoff(session, existing, now)
        return Created(existing, False)
    opportunity = Opportunity(
        customer_id=customer.id, type=type, reason=reason, status=OpportunityStatus.BACKLOG, priority=priority,
        campaign=campaign, message=message, deadline=deadline, recommended_skus=list(recommended_skus or []),
        source_ref=source_ref, handoff_id=handoff_id, created_by_id=actor.id if actor else None, created_at=now)
    session.add(opportunity)
    session.flush()
    record(session, opportunity, "created", now, actor=actor, to_status=OpportunityStatus.BACKLOG,
           detail=f"{type.value}:{reason}"[:200])
    return Created(opportunity, True)


def move(session: Session, opportunity: Opportunity, to: OpportunityStatus, now: datetime, *,
         actor: User | None = None, result: OpportunityResult | None = None, note: str | None = None) -> None:
    """Change the status along the allowed transitions; finishing needs a result."""
    current = opportunity.status
    if to is current:
        return
    if to not in TRANSITIONS[current]:
        raise OpportunityError("status", f"não é possível passar de {current.value} para {to.value}")
    if to is OpportunityStatus.IN_PROGRESS and opportunity.seller_id is None:
        raise OpportunityError("status", "a oportunidade não tem vendedor")
    if to is OpportunityStatus.FINISHED:
        if result is None:
            raise OpportunityError("result", "informe o resultado: positive, neutral ou negative")
        opportunity.result = result
        opportunity.result_note = (note or "").strip() or None
        opportunity.finished_at = now
        if opportunity.result_note:
            # The seller's words stay with the customer: the Contato tab's shared notes show them to everyone
            # who can see the customer, next to the notes typed there.
            author = actor.id if actor is not None else opportunity.seller_id
            session.add(CustomerNote(customer_id=opportunity.customer_id, author_id=author, kind="oportunidade",
                                     text=opportunity.result_note, opportunity_id=opportunity.id, created_at=now))
    if to is OpportunityStatus.IN_PROGRESS:
        opportunity.started_at = now
    if to is OpportunityStatus.BACKLOG:
        record(session, opportunity, "status", now, actor=actor, from_status=current, to_status=to,
               from_seller_id=opportunity.seller_id)
        opportunity.seller_id = None
        opportunity.assigned_at = None
    else:
        record(session, opportunity, "status", now, actor=actor, from_status=current, to_status=to,
               from_seller_id=opportunity.seller_id, to_seller_id=opportunity.seller_id)
    opportunity.status = to
    session.flush()
    sync_handoff(session, opportunity, now)


def hand_to(session: Session, opportunity: Opportunity, seller: User, now: datetime, *, kind: str,
            actor: User | None = None, detail: str | None = None) -> None:
    """Give an open opportunity to ``seller`` (assignment or reassignment). A conversation in progress with
    someone else goes back to "assigned" for the new seller."""
    if not opportunity.is_open:
        raise OpportunityError("status", "a oportunidade já foi finalizada")
    before_status, before_seller = opportunity.status, opportunity.seller_id
    opportunity.seller_id = seller.id
    opportunity.status = OpportunityStatus.ASSIGNED
    opportunity.assigned_at = now
    record(session, opportunity, kind, now, actor=actor, from_status=before_status,
           to_status=OpportunityStatus.ASSIGNED, from_seller_id=before_seller, to_seller_id=seller.id, detail=detail)
    session.flush()
    sync_handoff(session, opportunity, now)


def start_conversation(session: Session, opportunity: Opportunity, seller: User, now: datetime) -> None:
    if opportunity.seller_id != seller.id:
        raise OpportunityError("seller", "esta oportunidade é de outro vendedor")
    if opportunity.status is OpportunityStatus.ASSIGNED:
        move(session, opportunity, OpportunityStatus.IN_PROGRESS, now, actor=seller)
    elif opportunity.status is not OpportunityStatus.IN_PROGRESS:
        raise OpportunityError("status", "a oportunidade não está aberta para conversa")


def contact(session: Session, seller: User, customer: Customer, now: datetime,
            tz: ZoneInfo | None = None) -> Opportunity:
    """A seller reaches out to a portfolio customer: their open opportunity, or a new "contact" one, assigned
    to them so the conversation is tracked and its result recorded. It moves to in progress only when the
    seller opens WhatsApp from it (``start_conversation``), as any other opportunity does."""
    if customer.owner_seller_id != seller.id:
        raise OpportunityError("customer", "este cliente não está na sua carteira")
    existing = open_opportunity(session, customer.id)
    if existing is not None:
        if existing.seller_id not in (None, seller.id):
            raise OpportunityError("customer", "este cliente está com outro vendedor agora")
        if existing.status is OpportunityStatus.BACKLOG:
            hand_to(session, existing, seller, now, kind="contact", actor=seller)
        return existing
    if customer.opted_out_at is not None:
        raise OpportunityError("customer", "este cliente pediu para não receber mensagens (opt-out)")
    made = create(session, customer, type=OpportunityType.CONTACT, reason="seller_contact", now=now, actor=seller,
                  tz=tz)
    hand_to(session, made.opportunity, seller, now, kind="contact", actor=seller)
    return made.opportunity
