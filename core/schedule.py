"""Periodic jobs, declared as data and registered idempotently with rq-scheduler; a scheduler loop that rides
out Redis outages.

A job's id is a hash of its definition: starting the scheduler twice, or restarting it, changes nothing,
and a changed interval replaces the old entry. Ticks missed while no scheduler ran are enqueued once on
restart (their due time is in the past), not once per missed period.

The loop (``ProjectScheduler.run``, started by ``python worker.py --scheduler``) replaces rq-scheduler's own,
which died on the first Redis error and left the deployment without ticks or sweeps. Each poll it:

1. writes the heartbeat (``last_seen``, read by /healthz) whether or not it will enqueue anything;
2. takes the enqueue lock (``scheduler_lock_key``; a token lock that expires after ``LOCK_TTL_SECONDS``, so a
   scheduler that crashed or lost Redis while holding it blocks the others for at most that long, and a
   scheduler only ever deletes its own lock);
3. under the lock, registers the periodic jobs again when needed (first poll, after an outage, or when the
   heartbeat was found missing: Redis restarted empty or was flushed), otherwise every
   ``CONSISTENCY_CHECK_SECONDS`` checks cheaply (one pipelined ZSCORE + EXISTS per job) that each periodic job
   is still scheduled and restores any that is missing;
4. enqueues the due jobs, each one atomically with its rescheduling (MULTI/EXEC), so that a Redis error or
   a second scheduler can never enqueue the same run twice.

On a Redis error (connection refused or reset, time-out, "loading", read-only replica) it logs one warning
for the whole outage, retries with exponential backoff and jitter (``BACKOFF_INITIAL_SECONDS`` doubling to
``BACKOFF_MAX_SECONDS``), and logs one info line when Redis answers again. SIGTERM and SIGINT stop it at once,
even in the middle of a Redis call or a backoff sleep (the enqueue step is atomic, so that is safe); it then
releases its lock and registers its death with a short time-out, never blocking the exit.
"""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis
from rq_scheduler import Scheduler
from rq_scheduler.utils import from_unix

from core import heartbeat
from core.runtime import Runtime

log = logging.getLogger(__name__)

# How often the scheduler loop looks for jobs to enqueue; bounds the delay added to each periodic job.
POLL_SECONDS = 5
# The enqueue lock outlives a poll comfortably; a holder that vanished releases it by expiry.
LOCK_TTL_SECONDS = POLL_SECONDS + 10
# How often the scheduler checks that every periodic job is still in Redis (a partial data loss, someone
# deleting keys). A full loss (an empty restart) is noticed on the next poll through the heartbeat.
CONSISTENCY_CHECK_SECONDS = 60
# Retry delays while Redis is unreachable (the workers use the same).
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0

# Errors that mean "Redis is unreachable or not serving right now", not "our code is wrong". The redis-py client
# already retries each command a few times; these are what is left when that did not help.
REDIS_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes BusyLoadingError (a restart loading its data)
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a failover left us on a replica
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    ConnectionError,  # the builtin ones, should a socket error escape redis-py
    TimeoutError,
)


def tick_timeout(tick_seconds: int) -> int:
    """The RQ time limit of a recovery tick scheduled every ``tick_seconds`` (also /healthz's margin)."""
    return max(60, tick_seconds * 2)


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

    @property
    def kept_for(self) -> int:
        """The result TTL given to RQ. A finished job's hash expires with its result, and rq-scheduler silently
        drops a periodic job whose hash is gone when it comes due, so the hash must outlive the gap to the
        next run (a daily job with a one-hour TTL ran once)."""
        return max(self.result_ttl, 2 * self.interval + self.timeout)


