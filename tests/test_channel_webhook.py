"""POST /webhooks/whatsapp: signatures, redelivery, malformed forms, odd but valid messages, and the job it queues."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis as redis_lib
from sqlalchemy import select

from core.runtime import Runtime
from models import Customer, Direction, Message, MessageStatus
from tests.channel_helpers import (  # noqa: F401 - engine_stub and twilio_* are fixtures
    INBOUND_PATH, PHONE, STATUS_PATH, TWILIO_SID, TWILIO_TOKEN, count, customer_by_phone, engine_stub, inbound_form,
    inbound_messages, lose_queued_job, new_sid, now_utc, outbound_messages, post_inbound, post_signed, queued_jobs,
    run_jobs, signature, twilio_app, twilio_client, twilio_runtime,
)
from tests.conftest import delete_prefixed, make_settings


def _nothing_stored(session, before_messages: int, before_customers: int) -> bool:
    return count(session, Message) == before_messages and count(session, Customer) == before_customers


# --- signatures ------------------------------------------------------------------------------------

def test_valid_signature_gets_empty_twiml_and_stores_the_message(client, settings, session, runtime):
    form, response = post_inbound(client, settings, body="Olá, vocês têm tênis 42?")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert b"<Response" in response.data and b"<Message" not in response.data
    [message] = inbound_messages(session, form["MessageSid"])
    assert message.direction is Direction.INBOUND
    assert message.status is MessageStatus.RECEIVED
    assert message.body == "Olá, vocês têm tênis 42?"
    assert message.customer.phone == PHONE
    assert [j.func_name for j in queued_jobs(runtime)] == ["bot.jobs.process_inbound"]
    assert queued_jobs(runtime)[0].origin.endswith("-high")


def _tamper_body(form):
    return {**form, "Body": "SAIR"}


def _add_field(form):
    return {**form, "Extra": "1"}


def _drop_field(form):
    return {k: v for k, v in form.items() if k != "ProfileName"}


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "other_url", "other_path", "https_url",
                                  "other_token", "tampered_body", "added_field", "dropped_field", "query_string"])
def test_bad_signature_is_403_and_nothing_is_stored(client, settings, session, runtime, case):
    form = inbound_form(body="Oi")
    headers = {"X-Twilio-Signature": signature(settings, INBOUND_PATH, form)}
    sent, path = form, INBOUND_PATH
    if case == "missing":
        headers = {}
    elif case == "empty":
        headers = {"X-Twilio-Signature": ""}
    elif case == "garbage":
        headers = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    elif case == "other_url":
        headers = {"X-Twilio-Signature": signature(settings, INBOUND_PATH, form, url="https://evil.example/webhooks/whatsapp")}
    elif case == "other_path":
        headers = {"X-Twilio-Signature": signature(settings, STATUS_PATH, form)}
    elif case == "https_url":
        headers = {"X-Twilio-Signature": signature(
            settings, INBOUND_PATH, form, url=settings.public_base_url.replace("http://", "https://") + INBOUND_PATH)}
    elif case == "other_token":
        headers = {"X-Twilio-Signature": signature(settings, INBOUND_PATH, form, token="y" * 32)}
    elif case == "tampered_body":
        sent = _tamper_body(form)
    elif case == "added_field":
        sent = _add_field(form)
    elif case == "dropped_field":
        sent = _drop_field(form)
    elif case == "query_string":
        path = INBOUND_PATH + "?foo=bar"
    before_m, before_c = count(session, Message), count(session, Customer)
    response = client.post(path, data=sent, headers=headers)
    assert response.status_code == 403
    assert _nothing_stored(session, before_m, before_c)
    assert queued_jobs(runtime) == []
    assert customer_by_phone(session, PHONE) is None


def test_signature_over_the_public_url_is_accepted_whatever_host_the_request_reached(client, settings, session):
    """Behind a proxy the app sees another host; the signature is over PUBLIC_BASE_URL."""
    form = inbound_form()
    response = client.post(INBOUND_PATH, data=form, base_url="http://internal-lb:8080",
                           headers={"X-Twilio-Signature": signature(settings, INBOUND_PATH, form)})
    assert response.status_code == 200
    assert len(inbound_messages(session, form["MessageSid"])) == 1
    # ...and a signature over the host the request actually reached is not.
    form2 = inbound_form()
    response = client.post(INBOUND_PATH, data=form2, base_url="http://internal-lb:8080", headers={
        "X-Twilio-Signature": signature(settings, INBOUND_PATH, form2, url="http://internal-lb:8080" + INBOUND_PATH)})
    assert response.status_code == 403


def test_with_twilio_credentials_the_real_auth_token_signs(twilio_client, twilio_runtime, settings, session):
    """In production the account's Auth Token signs webhooks; the development token must then be refused."""
    assert twilio_runtime.settings.webhook_auth_token == TWILIO_TOKEN
    form = inbound_form()
    dev_signed = signature(twilio_runtime.settings, INBOUND_PATH, form, token=settings.webhook_auth_token)
    assert settings.webhook_auth_token != TWILIO_TOKEN
    assert twilio_client.post(INBOUND_PATH, data=form, headers={"X-Twilio-Signature": dev_signed}).status_code == 403
    assert post_signed(twilio_client, twilio_runtime.settings, INBOUND_PATH, form).status_code == 200
    assert len(inbound_messages(session, form["MessageSid"])) == 1


