"""Delivery status callbacks: late, repeated and out of order, so status only ever moves forward."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.runtime import Runtime
from models import Message, MessageStatus, utcnow
from models.messaging import FINAL_STATUSES, STATUS_RANK

log = logging.getLogger(__name__)

FAILURE_STATUSES = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED})
EARLY_STATUS_TTL = 3600
# Real Twilio statuses this project does not track for outbound messages; acknowledged and ignored.
UNTRACKED_STATUSES = frozenset({"scheduled", "canceled", "partially_delivered", "receiving", "received"})
_TIMESTAMP_FIELD = {MessageStatus.SENT: "sent_at", MessageStatus.DELIVERED: "delivered_at", MessageStatus.READ: "read_at"}


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
    if status in FAILURE_STATUSES:
        values["error_code"] = (error_code or "").strip()[:16] or None
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
        return "updated"
    session.commit()
    if _sid_stored(session, sid):
        # The sid may have been committed between our UPDATE and this look: try once more.
        updated = session.execute(statement).rowcount
        session.commit()
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


__all__ = ["UNTRACKED_STATUSES", "apply_status", "apply_early_status", "parse_status", "UnknownStatus", "FINAL_STATUSES"]
