"""Nuvemshop connector: POST /webhooks/nuvemshop (id-only webhooks, the order read from the API), the polling of
abandoned checkouts, and the periodic job.

The payloads are trimmed from the examples in Nuvemshop's API reference (github.com/TiendaNube/api-docs:
resources/webhook.md, order.md, abandoned_checkout.md), with Brazilian phones, BRL and times near "now" so the
recoverer's windows apply. The API is faked with ``responses``: a test that registers no answer fails on any
unexpected call.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers
from sqlalchemy import func, select

from core.schedule import periodic_jobs
from models import Cart, CartStatus, Coupon, Customer, Order, OrderStatus, RecoveryAttempt, StoreEvent, utcnow
from recovery.events import EventInvalid, apply_cart_event
from recovery.tick import run_tick
from shops import activity, jobs, nuvemshop
from shops.base import ShopUnavailable
from tests.conftest import installed_runtime, make_settings
from tests.recovery_helpers import approved_template, enable_recovery, map_template, recovery_messages
from tests.test_store_events import nothing_stored

URL = "/webhooks/nuvemshop"
API = "https://api.nuvemshop.com.br/v1"
STORE_ID = "1679854"
TOKEN = "4a1b9c2d" * 5
SECRET = "nuvem-app-secret-" + "7f" * 8
PHONE = "+5511999990001"
ORDER_ID = 411335518
CHECKOUT_ID = 411335234
CHECKOUT_URL = ("https://nuvemteste.lojavirtualnuvem.com.br/checkout/v3/order/proxy/411335234/"
                "d0e589b2ba4fef1a4155dc071c253dfk1j34198b9")
ORDER_URL = f"{API}/{STORE_ID}/orders/{ORDER_ID}"
CHECKOUTS_URL = f"{API}/{STORE_ID}/checkouts"

# GET /checkouts (one element), trimmed from the reference's example.
CHECKOUT = {
    "id": CHECKOUT_ID,
    "token": "d0e589b2ba4fef1a4155dc071c253dfk1j34198b9",
    "store_id": int(STORE_ID),
    "abandoned_checkout_url": CHECKOUT_URL,
    "contact_email": "ana@example.com",
    "contact_name": "Ana Souza",
    "contact_phone": "+55 11 99999-0001",
    "contact_identification": "78448385071",
    "shipping_name": "Ana Souza",
    "shipping_phone": "+55 11 99999-0001",
    "shipping_address": "Rua Augusta",
    "shipping_number": "100",
    "shipping_zipcode": "01304000",
    "shipping_city": "São Paulo",
    "shipping_province": "São Paulo",
    "shipping_country": "BR",
    "billing_name": "Ana Souza",
    "billing_phone": "+55 11 99999-0001",
    "billing_address": "Rua Augusta",
    "billing_number": "100",
    "billing_zipcode": "01304000",
    "billing_city": "São Paulo",
    "billing_country": "BR",
    "shipping_cost_owner": "0.00",
    "shipping_cost_customer": "0.00",
    "coupon": [],
    "subtotal": "159.80",
    "discount": "0.00",
    "discount_coupon": "0.00",
    "discount_gateway": "0.00",
    "total": "159.80",
    "total_usd": "0.00",
    "checkout_enabled": True,
    "currency": "BRL",
    "language": "pt",
    "gateway": None,
    "shipping_pickup_type": "ship",
    "extra": {},
    "storefront": "store",
    "note": None,
    "created_at": "2021-05-12T19:08:06+0000",
    "updated_at": "2021-05-13T21:04:00+0000",
    "completed_at": None,
    "next_action": "noop",
    "payment_details": {"method": None, "credit_card_company": None, "installments": 1},
    "attributes": [],
    "products": [
        {"id": 516763823, "depth": "2.00", "height": "20.00", "name": "Camiseta Básica (Branca, M)",
         "price": "79.90", "product_id": 87219151,
         "image": {"id": 171099852, "product_id": 87219151, "src": "https://d2r9epyceweg5n.cloudfront.net/x.jpeg",
                   "position": 1, "alt": []},
         "quantity": 2, "free_shipping": False, "weight": "1.00", "width": "4.00", "variant_id": 332977991,
         "variant_values": ["Branca", "M"], "properties": [], "sku": "TS-01-BR-M", "barcode": None},
    ],
}

# GET /orders/{id}, trimmed from the reference's example (with the contact_* fields the API returns).
ORDER = {
    "id": ORDER_ID,
    "token": "898544a54283414238f74cd08f0efd3916f74b75",
    "number": 101,
    "contact_email": "ana@example.com",
    "contact_name": "Ana Souza",
    "contact_phone": "+55 11 99999-0001",
    "cancel_reason": None,
    "created_at": "2021-05-18T19:51:19+0000",
    "updated_at": "2021-05-18T19:51:19+0000",
    "currency": "BRL",
    "gateway": "mercadopago",
    "language": "pt",
    "note": None,
    "owner_note": None,
    "payment_status": "pending",
    "shipping": "correios",
    "shipping_status": "unpacked",
    "shipping_tracking_number": None,
    "shipping_cost_owner": "0.00",
    "shipping_cost_customer": "0.00",
    "status": "open",
    "subtotal": "159.80",
    "discount": "0.00",
    "total": "159.80",
    "total_usd": "30.12",
    "weight": "2.00",
    "next_action": "waiting_ipn",
    "coupon": [],
    "products": [
        {"id": 516763823, "depth": None, "height": None, "name": "Camiseta Básica (Branca, M)", "price": "79.90",
         "product_id": 87219151, "quantity": 2, "free_shipping": False, "variant_id": 332977991,
         "weight": "1.00", "width": None, "sku": "TS-01-BR-M"},
    ],
    "billing_name": "Ana Souza",
    "billing_phone": "+55 11 99999-0001",
    "billing_address": "Rua Augusta",
    "billing_city": "São Paulo",
    "billing_country": "BR",
    "billing_number": "100",
    "billing_province": "São Paulo",
    "billing_zipcode": "01304000",
    "extra": {},
    "shipping_pickup_type": "ship",
    "shipping_address": {"address": "Rua Augusta", "city": "São Paulo", "country": "BR", "default": True,
                         "id": 1234, "number": "100", "phone": "+55 11 99999-0001", "province": "São Paulo",
                         "zipcode": "01304000"},
    "customer": {"id": 101, "email": "ana@example.com", "name": "Ana Souza", "phone": "+55 11 99999-0001",
                 "total_spent": "159.80", "total_spent_currency": "BRL",
                 "default_address": {"address": "Rua Augusta", "city": "São Paulo", "country": "BR",
                                     "phone": "+55 11 99999-0001", "zipcode": "01304000"}},
}


def stamp(moment: datetime) -> str:
    """As Nuvemshop writes times: UTC with a +0000 offset, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def seconds(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(microsecond=0)


@pytest.fixture
def settings(instance_dir, database_url, redis_url):
    return make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="nuvemshop", NUVEMSHOP_STORE_ID=STORE_ID,
                         NUVEMSHOP_ACCESS_TOKEN=TOKEN, NUVEMSHOP_APP_SECRET=SECRET, STORE_NAME="Loja São Jorge",
                         PUBLIC_BASE_URL="https://recupera.loja.example")


