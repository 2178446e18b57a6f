"""The one outbound path of the project: every WhatsApp message leaves through `queue_message` + `deliver`.

`queue_message` decides whether a message may be sent at all (opt-out, 24-hour window, approved template)
and stores it; `deliver`, run by an RQ job after the commit, applies the rate limits and calls the provider.

At most once: before the provider is called the message is committed as UNKNOWN ("dispatching"); only a
definite answer moves it on. A worker killed between the provider accepting the message and the next commit
leaves it UNKNOWN and it is never sent again: one lost message is preferred to a duplicate one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from rq import Retry
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from channel import activity, templates
from channel.consent import question_open
from channel.ratelimit import RateLimiter
from channel.transport import MARKETING_OPTED_OUT, OPTED_OUT, OUTSIDE_WINDOW, Outbound, \
    ProviderError, Transport
from channel.window import in_service_window
from core.phones import mask_phone
from core.queues import enqueue_unique
from core.runtime import Runtime
from models import Customer, Direction, Message, MessageStatus, Order, OrderStatus, WhatsAppTemplate, utcnow

log = logging.getLogger(__name__)

RETRY_INTERVALS = [10, 30, 60, 120, 300]  # seconds; RQ's Retry applies them in order

# Why a message was not sent; stored in Message.error_reason.
BLOCKED_OPTED_OUT = "opted_out"
BLOCKED_MARKETING_OPTED_OUT = "marketing_opted_out"
BLOCKED_OUTSIDE_WINDOW = "outside_24h_window_no_template"
BLOCKED_NO_VARIABLES = "template_variables_missing"
BLOCKED_TEMPLATE_NOT_APPROVED = "template_not_approved"
BLOCKED_PURCHASED = "purchased"
BLOCKED_OPT_OUT_ASKED = "opt_out_asked"  # they may have meant "stop": nothing automated until they answer

# How a message goes out (Message.sent_as).
SENT_AS_TEXT = "text"
SENT_AS_TEMPLATE = "template"

# A purchase this recent, learnt after an automated message was queued, cancels that message at delivery.
PURCHASE_LOOKBACK = timedelta(days=7)


class RetryableSendError(RuntimeError):
    """Raised from the delivery job so RQ's Retry runs it again later."""


def queue_message(
    session: Session,
    runtime: Runtime,
    customer: Customer,
    *,
    kind: str,
    body: str,
    automated: bool,
    now: datetime,
    idempotency_key: str | None = None,
    template: WhatsAppTemplate | None = None,
    template_mapping: dict[str, str] | None = None,
    template_sources: dict[str, object] | None = None,
    interactive: dict | None = None,
) -> Message:
    """Store an outbound message and enqueue its delivery after the caller commits.

    ``automated`` marks business-initiated messages (recovery, campaigns): never to an opted-out shopper (nor
    one who stopped marketing messages), paced per shopper. Replies in a live chat are not automated.

    Inside the 24-hour window the free-form ``body`` goes. Outside it only an approved ``template`` may, filled
    by ``template_mapping`` (placeholder key -> name in ``template_sources``); the message then stores the
    template's text as its body. Without one it is stored as BLOCKED with the reason. A template given for a
    message inside the window is kept as its fallback, should the window close before delivery or the provider
    say it has (Meta 131047, Twilio 63016). With ``idempotency_key`` a second call returns the first message.
    """
    if idempotency_key is not None:
        existing = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
        if existing is not None:
            return existing

    message = Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind=kind, body=body,
                      automated=automated, idempotency_key=idempotency_key, status=MessageStatus.PENDING,
                      sent_as=SENT_AS_TEXT, interactive=interactive or None, created_at=now, updated_at=now)
    filled, missing = None, None
    if template is not None:
        try:
            filled = templates.fill(template, template_mapping or {}, template_sources or {})
        except templates.MissingValue as exc:
            missing = exc.args[0]
        else:
            _attach_template(message, template, filled.values)

    if automated and customer.opted_out:
        _block(message, BLOCKED_OPTED_OUT)
    elif automated and customer.marketing_opted_out_at is not None:
        _block(message, BLOCKED_MARKETING_OPTED_OUT)
    elif automated and question_open(customer.opt_out_asked_at, now):
        _block(message, BLOCKED_OPT_OUT_ASKED)
    elif not in_service_window(customer, now):
        if filled is not None:
            message.sent_as, message.body, message.interactive = SENT_AS_TEMPLATE, filled.text, None
        elif missing is not None:
            _block(message, BLOCKED_NO_VARIABLES, missing)
        else:
            _block(message, BLOCKED_OUTSIDE_WINDOW)

    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another worker stored the same idempotency key first: theirs is the message.
        existing = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return existing

    if message.status is MessageStatus.PENDING:
        enqueue_delivery(runtime, message.id, automated=automated, after_commit_of=session)
    else:
        log.info("message %s to %s not sent: %s", message.id, mask_phone(customer.phone), message.error_reason)
    return message


