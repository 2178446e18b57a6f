from datetime import datetime, timedelta, timezone

import pytest
from twilio.request_validator import RequestValidator

from core.runtime import Runtime
from core.settings import Settings
from models import Customer, Direction, Message, MessageStatus

WEBHOOK = "/webhooks/whatsapp"
T0 = datetime(2026, 11, 22, 13, 0, tzinfo=timezone.utc)


@pytest.fixture
def sim_client(app):
    # The simulator blueprint is registered by web.init_app; fail loudly (not skip) if it is not.
    assert "simulator" in app.blueprints
    return app.test_client()


def inbound_params(phone="+5511999990001", body="oi", sid="SM" + "a" * 32, name="Ana Teste"):
    return {
        "From": f"whatsapp:{phone}", "To": "whatsapp:+14155238886", "Body": body, "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32, "ProfileName": name, "WaId": phone.lstrip("+"), "NumMedia": "0",
        "SmsStatus": "received", "NumSegments": "1", "ApiVersion": "2010-04-01",
    }


def add_customer(session, phone: str, name: str = "Cliente", simulated: bool = True) -> Customer:
    customer = Customer(phone=phone, name=name, tags=[], simulated=simulated)
    session.add(customer)
    session.flush()
    return customer


def claim(client, phone: str) -> None:
    """Sign a message for ``phone`` as the simulator page does: the phone becomes this browser's to read."""
    response = client.post("/simulator/sign", json={"params": inbound_params(phone=phone)})
    assert response.status_code == 200, response.get_json()


def add_message(session, customer: Customer, *, direction=Direction.INBOUND, body="oi", status=MessageStatus.RECEIVED,
                kind="shopper", minutes=0, error_reason=None) -> Message:
    message = Message(customer_id=customer.id, direction=direction, kind=kind, body=body, status=status,
                      error_reason=error_reason, created_at=T0 + timedelta(minutes=minutes))
    session.add(message)
    session.flush()
    return message


# --- the page ----------------------------------------------------------------------------------------


def test_page_renders_the_chat_form(sim_client, runtime):
    response = sim_client.get("/simulator")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="sim-composer"' in html and 'id="sim-phone"' in html and 'id="sim-name"' in html
    assert 'value="+55 11 99999-0001"' in html
    assert "modo outbox" in html and "nenhuma mensagem é enviada para telefones reais" in html
    assert f'data-store-number="{runtime.settings.twilio_whatsapp_from}"' in html
    assert "/static/simulator.js" in html and "/static/simulator.css" in html
    assert "<script src=\"http" not in html and "<link rel=\"stylesheet\" href=\"http" not in html  # no CDN


def test_static_assets_are_served(sim_client):
    js = sim_client.get("/static/simulator.js")
    css = sim_client.get("/static/simulator.css")
    assert js.status_code == 200 and css.status_code == 200
    source = js.get_data(as_text=True)
    assert "innerHTML" not in source  # every text goes in with textContent / text nodes
    assert "X-Twilio-Signature" in source and "application/x-www-form-urlencoded" in source
    js.close()
    css.close()


# --- signing -----------------------------------------------------------------------------------------


def test_sign_returns_a_signature_twilio_validation_accepts(sim_client, runtime):
    params = inbound_params(body="Quero um *tênis*\ncom desconto & frete grátis")
    response = sim_client.post("/simulator/sign", json={"params": params})
    assert response.status_code == 200
    body = response.get_json()
    assert body["url"] == WEBHOOK and body["phone"] == "+5511999990001"
    settings = runtime.settings
    validator = RequestValidator(settings.webhook_auth_token)
    assert validator.validate(settings.public_base_url + WEBHOOK, params, body["signature"])
    assert not validator.validate(settings.public_base_url + WEBHOOK, {**params, "Body": "outra"}, body["signature"])


@pytest.mark.parametrize("phone", ["", "whatsapp:", "whatsapp:+55 11 123", "whatsapp:abc", "whatsapp:+5500000000000"])
def test_sign_refuses_a_bad_phone(sim_client, phone):
    response = sim_client.post("/simulator/sign", json={"params": {**inbound_params(), "From": phone}})
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == "phone" and body["message"]


