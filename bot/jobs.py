"""RQ jobs of the channel. Thin: they build their collaborators from the process runtime and call the core."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import lru_cache

from rq import get_current_job
from sqlalchemy import select

from bot import engine
from bot.inbound import enqueue_processing
from bot.ratelimit import RateLimiter
from bot.sender import deliver as deliver_message
from bot.sender import DELIVERY_TIMEOUT, enqueue_delivery, make_transport, queue_message, retry_delay, retry_policy
from core.queues import queue
from crm import sources as crm_sources
from core.runtime import get_runtime
from models import Direction, Message, MessageStatus, utcnow

log = logging.getLogger(__name__)

# Waits shorter than this are slept inside the job; longer ones re-enqueue the delivery for later.
MAX_INLINE_WAIT = 1.0


@lru_cache(maxsize=4)
def _transport(settings):
    return make_transport(settings)


def reply_key(message_id: int, index: int) -> str:
    return f"reply-{message_id}-{index}"


def process_inbound(message_id: int, consent: str | None = None) -> int:
    """Run the conversation engine for one stored inbound message and queue its replies.

    Idempotent: the replies, the engine's database changes and the message's ``processed_at`` commit together,
    under the message's row lock, so a retried, re-delivered or swept job finds it processed and stops.
    """
    runtime = get_runtime()
    with runtime.db.session() as session:
        # FOR UPDATE (PostgreSQL; SQLite's transactions take the write lock anyway): two runs of the same
        # message, say the original job and the sweep's, are serialised and the second sees processed_at.
        message = session.scalar(select(Message).where(Message.id == message_id).with_for_update())
        if message is None:
            log.warning("process_inbound: message %s not found", message_id)
            return 0
        if message.processed_at is not None:
            # Already processed. If the first run died after its commit but before its deliveries were queued,
            # queue them now (deliver is idempotent: only a PENDING message is sent).
            stuck = session.scalars(select(Message.id).where(
                Message.idempotency_key.like(f"reply-{message_id}-%"), Message.status == MessageStatus.PENDING))
            for reply_id in stuck:
                enqueue_delivery(runtime, reply_id, automated=False)
            return 0
        customer = message.customer
        now = utcnow()
        replies = engine.respond(session, runtime.redis, runtime.keys, runtime.settings, customer, message.body,
                                 media_count=message.media_count, consent_transition=consent, now=now)
        for index, text in enumerate(replies):
            queue_message(session, runtime, customer, kind="bot", body=text, automated=False, now=now,
                          idempotency_key=reply_key(message_id, index))
        crm_sources.on_shopper_message(session, customer, now)
        message.processed_at = now
        session.commit()
        if replies and not customer.opted_out:
            from recovery import tracker

            # The abandonment clock starts when the shopper wrote, as the webhook noted it, not when this job
            # ran: a job that runs late (behind a queue, after an order event) must not restart the countdown
            # past a purchase. This only repairs a note the webhook lost (a Redis blip after its commit).
            tracker.note_interaction(session, runtime, customer.id, message.created_at)
        return len(replies)


def deliver(message_id: int) -> str:
    """Send one queued message; rate-limited; retried by RQ on 429/5xx (see bot.sender.deliver)."""
    runtime = get_runtime()
    limiter = RateLimiter(runtime.redis)
    job = get_current_job()
    # RQ decrements retries_left before each retry: 0 (or no Retry at all) means this run is the last.
    final_attempt = job is None or not job.retries_left
    with runtime.db.session() as session:
        while True:
            result = deliver_message(session, runtime, _transport(runtime.settings), limiter, message_id,
                                     final_attempt=final_attempt)
            if result.outcome != "deferred":
                return result.outcome
            if result.wait_seconds <= MAX_INLINE_WAIT:
                time.sleep(result.wait_seconds)
                continue
            queue(runtime, "default").enqueue_in(retry_delay(result.wait_seconds), deliver, message_id,
                                                 retry=retry_policy(), job_timeout=DELIVERY_TIMEOUT)
            return "deferred"


# An inbound message not processed this long after it arrived has lost its job (the high queue runs first, so
# its jobs wait seconds, not minutes); one older than the horizon is not answered any more.
UNPROCESSED_AFTER = timedelta(minutes=2)
UNPROCESSED_HORIZON = timedelta(hours=1)


def sweep_unprocessed_inbound(limit: int = 1000, stale_after: timedelta = UNPROCESSED_AFTER) -> int:
    """Periodic: queue again the processing of inbound messages whose job was lost (a worker killed between RQ
    popping the job and registering it, Redis data loss after the webhook answered). Once per message while its
    job record lasts (a fixed, unique job id), so a message whose processing keeps failing is not retried forever."""
    runtime = get_runtime()
    now = utcnow()
    with runtime.db.session() as session:
        rows = session.execute(
            select(Message.id, Message.consent)
            .where(Message.direction == Direction.INBOUND, Message.processed_at.is_(None),
                   Message.created_at < now - stale_after, Message.created_at >= now - UNPROCESSED_HORIZON)
            .order_by(Message.id).limit(limit)).all()
    for message_id, consent in rows:
        enqueue_processing(runtime, message_id, consent, after_commit_of=None, job_suffix="-swept")
    if rows:
        log.warning("%s inbound message(s) not processed after %s: processing queued again (once each)",
                    len(rows), stale_after)
    return len(rows)


# A PENDING message untouched this long has lost its delivery job (retries are at most 5 minutes apart).
STALE_PENDING = timedelta(minutes=15)


def sweep_stale_pending(limit: int = 1000, stale_after: timedelta = STALE_PENDING) -> int:
    """Periodic: re-queue delivery of messages whose job was lost (Redis data loss, a failed enqueue, or a worker
    killed between RQ popping the job and registering it as started: a worker on several queues pops with BLPOP,
    and such a job is in no queue or registry any more)."""
    runtime = get_runtime()
    cutoff = utcnow() - stale_after
    with runtime.db.session() as session:
        rows = session.execute(
            select(Message.id, Message.automated, Message.updated_at)
            .where(Message.status == MessageStatus.PENDING, Message.updated_at < cutoff)
            .order_by(Message.id).limit(limit)).all()
    for message_id, automated, updated_at in rows:
        enqueue_delivery(runtime, message_id, automated=automated, attempt=int(updated_at.timestamp()))
    return len(rows)
