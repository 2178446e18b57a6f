"""RQ jobs of the recoverer. Thin: the runtime, the clock and a dispatcher around the core."""

from __future__ import annotations

from rq import Retry

from core.queues import queue
from core.runtime import get_runtime
from models import utcnow
from recovery import coupons
from recovery.send import process_attempt
from recovery.tick import run_tick


def tick() -> dict:
    """The scheduled tick: claim due shoppers and hand them to `send_attempts` jobs."""
    runtime = get_runtime()
    send_queue = queue(runtime, "default")

    def dispatch(ids: list[int]) -> None:
        # A worker killed mid-batch: RQ retries the batch; process_attempt makes the retry harmless.
        send_queue.enqueue(send_attempts, ids, job_timeout=600, result_ttl=3600,
                           retry=Retry(max=3, interval=[30, 60, 120]))

    with runtime.db.session() as session:
        return run_tick(session, runtime, utcnow(), dispatch=dispatch).as_json()


def send_attempts(attempt_ids: list[int]) -> dict:
    """Judge and send a batch of attempts. Re-running it (RQ retry, a re-queued batch) sends nothing twice."""
    runtime = get_runtime()
    counts: dict[str, int] = {}
    with runtime.db.session() as session:
        for attempt_id in attempt_ids:
            outcome = process_attempt(session, runtime, attempt_id, utcnow())
            key = outcome.reason if outcome.status == "skipped" else outcome.status
            counts[key] = counts.get(key, 0) + 1
    return counts


def purge_expired_coupons() -> int:
    runtime = get_runtime()
    with runtime.db.transaction() as session:
        return coupons.purge_expired(session, utcnow())
