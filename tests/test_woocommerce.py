"""WooCommerce connector: POST /webhooks/woocommerce and shops.woocommerce's mapping onto recovery.events.

The payload is trimmed from the order object of WooCommerce's REST API v3 reference (developer.woocommerce.com,
orders; webhooks deliver that object), keeping its shape and quirks: ``*_gmt`` dates without an offset, money as
decimal strings except the line's float ``price``, ``date_paid_gmt`` null until paid. Brazilian phones, BRL and
times near "now" so the recoverer's windows apply.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from datetime import timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from catalog.links import WooCommerceLinks, builder_for, shop_links
from models import (
    Cart, CartItem, CartStatus, Coupon, CouponKind, CouponRule, Customer, Order, OrderStatus, Product,
    RecoveryAttempt, StoreEvent, Variant, utcnow,
)
from recovery.events import CartEvent, EventInvalid, OrderEvent
from recovery.tick import run_tick
from recovery.tracker import Tracker
from shops import woocommerce
from tests.conftest import installed_runtime, make_settings
from tests.recovery_helpers import (
    approved_template, enable_recovery, map_template, recovery_messages, sent_recovery_messages,
)
from tests.test_store_events import nothing_stored

URL = "/webhooks/woocommerce"
SECRET = "wc-webhook-" + "5f" * 16
STORE = "https://loja.example"
PHONE = "+5511999990001"
BRT = timezone(timedelta(hours=-3))
ORDER_ID = 727
PAYMENT_URL = f"{STORE}/finalizar-compra/order-pay/{ORDER_ID}/?pay_for_order=true&key=wc_order_kX3bT9mQ2pL7a"

# The v3 order object as a webhook delivers it (trimmed), awaiting payment by Pix.
ORDER = {
    "id": ORDER_ID,
    "parent_id": 0,
    "number": str(ORDER_ID),
    "order_key": "wc_order_kX3bT9mQ2pL7a",
    "created_via": "checkout",
    "version": "8.9.1",
    "status": "pending",
    "currency": "BRL",
    "date_created": "2024-05-20T16:54:40",
    "date_created_gmt": "2024-05-20T19:54:40",
    "date_modified": "2024-05-20T16:54:41",
    "date_modified_gmt": "2024-05-20T19:54:41",
    "discount_total": "0.00",
    "discount_tax": "0.00",
    "shipping_total": "15.00",
    "shipping_tax": "0.00",
    "cart_tax": "0.00",
    "total": "174.80",
    "total_tax": "0.00",
    "prices_include_tax": False,
    "customer_id": 0,
    "customer_ip_address": "200.158.10.20",
    "customer_user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
    "customer_note": "",
    "billing": {"first_name": "Ana", "last_name": "Souza", "company": "", "address_1": "Rua Augusta, 100",
                "address_2": "Apto 12", "city": "São Paulo", "state": "SP", "postcode": "01304-000",
                "country": "BR", "email": "ana@example.com", "phone": "(11) 99999-0001"},
    "shipping": {"first_name": "Ana", "last_name": "Souza", "company": "", "address_1": "Rua Augusta, 100",
                 "address_2": "Apto 12", "city": "São Paulo", "state": "SP", "postcode": "01304-000",
                 "country": "BR", "phone": ""},
    "payment_method": "pix",
    "payment_method_title": "Pix",
    "transaction_id": "",
    "date_paid": None,
    "date_paid_gmt": None,
    "date_completed": None,
    "date_completed_gmt": None,
    "cart_hash": "4b1e8f1cf5a3a9b3a6f0c8d2e7b1a9c4",
    "meta_data": [],
    "line_items": [
        {"id": 315, "name": "Camiseta Básica - Branca, M", "product_id": 93, "variation_id": 101, "quantity": 2,
         "tax_class": "", "subtotal": "159.80", "subtotal_tax": "0.00", "total": "159.80", "total_tax": "0.00",
         "taxes": [], "meta_data": [{"id": 2860, "key": "pa_cor", "value": "branca", "display_key": "Cor",
                                     "display_value": "Branca"}],
         "sku": "TS-01-BR-M", "price": 79.9, "image": {"id": "94", "src": f"{STORE}/wp-content/uploads/ts.jpg"},
         "parent_name": "Camiseta Básica"},
    ],
    "tax_lines": [],
    "shipping_lines": [{"id": 316, "method_title": "PAC", "method_id": "flat_rate", "instance_id": "1",
                        "total": "15.00", "total_tax": "0.00", "taxes": [], "meta_data": []}],
    "fee_lines": [],
    "coupon_lines": [],
    "refunds": [],
    "payment_url": PAYMENT_URL,
    "is_editable": True,
    "needs_payment": True,
    "needs_processing": True,
    "currency_symbol": "R$",
    "_links": {"self": [{"href": f"{STORE}/wp-json/wc/v3/orders/{ORDER_ID}"}],
               "collection": [{"href": f"{STORE}/wp-json/wc/v3/orders"}]},
}


@pytest.fixture
def settings(instance_dir, database_url, redis_url):
    return make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="woocommerce",
                         WOOCOMMERCE_STORE_URL=STORE, WOOCOMMERCE_WEBHOOK_SECRET=SECRET)


# A recovery template without a coupon: whether a coupon goes depends on the platform's API keys
# (catalog.discounts), which is not what these tests are about.
TEMPLATE_BODY = "Oi, {{1}}! Seus itens na Loja Demo estão esperando: {{2}}. Finalize aqui: {{3}}"
TEMPLATE_PARAMS = {"1": "nome", "2": "itens", "3": "link"}


def recover_without_coupon(session) -> None:
    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00", coupon_rule_id=None)
    map_template(session, approved_template(session, body=TEMPLATE_BODY), TEMPLATE_PARAMS)


def gmt(moment) -> str:
    """As WooCommerce writes its ``*_gmt`` dates: UTC, to the second, no offset."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def local(moment) -> str:
    return moment.astimezone(BRT).strftime("%Y-%m-%dT%H:%M:%S")