def test_get_is_not_allowed(client, settings):
    assert client.get(INBOUND_PATH).status_code == 405


@pytest.mark.parametrize("case", ["missing", "wrong", "other_token", "tampered"])
def test_status_callback_requires_a_valid_signature(client, settings, session, case):
    customer = Customer(phone=PHONE, tags=[])
    session.add(customer)
    session.flush()
    sid = new_sid()
    session.add(Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind="bot", body="x",
                        provider_sid=sid, status=MessageStatus.QUEUED))
    session.commit()
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": TWILIO_SID}
    headers = {"X-Twilio-Signature": signature(settings, STATUS_PATH, form)}
    sent = form
    if case == "missing":
        headers = {}
    elif case == "wrong":
        headers = {"X-Twilio-Signature": signature(settings, INBOUND_PATH, form)}
    elif case == "other_token":
        headers = {"X-Twilio-Signature": signature(settings, STATUS_PATH, form, token="z" * 32)}
    elif case == "tampered":
        sent = {**form, "MessageStatus": "failed", "ErrorCode": "30008"}
    response = client.post(STATUS_PATH, data=sent, headers=headers)
    assert response.status_code == 403
    session.expire_all()
    message = session.scalar(select(Message).where(Message.provider_sid == sid))
    assert message.status is MessageStatus.QUEUED and message.delivered_at is None
    # The genuine callback still works.
    assert post_signed(client, settings, STATUS_PATH, form).status_code in (200, 204)
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED


# --- redelivery --------------------------------------------------------------------------------------

def test_same_message_sid_three_times_is_stored_and_processed_once(client, settings, session, runtime):
    form = inbound_form(body="Quero ver camisetas")
    for _ in range(3):
        response = post_signed(client, settings, INBOUND_PATH, form)
        assert response.status_code == 200
        assert response.mimetype == "text/xml"
    assert len(inbound_messages(session, form["MessageSid"])) == 1
    assert len(queued_jobs(runtime, "bot.jobs.process_inbound")) == 1
    assert count(session, Customer, Customer.phone == PHONE) == 1


def test_redelivery_with_other_fields_changes_nothing_stored(client, settings, session, runtime):
    """The MessageSid alone decides: a redelivery whose body, name or consent keyword differ stores nothing,
    renames no one and changes no consent, and queues no second job."""
    form = inbound_form(body="Quero ver camisetas")
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    altered = {**form, "Body": "SAIR", "ProfileName": "Outro Nome"}
    assert post_signed(client, settings, INBOUND_PATH, altered).status_code == 200
    [message] = inbound_messages(session, form["MessageSid"])
    assert message.body == "Quero ver camisetas"
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is None
    assert count(session, Customer) == 1
    assert len(queued_jobs(runtime, "bot.jobs.process_inbound")) == 1


def test_an_integrity_error_that_is_not_a_redelivery_is_not_swallowed(session, runtime, monkeypatch):
    """Only a stored MessageSid makes a conflict a redelivery; any other constraint failure surfaces."""
    from sqlalchemy.exc import IntegrityError

    from channel import inbound

    def broken_add(instance, *args, **kwargs):
        raise IntegrityError("INSERT INTO messages", {}, Exception("CHECK constraint failed"))

    monkeypatch.setattr(session, "add", broken_add)
    with pytest.raises(IntegrityError):
        inbound.receive_inbound(session, inbound.parse_form(inbound_form(body="oi")), now_utc())
    assert queued_jobs(runtime, "bot.jobs.process_inbound") == []


