"""channel.ratelimit against the real (embedded) Redis, and how deliver() applies the sender limit and pacing."""

from __future__ import annotations

import threading
import time

import pytest
import redis as redis_lib
import responses

from channel.ratelimit import RateLimiter
from channel.sender import RETRY_INTERVALS, deliver, queue_message
from channel.twilio import TwilioTransport
from core.runtime import Runtime, set_runtime
from models import Message, MessageStatus
from tests.channel_helpers import (  # noqa: F401 - fixtures
    PHONE, PHONE_2, TWILIO_API, TWILIO_SID, TWILIO_TOKEN, add_twilio_ok, engine_stub, make_customer,
    now_utc, run_jobs, scheduled_jobs, twilio_runtime,
)
from tests.conftest import delete_prefixed, make_settings


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        add_twilio_ok(rsps)
        yield rsps


def _count_granted(limiters, key, seconds, *, interval, burst):
    granted = 0
    i = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if limiters[i % len(limiters)].try_acquire(key, interval=interval, burst=burst) == 0:
            granted += 1
        i += 1
    return granted, i


def test_sender_limit_is_shared_by_two_limiters_on_two_connections(runtime, redis_url):
    a = RateLimiter(redis_lib.Redis.from_url(redis_url))
    b = RateLimiter(redis_lib.Redis.from_url(redis_url))
    key = runtime.keys("rate", "test-sender")
    granted, attempts = _count_granted([a, b], key, 1.0, interval=0.1, burst=1)
    assert attempts > 100  # it really was a tight loop
    # 10/s with a burst of 1: 2 at once, then one per 100 ms.
    assert 9 <= granted <= 12, granted


def test_sender_limit_holds_across_threads(runtime, redis_url):
    key = runtime.keys("rate", "threads")
    results = []
    barrier = threading.Barrier(4)

    def worker():
        limiter = RateLimiter(redis_lib.Redis.from_url(redis_url))
        barrier.wait()
        results.append(_count_granted([limiter], key, 0.5, interval=0.05, burst=2)[0])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    # 20/s for 0.5 s plus a burst of 2 (+1 for the edge), whatever the number of workers.
    assert 9 <= sum(results) <= 14, results


def test_exhausted_limiter_says_how_long_to_wait(runtime, redis_client):
    limiter = RateLimiter(redis_client)
    key = runtime.keys("rate", "wait")
    assert limiter.try_acquire(key, interval=2.0) == 0
    wait = limiter.try_acquire(key, interval=2.0)
    assert 1.5 < wait <= 2.0
    # Asking again does not push the slot further away.
    assert limiter.try_acquire(key, interval=2.0) <= wait
    ttl_ms = redis_client.pttl(key)
    assert 0 < ttl_ms <= 3100  # the key expires on its own


def test_keys_are_independent_and_zero_interval_is_unlimited(runtime, redis_client):
    limiter = RateLimiter(redis_client)
    assert limiter.try_acquire(runtime.keys("pace", 1), interval=60) == 0
    assert limiter.try_acquire(runtime.keys("pace", 2), interval=60) == 0
    assert limiter.try_acquire(runtime.keys("pace", 1), interval=60) > 0
    assert all(limiter.try_acquire(runtime.keys("x"), interval=0) == 0 for _ in range(50))


def test_burst_allows_that_many_extra_at_once(runtime, redis_client):
    limiter = RateLimiter(redis_client)
    key = runtime.keys("rate", "burst")
    results = [limiter.try_acquire(key, interval=10.0, burst=3) for _ in range(6)]
    assert [r == 0 for r in results] == [True] * 4 + [False] * 2


# --- pacing and the sender limit inside deliver() ----------------------------------------------------

def _send(session, rt, message_id, limiter=None):
    return deliver(session, rt, TwilioTransport(rt.settings), limiter or RateLimiter(rt.redis), message_id)


def _queue(session, rt, customer, body, *, automated):
    message = queue_message(session, rt, customer, kind="recovery" if automated else "bot", body=body,
                            automated=automated, now=now_utc())
    session.commit()
    return message


def test_second_automated_message_to_one_shopper_is_deferred(session, twilio_runtime, api):
    customer = make_customer(session)
    first = _queue(session, twilio_runtime, customer, "Seu carrinho", automated=True)
    second = _queue(session, twilio_runtime, customer, "Cupom VOLTA10", automated=True)
    assert _send(session, twilio_runtime, first.id).outcome == "sent"
    # Another worker (its own limiter) picks the second one up at once.
    result = _send(session, twilio_runtime, second.id, RateLimiter(redis_lib.Redis(
        connection_pool=twilio_runtime.redis.connection_pool)))
    assert result.outcome == "deferred"
    assert 0 < result.wait_seconds <= twilio_runtime.settings.automated_pacing_seconds
    assert result.wait_seconds > twilio_runtime.settings.automated_pacing_seconds - 2
    assert len(api.calls) == 1
    session.expire_all()
    assert session.get(Message, second.id).status is MessageStatus.PENDING


