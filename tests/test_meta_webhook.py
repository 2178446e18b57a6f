"""GET/POST /webhooks/meta: Meta's WhatsApp Cloud API webhook (handshake, signature, batched messages, statuses
and marketing preferences), with payloads shaped as Meta's webhook reference documents them."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import redis as redis_lib
import responses
from sqlalchemy import select

from channel.ratelimit import RateLimiter
from channel.sender import deliver, queue_message
from channel.templates import placeholders_in
from channel.transport import make_transport
from core.security import hmac_sha256_hex
from models import Customer, Direction, Message, MessageStatus, TemplateStatus, WhatsAppTemplate
from tests.channel_helpers import (  # noqa: F401 - engine_stub is a fixture
    count, customer_by_phone, engine_stub, inbound_messages, make_customer, now_utc, outbound_messages,
    queued_jobs, run_jobs,
)
from tests.conftest import installed_runtime, make_settings

PATH = "/webhooks/meta"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
GRAPH = "https://graph.test/v21.0"
GRAPH_MESSAGES = f"{GRAPH}/{PHONE_NUMBER_ID}/messages"

WA_ID = "5511999990001"  # a Brazilian mobile as Meta writes it, with the ninth digit
PHONE = "+5511999990001"
OLD_WA_ID = "551187654321"  # the same kind of number without the ninth digit
OLD_PHONE = "+5511987654321"
WA_ID_2 = "5521988887777"
PHONE_2 = "+5521988887777"


# --- payloads as Meta documents them ---------------------------------------------------------------

def new_wamid() -> str:
    return "wamid." + base64.b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode()


def ts(offset: int = 0) -> str:
    return str(int(time.time()) + offset)


def envelope(*entries: dict) -> dict:
    return {"object": "whatsapp_business_account", "entry": list(entries)}


def entry(*changes: dict, waba_id: str = WABA_ID) -> dict:
    return {"id": waba_id, "changes": list(changes)}


def _value(phone_number_id: str = PHONE_NUMBER_ID) -> dict:
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id}}


def messages_change(messages: list[dict] = (), *, contacts: list[dict] | None = None,
                    statuses: list[dict] = (), phone_number_id: str = PHONE_NUMBER_ID) -> dict:
    value = _value(phone_number_id)
    if messages:
        value["contacts"] = contacts if contacts is not None else [
            contact(wa_id) for wa_id in dict.fromkeys(m.get("from") for m in messages if isinstance(m, dict))]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"value": value, "field": "messages"}


def contact(wa_id: str, name: str = "Ana Souza") -> dict:
    return {"profile": {"name": name}, "wa_id": wa_id}


def text(body: str, *, wa_id: str = WA_ID, wamid: str | None = None, at: str | None = None) -> dict:
    return {"from": wa_id, "id": wamid or new_wamid(), "timestamp": at or ts(), "type": "text",
            "text": {"body": body}}


def button_reply(button_id: str, title: str, *, wa_id: str = WA_ID) -> dict:
    return {"context": {"from": DISPLAY_NUMBER, "id": new_wamid()}, "from": wa_id, "id": new_wamid(),
            "timestamp": ts(), "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}}


def list_reply(row_id: str, title: str, description: str = "", *, wa_id: str = WA_ID) -> dict:
    return {"context": {"from": DISPLAY_NUMBER, "id": new_wamid()}, "from": wa_id, "id": new_wamid(),
            "timestamp": ts(), "type": "interactive",
            "interactive": {"type": "list_reply",
                            "list_reply": {"id": row_id, "title": title, "description": description}}}


def template_button(label: str, payload: str | None = None, *, wa_id: str = WA_ID) -> dict:
    return {"context": {"from": DISPLAY_NUMBER, "id": new_wamid()}, "from": wa_id, "id": new_wamid(),
            "timestamp": ts(), "type": "button", "button": {"payload": payload or label, "text": label}}


def image(caption: str | None = None, *, wa_id: str = WA_ID) -> dict:
    media = {"mime_type": "image/jpeg", "sha256": base64.b64encode(hashlib.sha256(b"x").digest()).decode(),
             "id": "1003383421387256", "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"}
    if caption is not None:
        media = {"caption": caption, **media}
    return {"from": wa_id, "id": new_wamid(), "timestamp": ts(), "type": "image", "image": media}


def status(wamid: str, state: str, *, wa_id: str = WA_ID, code: int | None = None, at: str | None = None) -> dict:
    item = {"id": wamid, "status": state, "timestamp": at or ts(), "recipient_id": wa_id}
    if state in ("sent", "delivered", "read"):
        item["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "marketing"}}
        if state == "sent":
            item["conversation"]["expiration_timestamp"] = ts(86400)
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    if code is not None:
        title = {131047: "Re-engagement message", 131049: "This message was not delivered to maintain healthy "
                 "ecosystem engagement.", 131050: "Unable to deliver the message. This recipient has chosen to "
                 "stop receiving marketing messages on WhatsApp from your business."}.get(code, "Error")
        item["errors"] = [{"code": code, "title": title, "message": title,
                           "error_data": {"details": title},
                           "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
    return item


def preference_change(value: str, *, wa_id: str = WA_ID) -> dict:
    body = _value()
    body["contacts"] = [{"wa_id": wa_id}]
    detail = f"User requested to {value} marketing messages"
    body["user_preferences"] = [{"wa_id": wa_id, "detail": detail, "category": "marketing_messages",
                                 "value": value, "timestamp": int(time.time())}]
    return {"value": body, "field": "user_preferences"}


# --- signing and posting ------------------------------------------------------------------------------

def signature(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post_meta(client, settings, payload, *, raw: bytes | None = None, headers: dict | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    sent_headers = {"Content-Type": "application/json",
                    "X-Hub-Signature-256": signature(settings.meta_app_secret, body)}
    if headers is not None:
        sent_headers = {"Content-Type": "application/json", **headers}
    return client.post(PATH, data=body, headers=sent_headers)


def reload(session, message_id) -> Message:
    session.expire_all()
    return session.get(Message, message_id)


# --- a runtime with Meta credentials whose Graph API `responses` intercepts ----------------------------

@pytest.fixture
def meta_runtime(instance_dir, database_url, redis_url, db, redis_client):
    settings = make_settings(instance_dir, database_url, redis_url, WHATSAPP_PROVIDER="meta",
                             META_ACCESS_TOKEN="EAAG" + "x" * 40, META_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
                             META_WABA_ID=WABA_ID, META_APP_SECRET="s" * 32, META_VERIFY_TOKEN="v" * 24,
                             META_GRAPH_URL=GRAPH, AUTOMATED_PACING_SECONDS="0")
    with installed_runtime(settings, db, redis_client) as rt:
        yield rt


@pytest.fixture
def meta_client(meta_runtime):
    from app import create_app

    return create_app({"RUNTIME": meta_runtime, "TESTING": True}).test_client()


@pytest.fixture
def graph():
    """Meta's Graph API accepting every message with a fresh wamid; ``graph.wamids`` lists them in order."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.wamids = []

        def accept(request):
            wamid = new_wamid()
            rsps.wamids.append(wamid)
            to = json.loads(request.body)["to"]
            return 200, {}, json.dumps({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                        "messages": [{"id": wamid, "message_status": "accepted"}]})

        rsps.add_callback(responses.POST, GRAPH_MESSAGES, callback=accept, content_type="application/json")
        yield rsps


