"""Concurrent ticks in separate processes against the same database and Redis: no shopper twice."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.runtime import Runtime
from core.settings import Settings
from models import AttemptStatus, Customer, Message, RecoveryAttempt
from recovery.tick import run_tick
from recovery.tracker import Tracker, note_interaction
from tests.conftest import delete_prefixed, redis_url_of
from tests.recovery_helpers import AFTERNOON, enable_recovery

SHOPPERS = 120


def _tick_in_process(env: dict, instance: str, now_iso: str, rounds: int, out) -> None:
    from datetime import datetime

    settings = Settings.from_env(env, instance_path=instance)
    runtime = Runtime(settings)
    now = datetime.fromisoformat(now_iso)
    claimed = 0
    for _ in range(rounds):
        with runtime.db.session() as session:
            # Small batches so the two processes interleave many times.
            claimed += run_tick(session, runtime, now, batch=7).claimed
    out.put(claimed)


@pytest.mark.slow
def test_two_processes_ticking_at_once_send_each_shopper_once(committed_db, settings, redis_client):
    runtime = Runtime(settings, database=committed_db, redis_client=redis_client)
    with committed_db.session() as session:
        enable_recovery(session)
        for i in range(SHOPPERS):
            session.add(Customer(phone=f"+551199{i:07d}", name=f"Cliente {i}", tags=[], last_inbound_at=AFTERNOON))
        session.commit()
        ids = list(session.scalars(select(Customer.id)))
        for customer_id in ids:
            note_interaction(session, runtime, customer_id, AFTERNOON)

    env = {"APP_ENV": "test", "DATABASE_URL": settings.database_url, "REDIS_URL": redis_url_of(redis_client),
           "REDIS_KEY_PREFIX": settings.redis_key_prefix}
    now = (AFTERNOON + timedelta(minutes=10)).isoformat()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_tick_in_process, args=(env, str(settings.instance_path), now, 3, out))
             for _ in range(2)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert all(p.exitcode == 0 for p in procs)
        claimed = [out.get(timeout=5) for _ in procs]
        assert sum(claimed) == SHOPPERS  # every shopper claimed by exactly one of the two

        with committed_db.session() as session:
            per_customer = Counter(session.scalars(select(Message.customer_id).where(Message.kind == "recovery")))
            assert len(per_customer) == SHOPPERS and set(per_customer.values()) == {1}
            statuses = Counter(session.scalars(select(RecoveryAttempt.status)))
            assert statuses == {AttemptStatus.SENT: SHOPPERS}
            assert session.scalar(select(func.count()).select_from(RecoveryAttempt)) == SHOPPERS
        assert Tracker(runtime).size() == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        delete_prefixed(redis_client, settings.redis_key_prefix)