def test_automated_messages_to_different_shoppers_are_not_paced_together(session, twilio_runtime, api):
    a = _queue(session, twilio_runtime, make_customer(session, PHONE), "A", automated=True)
    b = _queue(session, twilio_runtime, make_customer(session, PHONE_2), "B", automated=True)
    assert _send(session, twilio_runtime, a.id).outcome == "sent"
    assert _send(session, twilio_runtime, b.id).outcome == "sent"
    assert len(api.calls) == 2


def test_live_chat_replies_are_not_paced(session, twilio_runtime, api):
    customer = make_customer(session)
    replies = [_queue(session, twilio_runtime, customer, f"resposta {i}", automated=False) for i in range(3)]
    assert [_send(session, twilio_runtime, m.id).outcome for m in replies] == ["sent"] * 3
    # ...and they do not use up the shopper's automated slot either.
    automated = _queue(session, twilio_runtime, customer, "lembrete", automated=True)
    assert _send(session, twilio_runtime, automated.id).outcome == "sent"
    assert len(api.calls) == 4


@pytest.fixture
def slow_sender_runtime(instance_dir, database_url, redis_url, db, redis_client):
    """1 message/s for the whole sender number (burst 0)."""
    settings = make_settings(instance_dir, database_url, redis_url, TWILIO_ACCOUNT_SID=TWILIO_SID,
                             TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=TWILIO_API, SEND_RATE_PER_SECOND="1")
    rt = Runtime(settings, database=db, redis_client=redis_client)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    delete_prefixed(redis_client, settings.redis_key_prefix)


def test_sender_limit_defers_without_calling_twilio(session, slow_sender_runtime, api):
    rt = slow_sender_runtime
    customer = make_customer(session)
    first = _queue(session, rt, customer, "um", automated=False)
    second = _queue(session, rt, customer, "dois", automated=False)
    assert _send(session, rt, first.id).outcome == "sent"
    result = _send(session, rt, second.id)
    assert result.outcome == "deferred" and 0 < result.wait_seconds <= 1.0
    assert len(api.calls) == 1


def test_delivery_job_waits_out_a_short_sender_limit(session, slow_sender_runtime, api, engine_stub):
    rt = slow_sender_runtime
    customer = make_customer(session)
    messages = [_queue(session, rt, customer, f"msg {i}", automated=False) for i in range(2)]
    started = time.monotonic()
    run_jobs(rt)
    assert time.monotonic() - started >= 0.5  # the second one slept inside its job
    session.expire_all()
    assert [session.get(Message, m.id).status for m in messages] == [MessageStatus.QUEUED] * 2
    assert len(api.calls) == 2


def test_paced_delivery_job_is_rescheduled_not_dropped(session, twilio_runtime, api, engine_stub):
    customer = make_customer(session)
    first = _queue(session, twilio_runtime, customer, "Seu carrinho", automated=True)
    second = _queue(session, twilio_runtime, customer, "Cupom", automated=True)
    run_jobs(twilio_runtime)
    assert len(api.calls) == 1
    [later] = scheduled_jobs(twilio_runtime)
    assert later.func_name == "channel.jobs.deliver" and later.args == (second.id,)
    session.expire_all()
    assert session.get(Message, first.id).status is MessageStatus.QUEUED
    assert session.get(Message, second.id).status is MessageStatus.PENDING


def test_rescheduled_delivery_keeps_its_retry_policy(session, twilio_runtime, api, engine_stub):
    customer = make_customer(session)
    _queue(session, twilio_runtime, customer, "Seu carrinho", automated=True)
    _queue(session, twilio_runtime, customer, "Cupom", automated=True)
    run_jobs(twilio_runtime)
    [later] = scheduled_jobs(twilio_runtime)
    assert later.retries_left == len(RETRY_INTERVALS)
    assert later.retry_intervals == RETRY_INTERVALS


def test_sender_limit_deferral_does_not_burn_the_shoppers_pacing_slot(session, slow_sender_runtime, api, redis_client):
    rt = slow_sender_runtime
    other = make_customer(session, PHONE_2)
    customer = make_customer(session, PHONE)
    reply = _queue(session, rt, other, "resposta", automated=False)
    automated = _queue(session, rt, customer, "lembrete", automated=True)
    assert _send(session, rt, reply.id).outcome == "sent"  # takes the sender's slot for this second
    assert _send(session, rt, automated.id).outcome == "deferred"  # sender limit: wait < 1 s
    redis_client.delete(rt.keys("rate", rt.settings.twilio_whatsapp_from))  # ...that second has passed
    result = _send(session, rt, automated.id)
    assert result.outcome == "sent", f"deferred again for {result.wait_seconds:.1f}s by pacing"
