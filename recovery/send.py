"""Judge and send one recovery attempt: exactly one message per abandonment.

The attempt row (unique on customer + interaction) is committed before anything is sent; the message is
queued with the idempotency key ``recovery-<attempt id>``, and the coupon is unique per attempt, so a retried
job, a second worker or a re-claimed entry finds the work done and does nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from catalog import discounts
from catalog.links import restore_link, shop_links
from channel.sender import queue_message
from core.phones import mask_phone
from core.runtime import Runtime
from core.templating import TemplateRenderError
from models import AttemptStatus, Cart, CartStatus, CouponRule, Customer, RecoveryAttempt, RecoverySettings
from channel import templates
from channel.window import in_service_window
from recovery import coupons, eligibility, whatsapp_templates
from recovery.config import coupon_url, load_settings
from recovery.messages import build_variables, render_message
from recovery.tracker import tracker_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, skipped, deferred, failed, noop
    reason: str | None = None


# Why an attempt could not be built (AttemptStatus.FAILED, reason in skip_reason).
TEMPLATE_ERROR = "template_error"  # the merchant's message does not render for this shopper's data
UNEXPECTED_ERROR = "error"  # anything else about this one shopper (logged with the traceback)

# The shop platform could not create the coupon code now: this shopper is retried a little later (the others go on).
COUPON_PLATFORM_UNAVAILABLE = "coupon_platform_unavailable"
COUPON_PLATFORM_RETRY = timedelta(minutes=10)
# The platform refused the code for good (credentials, permissions): the message would carry a code its
# checkout refuses, so it is not sent; the dashboard says why.
COUPON_PLATFORM_REFUSED = "coupon_platform_refused"

# Failures of the infrastructure, not of one shopper: the whole batch is retried later (RQ), nothing is marked.
TRANSIENT_ERRORS = (OperationalError, DisconnectionError, PoolTimeout, redis.ConnectionError, redis.TimeoutError)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def process_isolated(session: Session, runtime: Runtime, attempt_id: int, now: datetime) -> Outcome:
    """`process_attempt`, but one shopper's bad data never stops the others: anything that goes wrong for this
    attempt alone marks it FAILED with the reason (the dashboard shows it) and the caller goes on with the batch.
    A database or Redis outage is not this shopper's fault: it propagates, so the batch is retried."""
    try:
        return process_attempt(session, runtime, attempt_id, now)
    except Exception as exc:
        session.rollback()
        if _transient(exc):
            raise
        log.exception("recovery attempt %s could not be processed", attempt_id)
        return _mark_failed(session, attempt_id, UNEXPECTED_ERROR)


def _mark_failed(session: Session, attempt_id: int, reason: str, detail: str | None = None) -> Outcome:
    attempt = session.get(RecoveryAttempt, attempt_id)
    if attempt is None or attempt.status is not AttemptStatus.CLAIMED:
        session.rollback()
        return Outcome("noop")
    attempt.status = AttemptStatus.FAILED
    attempt.skip_reason = reason
    session.commit()
    if detail:
        log.warning("recovery attempt %s failed: %s (%s)", attempt_id, reason, detail)
    return Outcome("failed", reason)


def choose_variant(settings: RecoverySettings, customer_id: int) -> str:
    """A stable split: the same shopper always lands in the same variant for a given percentage."""
    if not settings.variant_b_percent or not settings.variant_b_template:
        return "A"
    bucket = int(hashlib.sha256(f"variant:{customer_id}".encode()).hexdigest()[:8], 16) % 100
    return "B" if bucket < settings.variant_b_percent else "A"


