"""RQ jobs of the recoverer. Thin: the runtime, the clock and a dispatcher around the core."""

from __future__ import annotations

from typing import Callable

from rq import Retry

from core.queues import queue
from core.runtime import Runtime, get_runtime
from models import utcnow
from recovery import coupons
from recovery.send import process_isolated
from recovery.tick import run_tick

# Judging batches wait behind the deliveries they queue (the `default` queue): a tick with thousands due gets its
# first messages out within seconds instead of after every batch was judged (19-33 s for 2 000, bench/sends.py).
JUDGING_QUEUE = "low"


def judging_dispatcher(runtime: Runtime) -> Callable[[list[int]], None]:
    """How the scheduled tick hands a chunk of claimed attempts to the workers."""
    judging = queue(runtime, JUDGING_QUEUE)

    def dispatch(ids: list[int]) -> None:
        # A worker killed mid-batch: RQ retries the batch; process_attempt makes the retry harmless.
        judging.enqueue(send_attempts, ids, job_timeout=600, result_ttl=3600,
                        retry=Retry(max=3, interval=[30, 60, 120]))

    return dispatch


def tick() -> dict:
    """The scheduled tick: claim due shoppers and hand them to `send_attempts` jobs."""
    runtime = get_runtime()
    with runtime.db.session() as session:
        return run_tick(session, runtime, utcnow(), dispatch=judging_dispatcher(runtime)).as_json()


def send_attempts(attempt_ids: list[int]) -> dict:
    """Judge and send a batch of attempts. Re-running it (RQ retry, a re-queued batch) sends nothing twice; one
    attempt that cannot be built is marked failed and the others go on."""
    runtime = get_runtime()
    counts: dict[str, int] = {}
    with runtime.db.session() as session:
        for attempt_id in attempt_ids:
            outcome = process_isolated(session, runtime, attempt_id, utcnow())
            key = outcome.reason if outcome.status in ("skipped", "failed") else outcome.status
            counts[key] = counts.get(key, 0) + 1
    return counts


def purge_expired_coupons() -> int:
    runtime = get_runtime()
    with runtime.db.transaction() as session:
        return coupons.purge_expired(session, utcnow())
