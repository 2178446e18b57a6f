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
from channel.templates import placeholders_in
from channel.transport import ProviderReceipt
from channel.twilio import TwilioTransport
from channel.status import apply_early_status, apply_status, retry_as_template
from models import Direction, Message, MessageStatus, TemplateStatus, WhatsAppTemplate
from tests.channel_helpers import (  # noqa: F401 - fixtures
    MESSAGES_URL, PHONE, STATUS_PATH, customer_by_phone, engine_stub, form_body, inbound_messages, make_customer,
    new_sid, now_utc, outbound_messages, post_inbound, post_signed, post_status, queued_jobs, run_jobs,
    twilio_created, twilio_runtime,
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


# --- failures that mean something ---------------------------------------------------------------------

def _twilio_template(session, status=TemplateStatus.APPROVED):
    body = "Oi {{1}}! Seu carrinho está esperando."
    template = WhatsAppTemplate(provider="twilio", external_id="HX" + "b" * 32, name="carrinho_abandonado",
                                language="pt_BR", category="marketing", status=status, body=body,
                                placeholders=placeholders_in(None, body, [], provider="twilio"), buttons=[])
    session.add(template)
    session.commit()
    return template


def _recovery_with_fallback(session, rt, template):
    customer = make_customer(session)  # inside the window by our clock: free-form text, the template kept
    message = queue_message(session, rt, customer, kind="recovery", body="Oi Ana! Esqueceu algo no carrinho?",
                            automated=True, now=now_utc(), template=template, template_mapping={"1": "nome"},
                            template_sources={"nome": "Ana"})
    session.commit()
    assert message.sent_as == "text" and message.template_id == template.id
    return message


def test_63016_callback_resends_a_text_with_its_fallback_template_once(session, twilio_runtime, engine_stub):
    """Twilio accepted the free-form text, then says 63016 (outside the 24 h window) in the status callback:
    the shopper got nothing, so the approved template goes instead, once, however often the callback comes."""
    from app import create_app

    settings = twilio_runtime.settings
    client = create_app({"RUNTIME": twilio_runtime, "TESTING": True}).test_client()
    template = _twilio_template(session)
    message = _recovery_with_fallback(session, twilio_runtime, template)
    first_sid, second_sid = new_sid(), new_sid()
    with responses.RequestsMock() as api:
        api.add(responses.POST, MESSAGES_URL, json=twilio_created(first_sid), status=201)
        api.add(responses.POST, MESSAGES_URL, json=twilio_created(second_sid), status=201)
        run_jobs(twilio_runtime)
        assert _reload(session, message.id).provider_sid == first_sid
        # The failure comes later than the shopper's pacing interval (it is not a second automated message).
        twilio_runtime.redis.delete(twilio_runtime.keys("pace", message.customer_id))
        for status in ("undelivered", "undelivered", "failed"):
            assert _ok(post_status(client, settings, first_sid, status, error_code="63016"))
        stored = _reload(session, message.id)
        assert stored.status is MessageStatus.PENDING and stored.sent_as == "template"
        assert stored.provider_sid is None and stored.error_reason.startswith("retrying as template")
        assert stored.body == "Oi Ana! Seu carrinho está esperando."
        assert len(queued_jobs(twilio_runtime, "channel.jobs.deliver")) == 1
        run_jobs(twilio_runtime)
        assert _ok(post_status(client, settings, first_sid, "undelivered", error_code="63016"))
        run_jobs(twilio_runtime)
        forms = [form_body(call) for call in api.calls]
    assert len(forms) == 2
    assert "Body" in forms[0] and "ContentSid" not in forms[0]
    assert forms[1]["ContentSid"] == template.external_id and "Body" not in forms[1]
    assert json.loads(forms[1]["ContentVariables"]) == {"1": "Ana"}
    stored = _reload(session, message.id)
    assert stored.provider_sid == second_sid and stored.status is MessageStatus.QUEUED
    assert len(outbound_messages(session)) == 1


def test_a_second_resend_as_template_finds_nothing_to_do(session, runtime):
    template = _twilio_template(session)
    message = _recovery_with_fallback(session, runtime, template)
    sid = new_sid()
    session.execute(Message.__table__.update().where(Message.id == message.id)
                    .values(status=MessageStatus.SENT, provider_sid=sid))
    session.commit()
    assert apply_status(session, runtime, sid, "failed", "63016") == "updated"
    assert _reload(session, message.id).sent_as == "template"
    assert retry_as_template(session, runtime, message.id) is False
    assert _reload(session, message.id).status is MessageStatus.PENDING


def test_63016_on_a_message_without_fallback_template_stays_failed(client, settings, session, runtime):
    message = _sent_message(session, status=MessageStatus.SENT)
    assert _ok(post_status(client, settings, message.provider_sid, "undelivered", error_code="63016"))
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.UNDELIVERED and stored.error_code == "63016"
    assert stored.error_reason == "outside_window: error 63016"
    assert queued_jobs(runtime, "channel.jobs.deliver") == []


def test_21610_in_a_callback_opts_the_shopper_out(client, settings, session):
    message = _sent_message(session, status=MessageStatus.SENT)
    assert _ok(post_status(client, settings, message.provider_sid, "failed", error_code="21610"))
    assert customer_by_phone(session, PHONE).opted_out_at is not None


def test_a_failure_that_cannot_move_a_delivered_message_means_nothing(client, settings, session):
    message = _sent_message(session, status=MessageStatus.DELIVERED)
    assert _ok(post_status(client, settings, message.provider_sid, "failed", error_code="21610"))
    assert _reload(session, message.id).status is MessageStatus.DELIVERED
    assert customer_by_phone(session, PHONE).opted_out_at is None