def graph_payloads(graph) -> list[dict]:
    return [json.loads(call.request.body) for call in graph.calls]


# --- the verification handshake ------------------------------------------------------------------------

def test_handshake_echoes_the_challenge_as_the_whole_body(client, settings):
    response = client.get(PATH, query_string={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                              "hub.verify_token": settings.meta_verify_token})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize("case", ["wrong_token", "empty_token", "wrong_mode", "no_mode", "no_token", "nothing",
                                  "no_challenge", "odd_challenge", "unicode_token"])
def test_handshake_refuses_anything_else_with_403(client, settings, case):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": settings.meta_verify_token}
    if case == "wrong_token":
        query["hub.verify_token"] = settings.meta_verify_token + "x"
    elif case == "empty_token":
        query["hub.verify_token"] = ""
    elif case == "wrong_mode":
        query["hub.mode"] = "unsubscribe"
    elif case == "no_mode":
        del query["hub.mode"]
    elif case == "no_token":
        del query["hub.verify_token"]
    elif case == "nothing":
        query = {}
    elif case == "no_challenge":
        del query["hub.challenge"]
    elif case == "odd_challenge":
        query["hub.challenge"] = "<script>alert(1)</script>"
    elif case == "unicode_token":
        query["hub.verify_token"] = "tökén"
    response = client.get(PATH, query_string=query)
    assert response.status_code == 403
    assert b"1158201444" not in response.data


# --- signature -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "bare_hex", "other_secret", "altered_body",
                                  "sha1_only", "uppercase_prefix", "non_ascii"])
