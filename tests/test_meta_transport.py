"""channel.meta.MetaTransport against a fake of Meta's Cloud API over real HTTP (tests.fake_meta): the payloads
Meta receives (text, template with components, reply buttons and lists), and what each of Meta's error codes
does to a message through channel.sender.deliver."""

from __future__ import annotations

from datetime import timedelta

import pytest

from channel import meta as meta_module
from channel.meta import MetaTransport, content_of, interactive_payload, template_payload
from channel.ratelimit import RateLimiter
from channel.sender import RetryableSendError, deliver, queue_message
from channel.transport import Outbound, OutboundTemplate, ProviderError
from models import Customer, Message, MessageStatus
from tests.channel_helpers import make_customer, now_utc, queued_jobs, run_jobs, scheduled_jobs
from tests.conftest import installed_runtime, make_settings
from tests.fake_meta import ACCESS_TOKEN, PHONE_NUMBER_ID, FakeMeta
from tests.recovery_helpers import approved_template

PHONE = "+5511999990001"
# Meta's wa_id for a Brazilian mobile may come without the ninth digit.
BR_MOBILE, BR_WA_ID = "+5511987654321", "551187654321"


@pytest.fixture
def meta():
    with FakeMeta(wa_ids={BR_MOBILE.lstrip("+"): BR_WA_ID}) as fake:
        yield fake


@pytest.fixture
def meta_runtime(meta, instance_dir, database_url, redis_url, db, redis_client):
    settings = make_settings(instance_dir, database_url, redis_url, **meta.settings_env(),
                             SEND_RATE_PER_SECOND="1000")
    with installed_runtime(settings, db, redis_client) as rt:
        yield rt


def send(session, rt, message_id, *, transport=None, **kwargs):
    return deliver(session, rt, transport or MetaTransport(rt.settings), RateLimiter(rt.redis), message_id, **kwargs)


def queue(session, rt, customer, body="Oi! Posso ajudar?", *, automated=False, kind="bot", **kwargs) -> Message:
    message = queue_message(session, rt, customer, kind=kind, body=body, automated=automated, now=now_utc(), **kwargs)
    session.commit()
    return message


def reload(session, model, id_):
    session.expire_all()
    return session.get(model, id_)


def recovery_template(session, **kwargs):
    return approved_template(session, provider="meta", body="Oi {{1}}! Seu carrinho está esperando: {{2}}",
                             **kwargs)


def with_template(template, mapping=None, **sources):
    return {"template": template, "template_mapping": mapping or {"1": "nome", "2": "itens"},
            "template_sources": {"nome": "Ana", "itens": "2x Camiseta", **sources}}


def options(n, title="Opção"):
    return [{"id": f"opt:{i}", "title": f"{title} {i}"} for i in range(1, n + 1)]


# --- payloads ------------------------------------------------------------------------------------------

def test_text_goes_to_the_phone_digits_with_the_token_on_this_numbers_messages_edge(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer, body="Temos sim! 👟 Tamanhos 38 a 44.\nQuer ver?")
    assert send(session, meta_runtime, message.id).outcome == "sent"
    assert meta.accepted == [{"messaging_product": "whatsapp", "recipient_type": "individual",
                              "to": "5511999990001", "type": "text",
                              "text": {"preview_url": True, "body": "Temos sim! 👟 Tamanhos 38 a 44.\nQuer ver?"}}]
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.ACCEPTED and stored.provider_sid == meta.ids[0]
    assert stored.provider_sid.startswith("wamid.") and stored.sent_as == "text"


def test_the_wa_id_meta_gave_is_stored_and_the_next_message_goes_there(session, meta_runtime, meta):
    customer = make_customer(session, BR_MOBILE)
    assert customer.wa_id is None
    send(session, meta_runtime, queue(session, meta_runtime, customer, body="um").id)
    assert meta.accepted[0]["to"] == "5511987654321"  # E.164 digits without '+' while no wa_id is known
    assert reload(session, Customer, customer.id).wa_id == BR_WA_ID
    send(session, meta_runtime, queue(session, meta_runtime, reload(session, Customer, customer.id), body="dois").id)
    assert meta.accepted[1]["to"] == BR_WA_ID
    assert reload(session, Customer, customer.id).phone == BR_MOBILE  # the shopper is still the same one


def test_a_known_wa_id_is_used_from_the_first_message(session, meta_runtime, meta):
    customer = make_customer(session, BR_MOBILE)
    customer.wa_id = BR_WA_ID
    session.commit()
    send(session, meta_runtime, queue(session, meta_runtime, customer).id)
    assert meta.accepted[0]["to"] == BR_WA_ID