def periodic_jobs(runtime: Runtime) -> list[PeriodicJob]:
    """Every periodic job of the project."""
    tick = runtime.settings.recovery_tick_seconds
    return [
        PeriodicJob(func="recovery.jobs.tick", interval=tick, queue="default", timeout=tick_timeout(tick)),
        PeriodicJob(func="recovery.jobs.purge_expired_coupons", interval=3600, queue="low"),
        PeriodicJob(func="channel.jobs.sweep_stale_pending", interval=300, queue="low"),
        PeriodicJob(func="channel.jobs.sync_templates", interval=3600, queue="low"),
        PeriodicJob(func="bot.jobs.sweep_unprocessed_inbound", interval=60, queue="low"),
        PeriodicJob(func="crm.jobs.assign_backlog", interval=300, queue="default", timeout=600),
        PeriodicJob(func="crm.jobs.follow_up_recoveries", interval=300, queue="low", timeout=600),
        PeriodicJob(func="crm.jobs.repoint_owners", interval=86400, queue="low", timeout=3600),
        PeriodicJob(func="crm.jobs.refresh_changed_metrics", interval=300, queue="low", timeout=900),
        PeriodicJob(func="crm.jobs.refresh_all_metrics", interval=86400, queue="low", timeout=3600),
        PeriodicJob(func="shops.jobs.poll_nuvemshop_checkouts", interval=300, queue="low"),
        PeriodicJob(func="segments.jobs.recompute_all", interval=900, queue="low", timeout=900),
        PeriodicJob(func="segments.jobs.refresh_changed", interval=60, queue="low", timeout=300),
    ]


# --- retrying quietly ------------------------------------------------------------------------------------

class Backoff:
    """Exponential backoff with jitter: ``initial`` doubling up to ``maximum``, each delay drawn from
    [``(1 - jitter)`` x, x] so that processes that lost Redis together do not come back in lockstep."""

    def __init__(self, initial: float = BACKOFF_INITIAL_SECONDS, maximum: float = BACKOFF_MAX_SECONDS, *,
                 jitter: float = 0.5, rng=random.random) -> None:
        self.initial, self.maximum, self.jitter = initial, maximum, jitter
        self._rng = rng
        self._attempt = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * (2 ** self._attempt))
        self._attempt = min(self._attempt + 1, 30)
        return base * (1 - self.jitter * self._rng())

    def reset(self) -> None:
        self._attempt = 0


class OutageLog:
    """One warning when Redis becomes unreachable and one info line when it answers again, however many
    retries happen in between (thread-safe: a worker reports from its pub/sub thread too)."""

    def __init__(self, logger: logging.Logger, who: str) -> None:
        self._log, self._who = logger, who
        self._lock = threading.Lock()
        self.since: float | None = None
        self.failures = 0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException | None) -> None:
        with self._lock:
            self.failures += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        self._log.warning("%s: Redis is unreachable (%s: %s); retrying with backoff up to %.0f s, quietly until "
                          "it answers again", self._who, type(exc).__name__ if exc else "error", exc,
                          BACKOFF_MAX_SECONDS)

    def recovered(self) -> bool:
        with self._lock:
            if self.since is None:
                return False
            down_for, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        self._log.info("%s: Redis is back, %.1f s after the first failed attempt (%d failed attempts)", self._who,
                       down_for, failures)
        return True


