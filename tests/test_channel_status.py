"""POST /webhooks/whatsapp/status and channel.status: late, repeated, out-of-order callbacks; status only moves forward."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
import responses
from sqlalchemy import select

from channel.ratelimit import RateLimiter
from channel.sender import deliver, queue_message
from channel.transport import ProviderReceipt
from channel.twilio import TwilioTransport
from channel.status import apply_early_status, apply_status
from models import Direction, Message, MessageStatus
from tests.channel_helpers import (  # noqa: F401 - fixtures
    MESSAGES_URL, STATUS_PATH, inbound_messages, make_customer, new_sid, now_utc, post_inbound, post_signed,
    post_status, twilio_created, twilio_runtime,
)


def _sent_message(session, status=MessageStatus.QUEUED, sid=None):
    customer = make_customer(session)
    sid = sid or new_sid()
    message = Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind="bot", body="Oi", provider_sid=sid,
                      status=status, sent_at=None, created_at=now_utc(), updated_at=now_utc())
    session.add(message)
    session.commit()
    return message


def _reload(session, message_id):
    session.expire_all()
    return session.get(Message, message_id)


def _ok(response):
    return 200 <= response.status_code < 300


@pytest.mark.parametrize("sequence, final", [
    (["sent", "delivered", "read"], MessageStatus.READ),
    (["delivered", "sent"], MessageStatus.DELIVERED),
    (["read", "delivered"], MessageStatus.READ),
    (["read", "delivered", "sent"], MessageStatus.READ),
    (["sending", "queued", "accepted", "sent"], MessageStatus.SENT),
    (["sent", "failed"], MessageStatus.FAILED),
    (["sending", "undelivered", "sent"], MessageStatus.UNDELIVERED),
    (["failed", "delivered", "read", "sent"], MessageStatus.FAILED),
    (["undelivered", "read"], MessageStatus.UNDELIVERED),
    (["failed", "undelivered"], MessageStatus.FAILED),
    (["delivered", "failed"], MessageStatus.DELIVERED),  # a failure cannot undo a delivery
    (["read", "undelivered"], MessageStatus.READ),
    (["accepted"], MessageStatus.QUEUED),
])
def test_final_status_is_the_furthest(client, settings, session, sequence, final):
    message = _sent_message(session)
    for status in sequence:
        response = post_status(client, settings, message.provider_sid, status,
                               error_code="30008" if status in ("failed", "undelivered") else None)
        assert _ok(response), (status, response.status_code, response.data)
    assert _reload(session, message.id).status is final


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])))
def test_every_order_of_progress_ends_read_with_all_milestones(client, settings, session, order):
    message = _sent_message(session)
    for status in order:
        assert _ok(post_status(client, settings, message.provider_sid, status))
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.READ
    assert stored.sent_at is not None and stored.delivered_at is not None and stored.read_at is not None
    assert stored.error_code is None


def test_read_first_fills_the_earlier_milestones(client, settings, session):
    message = _sent_message(session)
    post_status(client, settings, message.provider_sid, "read")
    stored = _reload(session, message.id)
    assert stored.sent_at is not None and stored.delivered_at is not None and stored.read_at is not None


def test_repeated_callbacks_are_idempotent(session, runtime):
    message = _sent_message(session)
    t0 = now_utc()
    assert apply_status(session, runtime, message.provider_sid, "delivered", None, now=t0) == "updated"
    for i in range(1, 4):
        assert apply_status(session, runtime, message.provider_sid, "delivered", None,
                            now=t0 + timedelta(minutes=i)) == "ignored"
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.DELIVERED
    assert stored.delivered_at == t0  # the first time it was seen
    assert stored.sent_at == t0


def test_repeated_callbacks_over_http(client, settings, session):
    message = _sent_message(session)
    for _ in range(3):
        assert _ok(post_status(client, settings, message.provider_sid, "delivered"))
    first = _reload(session, message.id).delivered_at
    assert _ok(post_status(client, settings, message.provider_sid, "delivered"))
    assert _reload(session, message.id).delivered_at == first


@pytest.mark.parametrize("status", ["failed", "undelivered"])
def test_failure_is_final_and_keeps_its_error_code(client, settings, session, status):
    message = _sent_message(session, status=MessageStatus.SENT)
    assert _ok(post_status(client, settings, message.provider_sid, status, error_code="63016"))
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus(status) and stored.error_code == "63016"
    for later in ["delivered", "read", "sent", "queued"]:
        assert _ok(post_status(client, settings, message.provider_sid, later))
    # A second failure with another code does not overwrite the first either.
    assert _ok(post_status(client, settings, message.provider_sid, "failed", error_code="30008"))
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus(status) and stored.error_code == "63016"
    assert stored.delivered_at is None and stored.read_at is None


def test_failure_without_error_code(client, settings, session):
    message = _sent_message(session)
    assert _ok(post_status(client, settings, message.provider_sid, "failed"))
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code is None


def test_status_is_case_insensitive(client, settings, session):
    message = _sent_message(session)
    assert _ok(post_status(client, settings, message.provider_sid, "DELIVERED"))
    assert _reload(session, message.id).status is MessageStatus.DELIVERED


@pytest.mark.parametrize("status", ["bogus", "", "blocked", "outbox", "delivered; DROP TABLE", "réad", "123"])
def test_unknown_status_is_400_and_changes_nothing(client, settings, session, status):
    message = _sent_message(session)
    response = post_status(client, settings, message.provider_sid, status)
    assert response.status_code == 400
    assert response.get_json()["field"] == "MessageStatus"
    assert _reload(session, message.id).status is MessageStatus.QUEUED


@pytest.mark.parametrize("internal", ["pending", "unknown", "PENDING"])
@pytest.mark.parametrize("start", [MessageStatus.QUEUED, MessageStatus.SENT])
def test_the_projects_own_statuses_in_a_callback_never_move_a_message(client, settings, session, internal, start):
    message = _sent_message(session, status=start)
    response = post_status(client, settings, message.provider_sid, internal)
    assert response.status_code in (200, 204, 400)
    assert _reload(session, message.id).status is start


def test_missing_message_status_is_400(client, settings, session):
    message = _sent_message(session)
    response = post_signed(client, settings, STATUS_PATH, {"MessageSid": message.provider_sid})
    assert response.status_code == 400


def test_missing_message_sid_is_400(client, settings):
    response = post_signed(client, settings, STATUS_PATH, {"MessageStatus": "delivered"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "MessageSid"


@pytest.mark.parametrize("form,field", [
    ({"MessageSid": "SM\x00" + "a" * 30, "MessageStatus": "failed"}, "MessageSid"),  # PostgreSQL refuses NUL
    ({"MessageSid": "𝄀(q\x00;", "MessageStatus": "delivered"}, "MessageSid"),
    ({"MessageSid": "SM" + "b" * 32, "MessageStatus": "failed", "ErrorCode": "30\x0008"}, "ErrorCode"),
    ({"MessageSid": "SM" + "c" * 32, "MessageStatus": "failed", "ErrorCode": "erro"}, "ErrorCode"),
])
def test_a_malformed_sid_or_error_code_is_400_with_the_field(client, settings, form, field):
    response = post_signed(client, settings, STATUS_PATH, form)
    assert response.status_code == 400 and response.get_json()["field"] == field


@pytest.mark.parametrize("status", ["scheduled", "canceled", "partially_delivered", "receiving", "received", "Scheduled"])
def test_untracked_real_statuses_are_acknowledged_and_ignored(client, settings, session, runtime, redis_client, status):
    message = _sent_message(session)
    assert _ok(post_status(client, settings, message.provider_sid, status))
    assert _ok(post_status(client, settings, new_sid(), status))  # unknown sid: nothing parked either
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.QUEUED and stored.updated_at == message.updated_at
    assert list(redis_client.scan_iter(match=runtime.keys("early-status", "*"))) == []


def test_callback_for_an_inbound_message_changes_nothing(client, settings, session):
    form, _ = post_inbound(client, settings, body="Oi")
    assert _ok(post_status(client, settings, form["MessageSid"], "failed", error_code="30008"))
    [message] = inbound_messages(session, form["MessageSid"])
    assert message.status is MessageStatus.RECEIVED and message.error_code is None


@pytest.mark.parametrize("status", [MessageStatus.BLOCKED, MessageStatus.OUTBOX])
def test_blocked_and_outbox_messages_are_never_moved(session, runtime, status):
    message = _sent_message(session, status=status)
    for callback in ("sent", "delivered", "read", "failed"):
        apply_status(session, runtime, message.provider_sid, callback, "30008")
    stored = _reload(session, message.id)
    assert stored.status is status and stored.error_code is None


# --- callbacks that arrive before the sid is stored --------------------------------------------------

def test_early_callback_is_parked_in_redis_with_a_ttl(client, settings, runtime, redis_client):
    sid = new_sid()
    assert _ok(post_status(client, settings, sid, "delivered"))
    key = runtime.keys("early-status", sid)
    parked = [json.loads(x) for x in redis_client.lrange(key, 0, -1)]
    assert [p[0] for p in parked] == ["delivered"]
    assert 0 < redis_client.ttl(key) <= 3600


def test_early_callbacks_are_replayed_when_deliver_stores_the_sid(client, session, twilio_runtime, redis_client):
    settings = twilio_runtime.settings
    customer = make_customer(session)
    message = queue_message(session, twilio_runtime, customer, kind="bot", body="Oi", automated=False, now=now_utc())
    session.commit()
    sid = new_sid()
    # Twilio is fast: the callbacks come before our commit of the sid (and out of order).
    from app import create_app

    app_client = create_app({"RUNTIME": twilio_runtime, "TESTING": True}).test_client()
    assert _ok(post_status(app_client, settings, sid, "read"))
    assert _ok(post_status(app_client, settings, sid, "sent"))
    with responses.RequestsMock() as api:
        api.add(responses.POST, MESSAGES_URL, json=twilio_created(sid, "queued"), status=201)
        result = deliver(session, twilio_runtime, TwilioTransport(settings), RateLimiter(twilio_runtime.redis),
                         message.id)
    assert result.outcome == "sent"
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.READ
    assert stored.delivered_at is not None and stored.read_at is not None
    assert not redis_client.exists(twilio_runtime.keys("early-status", sid))


def test_early_failure_is_replayed_with_its_code(session, runtime):
    sid = new_sid()
    assert apply_status(session, runtime, sid, "undelivered", "63024") == "early"
    message = _sent_message(session, sid=sid)
    apply_early_status(session, runtime, sid)
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.UNDELIVERED and stored.error_code == "63024"


def test_replay_with_nothing_parked_is_a_no_op(session, runtime):
    message = _sent_message(session)
    apply_early_status(session, runtime, message.provider_sid)
    assert _reload(session, message.id).status is MessageStatus.QUEUED


class _InstantTwilio:
    """A transport that 'accepts' the message with a known sid."""

    def __init__(self, sid):
        self.sid = sid
        self.calls = 0

    def send(self, message):
        self.calls += 1
        return ProviderReceipt(sid=self.sid, status="queued")


def _pending_reply(session, runtime):
    customer = make_customer(session)
    message = queue_message(session, runtime, customer, kind="bot", body="Oi", automated=False, now=now_utc())
    session.commit()
    return message


def _deliver_in_other_session(runtime, message_id, sid):
    with runtime.db.session() as other:
        assert deliver(other, runtime, _InstantTwilio(sid), RateLimiter(runtime.redis), message_id).outcome == "sent"


def test_callback_racing_the_sid_commit_between_update_and_select_is_not_lost(session, runtime, monkeypatch):
    message = _pending_reply(session, runtime)
    sid = new_sid()
    with runtime.db.session() as callback_session:
        real_scalar = callback_session.scalar

        def scalar_after_deliver(*args, **kwargs):
            _deliver_in_other_session(runtime, message.id, sid)  # the worker wins the race here
            return real_scalar(*args, **kwargs)

        monkeypatch.setattr(callback_session, "scalar", scalar_after_deliver)
        apply_status(callback_session, runtime, sid, "delivered", None)
        callback_session.commit()
    assert _reload(session, message.id).status is MessageStatus.DELIVERED


def test_callback_parked_just_after_the_replay_is_not_lost(session, runtime, monkeypatch):
    """The worker commits the sid and replays (finding nothing) right between the callback's 'sid unknown?' check
    and its parking the status in Redis (possible on PostgreSQL, where that SELECT holds no lock)."""
    message = _pending_reply(session, runtime)
    sid = new_sid()
    client = runtime.redis
    state = {"raced": False}

    def racing(real):
        def wrapper(*args, **kwargs):
            if not state["raced"]:
                state["raced"] = True
                _deliver_in_other_session(runtime, message.id, sid)
            return real(*args, **kwargs)
        return wrapper

    # Whichever Redis call the callback parks with, the worker runs just before it.
    monkeypatch.setattr(client, "rpush", racing(client.rpush))
    monkeypatch.setattr(client, "pipeline", racing(client.pipeline))
    with runtime.db.session() as callback_session:
        apply_status(callback_session, runtime, sid, "delivered", None)
        callback_session.commit()
    monkeypatch.undo()
    assert state["raced"]
    assert _reload(session, message.id).status is MessageStatus.DELIVERED


def test_concurrent_style_interleaving_without_race_works(session, runtime):
    """Control for the two tests above: callback fully before the sid is stored -> replayed."""
    message = _pending_reply(session, runtime)
    sid = new_sid()
    assert apply_status(session, runtime, sid, "delivered", None) == "early"
    _deliver_in_other_session(runtime, message.id, sid)
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.DELIVERED
    assert session.scalar(select(Message.provider_sid).where(Message.id == message.id)) == sid