def minutes_ago(n: float):
    return (utcnow() - timedelta(minutes=n)).replace(microsecond=0)


def order(status: str = "pending", *, created=None, modified=None, paid=None, id: int = ORDER_ID, **changes) -> dict:
    body = copy.deepcopy(ORDER)
    created = created or minutes_ago(5)
    modified = modified or created
    body["id"], body["number"], body["status"] = id, str(id), status
    body["date_created"], body["date_created_gmt"] = local(created), gmt(created)
    body["date_modified"], body["date_modified_gmt"] = local(modified), gmt(modified)
    if paid is not None:
        body["date_paid"], body["date_paid_gmt"] = local(paid), gmt(paid)
        body["transaction_id"] = "E18236120202405201955s0123456789"
        body["needs_payment"] = False
    body.update(changes)
    return body


def sign(raw: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def post(client, topic: str, payload, *, signature="auto", delivery_id=None, raw: bytes | None = None,
         source: str = STORE + "/"):
    body = raw if raw is not None else json.dumps(payload).encode()
    resource, _, event = topic.partition(".")
    headers = {"X-WC-Webhook-Source": source, "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": resource,
               "X-WC-Webhook-Event": event, "X-WC-Webhook-ID": "12",
               "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
               "User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)"}
    if signature == "auto":
        headers["X-WC-Webhook-Signature"] = sign(body)
    elif signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    return client.post(URL, data=body, headers=headers, content_type="application/json")


def ping(client, body: bytes = b"webhook_id=12"):
    # What WooCommerce sends when the merchant saves the webhook: a form body, no X-WC-* headers at all.
    return client.post(URL, data=body, content_type="application/x-www-form-urlencoded",
                       headers={"User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)"})


def the_cart(session, external_id: str = str(ORDER_ID)) -> Cart | None:
    session.expire_all()
    return session.scalar(select(Cart).where(Cart.external_id == external_id))


def the_order(session, external_id: str = str(ORDER_ID)) -> Order | None:
    session.expire_all()
    return session.scalar(select(Order).where(Order.external_id == external_id))


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- signatures and the ping -----------------------------------------------------------------------------

def test_verify_is_base64_hmac_of_the_raw_body():
    raw = json.dumps(order()).encode()
    assert woocommerce.verify(raw, sign(raw), SECRET)
    assert not woocommerce.verify(raw, sign(raw, "other"), SECRET)
    assert not woocommerce.verify(raw, hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(), SECRET)
    assert not woocommerce.verify(raw, None, SECRET)
    assert not woocommerce.verify(raw, sign(raw), None)


def test_the_unsigned_ping_is_answered_and_nothing_stored(client, session, runtime):
    response = ping(client)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert ping(client, b"webhook_id=98765432101234567890").status_code == 200
    assert nothing_stored(session, runtime)


@pytest.mark.parametrize("body", [
    b"webhook_id=12&status=processing",
    b"webhook_id=12\n",
    b"webhook_id=",
    b"webhook_id=abc",
    b"webhook_id=123456789012345678901",
    b'{"webhook_id": 12}',
])
def test_anything_else_unsigned_is_refused(client, session, runtime, body):
    assert ping(client, body).status_code == 401
    assert nothing_stored(session, runtime)


def test_an_unsigned_order_is_refused_and_nothing_stored(client, session, runtime):
    response = post(client, "order.created", order(), signature=None)
    assert response.status_code == 401
    assert "X-WC-Webhook-Signature" in response.get_json()["message"]
    assert nothing_stored(session, runtime)


def test_a_wrong_secret_is_refused_and_nothing_stored(client, session, runtime):
    raw = json.dumps(order()).encode()
    assert post(client, "order.created", None, raw=raw, signature=sign(raw, "wc-other")).status_code == 401
    assert nothing_stored(session, runtime)


def test_the_right_signature_over_an_altered_body_is_refused(client, session, runtime):
    raw = json.dumps(order("processing", paid=minutes_ago(1))).encode()
    signature = sign(raw)
    altered = raw.replace(b'"174.80"', b'"1.00"')
    assert altered != raw
    assert post(client, "order.updated", None, raw=altered, signature=signature).status_code == 401
    assert nothing_stored(session, runtime)


def test_without_a_configured_secret_every_signed_order_is_refused(instance_dir, database_url, redis_url, db,
                                                                     redis_client, session):
    from app import create_app

    unset = make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="woocommerce",
                          WOOCOMMERCE_STORE_URL=STORE)
    assert unset.woocommerce_webhook_secret is None
    with installed_runtime(unset, db, redis_client) as rt:
        client = create_app({"RUNTIME": rt, "TESTING": True}).test_client()
        assert post(client, "order.created", order()).status_code == 401
        assert ping(client).status_code == 200  # saving the webhook still works; it stores nothing
        assert nothing_stored(session, rt)


