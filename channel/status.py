"""Delivery status callbacks: late, repeated and out of order, so status only ever moves forward.

Both providers' callbacks land here (Twilio's status form, Meta's ``statuses``). A failure whose code says
what it means is acted on: "outside the 24 h window" (Meta 131047, Twilio 63016) on a free-form message that
carries a fallback template resends it, once, as that template; an opt-out (Twilio 21610) or a marketing stop
(Meta 131050) is recorded on the shopper.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from channel import meta, templates, twilio
from channel.sender import SENT_AS_TEMPLATE, SENT_AS_TEXT, apply_failure_meaning, enqueue_delivery
from channel.transport import MARKETING_OPTED_OUT, OPTED_OUT, OUTSIDE_WINDOW
from core.runtime import Runtime
from models import Customer, Message, MessageStatus, utcnow
from models.messaging import FINAL_STATUSES, STATUS_RANK

log = logging.getLogger(__name__)

FAILURE_STATUSES = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED})
EARLY_STATUS_TTL = 3600
# Real Twilio statuses this project does not track for outbound messages; acknowledged and ignored.
UNTRACKED_STATUSES = frozenset({"scheduled", "canceled", "partially_delivered", "receiving", "received"})
_TIMESTAMP_FIELD = {MessageStatus.SENT: "sent_at", MessageStatus.DELIVERED: "delivered_at", MessageStatus.READ: "read_at"}

RETRYING_AS_TEMPLATE = "retrying as template: outside the 24 h window"
# The delivery job of a message resent as its template: another job id than its first delivery's (attempt 0)
# and than the stale-message sweep's (a timestamp).
TEMPLATE_RETRY_ATTEMPT = 1


class UnknownStatus(ValueError):
    pass


def parse_status(raw: str) -> MessageStatus:
    try:
        status = MessageStatus((raw or "").strip().lower())
    except ValueError:
        raise UnknownStatus(raw) from None
    if status not in STATUS_RANK and status not in FAILURE_STATUSES:
        raise UnknownStatus(raw)
    return status


def _statuses_that_may_become(new: MessageStatus) -> list[MessageStatus]:
    """The current statuses from which ``new`` is a step forward."""
    if new in FAILURE_STATUSES:
        # Failure is final and wins over any progress short of delivery.
        return [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[MessageStatus.DELIVERED]]
    return [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[new]]


def apply_status(session: Session, runtime: Runtime, sid: str, raw_status: str, error_code: str | None,
                 now: datetime | None = None) -> str:
    """Apply one callback. Returns 'updated', 'ignored' (not a step forward) or 'early' (sid not known yet).

    One conditional UPDATE, so two callbacks racing for the same message cannot move it backwards.
    """
    status = parse_status(raw_status)
    now = now or utcnow()
    values: dict = {"status": status, "updated_at": now}
    code = (error_code or "").strip()[:16] or None
    if status in FAILURE_STATUSES:
        values["error_code"] = code
        meaning = failure_meaning(code)
        if meaning is not None:
            values["error_reason"] = f"{meaning}: error {code}"
    # Keep the first time each milestone was seen; a "read" implies "delivered".
    for milestone, field in _TIMESTAMP_FIELD.items():
        if STATUS_RANK.get(status, -1) >= STATUS_RANK[milestone]:
            values[field] = func.coalesce(getattr(Message, field), now)
    statement = (
        update(Message)
        .where(Message.provider_sid == sid, Message.status.in_(_statuses_that_may_become(status)))
        .values(**values)
    )
    if session.execute(statement).rowcount:
        session.commit()
        _after_failure(session, runtime, sid, status, code, now)
        return "updated"
    session.commit()
    if _sid_stored(session, sid):
        # The sid may have been committed between our UPDATE and this look: try once more.
        updated = session.execute(statement).rowcount
        session.commit()
        # Also when ignored: a repeat of the failure that moved the message (its follow-up may not have run,
        # the webhook having died in between) finds it still to do; the follow-up itself happens once.
        _after_failure(session, runtime, sid, status, code, now)
        return "updated" if updated else "ignored"
    # The callback beat our own commit of the sid: park it. The sender replays parked callbacks right after
    # committing the sid; the sid may have been committed since our check, so look once more after parking.
    key = runtime.keys("early-status", sid)
    with runtime.redis.pipeline() as pipe:
        pipe.rpush(key, json.dumps([raw_status, error_code, now.isoformat()]))
        pipe.expire(key, EARLY_STATUS_TTL)
        pipe.execute()
    if _sid_stored(session, sid):
        apply_early_status(session, runtime, sid)
    return "early"


def failure_meaning(code: str | None) -> str | None:
    """What a provider's error code means (channel.transport): Meta's codes (13xxxx) and Twilio's (2xxxx,
    6xxxx) never collide, so one lookup serves both status webhooks."""
    if not code:
        return None
    return meta.MEANINGS.get(code) or twilio.MEANINGS.get(code)


def _after_failure(session: Session, runtime: Runtime, sid: str, status: MessageStatus, code: str | None,
                   now: datetime) -> None:
    """Act on what a failure means, when the message stands failed with that very code (the callback that
    failed it, or a repeat of it)."""
    meaning = failure_meaning(code)
    if status not in FAILURE_STATUSES or meaning is None:
        return
    row = session.execute(select(Message.id, Message.customer_id, Message.status, Message.error_code)
                          .where(Message.provider_sid == sid)).first()
    session.rollback()  # end the read
    if row is None or row.status not in FAILURE_STATUSES or row.error_code != code:
        return
    if meaning == OUTSIDE_WINDOW:
        retry_as_template(session, runtime, row.id)
    elif meaning in (OPTED_OUT, MARKETING_OPTED_OUT):
        customer = session.get(Customer, row.customer_id)
        if customer is not None:
            apply_failure_meaning(customer, meaning, now)
            session.commit()


def retry_as_template(session: Session, runtime: Runtime, message_id: int) -> bool:
    """A free-form message the provider failed later for being outside the 24 h window: the shopper got
    nothing, so its approved fallback template, sent now, is still exactly one message. Moves it back to
    PENDING as a template (one conditional UPDATE: of two racing callbacks one wins, a repeat finds nothing to
    do) and queues its delivery. As when the provider refuses the text at once (channel.sender.deliver), the
    failure is not kept: the message is the template's now. False when there is nothing to resend (no
    fallback template, not approved, not the current provider's, already resent)."""
    message = session.scalar(select(Message).where(Message.id == message_id)
                             .execution_options(populate_existing=True))
    if message is None or message.sent_as != SENT_AS_TEXT or message.template_id is None:
        session.rollback()
        return False
    template = message.template
    if not templates.sendable(template, runtime.settings):  # approved, and the current provider's
        log.info("message %s failed outside the 24 h window; its fallback template is not sendable", message_id)
        session.rollback()
        return False
    body = templates.render(template, message.content_variables or {})
    automated = message.automated
    moved = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.sent_as == SENT_AS_TEXT, Message.template_id.is_not(None),
               Message.status.in_(FAILURE_STATUSES))
        .values(status=MessageStatus.PENDING, sent_as=SENT_AS_TEMPLATE, body=body, interactive=None,
                # updated_at: now, not the callback's time (a replayed early callback is older), so the
                # stale-message sweep does not take it for a lost delivery at once.
                provider_sid=None, error_code=None, error_reason=RETRYING_AS_TEMPLATE, updated_at=utcnow())
    ).rowcount
    session.commit()
    if not moved:
        return False
    try:
        enqueue_delivery(runtime, message_id, automated=automated, attempt=TEMPLATE_RETRY_ATTEMPT)
    except Exception:  # noqa: BLE001 - the stale-message sweep queues it again (it is PENDING)
        log.exception("message %s: could not queue its resend as a template; the sweep will", message_id)
    log.info("message %s failed outside the 24 h window: resending it as its template", message_id)
    return True


def _sid_stored(session: Session, sid: str) -> bool:
    found = session.scalar(select(Message.id).where(Message.provider_sid == sid)) is not None
    session.rollback()  # end the read so the next look sees newly committed rows
    return found


def apply_early_status(session: Session, runtime: Runtime, sid: str) -> None:
    """Replay callbacks that arrived before the sid was committed (taken atomically: one replayer each)."""
    key = runtime.keys("early-status", sid)
    with runtime.redis.pipeline() as pipe:  # MULTI/EXEC: read and delete as one step
        pipe.lrange(key, 0, -1)
        pipe.delete(key)
        pending, _ = pipe.execute()
    for raw in pending:
        raw_status, error_code, at = json.loads(raw)
        apply_status(session, runtime, sid, raw_status, error_code, datetime.fromisoformat(at))


__all__ = [
    "FINAL_STATUSES",
    "UNTRACKED_STATUSES",
    "UnknownStatus",
    "apply_early_status",
    "apply_status",
    "failure_meaning",
    "parse_status",
    "retry_as_template",
]