def test_bad_signature_is_403_and_nothing_is_stored(client, settings, session, runtime, case):
    payload = envelope(entry(messages_change([text("Oi, tem tênis 42?")])))
    raw = json.dumps(payload).encode()
    good = signature(settings.meta_app_secret, raw)
    body, headers = raw, {"X-Hub-Signature-256": good}
    if case == "missing":
        headers = {}
    elif case == "empty":
        headers = {"X-Hub-Signature-256": ""}
    elif case == "garbage":
        headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64}
    elif case == "bare_hex":
        headers = {"X-Hub-Signature-256": good.removeprefix("sha256=")}
    elif case == "other_secret":
        headers = {"X-Hub-Signature-256": signature("not-the-app-secret", raw)}
    elif case == "altered_body":
        body = raw.replace(b"Oi, tem", b"SAIR tem")
    elif case == "sha1_only":
        headers = {"X-Hub-Signature": "sha1=" + hmac.new(settings.meta_app_secret.encode(), raw,
                                                         hashlib.sha1).hexdigest()}
    elif case == "uppercase_prefix":
        headers = {"X-Hub-Signature-256": "SHA256=" + good.removeprefix("sha256=")}
    elif case == "non_ascii":
        headers = {"X-Hub-Signature-256": "sha256=é".encode().decode("latin-1")}
    response = post_meta(client, settings, None, raw=body, headers=headers)
    assert response.status_code == 403
    assert count(session, Message) == 0 and count(session, Customer) == 0
    assert queued_jobs(runtime) == []
    assert not runtime.redis.exists(runtime.keys("last-inbound"))


def test_signature_is_over_the_raw_bytes_not_the_parsed_json(client, settings, session):
    """Meta signs the bytes it sent (escaped unicode and all): re-serialising the JSON would break it."""
    raw = ('{"object":"whatsapp_business_account","entry":[{"id":"%s","changes":[{"value":{"messaging_product":'
           '"whatsapp","metadata":{"display_phone_number":"%s","phone_number_id":"%s"},"contacts":[{"profile":'
           '{"name":"Jo\\u00e3o"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"%s","timestamp":"%s","text":'
           '{"body":"Ol\\u00e1 \\ud83d\\udc4b"},"type":"text"}]},"field":"messages"}]}]}'
           % (WABA_ID, DISPLAY_NUMBER, PHONE_NUMBER_ID, WA_ID, WA_ID, new_wamid(), ts())).encode()
    assert post_meta(client, settings, None, raw=raw).status_code == 200
    [message] = outbound_or_inbound(session)
    assert message.body == "Olá 👋" and message.customer.name == "João"


def outbound_or_inbound(session, direction=Direction.INBOUND) -> list[Message]:
    session.expire_all()
    return list(session.scalars(select(Message).where(Message.direction == direction).order_by(Message.id)))


def test_the_meta_app_secret_signs_not_the_twilio_token(client, settings, session):
    payload = envelope(entry(messages_change([text("Oi")])))
    raw = json.dumps(payload).encode()
    assert settings.webhook_auth_token != settings.meta_app_secret
    response = post_meta(client, settings, None, raw=raw,
                         headers={"X-Hub-Signature-256": signature(settings.webhook_auth_token, raw)})
    assert response.status_code == 403


# --- inbound messages ------------------------------------------------------------------------------------

def test_text_message_is_stored_with_profile_name_and_wa_id_and_handed_to_the_bot(client, settings, session,
                                                                                  runtime, engine_stub):
    message = text("Oi, vocês têm tênis 42?")
    response = post_meta(client, settings, envelope(entry(messages_change([message]))))
    assert response.status_code == 200
    [stored] = inbound_messages(session, message["id"])
    assert stored.body == "Oi, vocês têm tênis 42?" and stored.media_count == 0
    assert stored.status is MessageStatus.RECEIVED
    customer = stored.customer
    assert customer.phone == PHONE and customer.name == "Ana Souza" and customer.wa_id == WA_ID
    assert customer.last_inbound_at is not None
    assert [j.func_name for j in queued_jobs(runtime, "bot.jobs.process_inbound")] == ["bot.jobs.process_inbound"]
    run_jobs(runtime)
    assert [c["body"] for c in engine_stub.calls] == ["Oi, vocês têm tênis 42?"]
    [reply] = outbound_messages(session, customer.id)
    assert reply.status is MessageStatus.OUTBOX  # this runtime has no credentials
    assert runtime.redis.get(runtime.keys("last-inbound")) is not None


@pytest.mark.parametrize("item, body", [
    (lambda: button_reply("opt:2", "Ver carrinho"), "2"),
    (lambda: button_reply("opt:menu", "Menu"), "menu"),
    (lambda: button_reply("cancel-button", "Cancelar"), "Cancelar"),
    (lambda: list_reply("opt:TS-01-M", "Camiseta M", "R$ 79,90"), "TS-01-M"),
    (lambda: list_reply("row-3", "Tênis Corrida 42", "R$ 299,90"), "Tênis Corrida 42"),
    (lambda: template_button("Quero o cupom"), "Quero o cupom"),
    (lambda: template_button("Parar promoções", payload="STOP_PROMOS"), "Parar promoções"),
])
def test_button_and_list_replies_become_the_text_the_bot_reads(client, settings, session, runtime, engine_stub,
                                                                item, body):
    message = item()
    assert post_meta(client, settings, envelope(entry(messages_change([message])))).status_code == 200
    [stored] = inbound_messages(session, message["id"])
    assert stored.body == body and stored.media_count == 0
    run_jobs(runtime)
    assert engine_stub.calls[0]["body"] == body and engine_stub.calls[0]["media_count"] == 0


