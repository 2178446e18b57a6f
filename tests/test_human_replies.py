"""A person answers a shopper through the store's number (console conversation, seller's opportunity): the provider
gets the message with its author recorded, outside the 24-hour window only an approved template goes (and the page
says why), the bot is silent while a person holds the conversation and answers again after the quiet period, each
user reaches only the customers they may see, the opt-out decision, and bad input is a 400 naming the field.

Real CSRF (tokens read from the pages), real HTTP to Twilio intercepted by ``responses``, real RQ jobs in-process.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
import responses
from sqlalchemy import select

from bot import human_replies
from models import Customer, Direction, Message, Opportunity, OpportunityStatus, TemplateStatus, WhatsAppTemplate, \
    utcnow
from tests.access_world import PASSWORD, PEOPLE, build_world
from tests.channel_helpers import (  # noqa: F401  (fixtures)
    MESSAGES_URL, add_twilio_ok, engine_stub, form_body, post_inbound, run_jobs, twilio_app, twilio_client,
    twilio_runtime,
)


@pytest.fixture
def world(session, twilio_runtime):
    made = build_world(session, with_tokens=False)
    for key in ("own", "other"):  # both wrote a few minutes ago: inside the window
        made.customers[key].last_inbound_at = utcnow() - timedelta(minutes=5)
    session.commit()
    return made


@pytest.fixture
def twilio(twilio_runtime):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        add_twilio_ok(rsps)
        yield rsps


def _page(response) -> str:
    return response.get_data(as_text=True)


def _sign_in(app, kind):
    client = app.test_client()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', _page(client.get("/entrar"))).group(1)
    response = client.post("/entrar", data={"email": PEOPLE[kind][0], "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, kind
    return client


def _form_tokens(page: str) -> dict[str, str]:
    """The reply form's CSRF token and one-time key, as the browser would send them."""
    form = re.search(r'<form method="post" action="[^"]*/responder" class="reply-form">.*?</form>', page, re.S)
    assert form is not None, "no reply form on the page"
    return {name: re.search(rf'name="{name}" value="([^"]+)"', form.group(0)).group(1)
            for name in ("csrf_token", "reply_key")}


def _reply(client, url, page_url, **fields):
    data = {**_form_tokens(_page(client.get(page_url))), **fields}
    return client.post(url, data=data)


def _console(customer):
    return f"/console/conversas/{customer.id}", f"/console/conversas/{customer.id}/responder"


def _twilio_calls(rsps):
    return [form_body(call) for call in rsps.calls if call.request.url == MESSAGES_URL]


def _human_messages(session, customer):
    session.expire_all()
    found = list(session.scalars(select(Message).where(Message.customer_id == customer.id, Message.kind == "seller")
                                 .order_by(Message.id)))
    session.commit()  # end this read (the suite's sessions share one connection)
    return found


def _template(session, *, name="retomar_conversa", status=TemplateStatus.APPROVED, category="utility"):
    template = WhatsAppTemplate(provider="twilio", external_id="HX" + uuid.uuid4().hex, name=name, language="pt_BR",
                                category=category, status=status, body="Oi {{1}}! Podemos continuar seu atendimento?",
                                placeholders=[{"key": "1", "name": "1", "component": "body", "index": None}],
                                buttons=[])
    session.add(template)
    session.commit()
    return template


# --- inside the window: the typed text through the provider, with its author ---------------------------------

def test_a_reply_inside_the_window_goes_through_the_provider_with_its_author(twilio_app, world, session, twilio):
    admin, ana = world.users["admin"], world.customers["own"]
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(ana)
    page = _page(client.get(page_url))
    assert "Janela de 24 horas aberta até" in page and 'name="text"' in page

    response = _reply(client, url, page_url, text="Oi Ana, aqui é da *loja*: o tênis chega amanhã.")
    assert response.status_code == 303 and response.location.endswith(page_url)
    run_jobs(twilio_app.extensions["runtime"])

    [sent] = _twilio_calls(twilio)
    assert sent["To"] == "whatsapp:+5511999990001" and sent["Body"] == "Oi Ana, aqui é da *loja*: o tênis chega amanhã."
    [message] = _human_messages(session, ana)
    assert message.author_id == admin.id and message.direction is Direction.OUTBOUND and not message.automated
    assert message.sent_as == "text" and message.provider_sid and message.status.value == "queued"

    thread = _page(client.get(page_url))
    assert f'<span class="author">{admin.name}</span>' in thread  # who wrote it
    assert "aqui é da <strong>loja</strong>" in thread  # as WhatsApp shows it
    assert '<span class="author">Ana Paulista</span>' in thread  # the shopper's own message
    assert "o robô não responde a este cliente até" in unescape(thread)