# --- bodies and topics -----------------------------------------------------------------------------------

def test_malformed_json_is_a_400_naming_the_body(client, session, runtime):
    response = post(client, "order.created", None, raw=b'{"id": 727, ')
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"body": "JSON inválido"}
    assert nothing_stored(session, runtime)


def test_bad_fields_are_named_as_woocommerce_names_them(client, session, runtime):
    body = order(total=174.8, currency="USD", date_modified_gmt="ontem")
    body["line_items"][0]["subtotal"] = 159.8
    body["line_items"][0]["quantity"] = "2"
    body["billing"]["first_name"] = "Ana\x00"
    response = post(client, "order.updated", body)
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert set(fields) == {"total", "currency", "date_modified_gmt", "line_items[0].subtotal", "line_items[0].quantity",
                           "billing.first_name"}
    assert "texto decimal" in fields["total"]
    assert nothing_stored(session, runtime)


def test_an_order_event_names_the_date_it_read():
    with pytest.raises(EventInvalid) as paid:
        woocommerce.order_to_event(order("processing", paid=minutes_ago(1), date_paid_gmt="20/05/2024"))
    assert set(paid.value.fields) == {"date_paid_gmt"}
    with pytest.raises(EventInvalid) as held:
        woocommerce.order_to_event(order("on-hold", date_modified_gmt=None, date_created_gmt="amanhã"))
    assert set(held.value.fields) == {"date_created_gmt"}