def test_template_with_header_body_and_url_button_components_in_order(session, meta_runtime, meta):
    template = approved_template(
        session, provider="meta", name="carrinho_com_link", header="Oi {{1}}",
        body="{{1}}, seus itens: {{2}}. Cupom {{3}}.",
        buttons=[{"type": "QUICK_REPLY", "text": "Parar"},
                 {"type": "URL", "text": "Finalizar", "url": "https://loja.example/c/{{1}}"}])
    assert [p["key"] for p in template.placeholders] == ["header:1", "1", "2", "3", "button:1:1"]
    customer = make_customer(session, PHONE, last_inbound_at=None)  # outside the window: only the template goes
    message = queue(session, meta_runtime, customer, automated=True, kind="recovery", **with_template(
        template, {"header:1": "nome", "1": "nome", "2": "itens", "3": "cupom", "button:1:1": "carrinho"},
        cupom="VOLTA10", carrinho="c-42"))
    assert message.sent_as == "template"
    assert send(session, meta_runtime, message.id).outcome == "sent"
    [payload] = meta.accepted
    assert payload["type"] == "template" and "text" not in payload
    assert payload["template"] == {
        "name": "carrinho_com_link", "language": {"code": "pt_BR"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Ana"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "2x Camiseta"},
                                            {"type": "text", "text": "VOLTA10"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "c-42"}]},
        ]}
    stored = reload(session, Message, message.id)
    assert stored.body.startswith("*Oi Ana*\nAna, seus itens: 2x Camiseta. Cupom VOLTA10.")
    assert stored.content_sid is None and stored.template_id == template.id