def test_image_with_caption_is_media_with_the_caption_as_body(client, settings, session, runtime, engine_stub):
    with_caption, bare = image("Tem esse em azul?"), image()
    post_meta(client, settings, envelope(entry(messages_change([with_caption, bare]))))
    [first] = inbound_messages(session, with_caption["id"])
    [second] = inbound_messages(session, bare["id"])
    assert (first.body, first.media_count) == ("Tem esse em azul?", 1)
    assert (second.body, second.media_count) == ("", 1)
    run_jobs(runtime)
    assert [(c["body"], c["media_count"]) for c in engine_stub.calls] == [("Tem esse em azul?", 1), ("", 1)]


@pytest.mark.parametrize("kind, content", [
    ("audio", {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc=", "id": "1", "voice": True}),
    ("sticker", {"mime_type": "image/webp", "sha256": "abc=", "id": "2", "animated": False}),
    ("document", {"caption": "", "filename": "pedido.pdf", "mime_type": "application/pdf", "sha256": "a", "id": "3"}),
    ("location", {"latitude": -23.55, "longitude": -46.63, "name": "Loja", "address": "Av. Paulista, 1000"}),
    ("contacts", [{"name": {"formatted_name": "Bia"}, "phones": [{"phone": "+55 11 91234-5678"}]}]),
    ("unsupported", None),
    ("brand_new_type", {"whatever": 1}),
])
def test_what_the_bot_cannot_read_is_stored_as_media_for_its_text_only_reply(client, settings, session, kind,
                                                                             content):
    message = {"from": WA_ID, "id": new_wamid(), "timestamp": ts(), "type": kind}
    if content is not None:
        message[kind] = content
    if kind == "unsupported":
        message["errors"] = [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                              "error_data": {"details": "Message type is currently not supported."}}]
    assert post_meta(client, settings, envelope(entry(messages_change([message])))).status_code == 200
    [stored] = inbound_messages(session, message["id"])
    assert stored.media_count == 1 and stored.body == ""


def test_a_reaction_is_not_a_message_to_answer(client, settings, session, runtime):
    reaction = {"from": WA_ID, "id": new_wamid(), "timestamp": ts(), "type": "reaction",
                "reaction": {"message_id": new_wamid(), "emoji": "\U0001F44D"}}
    assert post_meta(client, settings, envelope(entry(messages_change([reaction])))).status_code == 200
    assert count(session, Message) == 0
    assert queued_jobs(runtime) == []


def test_body_is_capped_and_nul_bytes_removed(client, settings, session):
    message = text("a\x00b" + "x" * 5000)
    post_meta(client, settings, envelope(entry(messages_change([message], contacts=[contact(WA_ID, "A\x00na")]))))
    [stored] = inbound_messages(session, message["id"])
    assert stored.body.startswith("abx") and len(stored.body) == 4096 and "\x00" not in stored.body
    assert stored.customer.name == "Ana"


def test_opt_out_keyword_applies_at_once(client, settings, session):
    post_meta(client, settings, envelope(entry(messages_change([text("SAIR")]))))
    assert customer_by_phone(session, PHONE).opted_out_at is not None


def test_a_batch_across_entries_and_changes_is_processed_whole(client, settings, session, runtime, engine_stub):
    outbound = []
    for phone in (PHONE, PHONE_2):
        customer = make_customer(session, phone, name=None)
        wamid = new_wamid()
        session.add(Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind="bot", body="Oi",
                            provider_sid=wamid, status=MessageStatus.ACCEPTED, sent_as="text"))
        outbound.append(wamid)
    session.commit()
    first, second, third = text("Quero camisetas"), text("Tamanho M", at=ts(1)), text("Oi!", wa_id=WA_ID_2)
    payload = envelope(
        entry(messages_change([first, second]), messages_change(statuses=[status(outbound[0], "delivered")])),
        entry(messages_change([third], contacts=[contact(WA_ID_2, "Bruno")]),
              messages_change(statuses=[status(outbound[1], "read", wa_id=WA_ID_2)]), waba_id="102290129340399"),
    )
    response = post_meta(client, settings, payload)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "messages": 3, "statuses": 2, "preferences": 0, "skipped": 0}
    assert all(len(inbound_messages(session, m["id"])) == 1 for m in (first, second, third))
    assert customer_by_phone(session, PHONE_2).name == "Bruno"
    statuses = {m.provider_sid: m.status for m in outbound_or_inbound(session, Direction.OUTBOUND)}
    assert statuses[outbound[0]] is MessageStatus.DELIVERED and statuses[outbound[1]] is MessageStatus.READ
    run_jobs(runtime)
    assert sorted(c["body"] for c in engine_stub.calls) == ["Oi!", "Quero camisetas", "Tamanho M"]
    assert runtime.redis.get(runtime.keys("last-status")) is not None


