"""The recovery tick: claim the due shoppers from the tracker, record one attempt each, hand them to senders.

Cost is O(log n + due): the tracker returns only the due range, in batches. Claiming is atomic, so two ticks
(two schedulers, a manual `recovery tick` next to the scheduled one) never take the same shopper, and the
attempt's unique key makes even a re-claimed shopper (a tick that died) come out once.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import heartbeat
from core.runtime import Runtime
from models import AttemptStatus, RecoveryAttempt
from recovery.send import process_isolated
from recovery.tracker import Claim, Tracker

log = logging.getLogger(__name__)

CLAIM_BATCH = 500
SEND_BATCH = 50
# A claim not recorded in the database after this long belongs to a tick that died; take it back.
STALE_CLAIM = timedelta(minutes=10)
# Attempts recorded but never judged (their send job was lost) are handed out again after this long.
STALE_ATTEMPT = timedelta(minutes=15)


@dataclass
class TickSummary:
    claimed: int = 0
    attempts: int = 0
    sent: int = 0
    skipped: Counter = field(default_factory=Counter)
    deferred: int = 0
    requeued: int = 0
    failed: Counter = field(default_factory=Counter)

    def as_json(self) -> dict:
        return {"claimed": self.claimed, "attempts": self.attempts, "sent": self.sent, "deferred": self.deferred,
                "skipped": dict(sorted(self.skipped.items())), "failed": dict(sorted(self.failed.items())),
                "requeued": self.requeued}


def record_attempts(session: Session, claims: list[Claim], now: datetime) -> list[int]:
    """One CLAIMED attempt per claim (an existing one is reused, a deferred one re-armed). Commits.

    Returns the ids to judge: not those already sent or skipped.
    """
    to_judge: list[int] = []
    for claim in claims:
        attempt = session.scalar(select(RecoveryAttempt).where(
            RecoveryAttempt.customer_id == claim.customer_id, RecoveryAttempt.interaction_at == claim.interaction_at))
        if attempt is None:
            attempt = RecoveryAttempt(customer_id=claim.customer_id, interaction_at=claim.interaction_at,
                                      due_at=claim.due_at, status=AttemptStatus.CLAIMED, created_at=now)
            try:
                with session.begin_nested():
                    session.add(attempt)
            except IntegrityError:
                attempt = session.scalar(select(RecoveryAttempt).where(
                    RecoveryAttempt.customer_id == claim.customer_id,
                    RecoveryAttempt.interaction_at == claim.interaction_at))
        if attempt.status is AttemptStatus.DEFERRED:
            attempt.status = AttemptStatus.CLAIMED
        if attempt.status is AttemptStatus.CLAIMED:
            to_judge.append(attempt.id)
    session.commit()
    return to_judge


def run_tick(session: Session, runtime: Runtime, now: datetime, *,
             dispatch: Callable[[list[int]], None] | None = None, batch: int = CLAIM_BATCH) -> TickSummary:
    """Claim everything due at ``now`` and judge it, inline (``dispatch`` None: the CLI) or by handing each
    chunk of attempt ids to ``dispatch`` (the scheduled tick enqueues RQ jobs)."""
    tracker = Tracker(runtime)
    summary = TickSummary()
    tracker.reclaim_stale(STALE_CLAIM)

    def judge(ids: list[int]) -> None:
        if dispatch is not None:
            for start in range(0, len(ids), SEND_BATCH):
                dispatch(ids[start:start + SEND_BATCH])
            return
        for attempt_id in ids:
            outcome = process_isolated(session, runtime, attempt_id, now)
            if outcome.status == "sent":
                summary.sent += 1
            elif outcome.status == "deferred":
                summary.deferred += 1
            elif outcome.status == "skipped":
                summary.skipped[outcome.reason] += 1
            elif outcome.status == "failed":
                summary.failed[outcome.reason] += 1

    stuck = list(session.scalars(select(RecoveryAttempt.id).where(
        RecoveryAttempt.status == AttemptStatus.CLAIMED, RecoveryAttempt.updated_at < now - STALE_ATTEMPT)))
    session.rollback()
    if stuck:
        summary.requeued = len(stuck)
        judge(stuck)

    while True:
        claims = tracker.claim_due(now, batch)
        if not claims:
            break
        summary.claimed += len(claims)
        claimed_ids = [c.customer_id for c in claims]
        try:
            ids = record_attempts(session, claims, now)
        except Exception:
            # The database went away mid-tick: hand the claims back so the next tick does the work.
            session.rollback()
            tracker.unclaim(claimed_ids)
            raise
        tracker.release(claimed_ids)
        summary.attempts += len(ids)
        judge(ids)
        if len(claims) < batch:
            break

    heartbeat.record(runtime.redis, runtime.keys, "last_tick", now)
    log.info("recovery tick: %s", summary.as_json())
    return summary