def _attach_template(message: Message, template: WhatsAppTemplate, values: dict[str, str]) -> None:
    message.template_id = template.id
    message.template = template
    message.content_variables = values
    message.content_sid = template.external_id if template.provider == "twilio" else None


DELIVERY_TIMEOUT = 60


def retry_policy() -> Retry:
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)


def enqueue_delivery(runtime: Runtime, message_id: int, *, automated: bool, after_commit_of: Session | None = None,
                     attempt: int = 0) -> None:
    """Queue ``channel.jobs.deliver`` under a fixed, unique job id, so re-queueing a message whose job may still
    exist (a retried job, the stale-message sweep) never doubles it."""
    from channel.jobs import deliver  # the job module imports this one

    enqueue_unique(runtime, "default" if automated else "high", deliver, message_id,
                   job_id=f"{runtime.keys.prefix}-deliver-{message_id}-{attempt}", after_commit_of=after_commit_of,
                   retry=retry_policy(), job_timeout=DELIVERY_TIMEOUT)


def _block(message: Message, reason: str, detail: str | None = None) -> None:
    message.status = MessageStatus.BLOCKED
    message.error_reason = f"{reason}: {detail}" if detail else reason


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # sent, outbox, blocked, deferred, skipped, failed, unknown
    wait_seconds: float = 0.0