@pytest.fixture
def api():
    """Nuvemshop's API; any request nobody registered fails with a ConnectionError (so it shows up as a 503)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def checkout(*, at: datetime | None = None, id: int = CHECKOUT_ID, phone: str | None = "+55 11 99999-0001",
             **changes) -> dict:
    body = copy.deepcopy(CHECKOUT)
    moment = at or utcnow() - timedelta(minutes=20)
    body["created_at"] = stamp(moment - timedelta(minutes=5))
    body["updated_at"] = stamp(moment)
    body["id"] = id
    body["abandoned_checkout_url"] = CHECKOUT_URL.replace(str(CHECKOUT_ID), str(id))
    body["contact_phone"] = body["billing_phone"] = body["shipping_phone"] = phone
    body.update(changes)
    return body


def order(*, at: datetime | None = None, **changes) -> dict:
    body = copy.deepcopy(ORDER)
    body["created_at"] = body["updated_at"] = stamp(at or utcnow() - timedelta(minutes=1))
    body.update(changes)
    return body


def sign(raw: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def webhook(event: str = "order/paid", id=ORDER_ID, store_id=int(STORE_ID)) -> dict:
    return {"store_id": store_id, "event": event, "id": id}


def post(client, payload=None, *, signature="auto", raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload if payload is not None else webhook()).encode()
    headers = {}
    if signature == "auto":
        headers["X-Linkedstore-HMAC-SHA256"] = sign(body)
    elif signature is not None:
        headers["X-Linkedstore-HMAC-SHA256"] = signature
    return client.post(URL, data=body, headers=headers, content_type="application/json")


def serve_order(api, served=None, **answer):
    """The order Nuvemshop returns, or ``answer`` (responses' arguments); registrations are answered in order,
    the last one repeating."""
    if answer:
        api.add(responses.GET, ORDER_URL, **answer)
    else:
        api.add(responses.GET, ORDER_URL, json=served if served is not None else order())


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def the_order(session) -> Order | None:
    session.expire_all()
    return session.scalar(select(Order).where(Order.external_id == str(ORDER_ID)))


def the_cart(session, id: int = CHECKOUT_ID) -> Cart | None:
    session.expire_all()
    return session.scalar(select(Cart).where(Cart.external_id == str(id)))


def page_matcher(page: int, since: datetime, per_page: int):
    return [matchers.query_param_matcher({"per_page": str(per_page), "page": str(page),
                                          "updated_at_min": stamp(since)})]


# --- signatures ------------------------------------------------------------------------------------------

def test_verify_is_hex_hmac_of_the_raw_body():
    raw = b'{"store_id": 1679854, "event": "order/paid", "id": 1}'
    assert nuvemshop.verify(raw, sign(raw), SECRET)
    assert nuvemshop.verify(raw, sign(raw).upper(), SECRET)
    assert not nuvemshop.verify(raw, sign(raw, "other"), SECRET)
    assert not nuvemshop.verify(raw, None, SECRET)
    assert not nuvemshop.verify(raw, sign(raw), None)
    assert not nuvemshop.verify(raw, "não-ascii", SECRET)
    # Not the base64 Shopify and WooCommerce use.
    assert not nuvemshop.verify(raw, base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest())
                                .decode(), SECRET)


def test_missing_signature_is_refused_and_nothing_stored(client, session, runtime, api):
    response = post(client, signature=None)
    assert response.status_code == 401
    assert "X-Linkedstore-HMAC-SHA256" in response.get_json()["message"]
    assert nothing_stored(session, runtime) and len(api.calls) == 0


def test_wrong_secret_is_refused_and_nothing_stored(client, session, runtime, api):
    raw = json.dumps(webhook()).encode()
    assert post(client, raw=raw, signature=sign(raw, "another-app")).status_code == 401
    assert nothing_stored(session, runtime) and len(api.calls) == 0


def test_right_secret_over_an_altered_body_is_refused(client, session, runtime, api):
    raw = json.dumps(webhook()).encode()
    signature = sign(raw)
    altered = raw.replace(str(ORDER_ID).encode(), b"411335519")
    assert altered != raw
    assert post(client, raw=altered, signature=signature).status_code == 401
    assert nothing_stored(session, runtime) and len(api.calls) == 0


def test_without_a_configured_secret_every_webhook_is_refused(instance_dir, database_url, redis_url, db,
                                                              redis_client, session, api):
    from app import create_app

    unsigned = make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="nuvemshop",
                             NUVEMSHOP_STORE_ID=STORE_ID, NUVEMSHOP_ACCESS_TOKEN=TOKEN)
    assert unsigned.nuvemshop_app_secret is None
    with installed_runtime(unsigned, db, redis_client) as rt:
        client = create_app({"RUNTIME": rt, "TESTING": True}).test_client()
        serve_order(api)
        assert post(client).status_code == 401
        assert post(client, signature=sign(json.dumps(webhook()).encode(), "")).status_code == 401
        assert nothing_stored(session, rt) and len(api.calls) == 0


def test_a_signature_in_upper_case_is_accepted(client, session, api):
    serve_order(api, order(payment_status="paid"))
    raw = json.dumps(webhook()).encode()
    response = post(client, raw=raw, signature=sign(raw).upper())
    assert response.status_code == 200 and response.get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.PAID


# --- webhook bodies --------------------------------------------------------------------------------------

def test_malformed_json_is_a_400_naming_the_body(client, session, runtime, api):
    response = post(client, raw=b'{"store_id": ')
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"body": "JSON inválido"}
    assert nothing_stored(session, runtime) and len(api.calls) == 0


@pytest.mark.parametrize("payload, field", [
    ({"event": "order/paid", "id": ORDER_ID}, "store_id"),
    ({"store_id": "loja", "event": "order/paid", "id": ORDER_ID}, "store_id"),
    ({"store_id": True, "event": "order/paid", "id": ORDER_ID}, "store_id"),
    ({"store_id": int(STORE_ID), "id": ORDER_ID}, "event"),
    ({"store_id": int(STORE_ID), "event": 7, "id": ORDER_ID}, "event"),
    ({"store_id": int(STORE_ID), "event": "order/paid"}, "id"),
    ({"store_id": int(STORE_ID), "event": "order/paid", "id": "1; DROP"}, "id"),
    ({"store_id": int(STORE_ID), "event": "order/paid", "id": -5}, "id"),
])
def test_bad_webhook_fields_are_a_400_naming_the_field(client, session, runtime, api, payload, field):
    response = post(client, payload)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert nothing_stored(session, runtime) and len(api.calls) == 0


def test_a_body_that_is_not_an_object_is_a_400(client, api):
    response = post(client, [webhook()])
    assert response.status_code == 400 and "body" in response.get_json()["fields"]
    assert len(api.calls) == 0


@pytest.mark.parametrize("event", ["product/created", "app/uninstalled", "category/updated", "domain/updated"])
def test_events_we_do_not_use_are_ignored_without_reading_the_api(client, session, runtime, api, event):
    response = post(client, {"store_id": int(STORE_ID), "event": event, "id": 1948209})
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime) and len(api.calls) == 0


def test_another_stores_webhook_is_ignored_without_reading_the_api(client, session, runtime, api):
    response = post(client, webhook(store_id=999))
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime) and len(api.calls) == 0


# --- reading the order -----------------------------------------------------------------------------------

def test_a_paid_order_is_read_stored_and_closes_the_shoppers_carts(client, session, runtime, api):
    assert apply_cart_event(session, runtime, nuvemshop.checkout_to_cart_event(checkout()), utcnow()) == "applied"
    assert the_cart(session).status is CartStatus.ABANDONED
    placed_at = utcnow() - timedelta(minutes=2)
    serve_order(api, order(at=placed_at, payment_status="paid"))

    response = post(client, webhook("order/paid"))
    assert response.status_code == 200 and response.get_json() == {"status": "applied"}
    placed = the_order(session)
    assert placed.status is OrderStatus.PAID and placed.total == Decimal("159.80")
    assert placed.placed_at == seconds(placed_at)
    [item] = placed.items
    assert (item.sku, item.quantity, item.unit_price) == ("TS-01-BR-M", 2, Decimal("79.90"))
    assert the_cart(session).status is CartStatus.CONVERTED
    assert session.get(Customer, placed.customer_id).phone == PHONE

    [call] = api.calls
    assert call.request.url == ORDER_URL
    assert call.request.headers["Authentication"] == f"bearer {TOKEN}"
    assert call.request.headers["User-Agent"] == "Loja Sao Jorge (https://recupera.loja.example)"


@pytest.mark.parametrize("failure", [
    {"status": 500, "json": {"code": 500, "message": "Internal Server Error"}},
    {"status": 502, "body": "<html>Bad Gateway</html>"},
    {"status": 429, "json": {"code": 429, "message": "Too Many Requests"}},
    {"status": 401, "json": {"code": 401, "message": "Unauthorized", "description": "Invalid access token"}},
    {"status": 403, "json": {"code": 403, "message": "Forbidden"}},
    {"body": requests.exceptions.ReadTimeout("read timed out")},
    {"body": requests.exceptions.ConnectTimeout("connect timed out")},
    {"body": requests.exceptions.ConnectionError("connection refused")},
    {"status": 200, "body": "<html>manutenção</html>"},
    {"status": 200, "json": [ORDER]},
    {"status": 200, "json": "ok"},
], ids=["500", "502-html", "429", "401", "403", "read-timeout", "connect-timeout", "refused",
        "not-json", "a-list", "a-string"])
def test_an_unreadable_order_is_a_503_then_the_redelivery_applies_it(client, session, runtime, api, failure):
    serve_order(api, **failure)
    serve_order(api, order(payment_status="paid"))

    response = post(client, webhook("order/paid"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert nothing_stored(session, runtime)

    redelivered = post(client, webhook("order/paid"))  # Nuvemshop redelivers the same body
    assert redelivered.status_code == 200 and redelivered.get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.PAID
    assert len(api.calls) == 2


def test_a_redirect_is_not_followed_with_the_token(client, session, runtime, api):
    elsewhere = "https://elsewhere.example/orders/411335518"
    serve_order(api, status=302, headers={"Location": elsewhere})
    api.add(responses.GET, elsewhere, json=order(payment_status="paid"))
    assert post(client).status_code == 503
    assert nothing_stored(session, runtime)
    assert [call.request.url for call in api.calls] == [ORDER_URL]


def test_a_revoked_token_is_logged_clearly_and_the_token_never(client, api, caplog):
    serve_order(api, status=401, json={"code": 401, "message": "Unauthorized", "description": "Invalid access token"})
    with caplog.at_level(logging.INFO):
        assert post(client).status_code == 503
    assert "revoked" in caplog.text and "NUVEMSHOP_ACCESS_TOKEN" in caplog.text
    assert TOKEN not in caplog.text


def test_a_huge_answer_is_not_read_into_memory(client, session, runtime, api, monkeypatch):
    monkeypatch.setattr(nuvemshop, "MAX_RESPONSE_BYTES", 1000)
    serve_order(api, order(note="x" * 2000))
    assert post(client).status_code == 503
    assert nothing_stored(session, runtime)


def test_an_order_that_no_longer_exists_is_ignored(client, session, runtime, api):
    serve_order(api, status=404, json={"code": 404, "message": "Not Found", "description": "Order not found"})
    response = post(client, webhook("order/updated"))
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime)


def test_an_order_without_a_usable_phone_is_ignored(client, session, runtime, api):
    body = order(payment_status="paid", contact_phone="", billing_phone=None)
    body["customer"]["phone"] = None
    body["customer"]["default_address"]["phone"] = "não tenho"
    body["shipping_address"]["phone"] = None
    serve_order(api, body)
    assert post(client).get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime)


def test_the_same_webhook_twice_is_a_duplicate(client, session, api):
    serve_order(api, order(payment_status="paid"))
    assert post(client).get_json() == {"status": "applied"}
    events = count(session, StoreEvent)
    assert post(client).get_json() == {"status": "duplicate"}
    assert count(session, StoreEvent) == events and count(session, Order) == 1


def test_a_late_older_state_never_moves_the_order_backwards(client, session, api):
    at = utcnow() - timedelta(minutes=3)
    serve_order(api, order(at=at, payment_status="paid"))
    serve_order(api, order(at=at, payment_status="pending"))  # a stale read, or the created event's own snapshot
    assert post(client, webhook("order/paid")).get_json() == {"status": "applied"}
    assert post(client, webhook("order/created")).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.PAID


def test_the_current_state_decides_not_the_event_name(client, session, api):
    at = utcnow() - timedelta(minutes=3)
    serve_order(api, order(at=at, payment_status="paid"))
    serve_order(api, order(at=at, payment_status="refunded", status="cancelled", cancel_reason="customer"))
    # order/created, read after the payment: already paid.
    assert post(client, webhook("order/created")).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.PAID
    # order/updated, read after a refund: cancelled.
    assert post(client, webhook("order/updated")).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.CANCELLED


def test_a_malformed_order_is_a_400_naming_nuvemshops_fields(client, session, runtime, api):
    body = order(total=12.5)
    body["products"][0]["price"] = "abc"
    serve_order(api, body)
    response = post(client)
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert "total" in fields and "products[0].price" in fields
    assert nothing_stored(session, runtime)


def test_without_a_token_an_order_webhook_waits_for_the_configuration(instance_dir, database_url, redis_url, db,
                                                                       redis_client, session, api):
    from app import create_app

    tokenless = make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="nuvemshop",
                              NUVEMSHOP_STORE_ID=STORE_ID, NUVEMSHOP_APP_SECRET=SECRET)
    with installed_runtime(tokenless, db, redis_client) as rt:
        client = create_app({"RUNTIME": rt, "TESTING": True}).test_client()
        assert post(client).status_code == 503
        assert nothing_stored(session, rt) and len(api.calls) == 0


# --- mapping ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payment, status, event", [
    ("pending", "open", "order.created"),
    ("authorized", "open", "order.created"),
    ("paid", "open", "order.paid"),
    ("paid", "closed", "order.paid"),
    ("voided", "open", "order.cancelled"),
    ("refunded", "closed", "order.cancelled"),
    ("abandoned", "open", "order.cancelled"),
    ("paid", "cancelled", "order.cancelled"),
])
def test_the_orders_state_maps_onto_our_event(payment, status, event):
    assert nuvemshop.order_to_order_event(order(payment_status=payment, status=status)).event == event


def test_an_order_maps_onto_an_order_event():
    event = nuvemshop.order_to_order_event(order(created_at="2021-05-18T19:51:19+0000"))
    assert event.id == str(ORDER_ID) and event.customer.phone == PHONE and event.customer.name == "Ana Souza"
    assert event.created_at == datetime(2021, 5, 18, 19, 51, 19, tzinfo=timezone.utc)
    assert event.total == Decimal("159.80") and event.currency == "BRL" and event.coupon_code is None
    [item] = event.items
    assert (item.sku, item.name, item.quantity, item.unit_price) == ("TS-01-BR-M", "Camiseta Básica (Branca, M)", 2,
                                                                     Decimal("79.90"))


def test_the_first_coupon_is_the_orders_coupon_code():
    body = order(coupon=[{"id": 1029384756, "code": "VOLTA-7K2M", "type": "percentage", "value": "10.00"}])
    assert nuvemshop.order_to_order_event(body).coupon_code == "VOLTA-7K2M"


def test_a_product_without_sku_is_named_by_its_variant_id():
    body = order()
    body["products"][0]["sku"] = None
    assert nuvemshop.order_to_order_event(body).items[0].sku == "332977991"
    assert nuvemshop.checkout_to_cart_event(checkout(products=body["products"])).items[0].sku == "332977991"


def test_a_quantity_written_as_text_is_read():
    body = order()
    body["products"][0]["quantity"] = "3"
    assert nuvemshop.order_to_order_event(body).items[0].quantity == 3


@pytest.mark.parametrize("place, written", [
    ("contact_phone", "+55 11 99999-0001"),
    ("customer.phone", "(11) 99999-0001"),
    ("billing_phone", "11999990001"),
    ("shipping_address.phone", "011 99999 0001"),
    ("customer.default_address.phone", "5511999990001"),
    ("billing_phone", "(11) 9999-0001"),  # an old mobile without the ninth digit
])
def test_brazilian_phones_anywhere_nuvemshop_puts_them_in_an_order(place, written):
    body = order(contact_phone=None, billing_phone=None)
    body["customer"]["phone"] = body["customer"]["default_address"]["phone"] = None
    body["shipping_address"]["phone"] = None
    target = body
    *path, last = place.split(".")
    for key in path:
        target = target[key]
    target[last] = written
    assert nuvemshop.order_to_order_event(body).customer.phone == PHONE


def test_an_invalid_phone_falls_back_to_the_next_one():
    body = order(contact_phone="123", billing_phone="não informado")
    body["customer"]["phone"] = None
    assert nuvemshop.order_to_order_event(body).customer.phone == PHONE  # shipping_address.phone


def test_the_shoppers_name_falls_back_through_nuvemshops_places():
    body = order(contact_name="  ")
    assert nuvemshop.order_to_order_event(body).customer.name == "Ana Souza"  # customer.name
    body["customer"]["name"] = None
    body["billing_name"] = "Ana S."
    assert nuvemshop.order_to_order_event(body).customer.name == "Ana S."
    assert nuvemshop.checkout_to_cart_event(checkout(contact_name=None, billing_name=None,
                                                     shipping_name="Ana Entrega")).customer.name == "Ana Entrega"


@pytest.mark.parametrize("place", ["contact_phone", "billing_phone", "shipping_phone"])
def test_a_checkouts_phone_in_any_of_its_places(place):
    body = checkout(phone=None)
    body[place] = "(11) 99999-0001"
    event = nuvemshop.checkout_to_cart_event(body)
    assert event.customer.phone == PHONE and event.event == "cart.abandoned"


def test_a_checkout_maps_onto_an_abandoned_cart_dated_by_its_own_update():
    event = nuvemshop.checkout_to_cart_event(checkout(updated_at="2021-05-13T21:04:00+0000"))
    assert event.id == str(CHECKOUT_ID) and event.checkout_url == CHECKOUT_URL
    assert event.updated_at == datetime(2021, 5, 13, 21, 4, tzinfo=timezone.utc)
    assert event.customer.name == "Ana Souza" and event.total == Decimal("159.80")
    assert [(i.sku, i.quantity) for i in event.items] == [("TS-01-BR-M", 2)]


def test_a_completed_or_phoneless_checkout_is_not_a_cart():
    assert nuvemshop.checkout_to_cart_event(checkout(completed_at=stamp(utcnow()))) is None
    assert nuvemshop.checkout_to_cart_event(checkout(phone="")) is None


def test_a_malformed_checkout_names_nuvemshops_fields():
    body = checkout(total="R$ 10", abandoned_checkout_url="javascript:alert(1)")
    body["products"][0]["quantity"] = 0
    with pytest.raises(EventInvalid) as exc:
        nuvemshop.checkout_to_cart_event(body)
    assert {"total", "abandoned_checkout_url", "products[0].quantity"} <= set(exc.value.fields)


# --- polling abandoned checkouts -------------------------------------------------------------------------

def test_a_poll_pages_through_the_checkouts_and_applies_the_carts(session, runtime, api, monkeypatch):
    monkeypatch.setattr(nuvemshop, "PER_PAGE", 3)
    now = utcnow()
    first, second, third = (now - timedelta(minutes=m) for m in (50, 40, 30))
    malformed = checkout(id=3, at=now - timedelta(minutes=25), total=19.9)
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(1, now - timedelta(days=2), 3),
            json=[checkout(id=1, at=first), checkout(id=2, at=second),
                  checkout(id=9, at=now - timedelta(minutes=35), completed_at=stamp(now - timedelta(minutes=34)))])
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(2, now - timedelta(days=2), 3),
            json=[malformed, checkout(id=4, at=third)])

    result = nuvemshop.poll_checkouts(session, runtime, now)
    assert (result.pages, result.fetched, result.applied, result.duplicate, result.skipped, result.invalid) == (
        2, 5, 3, 0, 1, 1)
    assert {c.external_id: c.status for c in session.scalars(select(Cart))} == {
        "1": CartStatus.ABANDONED, "2": CartStatus.ABANDONED, "4": CartStatus.ABANDONED}
    # The merchant's delay counts from the checkout's last update, not from when it was read.
    for id, at in ((1, first), (2, second), (4, third)):
        assert the_cart(session, id).updated_at == seconds(at)
        assert the_cart(session, id).checkout_url == CHECKOUT_URL.replace(str(CHECKOUT_ID), str(id))
    # The watermark: the newest update seen (the malformed checkout's included: it is as read as the others).
    assert nuvemshop.read_watermark(runtime) == seconds(now - timedelta(minutes=25)) == result.watermark
    assert result.as_json()["watermark"] == seconds(now - timedelta(minutes=25)).isoformat()
    assert activity.last_events(runtime)["nuvemshop"] == {"at": now, "kind": "checkouts"}


def test_the_next_poll_reads_back_from_the_watermark_and_finds_duplicates(session, runtime, api):
    now = utcnow()
    listed = [checkout(id=1, at=now - timedelta(minutes=30))]
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(1, now - timedelta(days=2), 200), json=listed)
    assert nuvemshop.poll_checkouts(session, runtime, now).applied == 1
    mark = nuvemshop.read_watermark(runtime)
    assert mark == seconds(now - timedelta(minutes=30))

    later = now + timedelta(minutes=5)
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(1, mark - nuvemshop.OVERLAP, 200), json=listed)
    again = nuvemshop.poll_checkouts(session, runtime, later)
    assert (again.fetched, again.applied, again.duplicate) == (1, 0, 1)
    assert nuvemshop.read_watermark(runtime) == mark
    assert count(session, Cart) == 1


def test_a_checkout_updated_since_the_last_poll_is_applied_again(session, runtime, api):
    now = utcnow()
    api.add(responses.GET, CHECKOUTS_URL, json=[checkout(id=1, at=now - timedelta(minutes=30))])
    assert nuvemshop.poll_checkouts(session, runtime, now).applied == 1
    api.replace(responses.GET, CHECKOUTS_URL, json=[checkout(id=1, at=now - timedelta(minutes=2), total="79.90")])
    assert nuvemshop.poll_checkouts(session, runtime, now).applied == 1
    assert the_cart(session, 1).total == Decimal("79.90")
    assert nuvemshop.read_watermark(runtime) == seconds(now - timedelta(minutes=2))


def test_the_watermark_never_moves_back(session, runtime, api):
    now = utcnow()
    mark = seconds(now - timedelta(minutes=10))
    runtime.redis.set(nuvemshop.watermark_key(runtime), mark.isoformat())
    # Read back through the overlap: a checkout older than the watermark, created late by the platform.
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(1, mark - nuvemshop.OVERLAP, 200),
            json=[checkout(id=1, at=now - timedelta(hours=4))])
    result = nuvemshop.poll_checkouts(session, runtime, now)
    assert result.applied == 1 and the_cart(session, 1).updated_at == seconds(now - timedelta(hours=4))
    assert nuvemshop.read_watermark(runtime) == mark == result.watermark


def test_a_page_past_the_end_is_a_404_and_ends_the_listing(session, runtime, api, monkeypatch):
    monkeypatch.setattr(nuvemshop, "PER_PAGE", 2)
    now = utcnow()
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(1, now - timedelta(days=2), 2),
            json=[checkout(id=1, at=now - timedelta(minutes=30)), checkout(id=2, at=now - timedelta(minutes=31))])
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(2, now - timedelta(days=2), 2), status=404,
            json={"code": 404, "message": "Not Found", "description": "Last page is 1"})
    result = nuvemshop.poll_checkouts(session, runtime, now)
    assert (result.pages, result.applied, result.truncated) == (1, 2, False)
    assert len(api.calls) == 2


def test_no_checkouts_at_all_changes_nothing(session, runtime, api):
    api.add(responses.GET, CHECKOUTS_URL, status=404, json={"code": 404, "message": "Not Found"})
    result = nuvemshop.poll_checkouts(session, runtime, utcnow())
    assert (result.pages, result.fetched, result.watermark) == (0, 0, None)
    assert activity.last_events(runtime)["nuvemshop"] is None
    assert nuvemshop.read_watermark(runtime) is None and nothing_stored(session, runtime)


@pytest.mark.parametrize("failure", [
    {"status": 500, "json": {"code": 500, "message": "Internal Server Error"}},
    {"status": 401, "json": {"code": 401, "message": "Unauthorized", "description": "Invalid access token"}},
    {"status": 429, "json": {"code": 429, "message": "Too Many Requests"}},
    {"body": requests.exceptions.ReadTimeout("read timed out")},
    {"status": 200, "body": "not json"},
    {"status": 200, "json": {"checkouts": []}},
], ids=["500", "401", "429", "timeout", "not-json", "not-a-list"])
def test_an_api_failure_on_any_page_applies_nothing_and_keeps_the_watermark(session, runtime, api, monkeypatch,
                                                                           failure):
    monkeypatch.setattr(nuvemshop, "PER_PAGE", 1)
    now = utcnow()
    mark = seconds(now - timedelta(hours=1))
    runtime.redis.set(nuvemshop.watermark_key(runtime), mark.isoformat())
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(1, mark - nuvemshop.OVERLAP, 1),
            json=[checkout(id=1, at=now - timedelta(minutes=10))])
    api.add(responses.GET, CHECKOUTS_URL, match=page_matcher(2, mark - nuvemshop.OVERLAP, 1), **failure)
    with pytest.raises(ShopUnavailable):
        nuvemshop.poll_checkouts(session, runtime, now)
    assert nothing_stored(session, runtime)
    assert nuvemshop.read_watermark(runtime) == mark


def test_the_watermark_never_passes_now(session, runtime, api):
    now = utcnow()
    api.add(responses.GET, CHECKOUTS_URL, json=[checkout(id=1, at=now + timedelta(hours=3))])  # the shop's clock
    assert nuvemshop.poll_checkouts(session, runtime, now).applied == 1
    assert nuvemshop.read_watermark(runtime) == now


def test_a_page_repeating_an_earlier_one_stops_the_listing(session, runtime, api, monkeypatch):
    monkeypatch.setattr(nuvemshop, "PER_PAGE", 2)
    now = utcnow()
    same = [checkout(id=1, at=now - timedelta(minutes=30)), checkout(id=2, at=now - timedelta(minutes=31))]
    api.add(responses.GET, CHECKOUTS_URL, json=same)  # an API that ignores ?page=
    result = nuvemshop.poll_checkouts(session, runtime, now)
    assert (result.pages, result.applied, result.truncated) == (1, 2, True)
    assert len(api.calls) == 2


def test_the_page_cap_bounds_one_poll(session, runtime, api, monkeypatch):
    monkeypatch.setattr(nuvemshop, "PER_PAGE", 1)
    monkeypatch.setattr(nuvemshop, "MAX_PAGES", 3)
    now = utcnow()

    def page(request):
        number = int(request.params["page"])
        return 200, {}, json.dumps([checkout(id=number, at=now - timedelta(minutes=60 - number))])

    api.add_callback(responses.GET, CHECKOUTS_URL, callback=page, content_type="application/json")
    result = nuvemshop.poll_checkouts(session, runtime, now)
    assert (result.pages, result.applied, result.truncated) == (3, 3, True)
    assert len(api.calls) == 3


def test_a_poll_needs_the_store_and_token(instance_dir, database_url, redis_url, db, redis_client, session, api):
    tokenless = make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="nuvemshop",
                              NUVEMSHOP_STORE_ID=STORE_ID)
    with installed_runtime(tokenless, db, redis_client) as rt, \
            pytest.raises(ShopUnavailable, match="NUVEMSHOP_ACCESS_TOKEN"):
        nuvemshop.poll_checkouts(session, rt, utcnow())
    assert len(api.calls) == 0


# --- the periodic job ------------------------------------------------------------------------------------

def test_the_poll_is_a_periodic_job(runtime):
    jobs_by_func = {job.func: job for job in periodic_jobs(runtime)}
    assert jobs_by_func["shops.jobs.poll_nuvemshop_checkouts"].interval == 300


@pytest.mark.parametrize("overrides, why", [
    ({}, "SHOP_PLATFORM"),
    ({"SHOP_PLATFORM": "shopify"}, "SHOP_PLATFORM"),
    ({"SHOP_PLATFORM": "nuvemshop", "NUVEMSHOP_STORE_ID": STORE_ID}, "NUVEMSHOP_ACCESS_TOKEN"),
    ({"SHOP_PLATFORM": "nuvemshop", "NUVEMSHOP_ACCESS_TOKEN": TOKEN}, "NUVEMSHOP_STORE_ID"),
])
def test_the_job_is_skipped_without_the_platform_and_credentials(instance_dir, database_url, redis_url, db,
                                                                 redis_client, api, overrides, why):
    with installed_runtime(make_settings(instance_dir, database_url, redis_url, **overrides), db, redis_client):
        result = jobs.poll_nuvemshop_checkouts()
    assert set(result) == {"skipped"} and why in result["skipped"]
    assert len(api.calls) == 0


def test_the_job_polls_and_reports_failures(runtime, session, api):
    api.add(responses.GET, CHECKOUTS_URL, json=[checkout(id=1, at=utcnow() - timedelta(minutes=30))])
    result = jobs.poll_nuvemshop_checkouts()
    assert (result["applied"], result["pages"]) == (1, 1)
    assert the_cart(session, 1) is not None

    api.replace(responses.GET, CHECKOUTS_URL, status=503, body="unavailable")
    failed = jobs.poll_nuvemshop_checkouts()
    assert set(failed) == {"error"} and "503" in failed["error"]


# --- end to end ------------------------------------------------------------------------------------------

def test_a_polled_checkout_is_recovered_and_the_paid_order_credited(client, session, runtime, api):
    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    map_template(session, approved_template(session))
    now = utcnow()
    api.add(responses.GET, CHECKOUTS_URL, json=[checkout(at=now - timedelta(minutes=15))])
    # The recoverer creates its code on Nuvemshop before the message goes (catalog.discounts).
    api.add(responses.POST, f"{API}/{STORE_ID}/coupons", status=201, json={"id": 1029384756, "code": "criado"})
    assert nuvemshop.poll_checkouts(session, runtime, now).applied == 1
    shopper = session.scalar(select(Customer).where(Customer.phone == PHONE))
    assert shopper.last_inbound_at is None  # never wrote: only the approved template may go

    run_tick(session, runtime, now + timedelta(minutes=1))
    [message] = recovery_messages(session)
    coupon = session.scalar(select(Coupon).where(Coupon.customer_id == shopper.id))
    assert coupon is not None
    sent = json.dumps(message.content_variables, ensure_ascii=False) + (message.body or "")
    assert CHECKOUT_URL in sent and coupon.code in sent  # no coupon link on Nuvemshop: the code is typed
    [published] = [c for c in api.calls if c.request.method == "POST"]
    assert json.loads(published.request.body)["code"] == coupon.code

    paid_at = now + timedelta(minutes=30)
    serve_order(api, order(at=paid_at, payment_status="paid", total="143.82",
                           coupon=[{"id": 1029384756, "code": coupon.code, "type": "percentage", "value": "10.00"}]))
    assert post(client, webhook("order/paid")).get_json() == {"status": "applied"}
    placed = the_order(session)
    assert placed.status is OrderStatus.PAID and placed.coupon_code == coupon.code
    [attempt] = session.scalars(select(RecoveryAttempt)).all()
    assert attempt.recovered_order_id == placed.id
    session.expire_all()
    assert session.get(Coupon, coupon.id).redeemed_order_id == placed.id
    assert the_cart(session).status is CartStatus.CONVERTED
