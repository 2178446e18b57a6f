"""Opt-out / opt-in through the real webhook, and what the sender does with it (Twilio intercepted)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses

from channel.ratelimit import RateLimiter
from channel.sender import deliver, queue_message
from channel.twilio import TwilioTransport
from models import Message, MessageStatus
from recovery.tracker import Tracker
from tests.channel_helpers import (  # noqa: F401 - fixtures
    PHONE, add_twilio_ok, customer_by_phone, engine_stub, form_body, make_customer, now_utc,
    outbound_messages, post_inbound, queued_jobs, run_jobs, twilio_app, twilio_client, twilio_runtime,
)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        add_twilio_ok(rsps)
        yield rsps


def _automated(session, rt, customer, body="Seu carrinho está esperando!"):
    message = queue_message(session, rt, customer, kind="recovery", body=body, automated=True, now=now_utc())
    session.commit()
    return message


def _bodies(api):
    return [form_body(call).get("Body") for call in api.calls]


@pytest.mark.parametrize("word", ["SAIR", "parar", "Descadastrar", "Sair.", "  STOP  ", "PARE!", "cancelar",
                                  "quero sair da lista", "não quero mais receber mensagens", "Descadastre"])
def test_opt_out_is_applied_in_the_webhook_before_any_worker(twilio_client, twilio_runtime, session, word):
    make_customer(session)
    form, response = post_inbound(twilio_client, twilio_runtime.settings, body=word)
    assert response.status_code == 200
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is not None
    assert abs(customer.opted_out_at - now_utc()) < timedelta(minutes=1)
    [job] = queued_jobs(twilio_runtime)  # nothing has run it yet
    assert job.func_name == "bot.jobs.process_inbound" and job.args[1] == "opt_out"


def test_opt_out_of_a_brand_new_number(twilio_client, twilio_runtime, session):
    post_inbound(twilio_client, twilio_runtime.settings, phone="+5548999990002", body="SAIR")
    customer = customer_by_phone(session, "+5548999990002")
    assert customer is not None and customer.opted_out_at is not None and customer.state == "SC"


@pytest.mark.parametrize("text", ["não quero sair sem o tênis", "sair hoje à noite?", "parar de vender o 42?",
                                  "start", "Quero o cupom", "stop motion camiseta"])
def test_ordinary_sentences_do_not_opt_out(twilio_client, twilio_runtime, session, text):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body=text)
    assert customer_by_phone(session, PHONE).opted_out_at is None


@pytest.mark.parametrize("text", [
    "Por favor, quero sair da lista.",
    "não quero receber mais mensagens",
    "Pare de mandar mensagens",
    "parem de me enviar mensagens",
    "não me mande mais mensagens",
    "me tira dessa lista",
    "cancelar inscrição",
])
def test_unambiguous_opt_out_phrasings_are_honoured(twilio_client, twilio_runtime, session, text):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body=text)
    assert customer_by_phone(session, PHONE).opted_out_at is not None


def test_after_opt_out_automated_is_blocked_but_the_reply_goes_out(twilio_client, twilio_runtime, session, api,
                                                                  engine_stub):
    engine_stub.replies = ("Pronto, você não receberá mais mensagens. Envie VOLTAR para voltar.",)
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    customer = customer_by_phone(session, PHONE)

    blocked = _automated(session, twilio_runtime, customer)
    assert blocked.status is MessageStatus.BLOCKED and blocked.error_reason == "opted_out"
    assert [j.func_name for j in queued_jobs(twilio_runtime)] == ["bot.jobs.process_inbound"]  # no delivery job

    run_jobs(twilio_runtime)
    assert _bodies(api) == ["Pronto, você não receberá mais mensagens. Envie VOLTAR para voltar."]
    [_, reply] = outbound_messages(session, customer.id)
    assert reply.automated is False and reply.status is MessageStatus.QUEUED

    # A live-chat (non-automated) message from a seller still goes out to an opted-out shopper.
    seller = queue_message(session, twilio_runtime, customer, kind="seller", body="Oi, aqui é a Carla", automated=False,
                           now=now_utc())
    session.commit()
    run_jobs(twilio_runtime)
    assert _bodies(api)[-1] == "Oi, aqui é a Carla"
    session.expire_all()
    assert session.get(Message, seller.id).status is MessageStatus.QUEUED


def test_voltar_clears_the_opt_out(twilio_client, twilio_runtime, session, api, engine_stub):
    engine_stub.replies = ()
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    assert customer_by_phone(session, PHONE).opted_out_at is not None
    post_inbound(twilio_client, twilio_runtime.settings, body="VOLTAR")
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is None
    assert [j.args[1] for j in queued_jobs(twilio_runtime)] == ["opt_out", "opt_in"]
    message = _automated(session, twilio_runtime, customer)
    assert message.status is MessageStatus.PENDING
    run_jobs(twilio_runtime)
    assert _bodies(api) == ["Seu carrinho está esperando!"]


def test_repeated_opt_out_keeps_the_first_time(twilio_client, twilio_runtime, session):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    first = customer_by_phone(session, PHONE).opted_out_at
    post_inbound(twilio_client, twilio_runtime.settings, body="parar")
    assert customer_by_phone(session, PHONE).opted_out_at == first
    assert [j.args[1] for j in queued_jobs(twilio_runtime)] == ["opt_out", None]


def test_opt_out_between_queueing_and_delivery_stops_the_automated_message(twilio_client, twilio_runtime, session,
                                                                           api, engine_stub):
    engine_stub.replies = ()
    customer = make_customer(session)
    message = _automated(session, twilio_runtime, customer)
    assert message.status is MessageStatus.PENDING  # queued, its delivery job not run yet
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    run_jobs(twilio_runtime)
    session.expire_all()
    stored = session.get(Message, message.id)
    assert stored.status is MessageStatus.BLOCKED and stored.error_reason == "opted_out"
    assert len(api.calls) == 0


def test_opt_out_between_queueing_and_delivery_direct_deliver(twilio_runtime, session, api):
    customer = make_customer(session)
    message = _automated(session, twilio_runtime, customer)
    customer.opted_out_at = now_utc()
    session.commit()
    result = deliver(session, twilio_runtime, TwilioTransport(twilio_runtime.settings), RateLimiter(twilio_runtime.redis),
                     message.id)
    assert result.outcome == "blocked"
    assert len(api.calls) == 0
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.BLOCKED


def test_opt_out_stops_recovery_tracking(twilio_client, twilio_runtime, session):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="Quero ver tênis")
    customer = customer_by_phone(session, PHONE)
    tracker = Tracker(twilio_runtime)
    assert tracker.due_at(customer.id) is not None
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    assert tracker.due_at(customer.id) is None
    # Further chatting while opted out does not put the shopper back in the recovery set.
    post_inbound(twilio_client, twilio_runtime.settings, body="qual o horário da loja?")
    assert tracker.due_at(customer.id) is None


def test_opted_out_shopper_chatting_does_not_reenter_tracking_after_replies(twilio_client, twilio_runtime, session,
                                                                            api, engine_stub):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    post_inbound(twilio_client, twilio_runtime.settings, body="qual o horário?")
    run_jobs(twilio_runtime)  # the engine replies to both
    customer = customer_by_phone(session, PHONE)
    assert Tracker(twilio_runtime).due_at(customer.id) is None


# --- generous opt-out and the one question (channel.consent; the outside test's examples) ------------------------

OUTSIDE_TEST_OPT_OUTS = ["sairr", "siar", "sai", "SAIR SAIR", "para", "parem", "cancela", "descadastra",
                         "não quero mais", "stop please", "STOP ALL", "remover", "sair\nobrigado"]


@pytest.mark.parametrize("text", OUTSIDE_TEST_OPT_OUTS)
def test_opt_out_in_any_common_phrasing_is_applied_at_once(twilio_client, twilio_runtime, session, text):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body=text)
    assert customer_by_phone(session, PHONE).opted_out_at is not None, text


@pytest.mark.parametrize("text", ["tem saia preta?", "parei de usar tênis", "cancelar pedido 1234",
                                  "não quero mais o tênis, tira do carrinho"])
def test_product_questions_that_look_like_opt_outs_stay_product_questions(twilio_client, twilio_runtime, session,
                                                                          text):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body=text)
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is None and customer.opt_out_asked_at is None, text


def test_an_unsure_message_asks_once_and_sim_opts_out(twilio_client, twilio_runtime, session, api):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="para com isso")
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is None and customer.opt_out_asked_at is not None
    # While the question is open nothing automated goes out.
    held = _automated(session, twilio_runtime, customer)
    assert held.status is MessageStatus.BLOCKED and held.error_reason == "opt_out_asked"
    run_jobs(twilio_runtime)
    assert "Responda *SIM*" in _bodies(api)[-1]
    post_inbound(twilio_client, twilio_runtime.settings, body="sim")
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is not None and customer.opt_out_asked_at is None
    run_jobs(twilio_runtime)
    assert "não vai mais receber" in _bodies(api)[-1]


def test_answering_no_or_moving_on_closes_the_question(twilio_client, twilio_runtime, session, api):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="para com isso")
    post_inbound(twilio_client, twilio_runtime.settings, body="não")
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is None and customer.opt_out_asked_at is None
    run_jobs(twilio_runtime)
    assert "continua com a gente" in _bodies(api)[-1]
    post_inbound(twilio_client, twilio_runtime.settings, body="para com isso")
    post_inbound(twilio_client, twilio_runtime.settings, body="tem tênis preto 42?")  # moved on
    customer = customer_by_phone(session, PHONE)
    assert customer.opted_out_at is None and customer.opt_out_asked_at is None
    assert _automated(session, twilio_runtime, customer).status is MessageStatus.PENDING


def test_sair_again_after_opting_out_gets_a_short_confirmation(twilio_client, twilio_runtime, session, api):
    make_customer(session)
    post_inbound(twilio_client, twilio_runtime.settings, body="SAIR")
    post_inbound(twilio_client, twilio_runtime.settings, body="sair")
    run_jobs(twilio_runtime)
    bodies = _bodies(api)
    assert len(bodies) == 2 and "já está fora da nossa lista" in bodies[1]


@pytest.mark.parametrize("text", OUTSIDE_TEST_OPT_OUTS)
def test_no_recovery_message_after_any_of_the_outside_tests_opt_outs(twilio_client, twilio_runtime, session, text):
    from recovery.tick import run_tick
    from tests.recovery_helpers import enable_recovery, recovery_messages

    enable_recovery(session, quiet_start="00:00", quiet_end="00:00")
    post_inbound(twilio_client, twilio_runtime.settings, body="tem tênis preto 42?")
    post_inbound(twilio_client, twilio_runtime.settings, body=text)
    run_jobs(twilio_runtime)
    run_tick(session, twilio_runtime, now_utc() + timedelta(minutes=15))
    assert [m for m in recovery_messages(session) if m.status is not MessageStatus.BLOCKED] == []