@pytest.mark.parametrize("topic, payload", [
    ("product.updated", {"id": 93, "name": "Camiseta Básica", "price": "79.90"}),
    ("coupon.created", {"id": 5, "code": "blackfriday", "amount": "10.00"}),
    ("order.deleted", {"id": ORDER_ID}),
    ("customer.created", {"id": 8, "email": "ana@example.com"}),
    ("", order()),
])
def test_topics_we_do_not_use_are_ignored(client, session, runtime, topic, payload):
    response = post(client, topic, payload)
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime)


@pytest.mark.parametrize("status", ["checkout-draft", "trash", "aguardando-envio", None])
def test_statuses_we_do_not_use_are_ignored(client, session, status):
    assert woocommerce.order_to_event(order(status)) is None
    assert post(client, "order.updated", order(status)).get_json() == {"status": "ignored"}
    assert count(session, Cart) == 0 and count(session, Order) == 0 and count(session, Customer) == 0


def test_a_delivery_from_another_site_is_ignored(client, session, runtime):
    # A staging copy of the store keeps its webhooks, secrets included.
    response = post(client, "order.created", order(), source="https://staging.loja.example/")
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime)
    # The same store written with www. and without the trailing slash is the store.
    assert post(client, "order.created", order(), source="https://www.loja.example").get_json() == {
        "status": "applied"}


# --- repeats ---------------------------------------------------------------------------------------------

def test_the_same_order_state_delivered_twice_is_a_duplicate(client, session):
    body = order()
    assert post(client, "order.created", body).get_json() == {"status": "applied"}
    events = count(session, StoreEvent)
    assert post(client, "order.created", body).get_json() == {"status": "duplicate"}
    assert post(client, "order.updated", body).get_json() == {"status": "duplicate"}
    assert count(session, StoreEvent) == events and count(session, Cart) == 1
    paid = order("processing", paid=minutes_ago(1))
    assert post(client, "order.updated", paid).get_json() == {"status": "applied"}
    assert post(client, "order.updated", paid).get_json() == {"status": "duplicate"}
    assert count(session, Order) == 1


def test_deliveries_sharing_a_delivery_id_are_each_applied(client, session):
    # WooCommerce's delivery id is wp_hash(webhook id . current second): two orders updated in the same second
    # arrive under one id, and both must count.
    same_second = "1b9d6bcd7f3c2a4e5f6a7b8c9d0e1f2a"
    first = post(client, "order.updated", order("processing", paid=minutes_ago(1)), delivery_id=same_second)
    second = post(client, "order.updated", order("processing", id=728, paid=minutes_ago(1)),
                  delivery_id=same_second)
    assert first.get_json() == second.get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.PAID and the_order(session, "728").status is OrderStatus.PAID
    # The same delivery sent again is still a repeat: the order's own state says so.
    again = post(client, "order.updated", order("processing", id=728, paid=minutes_ago(1)),
                 delivery_id=same_second)
    assert again.get_json() == {"status": "duplicate"}


# --- mapping ---------------------------------------------------------------------------------------------

def test_a_pending_order_maps_onto_a_cart_with_its_payment_page():
    modified = minutes_ago(3)
    event = woocommerce.order_to_event(order(created=minutes_ago(4), modified=modified))
    assert isinstance(event, CartEvent) and event.event == "cart.updated" and event.id == str(ORDER_ID)
    assert event.customer.phone == PHONE and event.customer.name == "Ana Souza"
    assert event.checkout_url == PAYMENT_URL
    assert event.updated_at == modified  # the *_gmt date read as UTC, not as local time
    assert (event.total, event.currency) == (Decimal("174.80"), "BRL")
    [item] = event.items
    assert (item.sku, item.name, item.quantity, item.unit_price) == ("TS-01-BR-M", "Camiseta Básica - Branca, M", 2,
                                                                     Decimal("79.90"))