def test_positional_parameters_follow_the_placeholder_numbers_not_the_reading_order():
    """Meta fills {{1}}, {{2}}… from the parameters by position."""
    template = OutboundTemplate(external_id="1", name="t", language="pt_BR", values={"2": "dois", "1": "um"},
                                placeholders=[{"key": "2", "name": "2", "component": "body", "index": None},
                                              {"key": "1", "name": "1", "component": "body", "index": None}])
    assert template_payload(template)["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "um"}, {"type": "text", "text": "dois"}]}]


def test_named_parameters_carry_their_parameter_name(session, meta_runtime, meta):
    template = approved_template(session, provider="meta", body="Oi {{first_name}}! Use {{coupon_code}}.")
    customer = make_customer(session, PHONE, last_inbound_at=None)
    message = queue(session, meta_runtime, customer, automated=True, kind="recovery", **with_template(
        template, {"first_name": "nome", "coupon_code": "cupom"}, cupom="VOLTA10"))
    send(session, meta_runtime, message.id)
    assert meta.accepted[0]["template"]["components"] == [{"type": "body", "parameters": [
        {"type": "text", "text": "Ana", "parameter_name": "first_name"},
        {"type": "text", "text": "VOLTA10", "parameter_name": "coupon_code"}]}]


def test_a_template_without_placeholders_has_no_components():
    template = OutboundTemplate(external_id="1", name="ola", language="pt_BR", placeholders=[], values={})
    assert template_payload(template) == {"name": "ola", "language": {"code": "pt_BR"}}


def test_up_to_three_short_options_are_reply_buttons(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    menu = [{"id": "menu:catalogo", "title": "Ver catálogo"}, {"id": "menu:pedido", "title": "Meu pedido"},
            {"id": "menu:humano", "title": "Falar com alguém"}]
    message = queue(session, meta_runtime, customer, body="Como posso ajudar?", interactive={"options": menu})
    assert send(session, meta_runtime, message.id).outcome == "sent"
    [payload] = meta.accepted
    assert payload["type"] == "interactive" and "text" not in payload
    assert payload["interactive"] == {"type": "button", "body": {"text": "Como posso ajudar?"}, "action": {
        "buttons": [{"type": "reply", "reply": option} for option in menu]}}


def test_a_twenty_character_title_is_still_a_button_and_twenty_one_makes_a_list():
    twenty = [{"id": "a", "title": "x" * 20}]
    assert interactive_payload("Escolha", {"options": twenty})["type"] == "button"
    twenty_one = [{"id": "a", "title": "x" * 21}]
    assert interactive_payload("Escolha", {"options": twenty_one})["type"] == "list"


def test_four_to_ten_options_are_a_list_with_titles_of_at_most_24(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    rows = options(9) + [{"id": "opt:long", "title": "Tênis Corrida Azul Marinho 42", "description": "R$ 299,90"}]
    message = queue(session, meta_runtime, customer, body="Achei estes:",
                    interactive={"options": rows, "button": "Ver produtos", "section": "Resultados"})
    send(session, meta_runtime, message.id)
    interactive = meta.accepted[0]["interactive"]
    assert interactive["type"] == "list" and interactive["body"] == {"text": "Achei estes:"}
    assert interactive["action"]["button"] == "Ver produtos"
    [section] = interactive["action"]["sections"]
    assert section["title"] == "Resultados" and len(section["rows"]) == 10
    assert section["rows"][0] == {"id": "opt:1", "title": "Opção 1"}
    long_row = section["rows"][-1]
    assert long_row["id"] == "opt:long" and long_row["description"] == "R$ 299,90"
    assert len(long_row["title"]) <= 24 and long_row["title"].startswith("Tênis Corrida Azul")
    assert all(len(row["title"]) <= 24 for row in section["rows"])


def test_a_long_title_without_description_keeps_the_full_title_as_the_description():
    row = interactive_payload("Achei", {"options": options(4) + [{"id": "x", "title": "T" * 30}]})
    last = row["action"]["sections"][0]["rows"][-1]
    assert len(last["title"]) == 24 and last["description"] == "T" * 30


@pytest.mark.parametrize("interactive, body", [
    ({"options": options(11)}, "Mais de dez opções"),  # a list holds at most 10 rows
    ({"options": []}, "Sem opções"),
    ({"options": options(2)}, "   "),  # an interactive message needs a body
])
def test_options_that_do_not_fit_fall_back_to_text(interactive, body):
    assert content_of(Outbound(phone=PHONE, body=body, interactive=interactive)) == {
        "type": "text", "text": {"preview_url": True, "body": body}}


def test_too_many_options_are_sent_as_the_text_version(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer, body="1. um\n2. dois\n…", interactive={"options": options(11)})
    assert send(session, meta_runtime, message.id).outcome == "sent"
    assert meta.accepted[0]["type"] == "text" and meta.accepted[0]["text"]["body"] == "1. um\n2. dois\n…"


def test_outside_the_window_the_template_goes_without_the_interactive_part(session, meta_runtime, meta):
    template = recovery_template(session)
    customer = make_customer(session, PHONE, last_inbound_at=None)
    message = queue(session, meta_runtime, customer, body="Oi Ana", automated=True, kind="recovery",
                    interactive={"options": options(2)}, **with_template(template))
    send(session, meta_runtime, message.id)
    assert meta.accepted[0]["type"] == "template" and "interactive" not in meta.accepted[0]


# --- the fake itself: Meta's checks ------------------------------------------------------------------------

def test_a_wrong_token_is_refused_with_metas_401_and_the_message_fails_once(session, meta_runtime, meta):
    meta.access_token = "EAAG-revoked"
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer)
    assert send(session, meta_runtime, message.id).outcome == "failed"
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "190"
    assert "Invalid OAuth access token" in stored.error_reason
    assert meta.accepted == [] and meta.requests == 1


def test_another_phone_number_id_is_not_this_numbers_edge(meta_runtime, meta):
    import requests

    answer = requests.post(f"{meta.url}/999/messages", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
                           json={"messaging_product": "whatsapp", "to": "5511999990001", "type": "text",
                                 "text": {"body": "oi"}}, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
    assert answer.json()["error"]["type"] == "GraphMethodException"
    ok = requests.post(f"{meta.url}/{PHONE_NUMBER_ID}/messages", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
                       json={"messaging_product": "whatsapp", "to": "5511999990001", "type": "text",
                             "text": {"body": "oi"}}, timeout=5).json()
    assert ok["messaging_product"] == "whatsapp"
    assert ok["contacts"] == [{"input": "5511999990001", "wa_id": "5511999990001"}]
    assert ok["messages"][0]["id"].startswith("wamid.")
    assert meta.per_recipient() == {"whatsapp:+5511999990001": 1}


def _rows(n, title="Opção"):
    return {"type": "list", "body": {"text": "Escolha"}, "action": {"button": "Ver", "sections": [
        {"title": "Opções", "rows": [{"id": str(i), "title": f"{title} {i}"} for i in range(n)]}]}}


def _buttons(*titles):
    return {"type": "button", "body": {"text": "Escolha"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": str(i), "title": t}} for i, t in enumerate(titles)]}}


@pytest.mark.parametrize("content, code", [
    ({"type": "interactive", "interactive": _rows(11)}, 131009),
    ({"type": "interactive", "interactive": _rows(3, title="x" * 24)}, 131009),
    ({"type": "interactive", "interactive": _buttons("um", "dois", "três", "quatro")}, 131009),
    ({"type": "interactive", "interactive": _buttons("x" * 21)}, 131009),
    ({"type": "text", "text": {"body": "x" * 4097}}, 131009),
    ({"type": "template", "template": {"name": "t", "language": {"code": "pt_BR"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "duas\nlinhas"}]}]}}, 132018),
    ({"type": "template", "template": {"name": "t"}}, 100),
])
def test_the_fake_refuses_what_meta_refuses(meta_runtime, meta, content, code):
    """So that a payload outside Meta's limits fails these tests as it would fail in production."""
    import requests

    answer = requests.post(f"{meta.url}/{PHONE_NUMBER_ID}/messages", headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
                           json={"messaging_product": "whatsapp", "to": "5511999990001", **content}, timeout=5)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code
    assert meta.accepted == []


# --- Meta's errors through deliver ------------------------------------------------------------------------

def test_131047_on_a_text_sends_its_template_in_the_same_delivery(session, meta_runtime, meta):
    """Our clock said inside the window; Meta says the shopper last wrote more than 24 h ago."""
    template = recovery_template(session)
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer, body="Oi Ana, texto livre", automated=True, kind="recovery",
                    **with_template(template))
    assert message.sent_as == "text"
    meta.fail_next(1, 400, 131047)
    assert send(session, meta_runtime, message.id).outcome == "sent"
    assert [p["type"] for p in meta.received] == ["text", "template"]
    assert len(meta.accepted) == 1 and meta.accepted[0]["template"]["name"] == template.name
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.ACCEPTED and stored.sent_as == "template"
    assert stored.provider_sid == meta.ids[0] and stored.body == "Oi Ana! Seu carrinho está esperando: 2x Camiseta"
    assert send(session, meta_runtime, message.id).outcome == "skipped" and meta.requests == 2


def test_131047_without_a_template_fails_the_message(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer, body="Oi")
    meta.fail_next(1, 400, 131047)
    assert send(session, meta_runtime, message.id).outcome == "failed"
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131047"
    assert stored.error_reason.startswith("outside_window") and meta.requests == 1


def test_131049_marketing_limit_is_recorded_and_not_retried(session, meta_runtime, meta):
    template = recovery_template(session)
    customer = make_customer(session, PHONE, last_inbound_at=None)
    message = queue(session, meta_runtime, customer, automated=True, kind="recovery", **with_template(template))
    meta.fail_next(1, 400, 131049)
    assert send(session, meta_runtime, message.id).outcome == "failed"  # no RetryableSendError
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131049"
    assert stored.error_reason.startswith("marketing_limit")
    assert send(session, meta_runtime, message.id).outcome == "skipped"
    assert meta.requests == 1 and meta.accepted == []
    # The shopper did not opt out: Meta's cap is per period, not a refusal.
    refreshed = reload(session, Customer, customer.id)
    assert refreshed.marketing_opted_out_at is None and refreshed.opted_out_at is None


def test_131049_in_the_job_schedules_no_retry(session, meta_runtime, meta):
    template = recovery_template(session)
    customer = make_customer(session, PHONE, last_inbound_at=None)
    message = queue(session, meta_runtime, customer, automated=True, kind="recovery", **with_template(template))
    meta.fail_next(1, 400, 131049)
    run_jobs(meta_runtime, with_scheduler=True)
    assert scheduled_jobs(meta_runtime) == [] and queued_jobs(meta_runtime) == []
    assert reload(session, Message, message.id).status is MessageStatus.FAILED and meta.requests == 1


def test_131050_marks_the_shopper_as_stopping_marketing_and_blocks_the_next_automated_message(
        session, meta_runtime, meta):
    template = recovery_template(session)
    customer = make_customer(session, PHONE, last_inbound_at=None)
    message = queue(session, meta_runtime, customer, automated=True, kind="recovery", **with_template(template))
    meta.fail_next(1, 400, 131050)
    assert send(session, meta_runtime, message.id).outcome == "failed"
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131050"
    refreshed = reload(session, Customer, customer.id)
    assert refreshed.marketing_opted_out_at is not None and refreshed.opted_out_at is None
    later = queue(session, meta_runtime, refreshed, automated=True, kind="recovery", **with_template(template))
    assert later.status is MessageStatus.BLOCKED and later.error_reason == "marketing_opted_out"
    assert meta.requests == 1


def test_131026_undeliverable_is_permanent(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer)
    meta.fail_next(1, 400, 131026)
    assert send(session, meta_runtime, message.id).outcome == "failed"
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131026"
    assert stored.error_reason.startswith("undeliverable")
    assert send(session, meta_runtime, message.id).outcome == "skipped" and meta.requests == 1


@pytest.mark.parametrize("status, code", [(400, 130429), (400, 80007), (400, 131056), (500, 131000),
                                          (503, 131016), (429, 130429), (502, None)])
def test_rate_limits_and_metas_own_failures_are_retried_then_sent_once(session, meta_runtime, meta, status, code):
    template = recovery_template(session)
    customer = make_customer(session, PHONE, last_inbound_at=None)
    message = queue(session, meta_runtime, customer, automated=True, kind="recovery", **with_template(template))
    meta.fail_next(1, status, code)
    with pytest.raises(RetryableSendError):
        send(session, meta_runtime, message.id)
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.PENDING and stored.provider_sid is None
    assert stored.error_code == str(code or status)
    # What RQ's Retry does later: Meta has recovered. (The shopper's pacing slot was given back.)
    assert send(session, meta_runtime, message.id).outcome == "sent"
    assert len(meta.accepted) == 1 and meta.requests == 2
    assert reload(session, Message, message.id).status is MessageStatus.ACCEPTED


def test_the_last_retry_of_a_rate_limited_message_fails_it(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer)
    meta.fail_next(1, 400, 130429)
    assert send(session, meta_runtime, message.id, final_attempt=True).outcome == "failed"
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_reason.startswith("gave up after retries")


def test_read_timeout_leaves_the_message_unknown_and_it_is_never_resent(session, meta_runtime, meta):
    """Meta took the message but its answer came too late: it may have reached the shopper, so never again."""
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer)
    meta.stall_next(1, 1.0)
    impatient = MetaTransport(meta_runtime.settings, timeout=(5.0, 0.2))
    assert send(session, meta_runtime, message.id, transport=impatient).outcome == "unknown"
    stored = reload(session, Message, message.id)
    assert stored.status is MessageStatus.UNKNOWN and stored.provider_sid is None
    assert send(session, meta_runtime, message.id, transport=impatient).outcome == "skipped"
    assert meta.requests == 1 and len(meta.accepted) == 1