def test_messages_of_a_batch_are_read_in_the_order_written(client, settings, session):
    later, earlier = text("segunda", at=ts(5)), text("primeira", at=ts(0))
    post_meta(client, settings, envelope(entry(messages_change([later, earlier]))))
    assert [m.body for m in outbound_or_inbound(session)] == ["primeira", "segunda"]


def test_the_same_delivery_twice_is_processed_once(client, settings, session, runtime, engine_stub):
    payload = envelope(entry(messages_change([text("Quero ver camisetas")])))
    raw = json.dumps(payload).encode()
    for _ in range(2):
        assert post_meta(client, settings, None, raw=raw).status_code == 200
    # Meta's retry may also carry the same message in another batch, beside a new one.
    again = copy.deepcopy(payload)
    again["entry"][0]["changes"][0]["value"]["messages"].append(text("E bermudas?"))
    assert post_meta(client, settings, again).status_code == 200
    assert count(session, Message, Message.direction == Direction.INBOUND) == 2
    assert count(session, Customer) == 1
    assert len(queued_jobs(runtime, "bot.jobs.process_inbound")) == 2
    run_jobs(runtime)
    assert [c["body"] for c in engine_stub.calls] == ["Quero ver camisetas", "E bermudas?"]


def test_wa_id_without_the_ninth_digit_is_the_customer_a_cart_created(session, meta_runtime, meta_client,
                                                                      engine_stub, graph):
    """The shop knows +55 11 98765-4321; Meta writes the same shopper as 551187654321. One customer, and the
    bot's reply goes to the id Meta gave."""
    cart = {"event": "cart.updated", "id": "c-9", "customer": {"phone": OLD_PHONE, "name": "Carla"},
            "items": [{"sku": "TS-01", "name": "Camiseta", "quantity": 1, "unit_price": "79.90"}], "total": "79.90",
            "currency": "BRL", "checkout_url": "https://loja.example/checkout/c-9",
            "updated_at": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()}
    raw = json.dumps(cart).encode()
    response = meta_client.post("/webhooks/store/carts", data=raw, headers={
        "Content-Type": "application/json",
        "X-Store-Signature": hmac_sha256_hex(meta_runtime.settings.store_webhook_secret, raw)})
    assert response.status_code == 200, response.data
    created = customer_by_phone(session, OLD_PHONE)
    assert created is not None and created.wa_id is None

    message = text("Oi, ainda tem a camiseta?", wa_id=OLD_WA_ID)
    response = post_meta(meta_client, meta_runtime.settings,
                         envelope(entry(messages_change([message], contacts=[contact(OLD_WA_ID, "Carla S")]))))
    assert response.status_code == 200
    assert count(session, Customer) == 1
    [stored] = inbound_messages(session, message["id"])
    assert stored.customer_id == created.id
    customer = customer_by_phone(session, OLD_PHONE)
    assert customer.wa_id == OLD_WA_ID and customer.name == "Carla"  # a known name is kept
    run_jobs(meta_runtime)
    [sent] = graph_payloads(graph)
    assert sent["to"] == OLD_WA_ID and sent["type"] == "text"


# --- statuses ------------------------------------------------------------------------------------------------

def _outbound(session, *, status=MessageStatus.ACCEPTED, phone=PHONE) -> Message:
    customer = customer_by_phone(session, phone) or make_customer(session, phone)
    message = Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind="bot", body="Oi",
                      provider_sid=new_wamid(), status=status, sent_as="text")
    session.add(message)
    session.commit()
    return message


def test_statuses_out_of_order_end_read_with_every_milestone(client, settings, session):
    message = _outbound(session)
    base = int(time.time())
    for state, at in (("read", base + 30), ("delivered", base + 10), ("sent", base)):
        response = post_meta(client, settings, envelope(entry(messages_change(
            statuses=[status(message.provider_sid, state, at=str(at))]))))
        assert response.status_code == 200
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.READ
    assert stored.sent_at and stored.delivered_at and stored.read_at
    assert stored.error_code is None