def _lock_customer(session: Session, customer_id: int) -> Customer | None:
    # Serialises judgements of one shopper (two abandonments judged at once must not both pass the
    # frequency limit). On SQLite every transaction already takes the write lock up front.
    query = select(Customer).where(Customer.id == customer_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


def _defer(session: Session, runtime: Runtime, attempt_id: int, reason: str, until: datetime) -> Outcome:
    attempt = session.get(RecoveryAttempt, attempt_id)
    if attempt is None or attempt.status is not AttemptStatus.CLAIMED:
        session.rollback()
        return Outcome("noop")
    attempt.status = AttemptStatus.DEFERRED
    attempt.skip_reason = reason
    attempt.due_at = until
    customer_id, interaction_at = attempt.customer_id, attempt.interaction_at
    session.commit()
    tracker_of(runtime).note(customer_id, interaction_at, until)
    return Outcome("deferred", reason)


def _publish_coupon(session: Session, runtime: Runtime, publisher: discounts.DiscountPublisher, attempt_id: int,
                    code: str, rule: CouponRule, expires_at: datetime, now: datetime) -> Outcome | None:
    """Create the attempt's code on the shop's platform, outside any transaction (the platform's API may take
    seconds; the shopper's row lock, and on SQLite the database's write lock, must not wait on it). None when the
    code exists there now; otherwise the attempt's outcome. The code is already committed with the attempt, so a
    retry publishes the same code again, which the platforms answer as already there."""
    session.commit()
    try:
        publisher.publish(code, rule, expires_at, title=f"{runtime.settings.store_name}: recuperação de carrinho")
    except discounts.DiscountUnavailable as exc:
        log.warning("recovery attempt %s: %s could not create the coupon now (%s); retried later", attempt_id,
                    publisher.platform, exc)
        return _defer(session, runtime, attempt_id, COUPON_PLATFORM_UNAVAILABLE, now + COUPON_PLATFORM_RETRY)
    except discounts.DiscountRefused as exc:
        return _mark_failed(session, attempt_id, COUPON_PLATFORM_REFUSED, str(exc))
    return None


def process_attempt(session: Session, runtime: Runtime, attempt_id: int, now: datetime, *,
                    coupon_published: str | None = None) -> Outcome:
    """Commits. Safe to call any number of times for the same attempt. ``coupon_published``: the code the
    platform has just accepted for this attempt (the second pass, after ``_publish_coupon``)."""
    attempt = session.get(RecoveryAttempt, attempt_id)
    if attempt is None:
        return Outcome("noop")
    customer = _lock_customer(session, attempt.customer_id)
    session.refresh(attempt)
    if attempt.status is not AttemptStatus.CLAIMED or customer is None:
        session.rollback()
        return Outcome("noop")

    settings = load_settings(session)
    decision = eligibility.judge(session, settings, customer, attempt, now, runtime.settings.store_timezone)
    if decision.defer_until is not None:
        return _defer(session, runtime, attempt.id, decision.reason, decision.defer_until)
    if not decision.send:
        attempt.status = AttemptStatus.SKIPPED
        attempt.skip_reason = decision.reason
        session.commit()
        log.info("recovery attempt %s for %s skipped: %s", attempt.id, mask_phone(customer.phone), decision.reason)
        return Outcome("skipped", decision.reason)

    variant = choose_variant(settings, customer.id)
    whatsapp = whatsapp_templates.for_variant(session, settings, variant)
    if not in_service_window(customer, now):
        # A web-cart abandoner who never wrote (or not for 24 h): only an approved template can reach them.
        problem = (eligibility.NO_TEMPLATE if whatsapp.template is None
                   else None if templates.sendable(whatsapp.template, runtime.settings)
                   else eligibility.TEMPLATE_NOT_APPROVED)
        if problem:
            attempt.status = AttemptStatus.SKIPPED
            attempt.skip_reason = problem
            attempt.variant = variant
            session.commit()
            log.info("recovery attempt %s for %s skipped: %s", attempt.id, mask_phone(customer.phone), problem)
            return Outcome("skipped", problem)
    template = settings.variant_b_template if variant == "B" else settings.template
    rule_id = settings.variant_b_coupon_rule_id if variant == "B" else settings.coupon_rule_id
    rule = session.get(CouponRule, rule_id) if rule_id else None
    coupon = None
    publisher = discounts.publisher_for(runtime.settings)
    if rule is not None and rule.active and publisher is None and discounts.needs_credentials(runtime.settings) \
            and not runtime.settings.outbox_mode:
        # The platform's checkout would refuse a code it does not know, and we cannot create it there: the
        # message goes without a coupon (the console asks the merchant for the missing API key). In outbox mode
        # nothing reaches a shopper, so the demo keeps its coupon, unpublished, as it keeps its messages.
        rule = None
    if rule is not None and rule.active:
        coupon = coupons.issue(session, rule=rule, customer_id=customer.id, attempt_id=attempt.id, now=now,
                               validity_hours=settings.coupon_validity_hours,
                               prefix=publisher.code_prefix if publisher else coupons.PREFIX)
        if publisher is not None and coupon_published != coupon.code:
            outcome = _publish_coupon(session, runtime, publisher, attempt_id, coupon.code, rule, coupon.expires_at,
                                      now)
            if outcome is not None:
                return outcome
            # Judged again from the start: the shopper may have bought or opted out while the platform answered.
            return process_attempt(session, runtime, attempt_id, now, coupon_published=coupon.code)

    cart = session.scalar(
        select(Cart).where(Cart.customer_id == customer.id, Cart.status.in_([CartStatus.OPEN, CartStatus.ABANDONED]))
        .order_by(Cart.updated_at.desc()).limit(1)
    )
    shop = runtime.settings.shop_base_url
    variables = build_variables(
        name=customer.name, store_name=runtime.settings.store_name,
        items=[(item.name, item.quantity, item.unit_price) for item in cart.items] if cart else [],
        total=cart.total if cart else None,
        checkout_url=(restore_link(shop_links(runtime.settings), cart, coupon.code if coupon else None) if cart and cart.items
                      else f"{shop}/checkout"),
        coupon_code=coupon.code if coupon else None,
        coupon_description=coupons.describe(rule) if coupon else None,
        coupon_url=coupon_url(settings.coupon_url_pattern, shop, coupon.code) if coupon else None,
        coupon_expires_at=coupon.expires_at if coupon else None,
        timezone=runtime.settings.store_timezone,
    )
    try:
        body = render_message(template, variables)
    except TemplateRenderError as exc:
        # Refused at save for every shape we know; a stored template that still fails for this shopper's data
        # fails this attempt only (its coupon is not issued), and the batch goes on.
        session.rollback()
        return _mark_failed(session, attempt_id, TEMPLATE_ERROR, exc.message)
    approved = whatsapp.template if templates.sendable(whatsapp.template, runtime.settings) else None
    message = queue_message(session, runtime, customer, kind=eligibility.RECOVERY_KIND, body=body, automated=True,
                            now=now, idempotency_key=f"recovery-{attempt.id}", template=approved,
                            template_mapping=whatsapp.params,
                            template_sources=whatsapp_templates.sources(variables, customer.name))
    attempt.status = AttemptStatus.SENT
    attempt.skip_reason = None
    attempt.variant = variant
    attempt.coupon_rule_id = rule.id if coupon else None
    attempt.message_id = message.id
    attempt.sent_at = now
    session.commit()
    log.info("recovery attempt %s for %s: message %s queued (variant %s)", attempt.id, mask_phone(customer.phone),
             message.id, variant)
    return Outcome("sent")
