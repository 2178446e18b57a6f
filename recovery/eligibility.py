"""May this shopper get a recovery message now? Judged at send time against the database, the source of truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from channel.consent import question_open
from core.phones import InvalidPhone, normalize_phone
from models import (
    AttemptStatus, Cart, CartItem, Coupon, Customer, FrequencyUnit, HandoffRequest, HandoffStatus, Opportunity,
    OpportunityStatus, Order, OrderStatus, RecoveryAttempt, RecoverySettings,
)
from recovery.config import parse_hhmm

RECOVERY_KIND = "recovery"

# Refusal reasons, recorded on the attempt and reported by reason.
DISABLED = "disabled"
OPTED_OUT = "opted_out"
MARKETING_OPTED_OUT = "marketing_opted_out"
PURCHASED = "purchased"
RECENT_PURCHASE = "recent_purchase"
OPT_OUT_ASKED = "opt_out_asked"
HANDOFF = "handoff"
FREQUENCY = "frequency_limit"
COUPON_PAUSE = "recent_coupon_use"
EXPIRED = "too_old"
# Outside the 24 h window (a web-cart abandoner who never wrote): the variant has no approved template mapped.
NO_TEMPLATE = "no_template_mapped"
TEMPLATE_NOT_APPROVED = "template_not_approved"
INVALID_NUMBER = "invalid_number"
QUIET_HOURS = "quiet_hours"  # deferred, not dropped


# A shopper who bought in the week before an interaction is not abandoning anything when they write: they ask
# where the order is, how to exchange it, or say thanks, for days after buying (Brazilian deliveries take a week
# or more). Only a new cart started after that order is a new abandonment. A week is also longer than any
# delay/maximum-age combination, so a purchase always reaches back over the whole abandonment it ended.
RECENT_PURCHASE_WINDOW = timedelta(days=7)


def purchase_block(last_order_at: datetime | None, last_cart_started_at: datetime | None,
                   interaction_at: datetime) -> str | None:
    """Why a purchase rules out recovering this interaction, or None.

    ``last_order_at``: the shopper's latest live (not cancelled) order; ``last_cart_started_at``: when their
    latest cart with items was started (None: none since that order)."""
    if last_order_at is None:
        return None
    if last_order_at >= interaction_at:
        return PURCHASED
    if interaction_at - last_order_at > RECENT_PURCHASE_WINDOW:
        return None
    if last_cart_started_at is not None and last_cart_started_at > last_order_at:
        return None  # shopping again after the purchase: a new abandonment
    return RECENT_PURCHASE


def _purchase_block(session: Session, customer_id: int, interaction_at: datetime) -> str | None:
    last_order = session.scalar(select(Order.placed_at).where(
        Order.customer_id == customer_id, Order.status != OrderStatus.CANCELLED,
        Order.placed_at >= interaction_at - RECENT_PURCHASE_WINDOW).order_by(Order.placed_at.desc()).limit(1))
    if last_order is None:
        return None
    cart_started = session.scalar(select(Cart.created_at).where(
        Cart.customer_id == customer_id, Cart.created_at > last_order,
        exists().where(CartItem.cart_id == Cart.id)).order_by(Cart.created_at.desc()).limit(1))
    return purchase_block(last_order, cart_started, interaction_at)


@dataclass(frozen=True)
class Decision:
    send: bool
    reason: str | None = None
    defer_until: datetime | None = None


SEND = Decision(True)


def quiet_hours_end(settings: RecoverySettings, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the quiet period containing ``now`` ends, or None when ``now`` is not in quiet hours."""
    start, end = parse_hhmm(settings.quiet_start), parse_hhmm(settings.quiet_end)
    if start == end:
        return None
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 13:00-14:00, same day
        quiet = start <= clock < end
        end_day = local.date()
    else:  # e.g. 21:00-09:00, across midnight
        quiet = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not quiet:
        return None
    # Built in local time then converted, so a DST change at night still lands on the morning's wall clock.
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(now.tzinfo)


def frequency_window(settings: RecoverySettings) -> timedelta:
    unit = timedelta(hours=1) if settings.frequency_unit is FrequencyUnit.HOURS else timedelta(days=1)
    return unit * settings.frequency_count


def judge(session: Session, settings: RecoverySettings, customer: Customer, attempt: RecoveryAttempt,
          now: datetime, tz: ZoneInfo) -> Decision:
    """Every refusal has a reason; quiet hours defer instead of refusing."""
    if not settings.enabled:
        return Decision(False, DISABLED)
    if customer.opted_out_at is not None:
        return Decision(False, OPTED_OUT)
    if customer.marketing_opted_out_at is not None:
        return Decision(False, MARKETING_OPTED_OUT)  # asked WhatsApp to stop this business's marketing
    try:
        normalize_phone(customer.phone)
    except InvalidPhone:
        return Decision(False, INVALID_NUMBER)
    if now - attempt.interaction_at > timedelta(hours=settings.max_age_hours):
        return Decision(False, EXPIRED)
    bought = _purchase_block(session, customer.id, attempt.interaction_at)
    if bought is not None:
        return Decision(False, bought)
    if question_open(customer.opt_out_asked_at, now):
        return Decision(False, OPT_OUT_ASKED)  # they may have meant "stop": no marketing until they answer
    asked_for_person = session.scalar(select(exists().where(
        HandoffRequest.customer_id == customer.id,
        HandoffRequest.status.in_([HandoffStatus.OPEN, HandoffStatus.ASSIGNED]))))
    # Whatever brought them there, a shopper a seller holds hears from the seller, not from the automation.
    with_seller = asked_for_person or session.scalar(select(exists().where(
        Opportunity.customer_id == customer.id,
        Opportunity.status.in_([OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS]))))
    if with_seller:
        return Decision(False, HANDOFF)
    recently_sent = session.scalar(select(exists().where(
        RecoveryAttempt.customer_id == customer.id, RecoveryAttempt.status == AttemptStatus.SENT,
        RecoveryAttempt.id != attempt.id, RecoveryAttempt.sent_at > now - frequency_window(settings))))
    if recently_sent:
        return Decision(False, FREQUENCY)
    if settings.coupon_use_pause_days > 0:
        used_coupon = session.scalar(select(exists().where(
            Coupon.customer_id == customer.id, Coupon.redeemed_at.is_not(None),
            Coupon.redeemed_at > now - timedelta(days=settings.coupon_use_pause_days))))
        if used_coupon:
            return Decision(False, COUPON_PAUSE)
    quiet_until = quiet_hours_end(settings, now, tz)
    if quiet_until is not None:
        if quiet_until - attempt.interaction_at > timedelta(hours=settings.max_age_hours):
            return Decision(False, EXPIRED)  # the morning is too late: it would exceed the maximum age
        return Decision(False, QUIET_HOURS, defer_until=quiet_until)
    return SEND