def test_a_failed_payment_is_still_a_cart_the_shopper_can_pay():
    event = woocommerce.order_to_event(order("failed"))
    assert isinstance(event, CartEvent) and event.checkout_url == PAYMENT_URL


def test_a_cart_without_a_modification_date_uses_the_creation_date():
    created = minutes_ago(8)
    event = woocommerce.order_to_event(order(created=created, date_modified_gmt=None))
    assert event.updated_at == created


def test_the_unit_price_comes_from_the_subtotal_string_not_the_float_price():
    body = order()
    line = body["line_items"][0]
    line.update(quantity=3, subtotal="100.00", total="90.00", price=33.333333333333336)
    [item] = woocommerce.order_to_event(body).items
    assert item.unit_price == Decimal("33.33") and item.quantity == 3


@pytest.mark.parametrize("sku, variation_id, product_id, line_id, expected", [
    ("", 101, 93, 315, "101"),
    (None, 0, 93, 315, "93"),
    ("  ", 0, 0, 315, "315"),  # the product was deleted since
    ("TS-01-BR-M", 101, 93, 315, "TS-01-BR-M"),
])
def test_a_line_without_sku_is_named_by_its_variation_or_product(sku, variation_id, product_id, line_id, expected):
    body = order()
    body["line_items"][0].update(sku=sku, variation_id=variation_id, product_id=product_id, id=line_id)
    assert woocommerce.order_to_event(body).items[0].sku == expected


@pytest.mark.parametrize("status, paid, event", [
    ("on-hold", False, "order.created"),
    ("processing", True, "order.paid"),
    ("completed", True, "order.paid"),
    ("processing", False, "order.paid"),  # e.g. cash on delivery: processing before any payment date
    ("refunded", True, "order.cancelled"),
    ("cancelled", True, "order.cancelled"),
    ("wc-processing", True, "order.paid"),
])
def test_order_statuses_map_onto_order_events(status, paid, event):
    mapped = woocommerce.order_to_event(order(status, paid=minutes_ago(2) if paid else None))
    assert isinstance(mapped, OrderEvent) and mapped.event == event and mapped.id == str(ORDER_ID)
    assert mapped.customer.phone == PHONE and mapped.total == Decimal("174.80")


def test_an_order_is_placed_when_it_was_paid_not_when_it_was_created():
    paid_at = minutes_ago(2)
    event = woocommerce.order_to_event(order("processing", created=minutes_ago(90), modified=minutes_ago(1),
                                             paid=paid_at))
    assert event.created_at == paid_at
    held_at = minutes_ago(3)
    held = woocommerce.order_to_event(order("on-hold", created=minutes_ago(90), modified=held_at))
    assert held.created_at == held_at


def test_a_cancelled_order_never_paid_is_a_cart_without_its_dead_payment_page():
    modified = minutes_ago(1)
    event = woocommerce.order_to_event(order("cancelled", created=minutes_ago(70), modified=modified))
    assert isinstance(event, CartEvent)
    assert event.checkout_url is None and event.updated_at == modified


def test_dates_with_an_offset_are_read_as_written():
    event = woocommerce.order_to_event(order(date_modified_gmt="2024-05-20T16:54:41-03:00"))
    assert gmt(event.updated_at) == "2024-05-20T19:54:41"
    with_z = woocommerce.order_to_event(order(date_modified_gmt="2024-05-20T19:54:41Z"))
    assert gmt(with_z.updated_at) == "2024-05-20T19:54:41"