def test_repeated_status_is_idempotent(client, settings, session):
    message = _outbound(session)
    payload = envelope(entry(messages_change(statuses=[status(message.provider_sid, "delivered")])))
    post_meta(client, settings, payload)
    first = reload(session, message.id).delivered_at
    post_meta(client, settings, payload)
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.DELIVERED and stored.delivered_at == first


@pytest.mark.parametrize("state", ["deleted", "warning", "played", "pending"])
def test_untracked_statuses_are_acknowledged_and_ignored(client, settings, session, state):
    message = _outbound(session, status=MessageStatus.SENT)
    response = post_meta(client, settings, envelope(entry(messages_change(
        statuses=[status(message.provider_sid, state)]))))
    assert response.status_code == 200
    assert reload(session, message.id).status is MessageStatus.SENT


def test_status_of_an_unknown_wamid_is_parked_until_the_send_commits(client, settings, session, runtime):
    wamid = new_wamid()
    assert post_meta(client, settings, envelope(entry(messages_change(statuses=[status(wamid, "delivered")])))
                     ).status_code == 200
    assert runtime.redis.exists(runtime.keys("early-status", wamid))


def _template(session, *, provider="meta", status=TemplateStatus.APPROVED) -> WhatsAppTemplate:
    body = "Oi {{1}}! Seu carrinho está esperando: {{2}}"
    template = WhatsAppTemplate(provider=provider, external_id="1234567890123456", name="carrinho_abandonado",
                                language="pt_BR", category="marketing", status=status, body=body,
                                placeholders=placeholders_in(None, body, [], provider=provider), buttons=[])
    session.add(template)
    session.commit()
    return template


def _recovery_sent_as_text(session, rt, graph, template) -> Message:
    """A recovery message queued inside the window (free-form text, the template as its fallback), sent."""
    customer = make_customer(session, PHONE, name="Ana")
    message = queue_message(session, rt, customer, kind="recovery", body="Oi Ana! Esqueceu algo no carrinho?",
                            automated=True, now=now_utc(), template=template,
                            template_mapping={"1": "nome", "2": "link"},
                            template_sources={"nome": "Ana", "link": "https://loja.example/c/1"})
    session.commit()
    assert message.sent_as == "text" and message.template_id == template.id
    assert deliver(session, rt, make_transport(rt.settings), RateLimiter(rt.redis), message.id).outcome == "sent"
    for job in queued_jobs(rt):
        job.delete()  # its queued delivery job: already done above
    stored = reload(session, message.id)
    assert stored.provider_sid == graph.wamids[0]
    return stored


def test_131047_failure_resends_a_text_with_a_fallback_template_once(session, meta_runtime, meta_client, graph,
                                                                     engine_stub):
    template = _template(session)
    message = _recovery_sent_as_text(session, meta_runtime, graph, template)
    failed = envelope(entry(messages_change(statuses=[status(message.provider_sid, "failed", code=131047)])))
    for _ in range(2):  # Meta repeats the callback
        assert post_meta(meta_client, meta_runtime.settings, failed).status_code == 200
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.PENDING and stored.sent_as == "template"
    assert stored.provider_sid is None and stored.error_reason == "retrying as template: outside the 24 h window"
    assert stored.body == "Oi Ana! Seu carrinho está esperando: https://loja.example/c/1"
    assert len(queued_jobs(meta_runtime, "channel.jobs.deliver")) == 1
    run_jobs(meta_runtime)
    # ...and once more after the resend: the old wamid is no one's now.
    assert post_meta(meta_client, meta_runtime.settings, failed).status_code == 200
    run_jobs(meta_runtime)

    first, resent = graph_payloads(graph)
    assert first["type"] == "text"
    assert resent["type"] == "template" and "text" not in resent
    assert resent["template"]["name"] == "carrinho_abandonado"
    assert resent["template"]["components"] == [{"type": "body", "parameters": [
        {"type": "text", "text": "Ana"}, {"type": "text", "text": "https://loja.example/c/1"}]}]
    stored = reload(session, message.id)
    assert stored.provider_sid == graph.wamids[1] and stored.status is MessageStatus.ACCEPTED
    assert stored.error_reason is None
    assert len(outbound_messages(session)) == 1  # still one message to the shopper
    # The template's own statuses then apply to it.
    post_meta(meta_client, meta_runtime.settings,
              envelope(entry(messages_change(statuses=[status(graph.wamids[1], "delivered")]))))
    assert reload(session, message.id).status is MessageStatus.DELIVERED


def test_131047_without_a_fallback_template_just_fails(session, meta_runtime, meta_client, graph):
    message = _outbound(session, status=MessageStatus.SENT)
    post_meta(meta_client, meta_runtime.settings,
              envelope(entry(messages_change(statuses=[status(message.provider_sid, "failed", code=131047)]))))
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131047"
    assert queued_jobs(meta_runtime) == [] and len(graph.calls) == 0