def deliver(session: Session, runtime: Runtime, transport: Transport | None, limiter: RateLimiter,
            message_id: int, *, now: datetime | None = None, final_attempt: bool = False) -> DeliveryResult:
    """Send one stored message if it is still PENDING. Commits its own progress.

    Raises RetryableSendError for 429/5xx/unreachable provider (the job's Retry runs it again) after putting
    the message back to PENDING; on the ``final_attempt`` the message is marked FAILED instead.
    """
    settings = runtime.settings
    now = now or utcnow()
    message = session.get(Message, message_id)
    if message is None or message.status is not MessageStatus.PENDING:
        return DeliveryResult("skipped")
    customer = message.customer

    # Re-checked at send time: the shopper may have opted out, or time passed, since it was queued.
    if message.automated and customer.opted_out:
        return _finish_blocked(session, message, BLOCKED_OPTED_OUT)
    if message.automated and customer.marketing_opted_out_at is not None:
        return _finish_blocked(session, message, BLOCKED_MARKETING_OPTED_OUT)
    if message.automated and question_open(customer.opt_out_asked_at, now):
        return _finish_blocked(session, message, BLOCKED_OPT_OUT_ASKED)
    if message.automated and _bought_since(session, customer.id, message.created_at):
        return _finish_blocked(session, message, BLOCKED_PURCHASED)
    if message.sent_as != SENT_AS_TEMPLATE and not in_service_window(customer, now):
        if message.template_id is None:
            return _finish_blocked(session, message, BLOCKED_OUTSIDE_WINDOW)
        _switch_to_template(message)  # the window closed since it was queued: its template goes instead
    if message.sent_as == SENT_AS_TEMPLATE and not templates.sendable(message.template, settings):
        return _finish_blocked(session, message, BLOCKED_TEMPLATE_NOT_APPROVED)

    pace_key = runtime.keys("pace", customer.id)
    if message.automated:
        wait = limiter.try_acquire(pace_key, interval=settings.automated_pacing_seconds)
        if wait > 0:
            session.rollback()
            return DeliveryResult("deferred", wait)
    sender_key = runtime.keys("rate", settings.sender_id)
    wait = limiter.try_acquire(sender_key, interval=1.0 / settings.send_rate_per_second,
                               burst=max(0, settings.send_rate_per_second // 10))
    if wait > 0:
        if message.automated:  # nothing was sent: the shopper's pacing slot goes back
            limiter.refund(pace_key, interval=settings.automated_pacing_seconds)
        session.rollback()
        return DeliveryResult("deferred", wait)

    # Claim: only one worker moves PENDING -> UNKNOWN; the loser finds nothing to do.
    sent_as, body = message.sent_as, message.body
    claimed = session.execute(
        update(Message).where(Message.id == message.id, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.UNKNOWN, error_reason="dispatching", updated_at=now, sent_as=sent_as,
                body=body)
    ).rowcount
    session.commit()
    if claimed != 1:
        return DeliveryResult("skipped")

    if transport is None:
        _set(session, message.id, status=MessageStatus.OUTBOX, error_reason=None, sent_at=now)
        session.commit()
        activity.note(runtime, activity.SEND, now)
        return DeliveryResult("outbox")

    try:
        try:
            receipt = transport.send(_outbound(message, customer))
        except ProviderError as exc:
            if exc.meaning != OUTSIDE_WINDOW or message.sent_as == SENT_AS_TEMPLATE or message.template_id is None:
                raise
            # Our clock said inside the window, the provider says outside: the shopper got nothing, so the
            # approved template is still the one message.
            _switch_to_template(message)
            if not templates.sendable(message.template, settings):
                raise
            _set(session, message.id, sent_as=message.sent_as, body=message.body)
            session.commit()
            receipt = transport.send(_outbound(message, customer))
    except ProviderError as exc:
        if message.automated and exc.retryable and not exc.maybe_sent:  # the shopper got nothing: free the slot
            limiter.refund(pace_key, interval=settings.automated_pacing_seconds)
        return _record_failure(session, runtime, message.id, customer, exc, now, final_attempt)

    status = _provider_status(receipt.status)
    _set(session, message.id, status=status, provider_sid=receipt.sid, error_reason=None, sent_at=now)
    if receipt.wa_id and customer.wa_id != receipt.wa_id and transport.name == "meta":
        customer.wa_id = receipt.wa_id[:20]
    session.commit()
    activity.note(runtime, activity.SEND, now)
    from channel.status import apply_early_status

    apply_early_status(session, runtime, receipt.sid)
    log.info("message %s sent to %s as %s (%s)", message.id, mask_phone(customer.phone), receipt.sid,
             message.sent_as)
    return DeliveryResult("sent")


def _outbound(message: Message, customer: Customer) -> Outbound:
    if message.sent_as == SENT_AS_TEMPLATE:
        return Outbound(phone=customer.phone, wa_id=customer.wa_id,
                        template=templates.outbound_template(message.template, message.content_variables or {}))
    return Outbound(phone=customer.phone, wa_id=customer.wa_id, body=message.body, interactive=message.interactive)


def _switch_to_template(message: Message) -> None:
    message.sent_as = SENT_AS_TEMPLATE
    message.interactive = None
    if message.template is not None:
        message.body = templates.render(message.template, message.content_variables or {})


def _bought_since(session: Session, customer_id: int, queued_at: datetime) -> bool:
    """Did we learn of a (recent, live) purchase after this automated message was queued? Its order event may have
    arrived between the judgement and this delivery, late or out of order: the message is no longer wanted."""
    return bool(session.scalar(select(exists().where(
        Order.customer_id == customer_id, Order.status != OrderStatus.CANCELLED,
        Order.placed_at >= queued_at - PURCHASE_LOOKBACK,
        or_(Order.received_at >= queued_at, Order.placed_at >= queued_at)))))


def _finish_blocked(session: Session, message: Message, reason: str) -> DeliveryResult:
    _block(message, reason)
    message.updated_at = utcnow()
    session.commit()
    log.info("message %s not sent at delivery: %s", message.id, reason)
    return DeliveryResult("blocked")


def _record_failure(session: Session, runtime: Runtime, message_id: int, customer: Customer,
                    exc: ProviderError, now: datetime, final_attempt: bool) -> DeliveryResult:
    code = exc.code or (str(exc.status) if exc.status else None)
    if exc.retryable and not final_attempt:
        _set(session, message_id, status=MessageStatus.PENDING, error_code=code, error_reason=f"retrying: {exc}"[:255])
        session.commit()
        log.warning("message %s to %s: provider error %s, will retry", message_id, mask_phone(customer.phone),
                    code)
        raise RetryableSendError(str(exc))
    if exc.maybe_sent:
        _set(session, message_id, status=MessageStatus.UNKNOWN, error_reason="provider did not answer; not resent")
        session.commit()
        return DeliveryResult("unknown")
    reason = f"gave up after retries: {exc}" if exc.retryable else (f"{exc.meaning}: {exc}" if exc.meaning else str(exc))
    _set(session, message_id, status=MessageStatus.FAILED, error_code=code, error_reason=reason[:255])
    apply_failure_meaning(customer, exc.meaning, now)
    session.commit()
    log.warning("message %s to %s failed permanently: %s %s", message_id, mask_phone(customer.phone), code, exc)
    return DeliveryResult("failed")


def apply_failure_meaning(customer: Customer, meaning: str | None, now: datetime) -> None:
    """What a permanent failure tells us about the shopper (the caller commits)."""
    if meaning == OPTED_OUT and customer.opted_out_at is None:
        customer.opted_out_at = now
    elif meaning == MARKETING_OPTED_OUT and customer.marketing_opted_out_at is None:
        customer.marketing_opted_out_at = now


def _set(session: Session, message_id: int, **values) -> None:
    values.setdefault("updated_at", utcnow())
    session.execute(update(Message).where(Message.id == message_id).values(**values))


def _provider_status(raw: str) -> MessageStatus:
    try:
        status = MessageStatus(raw)
    except ValueError:
        return MessageStatus.QUEUED
    return status if status in {MessageStatus.ACCEPTED, MessageStatus.QUEUED, MessageStatus.SENDING,
                                MessageStatus.SENT} else MessageStatus.QUEUED


def retry_delay(wait_seconds: float) -> timedelta:
    return timedelta(seconds=max(0.05, wait_seconds))