def test_the_first_coupon_line_is_the_coupon():
    body = order("processing", paid=minutes_ago(1), discount_total="15.98", total="158.82")
    body["coupon_lines"] = [{"id": 317, "code": "volta-7k2m9qx4ab", "discount": "15.98", "discount_tax": "0.00",
                             "meta_data": []},
                            {"id": 318, "code": "frete10", "discount": "0.00", "discount_tax": "0.00"}]
    assert woocommerce.order_to_event(body).coupon_code == "volta-7k2m9qx4ab"


@pytest.mark.parametrize("billing, shipping", [
    ({"phone": "(11) 99999-0001"}, {}),
    ({"phone": "11999990001"}, {}),
    ({"phone": "+55 11 99999-0001"}, {}),
    ({"phone": "011 99999 0001"}, {}),
    ({"phone": "(11) 9999-0001"}, {}),  # an old mobile without the ninth digit
    ({"phone": ""}, {"phone": "5511999990001"}),
    ({"phone": "não tenho"}, {"phone": "(11) 99999-0001"}),
    ({"phone": "(11) 3333-4444", "cellphone": "(11) 99999-0001"}, {}),  # Brazilian Market's "Celular" first
])
def test_brazilian_phone_formats_where_woocommerce_puts_them(billing, shipping):
    body = order()
    body["billing"].update(billing)
    body["shipping"].update(shipping)
    assert woocommerce.order_to_event(body).customer.phone == PHONE


def test_an_order_without_a_usable_phone_is_ignored(client, session):
    body = order()
    body["billing"]["phone"] = "123"
    body["shipping"]["phone"] = ""
    assert woocommerce.order_to_event(body) is None
    assert post(client, "order.created", body).get_json() == {"status": "ignored"}
    assert count(session, Cart) == 0 and count(session, Customer) == 0


# --- order life cycles, through the webhook --------------------------------------------------------------

def test_a_pending_order_becomes_a_store_cart_and_starts_the_countdown(client, session, runtime):
    assert post(client, "order.created", order(created=minutes_ago(2))).get_json() == {"status": "applied"}
    cart = the_cart(session)
    assert cart.source == "store" and cart.status is CartStatus.OPEN
    assert cart.checkout_url == PAYMENT_URL and cart.total == Decimal("174.80")
    assert [(i.sku, i.quantity, i.unit_price) for i in cart.items] == [("TS-01-BR-M", 2, Decimal("79.90"))]
    assert Tracker(runtime).size() == 1
    assert the_order(session) is None  # not a purchase yet


def test_a_pending_order_then_paid_closes_the_cart(client, session, runtime):
    created = minutes_ago(6)
    assert post(client, "order.created", order(created=created)).status_code == 200
    paid = order("processing", created=created, modified=minutes_ago(1), paid=minutes_ago(1))
    assert post(client, "order.updated", paid).get_json() == {"status": "applied"}
    placed = the_order(session)
    assert placed.status is OrderStatus.PAID and placed.total == Decimal("174.80")
    assert the_cart(session).status is CartStatus.CONVERTED
    assert Tracker(runtime).size() == 0


def test_a_paid_order_arriving_before_its_pending_state_means_no_recovery(client, session, runtime):
    recover_without_coupon(session)
    now = utcnow().replace(microsecond=0)
    created = now - timedelta(minutes=6)
    paid = order("processing", created=created, modified=now - timedelta(minutes=1), paid=now - timedelta(minutes=1))
    assert post(client, "order.updated", paid).get_json() == {"status": "applied"}
    late = order("pending", created=created, modified=now - timedelta(minutes=5))
    assert post(client, "order.created", late).status_code == 200
    run_tick(session, runtime, now + timedelta(minutes=15))
    assert recovery_messages(session) == []
    assert the_order(session).status is OrderStatus.PAID
    # The late cart was judged, and refused because the order it belongs to is already bought.
    assert [(a.skip_reason, a.sent_at) for a in session.scalars(select(RecoveryAttempt))] == [("purchased", None)]