def test_a_double_submit_of_the_same_form_is_one_message(twilio_app, world, session, twilio):
    ana = world.customers["own"]
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(ana)
    data = {**_form_tokens(_page(client.get(page_url))), "text": "Já vou ver isso para você."}
    assert client.post(url, data=data).status_code == 303
    assert client.post(url, data=data).status_code == 303
    run_jobs(twilio_app.extensions["runtime"])
    assert len(_human_messages(session, ana)) == 1 and len(_twilio_calls(twilio)) == 1


# --- outside the window: only an approved template, and why -------------------------------------------------

def test_outside_the_window_only_an_approved_template_goes_and_the_page_says_why(twilio_app, world, session, twilio):
    ana = world.customers["own"]
    ana.last_inbound_at = utcnow() - timedelta(days=2)
    session.commit()
    _template(session, name="pendente", status=TemplateStatus.PENDING)  # never offered
    client = _sign_in(twilio_app, "branch_manager")
    page_url, url = _console(ana)

    page = unescape(_page(client.get(page_url)))
    assert "A última mensagem do cliente foi há mais de 24 horas" in page
    assert "Não há modelos aprovados disponíveis para este cliente" in page
    assert 'name="text"' not in page and "reply-form" not in page  # nothing to send: no form at all

    template = _template(session)
    page = unescape(_page(client.get(page_url)))
    assert "fora dessa janela o WhatsApp só entrega modelos aprovados" in page and "Escolha um modelo abaixo" in page
    assert 'name="text"' not in page and "retomar_conversa" in page and "pendente" not in page

    refused = _reply(client, url, page_url, text="Oi, tudo bem?")  # free text is not an option now
    assert refused.status_code == 400
    assert "escolha um dos modelos aprovados" in _page(refused)
    assert _human_messages(session, ana) == [] and _twilio_calls(twilio) == []

    field = human_replies.value_field(template, "1")
    sent = _reply(client, url, page_url, template_id=str(template.id), **{field: "Ana"})
    assert sent.status_code == 303
    run_jobs(twilio_app.extensions["runtime"])
    [call] = _twilio_calls(twilio)
    assert call["ContentSid"] == template.external_id and '"1": "Ana"' in call["ContentVariables"]
    assert "Body" not in call
    [message] = _human_messages(session, ana)
    assert message.sent_as == "template" and message.template_id == template.id
    assert message.body == "Oi Ana! Podemos continuar seu atendimento?"
    assert message.author_id == world.users["branch_manager"].id


# --- the bot's pause ---------------------------------------------------------------------------------------

def test_the_bot_is_silent_while_a_person_holds_the_conversation_then_answers_again(
        twilio_app, twilio_client, world, session, twilio, engine_stub):
    runtime = twilio_app.extensions["runtime"]
    ana = world.customers["own"]
    client = _sign_in(twilio_app, "seller")
    opportunity = world.opportunities["own"]
    page_url = f"/vendedor/oportunidades/{opportunity.id}"
    assert _reply(client, f"{page_url}/responder", page_url, text="Oi Ana! Sou da loja, posso ajudar?"
                  ).status_code == 303
    run_jobs(runtime)

    post_inbound(twilio_client, runtime.settings, phone=ana.phone, body="quero ver tênis")
    run_jobs(runtime)
    assert engine_stub.calls == []  # the bot did not answer: a person is on it
    session.expire_all()
    inbound = session.scalar(select(Message).where(Message.customer_id == ana.id, Message.body == "quero ver tênis"))
    assert inbound.processed_at is not None  # handled (silently), not left for the sweep
    bot_replies = session.scalars(select(Message).where(Message.customer_id == ana.id, Message.kind == "bot")).all()
    assert bot_replies == []
    session.commit()

    # Opting out is still confirmed while paused: it is the channel's, not the conversation's.
    post_inbound(twilio_client, runtime.settings, phone=ana.phone, body="SAIR")
    run_jobs(runtime)
    assert [call["consent_transition"] for call in engine_stub.calls] == ["opt_out"]

    # The quiet period (HUMAN_PAUSE_MINUTES, 30 by default) passes without another human message.
    customer = session.get(Customer, ana.id)
    customer.human_replied_at = utcnow() - timedelta(minutes=runtime.settings.human_pause_minutes, seconds=1)
    session.commit()
    post_inbound(twilio_client, runtime.settings, phone=ana.phone, body="oi de novo")
    run_jobs(runtime)
    assert engine_stub.calls[-1]["body"] == "oi de novo" and engine_stub.calls[-1]["consent_transition"] is None
    session.expire_all()
    assert session.scalars(select(Message).where(Message.customer_id == ana.id, Message.kind == "bot")).all()
    session.commit()