def test_131047_with_a_paused_fallback_template_is_not_resent(session, meta_runtime, meta_client, graph):
    template = _template(session)
    message = _recovery_sent_as_text(session, meta_runtime, graph, template)
    template.status = TemplateStatus.PAUSED
    session.commit()
    post_meta(meta_client, meta_runtime.settings,
              envelope(entry(messages_change(statuses=[status(message.provider_sid, "failed", code=131047)]))))
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.FAILED and stored.sent_as == "text"
    assert queued_jobs(meta_runtime) == [] and len(graph.calls) == 1


def test_131049_is_recorded_with_its_code_and_not_retried(session, meta_runtime, meta_client, graph):
    template = _template(session)
    message = _recovery_sent_as_text(session, meta_runtime, graph, template)
    post_meta(meta_client, meta_runtime.settings,
              envelope(entry(messages_change(statuses=[status(message.provider_sid, "failed", code=131049)]))))
    run_jobs(meta_runtime)
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131049"
    assert stored.error_reason.startswith("marketing_limit")
    assert stored.sent_as == "text" and len(graph.calls) == 1
    assert customer_by_phone(session, PHONE).marketing_opted_out_at is None


def test_131050_failure_marks_the_shopper_as_stopping_marketing(client, settings, session):
    message = _outbound(session, status=MessageStatus.SENT)
    post_meta(client, settings,
              envelope(entry(messages_change(statuses=[status(message.provider_sid, "failed", code=131050)]))))
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "131050"
    customer = customer_by_phone(session, PHONE)
    assert customer.marketing_opted_out_at is not None and customer.opted_out_at is None


# --- user_preferences --------------------------------------------------------------------------------------------

def test_user_preferences_stop_then_resume(client, settings, session):
    make_customer(session, PHONE)
    assert post_meta(client, settings, envelope(entry(preference_change("stop")))).status_code == 200
    stopped = customer_by_phone(session, PHONE).marketing_opted_out_at
    assert stopped is not None
    post_meta(client, settings, envelope(entry(preference_change("stop"))))  # repeated: the first time stays
    assert customer_by_phone(session, PHONE).marketing_opted_out_at == stopped
    assert post_meta(client, settings, envelope(entry(preference_change("resume")))).status_code == 200
    customer = customer_by_phone(session, PHONE)
    assert customer.marketing_opted_out_at is None and customer.opted_out_at is None


def test_a_stop_from_a_shopper_not_known_yet_is_kept(client, settings, session):
    post_meta(client, settings, envelope(entry(preference_change("stop", wa_id=OLD_WA_ID))))
    customer = customer_by_phone(session, OLD_PHONE)
    assert customer is not None and customer.marketing_opted_out_at is not None and customer.wa_id == OLD_WA_ID
    # A resume from someone unknown creates no one.
    post_meta(client, settings, envelope(entry(preference_change("resume", wa_id=WA_ID_2))))
    assert customer_by_phone(session, PHONE_2) is None


def test_a_marketing_stop_blocks_recovery_but_not_replies(client, settings, session, runtime):
    customer = make_customer(session, PHONE)
    post_meta(client, settings, envelope(entry(preference_change("stop"))))
    customer = customer_by_phone(session, PHONE)
    blocked = queue_message(session, runtime, customer, kind="recovery", body="Volte!", automated=True,
                            now=now_utc())
    reply = queue_message(session, runtime, customer, kind="bot", body="Oi!", automated=False, now=now_utc())
    session.commit()
    assert blocked.status is MessageStatus.BLOCKED and blocked.error_reason == "marketing_opted_out"
    assert reply.status is MessageStatus.PENDING


# --- malformed ------------------------------------------------------------------------------------------------------

