"""RQ jobs of the channel: delivering a stored message, and the sweep that re-queues deliveries whose job was lost.
Thin: they build their collaborators from the process runtime and call channel.sender."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import lru_cache

from rq import get_current_job
from sqlalchemy import select

from channel import template_sync
from channel.ratelimit import RateLimiter
from channel.transport import make_transport
from channel.sender import DELIVERY_TIMEOUT, enqueue_delivery, retry_delay, retry_policy
from channel.sender import deliver as deliver_message
from core.queues import queue
from core.runtime import get_runtime
from models import Message, MessageStatus, utcnow

log = logging.getLogger(__name__)

# Waits shorter than this are slept inside the job; longer ones re-enqueue the delivery for later.
MAX_INLINE_WAIT = 1.0


@lru_cache(maxsize=4)
def _transport(settings):
    return make_transport(settings)


def deliver(message_id: int) -> str:
    """Send one queued message; rate-limited; retried by RQ on 429/5xx (see channel.sender.deliver)."""
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


def sync_templates() -> dict:
    """Periodic (hourly): refresh the WhatsApp templates from the provider. Skipped without the provider's
    credentials (outbox mode); a failure is logged and retried at the next run, having written nothing."""
    runtime = get_runtime()
    if runtime.settings.outbox_mode or template_sync.missing_credentials(runtime.settings):
        return {"skipped": "no provider credentials"}
    try:
        with runtime.db.transaction() as session:
            result = template_sync.sync_templates(session, runtime.settings)
    except template_sync.TemplateSyncError as exc:
        log.warning("template sync failed: %s", exc)
        return {"error": str(exc)}
    return result.as_json()
