"""Shopify connector: POST /webhooks/shopify and shops.shopify's mapping onto recovery.events.

The payloads are trimmed from the examples in Shopify's webhook reference (shopify.dev, checkouts/create and
orders/create; orders/paid and orders/cancelled carry the same order object), with Brazilian phones, BRL and
times near "now" so the recoverer's windows apply.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from sqlalchemy import func, select

from catalog.links import GenericLinks, ShopifyLinks, builder_for
from models import Cart, CartStatus, Coupon, Customer, Order, OrderStatus, RecoveryAttempt, StoreEvent, utcnow
from recovery.events import EventInvalid
from recovery.tick import run_tick
from shops import shopify
from tests.conftest import make_settings
from tests.recovery_helpers import approved_template, enable_recovery, map_template, recovery_messages
from tests.test_store_events import iso, nothing_stored

URL = "/webhooks/shopify"
SECRET = "shpss_" + "a1" * 16
DOMAIN = "loja-teste.myshopify.com"
PHONE = "+5511999990001"
CHECKOUT_TOTAL = Decimal("159.80")
ADMIN_TOKEN = "shpat_" + "b2" * 16
GRAPHQL_URL = f"https://{DOMAIN}/admin/api/2025-01/graphql.json"
RECOVER_URL = "https://loja-teste.myshopify.com/548380009/checkouts/123123123/recover?key=example-secret-token"

# checkouts/create, as Shopify's reference shows it (trimmed). Note the reference's quirk, kept on purpose:
# an absent shipping address comes as [] rather than null.
CHECKOUT = {
    "id": 981820079255243537,
    "token": "123123123",
    "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
    "email": "example@email.com",
    "gateway": None,
    "buyer_accepts_marketing": False,
    "created_at": "2021-12-31T19:00:00-05:00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "landing_site": None,
    "note": None,
    "shipping_address": [],
    "taxes_included": False,
    "currency": "BRL",
    "completed_at": None,
    "phone": None,
    "customer_locale": "pt-BR",
    "line_items": [
        {"key": "d2a4ecbcf1a6f6d9b4e0d0c2a5c8f4e1", "fulfillment_service": "manual", "gift_card": False, "grams": 567,
         "presentment_title": "Camiseta Básica", "presentment_variant_title": "Branca / M", "product_id": 632910392,
         "quantity": 2, "requires_shipping": True, "sku": "TS-01-BR-M", "taxable": True, "title": "Camiseta Básica",
         "variant_id": 808950810, "variant_title": "Branca / M", "variant_price": "79.90", "vendor": "Loja Teste",
         "compare_at_price": None, "line_price": "159.80", "price": "79.90", "applied_discounts": [],
         "properties": {}},
    ],
    "name": "#981820079255243537",
    "abandoned_checkout_url": RECOVER_URL,
    "discount_codes": [],
    "tax_lines": [],
    "presentment_currency": "BRL",
    "source_name": "web",
    "total_line_items_price": "159.80",
    "total_tax": "0.00",
    "total_discounts": "0.00",
    "subtotal_price": "159.80",
    "total_price": "159.80",
    "total_duties": "0.00",
    "customer": {"id": 603851970716743426, "email": "ana@example.com", "accepts_marketing": False,
                 "first_name": "Ana", "last_name": "Souza", "state": "disabled", "phone": None,
                 "currency": "BRL"},
    "billing_address": {"first_name": "Ana", "address1": "Rua Augusta, 100", "phone": "(11) 99999-0001",
                        "city": "São Paulo", "zip": "01304-000", "province": "São Paulo", "country": "Brazil",
                        "last_name": "Souza", "address2": None, "company": None, "name": "Ana Souza",
                        "country_code": "BR", "province_code": "SP"},
}

# orders/create (orders/paid and orders/cancelled send the same order object), trimmed from the reference.
ORDER = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "cancel_reason": None,
    "cancelled_at": None,
    "checkout_id": 981820079255243537,
    "checkout_token": "123123123",
    "confirmed": True,
    "contact_email": "ana@example.com",
    "created_at": "2021-12-31T19:00:00-05:00",
    "currency": "BRL",
    "current_total_price": "143.82",
    "discount_codes": [],
    "email": "ana@example.com",
    "financial_status": "pending",
    "fulfillment_status": None,
    "name": "#9999",
    "phone": None,
    "processed_at": "2021-12-31T19:00:00-05:00",
    "subtotal_price": "159.80",
    "test": True,
    "total_discounts": "0.00",
    "total_line_items_price": "159.80",
    "total_price": "159.80",
    "total_tax": "0.00",
    "updated_at": "2021-12-31T19:00:00-05:00",
    "billing_address": {"first_name": "Ana", "address1": "Rua Augusta, 100", "phone": "+55 11 99999-0001",
                        "city": "São Paulo", "zip": "01304-000", "province": "São Paulo", "country": "Brazil",
                        "last_name": "Souza", "name": "Ana Souza", "country_code": "BR", "province_code": "SP"},
    "customer": {"id": 115310627314723954, "email": "ana@example.com", "first_name": "Ana", "last_name": "Souza",
                 "phone": None, "currency": "BRL"},
    "line_items": [
        {"id": 866550311766439020, "admin_graphql_api_id": "gid://shopify/LineItem/866550311766439020",
         "current_quantity": 2, "fulfillable_quantity": 2, "fulfillment_service": "manual",
         "fulfillment_status": None, "gift_card": False, "grams": 567, "name": "Camiseta Básica - Branca / M",
         "price": "79.90", "product_exists": True, "product_id": 632910392, "properties": [], "quantity": 2,
         "requires_shipping": True, "sku": "TS-01-BR-M", "taxable": True, "title": "Camiseta Básica",
         "total_discount": "0.00", "variant_id": 808950810, "variant_inventory_management": "shopify",
         "variant_title": "Branca / M", "vendor": None, "tax_lines": [], "duties": [], "discount_allocations": []},
    ],
    "shipping_address": {"first_name": "Ana", "address1": "Rua Augusta, 100", "phone": "11 99999-0001",
                         "city": "São Paulo", "zip": "01304-000", "country": "Brazil", "last_name": "Souza",
                         "country_code": "BR"},
}


@pytest.fixture
def settings(instance_dir, database_url, redis_url):
    return make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="shopify", SHOPIFY_SHOP_DOMAIN=DOMAIN,
                         SHOPIFY_WEBHOOK_SECRET=SECRET, SHOPIFY_ADMIN_TOKEN=ADMIN_TOKEN)


def checkout(*, at=None, **changes) -> dict:
    body = copy.deepcopy(CHECKOUT)
    stamp = iso(at or utcnow() - timedelta(minutes=5))
    body["created_at"] = body["updated_at"] = stamp
    body.update(changes)
    return body


def order(*, at=None, **changes) -> dict:
    body = copy.deepcopy(ORDER)
    stamp = iso(at or utcnow() - timedelta(minutes=1))
    body["created_at"] = body["updated_at"] = body["processed_at"] = stamp
    body.update(changes)
    return body


def sign(raw: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def post(client, topic: str, payload, *, signature="auto", webhook_id=None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
               "X-Shopify-Shop-Domain": DOMAIN, "X-Shopify-API-Version": "2024-10"}
    if signature == "auto":
        headers["X-Shopify-Hmac-Sha256"] = sign(body)
    elif signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    return client.post(URL, data=body, headers=headers, content_type="application/json")


def the_cart(session) -> Cart | None:
    session.expire_all()
    return session.scalar(select(Cart).where(Cart.external_id == str(CHECKOUT["id"])))


def the_order(session) -> Order | None:
    session.expire_all()
    return session.scalar(select(Order).where(Order.external_id == str(ORDER["id"])))


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- signatures ------------------------------------------------------------------------------------------

def test_verify_is_base64_hmac_of_the_raw_body():
    raw = b'{"id": 1}'
    assert shopify.verify(raw, sign(raw), SECRET)
    assert not shopify.verify(raw, sign(raw, "other"), SECRET)
    assert not shopify.verify(raw, None, SECRET)
    assert not shopify.verify(raw, sign(raw), None)
    assert not shopify.verify(raw, "não-ascii", SECRET)


def test_missing_signature_is_refused_and_nothing_stored(client, session, runtime):
    response = post(client, "checkouts/create", checkout(), signature=None)
    assert response.status_code == 401
    assert nothing_stored(session, runtime)


def test_wrong_secret_is_refused_and_nothing_stored(client, session, runtime):
    raw = json.dumps(checkout()).encode()
    response = post(client, "checkouts/create", None, raw=raw, signature=sign(raw, "shpss_other"))
    assert response.status_code == 401
    assert nothing_stored(session, runtime)


def test_right_secret_over_an_altered_body_is_refused(client, session, runtime):
    raw = json.dumps(checkout()).encode()
    signature = sign(raw)
    altered = raw.replace(b'"159.80"', b'"1.00"')
    assert altered != raw
    assert post(client, "orders/paid", None, raw=altered, signature=signature).status_code == 401
    assert nothing_stored(session, runtime)


def test_unsigned_when_no_secret_is_configured(instance_dir, database_url, redis_url):
    from core.settings import Settings

    assert make_settings(instance_dir, database_url, redis_url).shopify_webhook_secret is None
    assert not shopify.verify(b"{}", sign(b"{}"), Settings.from_env({"APP_ENV": "test"}).shopify_webhook_secret)


# --- bodies and topics -----------------------------------------------------------------------------------

def test_malformed_json_is_a_400_naming_the_body(client, session, runtime):
    response = post(client, "checkouts/create", None, raw=b'{"id": ')
    assert response.status_code == 400
    assert response.get_json()["fields"] == {"body": "JSON inválido"}
    assert nothing_stored(session, runtime)


def test_bad_fields_are_named_as_shopify_names_them(client, session, runtime):
    body = checkout(total_price=12.5)
    body["line_items"][0]["price"] = "abc"
    response = post(client, "checkouts/update", body)
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert "total_price" in fields and "line_items[0].price" in fields
    assert nothing_stored(session, runtime)


def test_unknown_topic_is_ignored(client, session, runtime):
    response = post(client, "products/update", {"id": 1, "title": "Camiseta"})
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert nothing_stored(session, runtime)


# --- redeliveries ----------------------------------------------------------------------------------------

def test_a_redelivery_with_the_same_webhook_id_does_nothing(client, session):
    body = checkout()
    webhook_id = str(uuid.uuid4())
    assert post(client, "checkouts/create", body, webhook_id=webhook_id).get_json() == {"status": "applied"}
    events_after_first = count(session, StoreEvent)
    # Even a changed body under the same id is the same delivery: nothing is read again.
    later = checkout(at=utcnow(), total_price="1.00")
    response = post(client, "checkouts/create", later, webhook_id=webhook_id)
    assert response.status_code == 200 and response.get_json() == {"status": "duplicate"}
    assert count(session, StoreEvent) == events_after_first
    assert the_cart(session).total == CHECKOUT_TOTAL


def test_the_same_checkout_version_under_a_new_webhook_id_is_a_duplicate_event(client, session):
    body = checkout()
    assert post(client, "checkouts/create", body).get_json() == {"status": "applied"}
    assert post(client, "checkouts/create", body).get_json() == {"status": "duplicate"}
    assert count(session, Cart) == 1


# --- mapping ---------------------------------------------------------------------------------------------

def test_a_checkout_maps_onto_a_cart():
    event = shopify.checkout_to_cart_event(checkout())
    assert event.id == str(CHECKOUT["id"]) and event.event == "cart.updated"
    assert event.customer.phone == PHONE and event.customer.name == "Ana Souza"
    assert event.checkout_url == RECOVER_URL
    [item] = event.items
    assert (item.sku, item.name, item.quantity, str(item.unit_price)) == ("TS-01-BR-M", "Camiseta Básica - Branca / M",
                                                                          2, "79.90")
    assert str(event.total) == "159.80"


def test_a_line_without_sku_is_named_by_its_variant_id():
    body = checkout()
    body["line_items"][0]["sku"] = ""
    assert shopify.checkout_to_cart_event(body).items[0].sku == "808950810"


def test_a_checkout_without_a_phone_is_ignored(client, session, runtime):
    body = checkout()
    body["billing_address"]["phone"] = None
    assert shopify.checkout_to_cart_event(body) is None
    response = post(client, "checkouts/create", body)
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert count(session, Cart) == 0 and count(session, Customer) == 0


def test_a_completed_checkout_is_not_a_cart(client, session):
    body = checkout(completed_at=iso(utcnow()))
    assert shopify.checkout_to_cart_event(body) is None
    assert post(client, "checkouts/update", body).get_json() == {"status": "ignored"}
    assert count(session, Cart) == 0


@pytest.mark.parametrize("place, written", [
    ("phone", "+55 11 99999-0001"),
    ("billing_address", "(11) 99999-0001"),
    ("billing_address", "11999990001"),
    ("shipping_address", "011 99999 0001"),
    ("shipping_address", "5511999990001"),
    ("customer", "+5511999990001"),
    ("billing_address", "(11) 9999-0001"),  # an old mobile without the ninth digit
])
def test_brazilian_phone_formats_anywhere_shopify_puts_them(place, written):
    body = checkout()
    body["billing_address"]["phone"] = None
    if place == "phone":
        body["phone"] = written
    elif place == "shipping_address":
        body["shipping_address"] = {"first_name": "Ana", "last_name": "Souza", "phone": written, "country_code": "BR"}
    else:
        body[place]["phone"] = written
    assert shopify.checkout_to_cart_event(body).customer.phone == PHONE


def test_an_invalid_phone_falls_back_to_the_next_one():
    body = checkout(phone="123")
    body["customer"]["phone"] = "+55 11 99999-0001"
    body["billing_address"]["phone"] = "não informado"
    assert shopify.checkout_to_cart_event(body).customer.phone == PHONE


def test_order_topics_map_onto_order_events():
    assert shopify.order_to_order_event(order(), "orders/create").event == "order.created"
    assert shopify.order_to_order_event(order(financial_status="paid"), "orders/create").event == "order.paid"
    assert shopify.order_to_order_event(order(financial_status="paid"), "orders/paid").event == "order.paid"
    cancelled = order(financial_status="voided", cancelled_at=iso(utcnow()), cancel_reason="customer")
    assert shopify.order_to_order_event(cancelled, "orders/cancelled").event == "order.cancelled"
    coupon = order(discount_codes=[{"code": "VOLTA-7K2M", "amount": "15.98", "type": "percentage"}])
    event = shopify.order_to_order_event(coupon, "orders/paid")
    assert event.coupon_code == "VOLTA-7K2M" and event.customer.phone == PHONE
    assert shopify.order_to_order_event(order(), "orders/fulfilled") is None


def test_an_order_with_a_bad_body_names_the_field():
    with pytest.raises(EventInvalid) as exc:
        shopify.order_to_order_event(order(created_at="ontem"), "orders/paid")
    assert "created_at" in exc.value.fields


# --- ordering --------------------------------------------------------------------------------------------

def test_an_older_checkout_update_after_a_newer_one_changes_nothing(client, session):
    newer = checkout(at=utcnow() - timedelta(minutes=2))
    newer["line_items"][0]["quantity"] = 3
    newer["total_price"] = "239.70"
    assert post(client, "checkouts/update", newer).get_json() == {"status": "applied"}
    older = checkout(at=utcnow() - timedelta(minutes=10))
    assert post(client, "checkouts/update", older).get_json() == {"status": "applied"}
    cart = the_cart(session)
    assert str(cart.total) == "239.70" and cart.items[0].quantity == 3


def test_an_order_paid_before_the_checkout_arrives_means_no_recovery(client, session, runtime):
    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    now = utcnow()
    paid = order(at=now - timedelta(minutes=1), financial_status="paid")
    assert post(client, "orders/paid", paid).get_json() == {"status": "applied"}
    late = checkout(at=now - timedelta(minutes=3))
    assert post(client, "checkouts/create", late).status_code == 200
    run_tick(session, runtime, now + timedelta(minutes=15))
    assert recovery_messages(session) == []


def test_orders_never_move_backwards(client, session):
    at = utcnow() - timedelta(minutes=2)
    assert post(client, "orders/paid", order(at=at, financial_status="paid")).status_code == 200
    assert post(client, "orders/create", order(at=at)).status_code == 200
    assert the_order(session).status is OrderStatus.PAID


# --- links -----------------------------------------------------------------------------------------------

def test_shopify_links():
    links = builder_for("https://loja.example", platform="shopify", shopify_domain=DOMAIN)
    assert isinstance(links, ShopifyLinks)
    assert links.with_coupon(RECOVER_URL, "VOLTA-7K2M") == (
        f"https://{DOMAIN}/discount/VOLTA-7K2M?redirect=%2F548380009%2Fcheckouts%2F123123123%2Frecover"
        "%3Fkey%3Dexample-secret-token")
    assert isinstance(builder_for("https://loja.example"), GenericLinks)
    assert isinstance(builder_for("https://loja.example", platform="shopify"), GenericLinks)  # no domain known


def test_a_cart_permalink_uses_the_variants_shopify_ids(session):
    from models import CartItem, Product, Variant

    product = Product(key="camiseta-basica", name="Camiseta Básica", price=Decimal("79.90"))
    session.add(product)
    session.flush()
    known = Variant(product_id=product.id, sku="TS-01-BR-M", price=Decimal("79.90"), platform_variant_id="808950810")
    unknown = Variant(product_id=product.id, sku="TS-01-BR-G", price=Decimal("79.90"))
    session.add_all([known, unknown])
    session.flush()
    customer = Customer(phone=PHONE, name="Ana", tags=[])
    session.add(customer)
    session.flush()
    cart = Cart(customer_id=customer.id, source="bot", status=CartStatus.OPEN, updated_at=utcnow(),
                created_at=utcnow())
    cart.items = [CartItem(sku="TS-01-BR-M", name="Camiseta", quantity=2, unit_price=Decimal("79.90"),
                           variant_id=known.id)]
    session.add(cart)
    session.flush()
    links = ShopifyLinks(DOMAIN)
    assert links.cart_link(cart) == f"https://{DOMAIN}/cart/808950810:2"
    cart.items.append(CartItem(sku="TS-01-BR-G", name="Camiseta G", quantity=1, unit_price=Decimal("79.90"),
                               variant_id=unknown.id))
    session.flush()
    assert links.cart_link(cart) == f"https://{DOMAIN}/cart"


# --- end to end ------------------------------------------------------------------------------------------

@responses.activate
def test_a_shopify_checkout_is_recovered_and_the_paid_order_credited(client, session, runtime):
    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    map_template(session, approved_template(session))
    created = {"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"},
                                                    "userErrors": []}}}
    responses.post(GRAPHQL_URL, json=created)
    now = utcnow()
    assert post(client, "checkouts/create", checkout(at=now - timedelta(minutes=1))).get_json() == {"status": "applied"}
    shopper = session.scalar(select(Customer).where(Customer.phone == PHONE))
    assert shopper.last_inbound_at is None  # never wrote: only the approved template may go

    run_tick(session, runtime, now + timedelta(minutes=12))
    [message] = recovery_messages(session)
    coupon = session.scalar(select(Coupon).where(Coupon.customer_id == shopper.id))
    assert coupon is not None
    # The code exists in Shopify before the message carries it: its checkout accepts it.
    [call] = responses.calls
    assert call.request.headers["X-Shopify-Access-Token"] == ADMIN_TOKEN
    sent = json.loads(call.request.body)["variables"]["basicCodeDiscount"]
    assert sent["code"] == coupon.code and sent["usageLimit"] == 1
    link = f"https://{DOMAIN}/discount/{coupon.code}?redirect=%2F548380009%2Fcheckouts%2F123123123%2Frecover%3Fkey%3D"
    assert link in json.dumps(message.content_variables) or link in message.body

    paid_at = now + timedelta(minutes=30)
    paid = order(at=paid_at, financial_status="paid", total_price="143.82",
                 discount_codes=[{"code": coupon.code, "amount": "15.98", "type": "percentage"}])
    assert post(client, "orders/paid", paid).get_json() == {"status": "applied"}
    placed = the_order(session)
    assert placed.status is OrderStatus.PAID and placed.coupon_code == coupon.code
    [attempt] = session.scalars(select(RecoveryAttempt)).all()
    assert attempt.recovered_order_id == placed.id
    session.expire_all()
    assert session.get(Coupon, coupon.id).redeemed_order_id == placed.id
    assert the_cart(session).status is CartStatus.CONVERTED
