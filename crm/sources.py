"""Where opportunities come from, besides managers and the API: the bot's handoff and the recoverer."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, exists, literal, select
from sqlalchemy.orm import Session

from crm.assignment import SellersBusy, assign
from crm.handoffs import sync_handoff
from crm.hours import add_open_minutes, store_hours
from crm.opportunities import PRIORITIES, create, crm_settings
from core.phones import mask_phone
from models import (
    AttemptStatus, Customer, HandoffRequest, Opportunity, OpportunityStatus, OpportunityType, Order, OrderStatus,
    RecoveryAttempt,
)
from models.recovery import latest_unconverted_attempt

log = logging.getLogger(__name__)

# A reply this long after the recovery message still counts as an answer to it (WhatsApp's service window).
REPLY_WINDOW = timedelta(hours=24)
# The follow-up job looks this far back past the configured delay, so a scheduler outage loses nothing.
FOLLOWUP_LOOKBACK = timedelta(days=2)


def recovery_ref(attempt_id: int) -> str:
    # One opportunity per recovery message, whether the shopper answered it or let it go unconverted.
    return f"recovery-{attempt_id}"


def from_handoff(session: Session, customer: Customer, request: HandoffRequest, now: datetime, tz: ZoneInfo
                 ) -> Opportunity | None:
    """High priority and assigned at once when a seller can take it; otherwise it waits in backlog for the
    periodic assignment. It is due after the configured response time, counted in opening hours only. Runs
    inside the caller's transaction; a failed attempt to assign changes nothing."""
    deadline = add_open_minutes(store_hours(session), now, crm_settings(session).handoff_response_minutes, tz)
    made = create(session, customer, type=OpportunityType.BEHAVIOR, reason="asked_for_person", now=now,
                  priority=PRIORITIES["high"], deadline=deadline, source_ref=f"handoff-{request.id}",
                  handoff_id=request.id)
    opportunity = made.opportunity
    if opportunity is None:
        return None
    if opportunity.status is OpportunityStatus.BACKLOG:
        savepoint = session.begin_nested()
        try:
            assign(session, opportunity, now, tz)
            savepoint.commit()
        except SellersBusy:
            savepoint.rollback()
            session.refresh(opportunity)
    sync_handoff(session, opportunity, now)
    return opportunity


def on_shopper_message(session: Session, customer: Customer, now: datetime) -> Opportunity | None:
    """A shopper who writes back after a recovery message gets a seller's attention."""
    attempt = latest_unconverted_attempt(session, customer.id, now - REPLY_WINDOW)
    if attempt is None:
        return None
    made = create(session, customer, type=OpportunityType.BEHAVIOR, reason="recovery_replied", now=now,
                  source_ref=recovery_ref(attempt.id))
    if made.created:
        log.info("opportunity %s: %s answered recovery message", made.opportunity.id, mask_phone(customer.phone))
    return made.opportunity if made.created else None


def follow_up_unconverted(session: Session, now: datetime, *, limit: int = 1000) -> int:
    """Recovery messages sent ``recovery_followup_hours`` ago that did not lead to a purchase become
    opportunities. Idempotent (one per message); cost O(messages sent in the look-back window)."""
    hours = crm_settings(session).recovery_followup_hours
    if hours <= 0:
        return 0
    cutoff = now - timedelta(hours=hours)
    bought = exists().where(Order.customer_id == RecoveryAttempt.customer_id,
                            Order.placed_at >= RecoveryAttempt.sent_at, Order.status != OrderStatus.CANCELLED)
    attempts = session.scalars(select(RecoveryAttempt).where(
        RecoveryAttempt.status == AttemptStatus.SENT, RecoveryAttempt.sent_at <= cutoff,
        RecoveryAttempt.sent_at > cutoff - FOLLOWUP_LOOKBACK, RecoveryAttempt.recovered_order_id.is_(None),
        ~bought, ~exists().where(Opportunity.source_ref == literal("recovery-") + cast(RecoveryAttempt.id, String)))
        .order_by(RecoveryAttempt.sent_at).limit(limit)).all()
    created = 0
    for attempt in attempts:
        made = create(session, attempt.customer, type=OpportunityType.BEHAVIOR, reason="recovery_not_converted",
                      now=now, source_ref=recovery_ref(attempt.id))
        created += made.created
    return created
