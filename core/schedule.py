"""Periodic jobs, declared as data and registered idempotently with rq-scheduler.

A job's id is a hash of its definition: starting the scheduler twice, or restarting it, changes nothing,
and a changed interval replaces the old entry. Ticks missed while no scheduler ran are enqueued once on
restart (their due time is in the past), not once per missed period.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from rq_scheduler import Scheduler

from core import heartbeat
from core.runtime import Runtime

log = logging.getLogger(__name__)

# How often the scheduler loop looks for jobs to enqueue; bounds the delay added to each periodic job.
POLL_SECONDS = 5


@dataclass(frozen=True)
class PeriodicJob:
    func: str  # dotted path, resolved by the worker
    interval: int  # seconds
    queue: str = "low"
    timeout: int = 600
    result_ttl: int = 3600  # rq-scheduler keeps results forever by default

    def job_id(self, prefix: str) -> str:
        digest = hashlib.sha256(f"{self.func}|{self.interval}|{self.queue}|{self.timeout}".encode()).hexdigest()[:16]
        return f"{prefix}-periodic-{digest}"


def periodic_jobs(runtime: Runtime) -> list[PeriodicJob]:
    """Every periodic job of the project."""
    tick = runtime.settings.recovery_tick_seconds
    return [
        PeriodicJob(func="recovery.jobs.tick", interval=tick, queue="default", timeout=max(60, tick * 2)),
        PeriodicJob(func="recovery.jobs.purge_expired_coupons", interval=3600, queue="low"),
        PeriodicJob(func="bot.jobs.sweep_stale_pending", interval=300, queue="low"),
        PeriodicJob(func="bot.jobs.sweep_unprocessed_inbound", interval=60, queue="low"),
        PeriodicJob(func="crm.jobs.assign_backlog", interval=300, queue="default", timeout=600),
        PeriodicJob(func="crm.jobs.follow_up_recoveries", interval=300, queue="low", timeout=600),
        PeriodicJob(func="crm.jobs.repoint_owners", interval=86400, queue="low", timeout=3600),
    ]


class ProjectScheduler(Scheduler):
    """rq-scheduler with keys under the deployment's prefix and a heartbeat /healthz can read."""

    def __init__(self, runtime: Runtime, **kwargs) -> None:
        super().__init__(connection=runtime.redis, interval=POLL_SECONDS, **kwargs)
        prefix = runtime.keys.prefix
        self.scheduler_lock_key = f"rq:scheduler_lock:{prefix}"
        self.scheduled_jobs_key = f"rq:scheduler:scheduled_jobs:{prefix}"
        self._runtime = runtime

    def heartbeat(self) -> None:
        super().heartbeat()
        heartbeat.record(self._runtime.redis, self._runtime.keys, "last_seen")


def register_periodic_jobs(scheduler: ProjectScheduler, runtime: Runtime, jobs: list[PeriodicJob]) -> list[str]:
    """Schedule each job unless an identical definition is already there; cancel our stale ones."""
    prefix = runtime.keys.prefix
    wanted = {job.job_id(prefix): job for job in jobs}
    for existing in scheduler.get_jobs():
        if existing.id.startswith(f"{prefix}-periodic-") and existing.id not in wanted:
            log.info("cancelling stale periodic job %s (%s)", existing.id, existing.func_name)
            scheduler.cancel(existing)
    for job_id, job in wanted.items():
        if job_id in scheduler:
            continue
        scheduler.schedule(
            scheduled_time=datetime.now(timezone.utc).replace(tzinfo=None),  # rq-scheduler works in naive UTC
            func=job.func,
            interval=job.interval,
            repeat=None,
            id=job_id,
            queue_name=runtime.keys.queue(job.queue),
            timeout=job.timeout,
            result_ttl=job.result_ttl,
        )
        log.info("scheduled %s every %ss as %s", job.func, job.interval, job_id)
    return sorted(wanted)


def run_scheduler(runtime: Runtime, *, burst: bool = False) -> None:
    scheduler = ProjectScheduler(runtime)
    register_periodic_jobs(scheduler, runtime, periodic_jobs(runtime))
    scheduler.run(burst=burst)