@pytest.mark.parametrize("payload", [None, [], {"params": "x"},
                                     {"params": {"From": "whatsapp:+5511999990001", "Body": 3}}])
def test_sign_refuses_a_malformed_request(sim_client, payload):
    if payload is None:
        response = sim_client.post("/simulator/sign", data="params=1")
    else:
        response = sim_client.post("/simulator/sign", json=payload)
    assert response.status_code == 400
    assert response.get_json()["field"] == "params"


def test_signed_form_goes_through_the_real_webhook(sim_client, session):
    params = inbound_params(phone="+5521988887777", body="Oi, vocês têm tênis?", sid="SM" + "b" * 32)
    signed = sim_client.post("/simulator/sign", json={"params": params}).get_json()
    response = sim_client.post(signed["url"], data=params, headers={"X-Twilio-Signature": signed["signature"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"

    listed = sim_client.get("/simulator/messages", query_string={"phone": "+55 21 98888-7777"}).get_json()["messages"]
    assert [(m["direction"], m["body"], m["status"], m["kind"]) for m in listed][:1] == [
        ("inbound", "Oi, vocês têm tênis?", "received", "shopper")
    ]

    forged = sim_client.post(signed["url"], data={**params, "Body": "outra coisa"},
                             headers={"X-Twilio-Signature": signed["signature"]})
    assert forged.status_code == 403


# --- messages ----------------------------------------------------------------------------------------


def test_messages_of_one_customer_in_order_and_after_an_id(sim_client, session):
    ana = add_customer(session, "+5511999990001", "Ana")
    bia = add_customer(session, "+5521988887777", "Bia")
    first = add_message(session, ana, body="oi", minutes=0)
    add_message(session, bia, body="mensagem da Bia", minutes=1)
    reply = add_message(session, ana, direction=Direction.OUTBOUND, kind="bot",
                        body="Olá, *Ana*!\nEm que posso ajudar?", status=MessageStatus.OUTBOX, minutes=2)
    recovery = add_message(session, ana, direction=Direction.OUTBOUND, kind="recovery", body="Seu carrinho <b>",
                           status=MessageStatus.BLOCKED, error_reason="opted_out", minutes=3)
    session.commit()
    claim(sim_client, "+5511999990001")
    claim(sim_client, "+5521988887777")

    everything = sim_client.get("/simulator/messages?phone=%2B5511999990001")
    assert everything.status_code == 200
    messages = everything.get_json()["messages"]
    assert [m["id"] for m in messages] == [first.id, reply.id, recovery.id]
    assert messages[1] == {
        "id": reply.id, "direction": "outbound", "body": "Olá, *Ana*!\nEm que posso ajudar?", "status": "outbox",
        "kind": "bot", "created_at": (T0 + timedelta(minutes=2)).isoformat(), "error_reason": None,
    }
    assert datetime.fromisoformat(messages[0]["created_at"]) == T0
    assert messages[2]["kind"] == "recovery" and messages[2]["error_reason"] == "opted_out"
    assert messages[2]["body"] == "Seu carrinho <b>"  # raw text in JSON; the page escapes it

    # Any spelling of the number finds the same shopper; `after` keeps only newer ids.
    later = sim_client.get("/simulator/messages", query_string={"phone": "(11) 99999-0001", "after": first.id})
    assert [m["id"] for m in later.get_json()["messages"]] == [reply.id, recovery.id]
    none_left = sim_client.get("/simulator/messages", query_string={"phone": "+5511999990001", "after": recovery.id})
    assert none_left.get_json() == {"messages": []}


def test_messages_unknown_phone_is_an_empty_list(sim_client, session):
    response = sim_client.get("/simulator/messages", query_string={"phone": "+5531977776666"})
    assert response.status_code == 200 and response.get_json() == {"messages": []}


@pytest.mark.parametrize("query,field", [({}, "phone"), ({"phone": "123"}, "phone"),
                                         ({"phone": "+5511999990001", "after": "abc"}, "after"),
                                         ({"phone": "+5511999990001", "after": "-1"}, "after")])
def test_messages_bad_query(sim_client, query, field):
    response = sim_client.get("/simulator/messages", query_string=query)
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_messages_are_capped_at_200_per_answer(sim_client, session):
    ana = add_customer(session, "+5511999990001")
    claim(sim_client, "+5511999990001")
    ids = [add_message(session, ana, body=f"m{i}", minutes=i).id for i in range(205)]
    session.commit()
    page = sim_client.get("/simulator/messages", query_string={"phone": "+5511999990001"}).get_json()["messages"]
    assert [m["id"] for m in page] == ids[:200]
    rest = sim_client.get("/simulator/messages", query_string={"phone": "+5511999990001", "after": page[-1]["id"]})
    assert [m["id"] for m in rest.get_json()["messages"]] == ids[200:]


# --- production ---------------------------------------------------------------------------------------


def test_every_simulator_route_is_404_in_production(tmp_path, db, redis_client, session):
    settings = Settings.from_env({
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql+psycopg://u@h/db",  # never connected: the test database is injected
        "REDIS_URL": "redis://h:6379/0",
        "SECRET_KEY": "k" * 40,
        "STORE_WEBHOOK_SECRET": "s" * 40,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
    }, instance_path=tmp_path)
    from app import create_app

    app = create_app({"RUNTIME": Runtime(settings, database=db, redis_client=redis_client), "TESTING": True})
    client = app.test_client()
    add_customer(session, "+5511999990001")
    session.commit()
    assert client.get("/simulator").status_code == 404
    assert client.get("/simulator/messages", query_string={"phone": "+5511999990001"}).status_code == 404
    assert client.post("/simulator/sign", json={"params": inbound_params()}).status_code == 404
    assert client.post("/simulator/claim", json={"phone": "+5511999990001"}).status_code == 404


# --- claiming a number before it wrote -------------------------------------------------------------------


def test_claim_shows_a_simulated_shoppers_conversation_before_they_write(sim_client, session):
    carla = add_customer(session, "+5511988881001", "Carla Dias")
    add_message(session, carla, direction=Direction.OUTBOUND, body="Oi, Carla! Você deixou…", kind="recovery",
                status=MessageStatus.OUTBOX)
    session.commit()
    query = {"phone": "+5511988881001"}
    assert sim_client.get("/simulator/messages", query_string=query).get_json()["messages"] == []
    answer = sim_client.post("/simulator/claim", json={"phone": "+55 11 98888-1001"})
    assert answer.status_code == 200 and answer.get_json() == {"phone": "+5511988881001"}
    [shown] = sim_client.get("/simulator/messages", query_string=query).get_json()["messages"]
    assert shown["kind"] == "recovery" and shown["body"].startswith("Oi, Carla!")


def test_claim_refuses_a_real_customers_number(sim_client, session):
    add_customer(session, "+5511977776666", simulated=False)
    session.commit()
    answer = sim_client.post("/simulator/claim", json={"phone": "+5511977776666"})
    assert answer.status_code == 403 and answer.get_json()["field"] == "phone"


@pytest.mark.parametrize("payload", [None, {}, {"phone": 5511}, {"phone": "x" * 500}, {"phone": "abc"}, ["+55"]])
def test_claim_refuses_a_malformed_request(sim_client, payload):
    answer = sim_client.post("/simulator/claim", json=payload)
    assert answer.status_code == 400 and answer.get_json()["field"] == "phone"


def test_the_page_points_to_the_demo_web_cart_abandoner(sim_client, session):
    assert "98888-1001" not in sim_client.get("/simulator").get_data(as_text=True)
    add_customer(session, "+5511988881001", "Carla Dias")
    session.commit()
    assert "+55 (11) 98888-1001" in sim_client.get("/simulator").get_data(as_text=True)