def quick_client(client: redis.Redis, timeout: float = 1.0) -> redis.Redis:
    """A client for the same server with short time-outs and no retries: for best-effort clean-up on exit."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs, socket_timeout=timeout, socket_connect_timeout=timeout,
                  retry=Retry(NoBackoff(), 0))
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


# --- the scheduler ---------------------------------------------------------------------------------------

# SET NX, or refresh a lock we already hold (its reply may have been lost to a time-out).
_ACQUIRE_LOCK = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('expire', KEYS[1], ARGV[2]) return 1 end
return 0
"""
# Delete the lock only if it is still ours (it may have expired and been taken by another scheduler).
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ProjectScheduler(Scheduler):
    """rq-scheduler with keys under the deployment's prefix, a heartbeat /healthz can read, a token lock, atomic
    enqueueing and a loop that survives Redis outages (see the module docstring)."""

    def __init__(self, runtime: Runtime, jobs: list[PeriodicJob] | None = None, **kwargs) -> None:
        super().__init__(connection=runtime.redis, interval=POLL_SECONDS, **kwargs)
        prefix = runtime.keys.prefix
        self.scheduler_lock_key = f"rq:scheduler_lock:{prefix}"
        self.scheduled_jobs_key = f"rq:scheduler:scheduled_jobs:{prefix}"
        self._runtime = runtime
        self.periodic = list(jobs) if jobs is not None else periodic_jobs(runtime)
        self._acquire_script = self.connection.register_script(_ACQUIRE_LOCK)
        self._release_script = self.connection.register_script(_RELEASE_LOCK)
        self._instance_ttl = int(self._interval) + 10

    # rq-scheduler's instance key (rq:scheduler_instance:<name>): kept alive for tools that list schedulers.
    def register_birth(self) -> None:
        with self.connection.pipeline() as pipe:
            pipe.delete(self.key)
            pipe.hset(self.key, "birth", time.time())
            pipe.expire(self.key, self._instance_ttl)
            pipe.execute()

    def register_death(self, client: redis.Redis | None = None) -> None:
        with (client or self.connection).pipeline() as pipe:
            pipe.hset(self.key, "death", time.time())
            pipe.expire(self.key, 60)
            pipe.execute()

    def heartbeat(self) -> bool:
        """Refresh the instance key and write ``last_seen``. True when the heartbeat hash had been lost (Redis
        restarted empty or our keys were deleted): the caller registers the periodic jobs again."""
        alive = self.connection.expire(self.key, self._instance_ttl)
        lost = heartbeat.record(self.connection, self._runtime.keys, "last_seen")
        if not alive:
            self.register_birth()
        return lost

    def acquire_lock(self) -> bool:
        self._lock_acquired = bool(self._acquire_script(keys=[self.scheduler_lock_key],
                                                        args=[self.name, LOCK_TTL_SECONDS]))
        return self._lock_acquired

    def remove_lock(self, client: redis.Redis | None = None) -> None:
        if not self._lock_acquired:
            return
        self._lock_acquired = False  # first: should the delete fail, the lock expires on its own
        self._release_script(keys=[self.scheduler_lock_key], args=[self.name], client=client or self.connection)

    def enqueue_job(self, job):
        """Queue a due periodic job and schedule its next run in one MULTI/EXEC: a Redis error leaves either both
        done or neither (rq-scheduler's three separate writes could enqueue a run twice, or lose the job)."""
        interval = job.meta.get("interval")
        if not interval or job.meta.get("repeat") is not None or job.meta.get("cron_string"):
            return super().enqueue_job(job)
        queue = self.get_queue_for_job(job)
        with self.connection.pipeline() as pipe:
            queue.enqueue_job(job, pipeline=pipe, at_front=bool(job.enqueue_at_front))  # puts pipe in MULTI mode
            pipe.zadd(self.scheduled_jobs_key, {job.id: int(time.time()) + int(interval)})
            pipe.execute()

    def enqueue_jobs(self):
        # rq-scheduler's version returns an exhausted generator; a list says what was enqueued.
        jobs = list(self.get_jobs_to_queue())
        for job in jobs:
            self.enqueue_job(job)
        return jobs

    # -- the loop --

    def _install_signal_handlers(self) -> None:
        def stop(signum, _frame):
            log.info("scheduler: %s received, stopping", signal.Signals(signum).name)
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def run(self, burst: bool = False) -> None:
        """Poll every ``POLL_SECONDS`` until SIGTERM/SIGINT (``SystemExit``), or once with ``burst``. Never returns
        or raises because of Redis: it waits for Redis to come back."""
        self._install_signal_handlers()
        backoff = Backoff()
        outage = OutageLog(log, "scheduler")
        state = _LoopState()
        log.info("scheduler %s started: %d periodic jobs, polling every %ss", self.name, len(self.periodic),
                 self._interval)
        try:
            while True:
                started = time.monotonic()
                try:
                    self.poll(state)
                except REDIS_OUTAGE_ERRORS as exc:
                    outage.failed(exc)
                    state.needs_registration = True
                    self._lock_acquired = False  # if we held it, it expires within LOCK_TTL_SECONDS
                    time.sleep(backoff.next_delay())
                    continue
                except Exception:  # a bug or bad data: keep scheduling the rest, loudly, at the backoff's pace
                    log.exception("scheduler: unexpected error in the scheduler loop; retrying")
                    state.needs_registration = True
                    self._release_lock_quietly()
                    time.sleep(backoff.next_delay())
                    continue
                outage.recovered()
                backoff.reset()
                if burst:
                    return
                time.sleep(max(0.0, self._interval - (time.monotonic() - started)))
        finally:
            self._clean_up()

    def poll(self, state: "_LoopState") -> None:
        """One pass: heartbeat, then under the lock (re-)registration or the consistency check, and enqueueing."""
        if self.heartbeat() and not state.needs_registration:
            log.warning("scheduler: the heartbeat is gone from Redis (restarted empty, or keys deleted); "
                        "registering the periodic jobs again")
            state.needs_registration = True
        if not self.acquire_lock():
            log.debug("scheduler: another scheduler holds the lock; skipping this poll")
            return
        now = time.monotonic()
        if state.needs_registration:
            register_periodic_jobs(self, self._runtime, self.periodic)
            state.needs_registration = False
            state.next_check = now + CONSISTENCY_CHECK_SECONDS
        elif now >= state.next_check:
            restored = restore_missing_periodic_jobs(self, self._runtime, self.periodic)
            if restored:
                log.warning("scheduler: %d periodic job(s) were missing from Redis and are scheduled again: %s",
                            len(restored), ", ".join(restored))
            state.next_check = now + CONSISTENCY_CHECK_SECONDS
        self.enqueue_jobs()
        self.remove_lock()

    def _release_lock_quietly(self) -> None:
        try:
            self.remove_lock()
        except Exception:  # noqa: BLE001 - it expires by itself
            self._lock_acquired = False

    def _clean_up(self) -> None:
        """Release the lock and register death, best effort and fast: Redis may be the reason we stop."""
        client = quick_client(self.connection)
        try:
            self.remove_lock(client)
            self.register_death(client)
        except Exception as exc:  # noqa: BLE001
            log.debug("scheduler: clean-up skipped (%s)", type(exc).__name__)
        finally:
            self._lock_acquired = False
            client.connection_pool.disconnect()
        log.info("scheduler %s stopped", self.name)