def test_message_whose_job_could_not_be_enqueued_is_processed_on_redelivery(client, settings, session, runtime,
                                                                            monkeypatch):
    from rq import Queue

    real_enqueue = Queue.enqueue
    attempts = []

    def enqueue_failing_once(self, *args, **kwargs):
        attempts.append(args[0])
        if len(attempts) == 1:
            raise redis_lib.exceptions.ConnectionError("Redis went away")
        return real_enqueue(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue", enqueue_failing_once)
    form = inbound_form(body="Quero comprar")
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 500
    assert len(inbound_messages(session, form["MessageSid"])) == 1  # stored, but no job
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200  # Twilio retries
    assert len(queued_jobs(runtime, "bot.jobs.process_inbound")) == 1


def test_requeued_processing_of_an_opt_out_still_says_opt_out(client, settings, session, runtime, monkeypatch):
    from rq import Queue

    real_enqueue = Queue.enqueue
    calls = []

    def enqueue_failing_once(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise redis_lib.exceptions.ConnectionError("Redis went away")
        return real_enqueue(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue", enqueue_failing_once)
    form = inbound_form(body="SAIR")
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 500
    assert customer_by_phone(session, PHONE).opted_out_at is not None
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    [job] = queued_jobs(runtime, "bot.jobs.process_inbound")
    assert job.args[1] == "opt_out"


def test_redelivery_of_an_opt_out_does_not_touch_consent_again(client, settings, session):
    form = inbound_form(body="SAIR")
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    first = customer_by_phone(session, PHONE).opted_out_at
    # The shopper opts back in, then Twilio redelivers the old SAIR: it must not opt them out again.
    assert post_inbound(client, settings, body="VOLTAR")[1].status_code == 200
    assert customer_by_phone(session, PHONE).opted_out_at is None
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    assert customer_by_phone(session, PHONE).opted_out_at is None
    assert first is not None


@pytest.fixture
def committed_app(instance_dir, database_url, redis_url, committed_db):
    from app import create_app

    settings = make_settings(instance_dir, database_url, redis_url)
    client = redis_lib.Redis.from_url(redis_url)
    rt = Runtime(settings, database=committed_db, redis_client=client)
    yield create_app({"RUNTIME": rt, "TESTING": True}), rt
    delete_prefixed(client, settings.redis_key_prefix)


def _hammer(app, settings, forms, results):
    barrier = threading.Barrier(len(forms))

    def worker(i, form):
        c = app.test_client()
        barrier.wait()
        try:
            results[i] = post_signed(c, settings, INBOUND_PATH, form).status_code
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results[i] = repr(exc)

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(forms)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def test_concurrent_redeliveries_of_one_sid_store_one_row(committed_app, committed_db):
    app, rt = committed_app
    form = inbound_form(body="Oi, concorrência")
    results: dict[int, object] = {}
    _hammer(app, rt.settings, [form] * 8, results)
    assert list(results.values()) == [200] * 8
    with committed_db.session() as s:
        [message] = inbound_messages(s, form["MessageSid"])
        message_id = message.id
        assert count(s, Customer) == 1
    # The job is queued for that message; how many times is pinned down deterministically (and currently broken)
    # by test_redelivery_racing_the_after_commit_enqueue_queues_processing_once.
    assert {j.args[0] for j in queued_jobs(rt, "bot.jobs.process_inbound")} == {message_id}


def test_redelivery_racing_the_after_commit_enqueue_queues_processing_once(client, settings, session, runtime,
                                                                         engine_stub, monkeypatch):
    from rq import Queue

    from channel.inbound import parse_form, receive_inbound

    engine_stub.replies = ()  # e.g. a sticker: nothing to answer
    form = inbound_form(body="", NumMedia="1")
    real_enqueue = Queue.enqueue
    raced = []

    def twilio_redelivers_first(self, *args, **kwargs):
        if not raced:
            raced.append(True)
            with runtime.db.session() as redelivery:  # the row is committed, the job not queued yet
                assert receive_inbound(redelivery, parse_form(form), now_utc()).duplicate
        return real_enqueue(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue", twilio_redelivers_first)
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    assert raced
    run_jobs(runtime)
    assert len(engine_stub.calls) == 1


def test_concurrent_first_messages_from_a_new_number_create_one_customer(committed_app, committed_db):
    app, rt = committed_app
    forms = [inbound_form(body=f"msg {i}") for i in range(6)]
    results: dict[int, object] = {}
    _hammer(app, rt.settings, forms, results)
    assert list(results.values()) == [200] * 6
    with committed_db.session() as s:
        assert count(s, Customer) == 1
        assert count(s, Message, Message.direction == Direction.INBOUND) == 6
    assert len(queued_jobs(rt, "bot.jobs.process_inbound")) == 6


# --- malformed forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field, change", [
    ("MessageSid", {"MessageSid": None, "SmsMessageSid": None}),
    ("MessageSid", {"MessageSid": "", "SmsMessageSid": ""}),
    ("MessageSid", {"MessageSid": "SM123", "SmsMessageSid": "SM123"}),
    ("MessageSid", {"MessageSid": "sm" + "a" * 32, "SmsMessageSid": None}),
    ("MessageSid", {"MessageSid": "SM" + "a" * 30 + "/../x", "SmsMessageSid": None}),
    ("From", {"From": None}),
    ("From", {"From": ""}),
    ("From", {"From": "whatsapp:"}),
    ("From", {"From": "whatsapp:+55123"}),
    ("From", {"From": "whatsapp:banana"}),
    ("From", {"From": "whatsapp:+5500999990001"}),
    ("From", {"From": "+" + "9" * 300}),
    ("NumMedia", {"NumMedia": "abc"}),
    ("NumMedia", {"NumMedia": "-1"}),
    ("NumMedia", {"NumMedia": "1.5"}),
    ("NumMedia", {"NumMedia": "11"}),
    ("NumMedia", {"NumMedia": "999999999999999999999999"}),
])
def test_malformed_form_is_400_naming_the_field_and_stores_nothing(client, settings, session, runtime, field, change):
    form = inbound_form()
    for key, value in change.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    before_m, before_c = count(session, Message), count(session, Customer)
    response = post_signed(client, settings, INBOUND_PATH, form)
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["field"] == field
    assert _nothing_stored(session, before_m, before_c)
    assert queued_jobs(runtime) == []


@pytest.mark.parametrize("num_media", ["²", "1²", "①", "1" * 5000])
def test_num_media_with_non_ascii_or_huge_digits_is_400_not_500(client, settings, session, num_media):
    before_m, before_c = count(session, Message), count(session, Customer)
    response = post_signed(client, settings, INBOUND_PATH, inbound_form(NumMedia=num_media))
    assert response.status_code == 400
    assert response.get_json()["field"] == "NumMedia"
    assert _nothing_stored(session, before_m, before_c)


def test_form_with_no_fields_at_all_is_400(client, settings, session):
    response = post_signed(client, settings, INBOUND_PATH, {})
    assert response.status_code == 400
    assert response.get_json()["field"] == "MessageSid"


def test_json_body_instead_of_a_form_is_400_not_500(client, settings):
    # Signed over no form parameters: passes the signature, then fails validation.
    response = client.post(INBOUND_PATH, json={"MessageSid": new_sid(), "From": "whatsapp:" + PHONE},
                           headers={"X-Twilio-Signature": signature(settings, INBOUND_PATH, {})})
    assert response.status_code == 400


# --- unusual but valid messages -------------------------------------------------------------------

def test_media_message_without_text(client, settings, session):
    form, response = post_inbound(client, settings, body="", NumMedia="1", MediaUrl0="https://api.twilio.com/m/1",
                                  MediaContentType0="image/jpeg")
    assert response.status_code == 200
    [message] = inbound_messages(session, form["MessageSid"])
    assert message.media_count == 1 and message.body == ""


def test_message_without_body_field(client, settings, session):
    form = inbound_form()
    form.pop("Body")
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    assert inbound_messages(session, form["MessageSid"])[0].body == ""


@pytest.mark.parametrize("body", ["", "   ", "😀🛒👟", "👍🏽", "\u200b", "ação ÇÃO ñ", "a\x00b", "<Response>&amp;</Response>",
                                  "'; DROP TABLE messages; --", "\r\n\t"])
def test_odd_bodies_are_stored(client, settings, session, body):
    form, response = post_inbound(client, settings, body=body)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    [message] = inbound_messages(session, form["MessageSid"])
    assert message.body == body.replace("\x00", "")


def test_very_long_body_is_accepted(client, settings, session):
    body = "ç" * 5000
    form, response = post_inbound(client, settings, body=body)
    assert response.status_code == 200
    [message] = inbound_messages(session, form["MessageSid"])
    assert 0 < len(message.body) <= 5000
    assert body.startswith(message.body)


def test_unknown_brazilian_number_creates_the_customer_with_ddd_and_state(client, settings, session):
    form, response = post_inbound(client, settings, phone="+5531988887777", body="Oi", ProfileName="  Bia Souza  ")
    assert response.status_code == 200
    customer = customer_by_phone(session, "+5531988887777")
    assert customer is not None
    assert (customer.ddd, customer.state, customer.city) == ("31", "MG", "Belo Horizonte")
    assert customer.name == "Bia Souza"
    assert customer.opted_out_at is None
    assert customer.last_inbound_at is not None
    assert abs(customer.last_inbound_at - now_utc()) < timedelta(minutes=1)


@pytest.mark.parametrize("raw, e164", [
    ("whatsapp:5521988887777", "+5521988887777"),  # WaId style, no '+'
    ("whatsapp:+552188887777", "+5521988887777"),  # mobile without the ninth digit
    ("whatsapp:+55 (21) 98888-7777", "+5521988887777"),
])
def test_phone_spellings_map_to_one_customer(client, settings, session, raw, e164):
    form = inbound_form(From=raw)
    assert post_signed(client, settings, INBOUND_PATH, form).status_code == 200
    customer = customer_by_phone(session, e164)
    assert customer is not None and customer.ddd == "21" and customer.state == "RJ"


def test_foreign_number_is_accepted_without_location(client, settings, session):
    form, response = post_inbound(client, settings, phone="+12125551234", body="Hello")
    assert response.status_code == 200
    customer = customer_by_phone(session, "+12125551234")
    assert customer is not None and (customer.ddd, customer.state, customer.city) == (None, None, None)


def test_very_long_profile_name_is_cut_to_the_column(client, settings, session):
    form, response = post_inbound(client, settings, ProfileName="N" * 500)
    assert response.status_code == 200
    assert len(customer_by_phone(session, PHONE).name) <= 120


def test_profile_name_does_not_overwrite_a_known_name(client, settings, session):
    session.add(Customer(phone=PHONE, name="Ana Maria", tags=[]))
    session.commit()
    assert post_inbound(client, settings, ProfileName="Spam Name")[1].status_code == 200
    assert customer_by_phone(session, PHONE).name == "Ana Maria"


def test_last_inbound_at_is_updated_by_every_new_message(client, settings, session):
    old = now_utc() - timedelta(days=3)
    session.add(Customer(phone=PHONE, name="Ana", tags=[], last_inbound_at=old))
    session.commit()
    assert post_inbound(client, settings)[1].status_code == 200
    assert customer_by_phone(session, PHONE).last_inbound_at > old + timedelta(days=2)


# --- the queued job ----------------------------------------------------------------------------------

def test_worker_runs_the_engine_once_and_the_reply_goes_to_the_outbox(client, settings, session, runtime, engine_stub):
    form, response = post_inbound(client, settings, body="Tem camiseta preta?")
    assert response.status_code == 200
    assert engine_stub.calls == []  # nothing ran in the request
    run_jobs(runtime)
    assert [c["body"] for c in engine_stub.calls] == ["Tem camiseta preta?"]
    customer = customer_by_phone(session, PHONE)
    [reply] = outbound_messages(session, customer.id)
    assert reply.body == "Oi! Como posso ajudar?"
    assert reply.kind == "bot" and reply.automated is False
    assert reply.status is MessageStatus.OUTBOX
    assert queued_jobs(runtime) == []


def test_media_count_and_consent_reach_the_engine(client, settings, session, runtime, engine_stub):
    post_inbound(client, settings, body="", NumMedia="2")
    post_inbound(client, settings, body="parar")
    run_jobs(runtime)
    assert [(c["body"], c["media_count"], c["consent_transition"]) for c in engine_stub.calls] == [
        ("", 2, None), ("parar", 0, "opt_out")]


def test_process_inbound_run_twice_queues_the_replies_once(client, settings, session, runtime, engine_stub):
    import bot.jobs

    form, _ = post_inbound(client, settings, body="Oi")
    [message] = inbound_messages(session, form["MessageSid"])
    engine_stub.replies = ("Oi!", "Posso ajudar?")
    bot.jobs.process_inbound(message.id)
    bot.jobs.process_inbound(message.id)  # the same job, re-run after a worker crash
    assert [m.body for m in outbound_messages(session, message.customer_id)] == ["Oi!", "Posso ajudar?"]
    assert len(queued_jobs(runtime, "channel.jobs.deliver")) == 2


def test_processing_records_processed_at_so_a_message_without_replies_is_not_run_twice(client, settings, session,
                                                                                     runtime, engine_stub):
    import bot.jobs

    engine_stub.replies = ()  # e.g. a sticker: nothing to answer, so no reply marks it done
    form, _ = post_inbound(client, settings, body="", NumMedia="1")
    [message] = inbound_messages(session, form["MessageSid"])
    assert message.processed_at is None
    bot.jobs.process_inbound(message.id)
    bot.jobs.process_inbound(message.id)
    assert len(engine_stub.calls) == 1
    assert inbound_messages(session, form["MessageSid"])[0].processed_at is not None


def test_an_inbound_job_lost_after_rq_popped_it_is_queued_again_by_the_sweep_once(client, settings, session,
                                                                                  runtime, engine_stub):
    from bot.jobs import sweep_unprocessed_inbound

    form, _ = post_inbound(client, settings, body="Tem camiseta preta?")
    lose_queued_job(runtime, "bot.jobs.process_inbound")
    assert sweep_unprocessed_inbound() == 0  # under two minutes old: its job may just be waiting
    assert sweep_unprocessed_inbound(stale_after=timedelta(0)) == 1
    assert sweep_unprocessed_inbound(stale_after=timedelta(0)) == 1  # still unprocessed, but queued once only
    assert len(queued_jobs(runtime, "bot.jobs.process_inbound")) == 1
    run_jobs(runtime)
    assert [c["body"] for c in engine_stub.calls] == ["Tem camiseta preta?"]
    assert len(outbound_messages(session, customer_by_phone(session, PHONE).id)) == 1
    assert sweep_unprocessed_inbound(stale_after=timedelta(0)) == 0


def test_the_sweep_does_not_answer_messages_older_than_an_hour(client, settings, session, runtime, engine_stub):
    from bot.jobs import sweep_unprocessed_inbound

    form, _ = post_inbound(client, settings, body="Oi")
    lose_queued_job(runtime, "bot.jobs.process_inbound")
    [message] = inbound_messages(session, form["MessageSid"])
    message.created_at = now_utc() - timedelta(hours=1, minutes=1)
    session.commit()
    assert sweep_unprocessed_inbound(stale_after=timedelta(0)) == 0
    assert queued_jobs(runtime) == []


def test_replies_whose_delivery_could_not_be_enqueued_are_sent_by_the_retry(client, settings, session, runtime,
                                                                          engine_stub, monkeypatch):
    import bot.jobs
    from rq import Queue

    form, _ = post_inbound(client, settings, body="Oi")
    [message] = inbound_messages(session, form["MessageSid"])
    real_enqueue = Queue.enqueue
    failures = []

    def redis_blip(self, *args, **kwargs):
        if not failures:
            failures.append(args)
            raise redis_lib.exceptions.ConnectionError("Redis went away")
        return real_enqueue(self, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue", redis_blip)
    with pytest.raises(redis_lib.exceptions.ConnectionError):
        bot.jobs.process_inbound(message.id)  # the first run: replies committed, enqueue fails
    assert len(failures) == 1  # Redis is back for the retry
    bot.jobs.process_inbound(message.id)  # RQ's retry of the same job
    [reply] = outbound_messages(session, message.customer_id)
    assert reply.status is MessageStatus.PENDING
    assert [j.args for j in queued_jobs(runtime, "channel.jobs.deliver")] == [(reply.id,)]
