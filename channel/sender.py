"""The one outbound path of the project: every WhatsApp message leaves through `queue_message` + `deliver`.

`queue_message` decides whether a message may be sent at all (opt-out, 24-hour window, approved template)
and stores it; `deliver`, run by an RQ job after the commit, applies the rate limits and calls the provider.

At most once: before the provider is called the message is committed as UNKNOWN ("dispatching"); only a
definite answer moves it on. A worker killed between the provider accepting the message and the next commit
leaves it UNKNOWN and it is never sent again: one lost message is preferred to a duplicate one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import requests
from rq import Retry
from urllib3.exceptions import NameResolutionError, NewConnectionError
from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from channel.consent import question_open
from channel.ratelimit import RateLimiter
from channel.window import content_variables, in_service_window, template_for
from core.phones import mask_phone
from core.queues import enqueue_unique
from core.runtime import Runtime
from core.settings import Settings
from models import Customer, Direction, Message, MessageStatus, Order, OrderStatus, utcnow

log = logging.getLogger(__name__)

# Provider errors that will not get better by retrying. 63016: outside the 24 h window without a template;
# 21610: the recipient replied STOP; 63024: invalid recipient; 21211/21614: not a valid (mobile) number.
OPTED_OUT_CODES = frozenset({"21610"})
RETRY_INTERVALS = [10, 30, 60, 120, 300]  # seconds; RQ's Retry applies them in order

# Why a message was not sent; stored in Message.error_reason.
BLOCKED_OPTED_OUT = "opted_out"
BLOCKED_OUTSIDE_WINDOW = "outside_24h_window_no_template"
BLOCKED_NO_VARIABLES = "template_variables_missing"
BLOCKED_PURCHASED = "purchased"
BLOCKED_OPT_OUT_ASKED = "opt_out_asked"  # they may have meant "stop": nothing automated until they answer

# A purchase this recent, learnt after an automated message was queued, cancels that message at delivery.
PURCHASE_LOOKBACK = timedelta(days=7)


class ProviderError(Exception):
    def __init__(self, message: str, *, status: int | None, code: str | None, retryable: bool, maybe_sent: bool = False):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        self.maybe_sent = maybe_sent


class RetryableSendError(RuntimeError):
    """Raised from the delivery job so RQ's Retry runs it again later."""


@dataclass(frozen=True)
class ProviderReceipt:
    sid: str
    status: str


class Transport(Protocol):
    def send(self, *, to: str, from_: str, body: str | None, content_sid: str | None,
             content_variables: dict | None, status_callback: str) -> ProviderReceipt: ...


class TwilioTransport:
    """Twilio's Messages API through the official SDK, against ``TWILIO_API_URL``."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                              http_client=TwilioHttpClient(timeout=timeout))
        self._client.api.base_url = settings.twilio_api_url

    def send(self, *, to, from_, body, content_sid, content_variables, status_callback) -> ProviderReceipt:
        kwargs: dict = {"to": to, "from_": from_, "status_callback": status_callback}
        if content_sid:
            # Never Body together with ContentSid.
            kwargs["content_sid"] = content_sid
            kwargs["content_variables"] = json.dumps(content_variables or {}, ensure_ascii=False)
        else:
            kwargs["body"] = body
        try:
            created = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            retryable = exc.status == 429 or exc.status >= 500
            raise ProviderError(str(exc.msg), status=exc.status, code=str(exc.code) if exc.code else None,
                                retryable=retryable) from None
        except requests.RequestException as exc:
            if _never_reached_provider(exc):
                raise ProviderError(f"provider unreachable: {type(exc).__name__}", status=None, code=None,
                                    retryable=True) from None
            # The request may have been written and accepted: at most once means no retry.
            raise ProviderError(f"no answer from the provider: {type(exc).__name__}", status=None, code=None,
                                retryable=False, maybe_sent=True) from None
        return ProviderReceipt(sid=created.sid, status=created.status or "queued")


def _never_reached_provider(exc: BaseException) -> bool:
    """True only when the connection itself failed, so the request was certainly not sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None),
                        *[a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]])
    return False