def test_the_quiet_period_is_the_setting(settings):
    ana = Customer(phone="+5511999990001", tags=[])
    now = utcnow()
    assert settings.human_pause_minutes == 30 and not human_replies.bot_paused(ana, settings, now)
    ana.human_replied_at = now - timedelta(minutes=10)
    assert human_replies.bot_paused(ana, settings, now)
    assert not human_replies.bot_paused(ana, dataclasses.replace(settings, human_pause_minutes=5), now)
    from core.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="HUMAN_PAUSE_MINUTES"):
        Settings.from_env({"APP_ENV": "test", "HUMAN_PAUSE_MINUTES": "0"}, instance_path=settings.instance_path)


# --- who may answer whom -----------------------------------------------------------------------------------

def test_a_seller_answers_only_their_own_customers_and_the_back_office_none(twilio_app, world, session, twilio):
    seller = _sign_in(twilio_app, "seller")
    own, other = world.opportunities["own"], world.opportunities["other"]
    page_url = f"/vendedor/oportunidades/{own.id}"
    page = _page(seller.get(page_url))
    assert "Responder pelo WhatsApp da loja" in page and "oi, sou Ana Paulista" in page  # the thread above the form
    tokens = _form_tokens(page)
    assert seller.post(f"/vendedor/oportunidades/{own.id}/responder",
                       data={**tokens, "text": "Oi Ana!"}).status_code == 303
    session.expire_all()
    assert session.get(Opportunity, own.id).status is OpportunityStatus.IN_PROGRESS  # answering starts it
    session.commit()
    # Another seller's opportunity, and the console's route: not theirs.
    assert seller.post(f"/vendedor/oportunidades/{other.id}/responder",
                       data={**tokens, "text": "Oi Bia!"}).status_code == 404
    assert seller.post(f"/console/conversas/{world.customers['own'].id}/responder",
                       data={**tokens, "text": "Oi!"}).status_code == 403

    manager = _sign_in(twilio_app, "branch_manager")  # São Paulo's: Rio's customer is not theirs
    tokens = _form_tokens(_page(manager.get(f"/console/conversas/{world.customers['own'].id}")))
    assert manager.post(f"/console/conversas/{world.customers['other'].id}/responder",
                        data={**tokens, "text": "Oi Bia!"}).status_code == 404

    backoffice = _sign_in(twilio_app, "brand_backoffice")
    page = _page(backoffice.get(f"/console/conversas/{world.customers['own'].id}"))
    assert "reply-form" not in page and "Quem responde os clientes são os vendedores" in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert backoffice.post(f"/console/conversas/{world.customers['own'].id}/responder",
                           data={"csrf_token": token, "reply_key": "k" * 22, "text": "Oi!"}).status_code == 403

    [message] = _human_messages(session, world.customers["own"])
    assert message.author_id == world.users["seller"].id and message.body == "Oi Ana!"
    assert _human_messages(session, world.customers["other"]) == []


def test_a_reply_needs_the_csrf_token(twilio_app, world, session):
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(world.customers["own"])
    tokens = _form_tokens(_page(client.get(page_url)))
    response = client.post(url, data={"reply_key": tokens["reply_key"], "text": "Oi"})
    assert response.status_code == 400 and "A página expirou" in _page(response)
    assert _human_messages(session, world.customers["own"]) == []


# --- opt-out -----------------------------------------------------------------------------------------------

