"""When a shopper writes: the fan-out after the webhook stored the message (the engine's job, the recovery countdown),
the job that runs the conversation engine and queues its replies, and the sweep for processing jobs that were lost.
Thin: collaborators come from the process runtime; the work is in bot.engine, channel, recovery and crm."""

from __future__ import annotations

import logging
from datetime import timedelta

from rq import Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import engine, human_replies
from bot.replies import interactive_of
from channel.inbound import ConsentEvent, InboundOutcome
from channel.sender import enqueue_delivery, queue_message
from core.queues import enqueue_unique
from core.runtime import Runtime, get_runtime
from crm import sources as crm_sources
from models import Direction, Message, MessageStatus, utcnow
from recovery import tracker

log = logging.getLogger(__name__)


def shopper_wrote(session: Session, runtime: Runtime, outcome: InboundOutcome) -> None:
    """After ``channel.inbound.receive_inbound`` committed: queue the engine's job (a redelivery too: its fixed
    job id makes it once), and start (or, after an opt-out, stop) the shopper's recovery countdown at the time
    they wrote."""
    enqueue_processing(runtime, outcome.message_id, outcome.consent)
    if outcome.duplicate:
        return
    if outcome.opted_out:
        tracker.forget(runtime, outcome.customer_id)
    else:
        tracker.note_interaction(session, runtime, outcome.customer_id, outcome.at)


def enqueue_processing(runtime: Runtime, message_id: int, consent: ConsentEvent | None, *,
                       job_suffix: str = "") -> None:
    """Queue `process_inbound` once per job id: the message's own, or ``job_suffix`` for a second chance (the
    sweep of messages whose job was lost)."""
    enqueue_unique(runtime, "high", process_inbound, message_id, consent,
                   job_id=f"{runtime.keys.prefix}-inbound-{message_id}{job_suffix}",
                   retry=Retry(max=2, interval=[5, 30]), job_timeout=60)


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
        if consent is None and human_replies.bot_paused(customer, runtime.settings, now):
            # A person holds the conversation (they wrote from the console or the seller app): the bot stays
            # silent until the quiet period passes. Consent confirmations still go (the engine's first lines).
            replies = []
        else:
            replies = engine.respond(session, runtime.redis, runtime.keys, runtime.settings, customer, message.body,
                                     media_count=message.media_count, consent_transition=consent, now=now)
        for index, text in enumerate(replies):
            queue_message(session, runtime, customer, kind="bot", body=str(text), automated=False, now=now,
                          idempotency_key=reply_key(message_id, index), interactive=interactive_of(text))
        crm_sources.on_shopper_message(session, customer, now)
        message.processed_at = now
        session.commit()
        if replies and not customer.opted_out:
            # The abandonment clock starts when the shopper wrote, as the webhook noted it, not when this job
            # ran: a job that runs late (behind a queue, after an order event) must not restart the countdown
            # past a purchase. This only repairs a note the webhook lost (a Redis blip after its commit).
            tracker.note_interaction(session, runtime, customer.id, message.created_at)
        return len(replies)


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
        enqueue_processing(runtime, message_id, consent, job_suffix="-swept")
    if rows:
        log.warning("%s inbound message(s) not processed after %s: processing queued again (once each)",
                    len(rows), stale_after)
    return len(rows)