def test_read_timeout_raises_a_maybe_sent_error_that_is_not_retryable(meta_runtime, meta):
    meta.stall_next(1, 1.0)
    with pytest.raises(ProviderError) as caught:
        MetaTransport(meta_runtime.settings, timeout=(5.0, 0.2)).send(Outbound(phone=PHONE, body="oi"))
    assert caught.value.maybe_sent and not caught.value.retryable


def test_unreachable_meta_is_retryable(session, meta_runtime, meta):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer)
    transport = MetaTransport(meta_runtime.settings)
    transport._url = "http://127.0.0.1:9/v21.0/1/messages"  # nothing listens on the discard port
    with pytest.raises(RetryableSendError):
        send(session, meta_runtime, message.id, transport=transport)
    assert reload(session, Message, message.id).status is MessageStatus.PENDING


def test_an_accepted_answer_without_a_message_id_is_never_resent(session, meta_runtime, meta, monkeypatch):
    customer = make_customer(session, PHONE)
    message = queue(session, meta_runtime, customer)

    class Answer:
        status_code = 200

        @staticmethod
        def json():
            return {"messaging_product": "whatsapp", "contacts": [{"input": "5511999990001"}], "messages": []}

    transport = MetaTransport(meta_runtime.settings)
    monkeypatch.setattr(transport._session, "post", lambda *a, **k: Answer())
    assert send(session, meta_runtime, message.id, transport=transport).outcome == "unknown"
    assert reload(session, Message, message.id).status is MessageStatus.UNKNOWN


def test_every_mapped_code_has_its_meaning():
    assert meta_module.MEANINGS == {"131047": "outside_window", "131049": "marketing_limit",
                                    "131050": "marketing_opted_out", "131026": "undeliverable"}
    assert {"130429", "80007", "131056", "131000", "131016"} <= meta_module.RETRYABLE_CODES
    assert not {"131049", "131050", "131026", "131047"} & meta_module.RETRYABLE_CODES


def test_the_window_closing_before_delivery_sends_the_template(session, meta_runtime, meta):
    template = recovery_template(session)
    customer = make_customer(session, PHONE, last_inbound_at=now_utc() - timedelta(hours=23, minutes=59))
    message = queue(session, meta_runtime, customer, body="Oi Ana", automated=True, kind="recovery",
                    **with_template(template))
    assert send(session, meta_runtime, message.id, now=now_utc() + timedelta(minutes=5)).outcome == "sent"
    assert [p["type"] for p in meta.received] == ["template"]