def test_opt_out_stops_replies_until_the_shopper_writes_again_and_never_a_template(twilio_app, world, session,
                                                                                     twilio):
    ana = world.customers["own"]
    now = utcnow()
    ana.opted_out_at = ana.last_inbound_at = now - timedelta(minutes=3)  # their last message was "SAIR"
    session.commit()
    _template(session)
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(ana)
    page = unescape(_page(client.get(page_url)))
    assert "O cliente pediu para sair e não escreveu depois disso" in page and "reply-form" not in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    refused = client.post(url, data={"csrf_token": token, "reply_key": "k" * 22, "text": "Volta, vai!"})
    assert refused.status_code == 400 and _human_messages(session, ana) == []

    # They wrote again after opting out ("onde está meu pedido?"): a person may answer that, inside the window.
    ana.last_inbound_at = now - timedelta(minutes=1)
    session.commit()
    assert "responda só ao que ele perguntou" in unescape(_page(client.get(page_url)))
    assert _reply(client, url, page_url, text="Seu pedido sai hoje.").status_code == 303
    run_jobs(twilio_app.extensions["runtime"])
    assert [c["Body"] for c in _twilio_calls(twilio)] == ["Seu pedido sai hoje."]

    # Outside the window a template would be the business writing first: never to someone who opted out, even if
    # they wrote after opting out.
    ana.opted_out_at, ana.last_inbound_at = now - timedelta(days=3), now - timedelta(days=2)
    session.commit()
    page = unescape(_page(client.get(page_url)))
    assert "Como o cliente pediu para sair, nenhum modelo é enviado" in page and "retomar_conversa" not in page


def test_a_shopper_who_stopped_marketing_gets_no_marketing_template(session, settings):
    marketing = _template(session, name="promo", category="marketing")
    utility = WhatsAppTemplate(provider="twilio", external_id="HX" + "b" * 32, name="aviso", category="utility",
                               status=TemplateStatus.APPROVED, body="Oi", placeholders=[], buttons=[])
    session.add(utility)
    ana = Customer(phone="+5511999990001", tags=[], last_inbound_at=utcnow() - timedelta(days=3),
                   marketing_opted_out_at=utcnow() - timedelta(days=1))
    session.add(ana)
    session.commit()
    settings = dataclasses.replace(settings, twilio_account_sid="AC" + "1" * 32, twilio_auth_token="x" * 32)
    offered = human_replies.options(session, settings, ana, utcnow()).templates
    assert utility in offered and marketing not in offered


# --- bad input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, field, message", [
    ({"text": "   "}, "text", "escreva a mensagem"),
    ({"text": "x" * 1601}, "text", "no máximo 1600 caracteres"),
    ({"text": "Oi", "reply_key": ""}, "reply_key", "formulário inválido"),
    ({"text": "Oi", "reply_key": "<script>"}, "reply_key", "formulário inválido"),
])
def test_bad_input_inside_the_window_is_a_400_naming_the_field(twilio_app, world, session, fields, field, message):
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(world.customers["own"])
    response = _reply(client, url, page_url, **fields)
    assert response.status_code == 400
    page = _page(response)
    assert f'id="{field}-error"' in page and message in unescape(page)
    if field == "text" and fields["text"].strip():
        assert fields["text"] in page  # what was typed is kept
    assert _human_messages(session, world.customers["own"]) == []


@pytest.mark.parametrize("template_id", ["abc", "-1", "99999999999", "0", "１"])
def test_bad_template_choices_are_a_400_naming_the_field(twilio_app, world, session, template_id):
    ana = world.customers["own"]
    ana.last_inbound_at = None  # never wrote
    session.commit()
    _template(session)
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(ana)
    assert "O cliente ainda não escreveu para a loja" in unescape(_page(client.get(page_url)))
    response = _reply(client, url, page_url, template_id=template_id)
    assert response.status_code == 400 and 'id="template_id-error"' in _page(response)
    assert _human_messages(session, ana) == []


def test_an_empty_placeholder_is_a_400_on_that_field(twilio_app, world, session):
    ana = world.customers["own"]
    ana.last_inbound_at = utcnow() - timedelta(hours=25)
    session.commit()
    template = _template(session)
    pending = _template(session, name="pendente", status=TemplateStatus.PENDING)
    client = _sign_in(twilio_app, "admin")
    page_url, url = _console(ana)
    field = human_replies.value_field(template, "1")
    response = _reply(client, url, page_url, template_id=str(template.id), **{field: "   "})
    assert response.status_code == 400 and f'id="{field}-error"' in _page(response)
    assert "preencha o marcador {{1}}" in unescape(_page(response))
    response = _reply(client, url, page_url, template_id=str(pending.id))  # not approved: not a choice
    assert response.status_code == 400 and 'id="template_id-error"' in _page(response)
    assert _human_messages(session, ana) == []