def test_malformed_items_are_skipped_and_the_rest_processed(client, settings, session, runtime):
    good, good_2 = text("Oi"), text("Quero um tênis", wa_id=WA_ID_2)
    tracked = _outbound(session, status=MessageStatus.SENT)
    bad_messages = [
        "not an object",
        {**text("x"), "id": "ABGGFlA5Fpa"},  # the dashboard's test payload: not a wamid
        {**text("x"), "id": "wamid.abc\x00def12345"},
        {**text("x"), "from": "banana"},
        {**text("x"), "from": "5500999990001"},  # no such area code
        {**text("x"), "from": 5511999990001},  # a number, not a string
        {"from": WA_ID, "id": new_wamid(), "timestamp": ts(), "type": "text", "text": "flat"},
        {"from": WA_ID, "id": new_wamid(), "timestamp": ts()},  # no type
        {"from": WA_ID, "id": new_wamid(), "timestamp": ts(), "type": "interactive",
         "interactive": {"type": "button_reply"}},
    ]
    bad_statuses = [{"id": "123", "status": "read"}, {"id": new_wamid()}, 7]
    payload = envelope(
        entry(messages_change([good, *bad_messages], contacts=[contact(WA_ID), contact(WA_ID_2, "Bia")]),
              messages_change(statuses=[*bad_statuses, status(tracked.provider_sid, "delivered")])),
        "not an entry",
        {"id": WABA_ID, "changes": "nope"},
        entry({"field": "messages"}, {"field": "messages", "value": []}),
        entry(messages_change([good_2])),
    )
    response = post_meta(client, settings, payload)
    assert response.status_code == 200
    assert response.get_json()["messages"] == 2 and response.get_json()["skipped"] >= len(bad_messages) + 3
    assert len(inbound_messages(session, good["id"])) == 1 and len(inbound_messages(session, good_2["id"])) == 1
    assert count(session, Message, Message.direction == Direction.INBOUND) == 2
    assert reload(session, tracked.id).status is MessageStatus.DELIVERED
    assert len(queued_jobs(runtime, "bot.jobs.process_inbound")) == 2


def test_malformed_items_are_logged_with_phones_masked(client, settings, caplog):
    payload = envelope(entry(messages_change([{**text("x"), "id": "bogus"}])))
    with caplog.at_level("WARNING", logger="channel.meta_inbound"):
        assert post_meta(client, settings, payload).status_code == 200
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "skipped a malformed message" in logged
    assert WA_ID not in logged and "0001" in logged


def test_other_fields_and_other_numbers_are_ignored(session, meta_runtime, meta_client):
    template_update = {"field": "message_template_status_update",
                       "value": {"event": "APPROVED", "message_template_id": 123, "message_template_name": "x",
                                 "message_template_language": "pt_BR", "reason": "NONE"}}
    other_number = messages_change([text("Oi")], phone_number_id="999999999999999")
    response = post_meta(meta_client, meta_runtime.settings, envelope(entry(template_update, other_number)))
    assert response.status_code == 200
    assert count(session, Message) == 0 and count(session, Customer) == 0


@pytest.mark.parametrize("raw, field", [
    (b"not json", "body"),
    (b"", "body"),
    (b'{"object": "whatsapp_business_account", "entry": [', "body"),
    (b"\xff\xfe{}", "body"),
    (b"[1, 2]", "body"),
    (b'"whatsapp_business_account"', "body"),
    (b"null", "body"),
    (b'{"entry": []}', "object"),
    (b'{"object": "page", "entry": []}', "object"),
    (b'{"object": "whatsapp_business_account"}', "entry"),
    (b'{"object": "whatsapp_business_account", "entry": {}}', "entry"),
])
def test_a_body_that_is_not_metas_envelope_is_400_with_the_field(client, settings, session, raw, field):
    response = post_meta(client, settings, None, raw=raw)
    assert response.status_code == 400
    assert response.is_json
    answer = response.get_json()
    assert answer["field"] == field and answer["error"] and answer["message"]
    assert count(session, Message) == 0


def test_an_empty_batch_is_200(client, settings):
    assert post_meta(client, settings, envelope()).status_code == 200


# --- last inbound / last status for the go-live page ------------------------------------------------------

def test_redis_failure_recording_the_last_times_does_not_fail_the_webhook(client, settings, session, runtime,
                                                                          monkeypatch):
    real_set = runtime.redis.set

    def failing_set(name, *args, **kwargs):
        key = name.decode() if isinstance(name, bytes) else str(name)
        if key.endswith(("last-inbound", "last-status")):
            raise redis_lib.exceptions.ConnectionError("Redis went away")
        return real_set(name, *args, **kwargs)

    monkeypatch.setattr(runtime.redis, "set", failing_set)
    message = _outbound(session, status=MessageStatus.SENT)
    incoming = text("Oi")
    response = post_meta(client, settings, envelope(entry(
        messages_change([incoming], statuses=[status(message.provider_sid, "delivered")]))))
    assert response.status_code == 200
    assert len(inbound_messages(session, incoming["id"])) == 1
    assert reload(session, message.id).status is MessageStatus.DELIVERED


def test_twilio_webhooks_record_the_last_times_too(client, settings, session, runtime):
    from tests.channel_helpers import post_inbound, post_status

    assert runtime.redis.get(runtime.keys("last-inbound")) is None
    assert post_inbound(client, settings, body="Oi")[1].status_code == 200
    inbound_at = runtime.redis.get(runtime.keys("last-inbound"))
    assert inbound_at is not None and datetime.fromisoformat(inbound_at.decode()).tzinfo is not None
    assert post_status(client, settings, "SM" + "f" * 32, "delivered").status_code in (200, 204)
    assert runtime.redis.get(runtime.keys("last-status")) is not None