def make_transport(settings: Settings) -> Transport | None:
    """None in outbox mode (no credentials): messages are stored, shown in the simulator, never sent."""
    return None if settings.outbox_mode else TwilioTransport(settings)


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
    template_values: dict[str, object] | None = None,
) -> Message:
    """Store an outbound message and enqueue its delivery after the caller commits.

    ``automated`` marks business-initiated messages (recovery, campaigns): never to an opted-out shopper,
    paced per shopper. Replies in a live chat are not automated. Outside the 24-hour window a message is
    sent only as the approved template of its ``kind`` (filled from ``template_values``), otherwise it is
    stored as BLOCKED with the reason. With ``idempotency_key`` a second call returns the first message.
    """
    if idempotency_key is not None:
        existing = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
        if existing is not None:
            return existing

    message = Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind=kind, body=body,
                      automated=automated, idempotency_key=idempotency_key, status=MessageStatus.PENDING,
                      created_at=now, updated_at=now)
    if automated and customer.opted_out:
        _block(message, BLOCKED_OPTED_OUT)
    elif automated and question_open(customer.opt_out_asked_at, now):
        _block(message, BLOCKED_OPT_OUT_ASKED)
    elif not in_service_window(customer, now):
        template = template_for(session, kind)
        if template is None:
            _block(message, BLOCKED_OUTSIDE_WINDOW)
        else:
            try:
                message.content_variables = content_variables(template, template_values or {})
                message.content_sid = template.content_sid
            except KeyError as exc:
                _block(message, BLOCKED_NO_VARIABLES, str(exc))

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
    if message.automated and question_open(customer.opt_out_asked_at, now):
        return _finish_blocked(session, message, BLOCKED_OPT_OUT_ASKED)
    if message.automated and _bought_since(session, customer.id, message.created_at):
        return _finish_blocked(session, message, BLOCKED_PURCHASED)
    if message.content_sid is None and not in_service_window(customer, now):
        return _finish_blocked(session, message, BLOCKED_OUTSIDE_WINDOW)

    pace_key = runtime.keys("pace", customer.id)
    if message.automated:
        wait = limiter.try_acquire(pace_key, interval=settings.automated_pacing_seconds)
        if wait > 0:
            session.rollback()
            return DeliveryResult("deferred", wait)
    sender_key = runtime.keys("rate", settings.twilio_whatsapp_from)
    wait = limiter.try_acquire(sender_key, interval=1.0 / settings.send_rate_per_second,
                               burst=max(0, settings.send_rate_per_second // 10))
    if wait > 0:
        if message.automated:  # nothing was sent: the shopper's pacing slot goes back
            limiter.refund(pace_key, interval=settings.automated_pacing_seconds)
        session.rollback()
        return DeliveryResult("deferred", wait)

    # Claim: only one worker moves PENDING -> UNKNOWN; the loser finds nothing to do.
    claimed = session.execute(
        update(Message).where(Message.id == message.id, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.UNKNOWN, error_reason="dispatching", updated_at=now)
    ).rowcount
    session.commit()
    if claimed != 1:
        return DeliveryResult("skipped")

    if transport is None:
        _set(session, message.id, status=MessageStatus.OUTBOX, error_reason=None, sent_at=now)
        session.commit()
        return DeliveryResult("outbox")

    callback = f"{settings.public_base_url}/webhooks/whatsapp/status"
    try:
        receipt = transport.send(
            to=f"whatsapp:{customer.phone}", from_=settings.twilio_whatsapp_from,
            body=None if message.content_sid else message.body, content_sid=message.content_sid,
            content_variables=message.content_variables, status_callback=callback,
        )
    except ProviderError as exc:
        if message.automated and exc.retryable and not exc.maybe_sent:  # the shopper got nothing: free the slot
            limiter.refund(pace_key, interval=settings.automated_pacing_seconds)
        return _record_failure(session, runtime, message.id, customer, exc, now, final_attempt)

    status = _provider_status(receipt.status)
    _set(session, message.id, status=status, provider_sid=receipt.sid, error_reason=None, sent_at=now)
    session.commit()
    from channel.status import apply_early_status

    apply_early_status(session, runtime, receipt.sid)
    log.info("message %s sent to %s as %s", message.id, mask_phone(customer.phone), receipt.sid)
    return DeliveryResult("sent")


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
    if exc.retryable and not final_attempt:
        _set(session, message_id, status=MessageStatus.PENDING, error_code=exc.code or (str(exc.status) if exc.status else None),
             error_reason=f"retrying: {exc}")
        session.commit()
        log.warning("message %s to %s: provider error %s, will retry", message_id, mask_phone(customer.phone), exc.status)
        raise RetryableSendError(str(exc))
    if exc.maybe_sent:
        _set(session, message_id, status=MessageStatus.UNKNOWN, error_reason="provider did not answer; not resent")
        session.commit()
        return DeliveryResult("unknown")
    reason = f"gave up after retries: {exc}" if exc.retryable else str(exc)
    _set(session, message_id, status=MessageStatus.FAILED,
         error_code=exc.code or (str(exc.status) if exc.status else None), error_reason=reason[:255])
    if exc.code in OPTED_OUT_CODES and customer.opted_out_at is None:
        customer.opted_out_at = now
    session.commit()
    log.warning("message %s to %s failed permanently: %s %s", message_id, mask_phone(customer.phone), exc.code, exc)
    return DeliveryResult("failed")


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