@dataclass
class _LoopState:
    needs_registration: bool = True
    next_check: float = 0.0


# --- registration ----------------------------------------------------------------------------------------

def _schedule(scheduler: ProjectScheduler, runtime: Runtime, job_id: str, job: PeriodicJob,
              at_unix: float | None = None) -> None:
    # rq-scheduler works in naive UTC.
    when = from_unix(at_unix) if at_unix is not None else datetime.now(timezone.utc).replace(tzinfo=None)
    scheduler.schedule(
        scheduled_time=when,
        func=job.func,
        interval=job.interval,
        repeat=None,
        id=job_id,
        queue_name=runtime.keys.queue(job.queue),
        timeout=job.timeout,
        result_ttl=job.kept_for,
    )


def restore_missing_periodic_jobs(scheduler: ProjectScheduler, runtime: Runtime, jobs: list[PeriodicJob]) -> list[str]:
    """Schedule each job that is not (fully) in Redis; return their ids. Cheap: one round trip when nothing is
    missing. A job missing from the schedule runs now (like one whose tick was missed); a job whose schedule
    entry survived but whose hash is gone keeps its due time."""
    prefix = runtime.keys.prefix
    wanted = {job.job_id(prefix): job for job in jobs}
    ids = list(wanted)
    with scheduler.connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.zscore(scheduler.scheduled_jobs_key, job_id)
            pipe.exists(scheduler.job_class.key_for(job_id))
        replies = pipe.execute()
    restored = []
    for job_id, score, exists in zip(ids, replies[0::2], replies[1::2]):
        if score is not None and exists:
            continue
        job = wanted[job_id]
        _schedule(scheduler, runtime, job_id, job, at_unix=score if score is not None else None)
        log.info("scheduled %s every %ss as %s", job.func, job.interval, job_id)
        restored.append(job_id)
    return restored


def register_periodic_jobs(scheduler: ProjectScheduler, runtime: Runtime, jobs: list[PeriodicJob]) -> list[str]:
    """Schedule each job unless an identical definition is already there; cancel our stale ones."""
    prefix = runtime.keys.prefix
    wanted = {job.job_id(prefix): job for job in jobs}
    # Restore first: rq-scheduler's scan below drops any entry whose job hash is gone, losing its due time.
    restore_missing_periodic_jobs(scheduler, runtime, jobs)
    for existing in scheduler.get_jobs():
        if existing.id.startswith(f"{prefix}-periodic-") and existing.id not in wanted:
            log.info("cancelling stale periodic job %s (%s)", existing.id, existing.func_name)
            scheduler.cancel(existing)
    return sorted(wanted)


def run_scheduler(runtime: Runtime, *, burst: bool = False) -> None:
    """``python worker.py --scheduler``: run until SIGTERM/SIGINT, whatever Redis does meanwhile."""
    ProjectScheduler(runtime).run(burst=burst)