def test_an_order_on_hold_is_a_created_order_and_stops_recovery(client, session, runtime):
    created = minutes_ago(6)
    assert post(client, "order.created", order(created=created)).status_code == 200
    held = order("on-hold", created=created, modified=minutes_ago(2), payment_method="bacs",
                 payment_method_title="Transferência bancária")
    assert post(client, "order.updated", held).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.CREATED
    assert the_cart(session).status is CartStatus.CONVERTED
    assert Tracker(runtime).size() == 0


def test_an_on_hold_order_cancelled_unpaid_is_no_purchase_any_more_and_its_cart_reopens(client, session, runtime):
    created = minutes_ago(60)
    held = order("on-hold", created=created, modified=minutes_ago(50), payment_method="bacs",
                 payment_method_title="Transferência bancária")
    assert post(client, "order.created", held).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.CREATED
    # The transfer never came: the merchant cancels the order.
    cancelled = order("cancelled", created=created, modified=minutes_ago(1), payment_method="bacs",
                      payment_method_title="Transferência bancária")
    assert post(client, "order.updated", cancelled).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.CANCELLED
    cart = the_cart(session)
    assert cart.status is CartStatus.OPEN and cart.checkout_url is None
    assert Tracker(runtime).size() == 1  # the shopper's countdown runs again: nothing was bought
    # Delivered again, nothing changes.
    assert post(client, "order.updated", cancelled).get_json() == {"status": "duplicate"}


def test_a_refund_after_payment_cancels_the_order(client, session):
    paid_at = minutes_ago(30)
    assert post(client, "order.updated", order("processing", paid=paid_at)).status_code == 200
    refunded = order("refunded", paid=paid_at, modified=minutes_ago(1))
    assert post(client, "order.updated", refunded).get_json() == {"status": "applied"}
    assert the_order(session).status is OrderStatus.CANCELLED


def test_a_cancelled_order_never_moves_back_to_paid(client, session):
    paid_at = minutes_ago(30)
    assert post(client, "order.updated", order("cancelled", paid=paid_at, modified=minutes_ago(5))).status_code == 200
    completed = order("completed", paid=paid_at, modified=minutes_ago(1))
    assert post(client, "order.updated", completed).status_code == 200
    assert the_order(session).status is OrderStatus.CANCELLED


def test_an_unpaid_order_cancelled_by_woocommerce_is_recovered_by_a_rebuilt_link(client, session, runtime):
    recover_without_coupon(session)
    now = utcnow().replace(microsecond=0)
    created = now - timedelta(minutes=70)
    assert post(client, "order.created", order(created=created)).status_code == 200
    # The held stock expired: WooCommerce cancels the unpaid order, and its pay page stops taking payment.
    cancelled = order("cancelled", created=created, modified=now - timedelta(minutes=1), needs_payment=False)
    assert post(client, "order.updated", cancelled).get_json() == {"status": "applied"}
    cart = the_cart(session)
    assert cart.checkout_url is None and cart.status is CartStatus.OPEN
    assert the_order(session).status is OrderStatus.CANCELLED  # recorded, never a purchase

    run_tick(session, runtime, now + timedelta(minutes=12))
    [message] = sent_recovery_messages(session)
    sent = json.dumps(message.content_variables) + (message.body or "")
    assert f"{STORE}/cart/" in sent and "order-pay" not in sent


# --- coupons ---------------------------------------------------------------------------------------------

