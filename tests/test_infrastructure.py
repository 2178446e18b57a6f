import multiprocessing
import time
from datetime import timezone

import redis
from rq import Queue, SimpleWorker

from core import embedded_redis
from core.queues import enqueue_after_commit, queue
from core.schedule import PeriodicJob, ProjectScheduler, register_periodic_jobs
from models import Store


def _start_from_process(directory, out):
    out.put(str(embedded_redis.ensure_running(directory)))


def test_embedded_redis_starts_once_for_concurrent_callers_and_keeps_data(tmp_path):
    directory = tmp_path / "r"
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_start_from_process, args=(directory, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    sockets = {out.get(timeout=5) for _ in procs}
    assert sockets == {str(directory / "redis.sock")}
    try:
        client = redis.Redis(unix_socket_path=str(directory / "redis.sock"))
        assert client.info("server")["process_id"] == int((directory / "redis.pid").read_text())
        client.zadd("tracker", {"shopper": 1})
        embedded_redis.stop(directory)
        embedded_redis.ensure_running(directory)
        client = redis.Redis(unix_socket_path=str(directory / "redis.sock"))
        assert client.zscore("tracker", "shopper") == 1.0  # persisted across a restart
    finally:
        embedded_redis.stop(directory)


def record_store_count(database_url):
    from core.runtime import get_runtime
    from sqlalchemy import func, select

    with get_runtime().db.session() as s:
        return s.scalar(select(func.count()).select_from(Store))


def test_enqueue_after_commit_runs_only_after_commit(runtime):
    q = queue(runtime, "default")
    with runtime.db.session() as s:
        s.add(Store(code="X", name="X"))
        enqueue_after_commit(s, runtime, "default", record_store_count, runtime.settings.database_url)
        s.flush()
        assert q.count == 0
        s.commit()
    assert q.count == 1
    with runtime.db.session() as s:
        enqueue_after_commit(s, runtime, "default", record_store_count, "")
        s.rollback()
    assert q.count == 1
    job = q.jobs[0]
    SimpleWorker([q], connection=runtime.redis).work(burst=True)
    job.refresh()
    assert job.return_value() == 1


def test_periodic_jobs_register_idempotently_and_reschedule_on_change(runtime):
    jobs = [PeriodicJob(func="core.heartbeat.read", interval=300)]
    first = register_periodic_jobs(ProjectScheduler(runtime), runtime, jobs)
    second = register_periodic_jobs(ProjectScheduler(runtime), runtime, jobs)
    scheduler = ProjectScheduler(runtime)
    assert first == second and len(list(scheduler.get_jobs())) == 1
    changed = register_periodic_jobs(scheduler, runtime, [PeriodicJob(func="core.heartbeat.read", interval=60)])
    assert changed != first
    assert [j.id for j in list(scheduler.get_jobs())] == changed
    job = list(scheduler.get_jobs())[0]
    assert job.meta["interval"] == 60 and job.result_ttl == 3600


def test_two_schedulers_enqueue_a_due_job_once(runtime):
    register_periodic_jobs(ProjectScheduler(runtime), runtime, [PeriodicJob(func="core.heartbeat.read", interval=300)])
    a, b = ProjectScheduler(runtime), ProjectScheduler(runtime)
    for s in (a, b, a, b):
        if s.acquire_lock():
            s.enqueue_jobs()
            s.remove_lock()
    q = Queue(runtime.keys.queue("low"), connection=runtime.redis)
    assert q.count == 1
    (scheduled_at,) = [t for _, t in a.get_jobs(with_times=True)]
    # rq-scheduler reports naive UTC; the next run is one interval after this one.
    assert scheduled_at.replace(tzinfo=timezone.utc).timestamp() > time.time() + 250


def test_ticks_missed_while_the_scheduler_was_down_run_once_on_restart(runtime):
    from core.schedule import periodic_jobs

    scheduler = ProjectScheduler(runtime)
    register_periodic_jobs(scheduler, runtime, periodic_jobs(runtime))
    tick_id = next(j.job_id(runtime.keys.prefix) for j in periodic_jobs(runtime) if j.func == "recovery.jobs.tick")
    # The scheduler was down for an hour: twelve 5-minute periods were missed.
    runtime.redis.zadd(scheduler.scheduled_jobs_key, {tick_id: time.time() - 3600})
    restarted = ProjectScheduler(runtime)
    register_periodic_jobs(restarted, runtime, periodic_jobs(runtime))  # restart: registration changes nothing
    assert restarted.acquire_lock()
    restarted.enqueue_jobs()
    restarted.remove_lock()
    queued = Queue(runtime.keys.queue("default"), connection=runtime.redis).jobs
    ticks = [job for job in queued if job.func_name == "recovery.jobs.tick"]
    assert len(ticks) == 1  # one catch-up tick, not twelve
    next_run = dict((job.id, at) for job, at in restarted.get_jobs(with_times=True))[tick_id]
    assert next_run.replace(tzinfo=timezone.utc).timestamp() > time.time() + 250