def test_a_recovery_coupon_typed_into_woocommerce_is_redeemed(client, session):
    ana = Customer(phone=PHONE, name="Ana Souza", tags=[])
    rule = CouponRule(name="Recuperador 10%", kind=CouponKind.PERCENT, value=Decimal("10"), min_order=Decimal("0"))
    session.add_all([ana, rule])
    session.flush()
    coupon = Coupon(code="VOLTA-7K2M9QX4AB", rule_id=rule.id, customer_id=ana.id, issued_at=minutes_ago(120),
                    expires_at=utcnow() + timedelta(hours=22))
    session.add(coupon)
    session.commit()

    body = order("processing", paid=minutes_ago(1), discount_total="15.98", total="158.82")
    body["coupon_lines"] = [{"id": 317, "code": "volta-7k2m9qx4ab", "discount": "15.98", "discount_tax": "0.00",
                             "meta_data": []}]
    assert post(client, "order.updated", body).get_json() == {"status": "applied"}
    placed = the_order(session)
    assert placed.coupon_code == "volta-7k2m9qx4ab" and placed.coupon_problem is None
    session.expire_all()
    assert session.get(Coupon, coupon.id).redeemed_order_id == placed.id


# --- links -----------------------------------------------------------------------------------------------

def test_woocommerce_links(session, settings):
    assert isinstance(shop_links(settings), WooCommerceLinks)
    links = builder_for("https://outra.example", platform="woocommerce", woocommerce_url=STORE + "/")
    product = Product(key="camiseta-basica", name="Camiseta Básica", price=Decimal("79.90"), platform_product_id="93")
    session.add(product)
    session.flush()
    variation = Variant(product_id=product.id, sku="TS-01-BR-M", price=Decimal("79.90"), platform_variant_id="101")
    simple = Variant(product_id=product.id, sku="TS-01-BR-G", price=Decimal("79.90"))
    session.add_all([variation, simple])
    customer = Customer(phone=PHONE, name="Ana", tags=[])
    session.add(customer)
    session.flush()
    cart = Cart(customer_id=customer.id, source="bot", status=CartStatus.OPEN, updated_at=utcnow(),
                created_at=utcnow())
    cart.items = [CartItem(sku="TS-01-BR-M", name="Camiseta", quantity=2, unit_price=Decimal("79.90"),
                           variant_id=variation.id)]
    session.add(cart)
    session.flush()
    link = links.cart_link(cart)
    assert link == f"{STORE}/?add-to-cart=101&quantity=2"
    assert links.with_coupon(link, "VOLTA-7K2M9QX4AB") == link  # typed at checkout, not carried by the link
    cart.items[0].variant_id = simple.id  # no variation id known: the product's
    session.flush()
    assert links.cart_link(cart) == f"{STORE}/?add-to-cart=93&quantity=2"
    cart.items.append(CartItem(sku="TS-01-BR-G", name="Camiseta G", quantity=1, unit_price=Decimal("79.90"),
                               variant_id=simple.id))
    session.flush()
    assert links.cart_link(cart) == f"{STORE}/cart/"


# --- end to end ------------------------------------------------------------------------------------------

def test_a_pending_woocommerce_order_is_recovered_and_its_payment_credited(client, session, runtime):
    recover_without_coupon(session)
    now = utcnow().replace(microsecond=0)
    created = now - timedelta(minutes=15)  # older than the merchant's 10 minutes
    assert post(client, "order.created", order(created=created)).get_json() == {"status": "applied"}
    shopper = session.scalar(select(Customer).where(Customer.phone == PHONE))
    assert shopper.last_inbound_at is None  # never wrote: only the approved template may go

    run_tick(session, runtime, now)
    [message] = sent_recovery_messages(session)
    sent = json.dumps(message.content_variables) + (message.body or "")
    assert PAYMENT_URL in sent and "Ana" in sent  # the order's own pay page, as WooCommerce gave it

    # Paid by Pix twenty minutes after the message.
    paid_at = now + timedelta(minutes=20)
    paid = order("processing", created=created, modified=paid_at, paid=paid_at)
    assert post(client, "order.updated", paid).get_json() == {"status": "applied"}
    placed = the_order(session)
    assert placed.status is OrderStatus.PAID and placed.placed_at == paid_at
    [attempt] = session.scalars(select(RecoveryAttempt)).all()
    assert attempt.message_id == message.id and attempt.recovered_order_id == placed.id
    assert the_cart(session).status is CartStatus.CONVERTED
    assert Tracker(runtime).size() == 0
