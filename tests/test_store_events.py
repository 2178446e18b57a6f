"""Shop events: POST /webhooks/store/carts and /webhooks/store/orders, and recovery.events underneath."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import func, select

from core.security import hmac_sha256_hex
from models import (
    AttemptStatus, Cart, CartItem, CartStatus, Coupon, CouponKind, CouponRule, Customer, Order, OrderItem,
    OrderStatus, RecoveryAttempt, StoreEvent, utcnow,
)
from recovery import events
from recovery.config import update_settings
from recovery.events import EventInvalid, validate_cart_event, validate_order_event
from recovery.tracker import Tracker

CARTS = "/webhooks/store/carts"
ORDERS = "/webhooks/store/orders"
PHONE = "+5511999990001"
PHONE_2 = "+5521988887777"
BRT = timezone(timedelta(hours=-3))


def iso(moment: datetime) -> str:
    """As a Brazilian shop would send it: local time with its offset."""
    return moment.astimezone(BRT).isoformat(timespec="milliseconds")


def ago(**delta) -> datetime:
    return (utcnow() - timedelta(**delta)).replace(microsecond=0)


def cart_payload(*, id="c-123", event="cart.updated", at: datetime | None = None, phone=PHONE, name="Ana",
                 items=None, total="159.80", **extra) -> dict:
    body = {
        "event": event,
        "id": id,
        "customer": {"phone": phone, "name": name},
        "items": items if items is not None else [
            {"sku": "TS-01", "name": "Camiseta", "quantity": 2, "unit_price": "79.90"},
        ],
        "total": total,
        "currency": "BRL",
        "checkout_url": f"https://loja.example/checkout/{id}",
        "updated_at": iso(at or ago(hours=1)),
    }
    body.update(extra)
    return body


def order_payload(*, id="o-9", event="order.created", at: datetime | None = None, phone=PHONE, total="159.80",
                  coupon_code=None, seller_code=None, items=None, **extra) -> dict:
    body = {
        "event": event,
        "id": id,
        "customer": {"phone": phone, "name": "Ana"},
        "items": items if items is not None else [
            {"sku": "TS-01", "name": "Camiseta", "quantity": 2, "unit_price": "79.90"},
        ],
        "total": total,
        "currency": "BRL",
        "coupon_code": coupon_code,
        "seller_code": seller_code,
        "created_at": iso(at or ago(minutes=30)),
    }
    body.update(extra)
    return body


def sign(settings, raw: bytes) -> str:
    return hmac_sha256_hex(settings.store_webhook_secret, raw)


def post(client, settings, path: str, payload, *, signature: str | None = "auto", raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Store-Signature"] = sign(settings, body)
    elif signature is not None:
        headers["X-Store-Signature"] = signature
    return client.post(path, data=body, headers=headers)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def nothing_stored(session, runtime) -> bool:
    return (all(count(session, m) == 0 for m in (StoreEvent, Cart, CartItem, Order, OrderItem, Customer))
            and Tracker(runtime).size() == 0)


def the_cart(session, external_id="c-123") -> Cart:
    session.expire_all()
    return session.scalar(select(Cart).where(Cart.external_id == external_id))


def the_order(session, external_id="o-9") -> Order:
    session.expire_all()
    return session.scalar(select(Order).where(Order.external_id == external_id))


def customer_id(session, phone=PHONE) -> int:
    return session.scalar(select(Customer.id).where(Customer.phone == phone))


# --- carts: the happy path -------------------------------------------------------------------------------

def test_cart_event_stores_cart_customer_and_starts_the_countdown(client, settings, session, runtime):
    at = ago(hours=1)
    response = post(client, settings, CARTS, cart_payload(at=at))
    assert response.status_code == 200
    assert response.get_json() == {"status": "applied"}

    cart = the_cart(session)
    assert cart.source == "store"
    assert cart.status is CartStatus.OPEN
    assert cart.total == Decimal("159.80")
    assert cart.currency == "BRL"
    assert cart.checkout_url == "https://loja.example/checkout/c-123"
    assert cart.updated_at == at
    assert [(i.sku, i.name, i.quantity, i.unit_price) for i in cart.items] == [
        ("TS-01", "Camiseta", 2, Decimal("79.90"))]
    customer = cart.customer
    assert customer.phone == PHONE and customer.name == "Ana" and customer.ddd == "11" and customer.state == "SP"
    # No settings row: the default delay of 10 minutes.
    assert Tracker(runtime).due_at(customer.id) == at + timedelta(minutes=10)


def test_the_delay_comes_from_the_merchants_settings(client, settings, session, runtime):
    update_settings(session, {"delay_minutes": 25})
    session.commit()
    at = ago(minutes=3)
    post(client, settings, CARTS, cart_payload(at=at))
    assert Tracker(runtime).due_at(customer_id(session)) == at + timedelta(minutes=25)


def test_abandoned_event_marks_the_cart_abandoned(client, settings, session):
    assert post(client, settings, CARTS, cart_payload(event="cart.abandoned")).status_code == 200
    assert the_cart(session).status is CartStatus.ABANDONED


def test_future_updated_at_is_clamped_to_now_for_the_countdown(client, settings, session, runtime):
    before = utcnow()
    post(client, settings, CARTS, cart_payload(at=utcnow() + timedelta(days=2)))
    after = utcnow()
    due = Tracker(runtime).due_at(customer_id(session))
    assert before + timedelta(minutes=10) - timedelta(milliseconds=1) <= due <= after + timedelta(minutes=10)


def test_phone_is_normalised_and_an_existing_customer_is_reused(client, settings, session):
    session.add(Customer(phone=PHONE, name="Ana Souza", tags=[]))
    session.commit()
    post(client, settings, CARTS, cart_payload(phone="whatsapp:+55 (11) 99999-0001", name="Outra"))
    assert count(session, Customer) == 1
    cart = the_cart(session)
    assert cart.customer.phone == PHONE and cart.customer.name == "Ana Souza"  # a known name is kept


def test_the_shops_email_is_kept_and_the_latest_one_replaces_it(client, settings, session):
    post(client, settings, CARTS, cart_payload())  # no e-mail: none kept
    assert session.scalar(select(Customer)).email is None
    post(client, settings, CARTS, cart_payload(customer={"phone": PHONE, "name": "Ana", "email": "ana@example.com"},
                                               at=ago(minutes=50)))
    session.expire_all()
    assert session.scalar(select(Customer)).email == "ana@example.com"
    post(client, settings, ORDERS, order_payload(customer={"phone": PHONE, "email": "ana.souza@example.com"}))
    post(client, settings, CARTS, cart_payload(id="c-2", at=ago(minutes=40)))  # an event without one keeps it
    session.expire_all()
    assert session.scalar(select(Customer)).email == "ana.souza@example.com"


def test_unknown_top_level_fields_are_ignored_and_checkout_url_may_be_null(client, settings, session):
    payload = cart_payload(platform="vtex", extra={"a": [1, 2]}, checkout_url=None)
    assert post(client, settings, CARTS, payload).status_code == 200
    assert the_cart(session).checkout_url is None


def test_an_emptied_cart_replaces_the_items(client, settings, session):
    post(client, settings, CARTS, cart_payload(at=ago(hours=2)))
    post(client, settings, CARTS, cart_payload(at=ago(hours=1), items=[], total="0.00"))
    cart = the_cart(session)
    assert cart.items == [] and cart.total == Decimal("0.00")
    assert count(session, CartItem) == 0


def test_opted_out_shopper_is_stored_but_not_tracked(client, settings, session, runtime):
    session.add(Customer(phone=PHONE, name="Ana", tags=[], opted_out_at=ago(days=1)))
    session.commit()
    Tracker(runtime).note(customer_id(session), ago(hours=3), ago(hours=2))  # a stale entry from before
    assert post(client, settings, CARTS, cart_payload()).status_code == 200
    assert the_cart(session) is not None
    assert Tracker(runtime).due_at(customer_id(session)) is None


# --- signatures ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [CARTS, ORDERS])
@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "other_body", "other_secret", "non_ascii",
                                  "truncated", "prefixed"])
def test_bad_signature_is_401_and_nothing_is_stored(client, settings, session, runtime, path, case):
    payload = cart_payload() if path == CARTS else order_payload()
    raw = json.dumps(payload).encode()
    good = sign(settings, raw)
    signature = {
        "missing": None,
        "empty": "",
        "garbage": "not-a-signature",
        "other_body": sign(settings, json.dumps({**payload, "total": "1.00"}).encode()),
        "other_secret": hmac_sha256_hex("another-secret", raw),
        "non_ascii": "é" * 64,
        "truncated": good[:-1],
        "prefixed": "sha256=" + good,
    }[case]
    response = post(client, settings, path, payload, signature=signature, raw=raw)
    assert response.status_code == 401
    assert response.is_json and response.get_json()["error"] == "invalid signature"
    assert nothing_stored(session, runtime)


def test_signature_is_checked_before_the_body_is_parsed(client, settings, session, runtime):
    response = post(client, settings, CARTS, None, signature="00" * 32, raw=b"{not json")
    assert response.status_code == 401


def test_upper_case_hex_signature_is_accepted(client, settings, session):
    raw = json.dumps(cart_payload()).encode()
    response = post(client, settings, CARTS, None, signature=sign(settings, raw).upper(), raw=raw)
    assert response.status_code == 200


# --- validation ------------------------------------------------------------------------------------------

def _set(payload: dict, path: str, value) -> dict:
    """Set (or with value=DELETE, remove) a dotted path like 'items.0.unit_price' in a copy of payload."""
    payload = copy.deepcopy(payload)
    *parents, last = path.split(".")
    target = payload
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key = int(last) if isinstance(target, list) else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value
    return payload


DELETE = object()

CART_CASES = [
    ("event", "cart.deleted", "event"),
    ("event", DELETE, "event"),
    ("event", 7, "event"),
    ("id", DELETE, "id"),
    ("id", "", "id"),
    ("id", "   ", "id"),
    ("id", "x" * 65, "id"),
    ("id", 123, "id"),
    ("id", "c-\x00", "id"),
    ("customer", DELETE, "customer"),
    ("customer", "Ana", "customer"),
    ("customer.phone", DELETE, "customer.phone"),
    ("customer.phone", "123", "customer.phone"),
    ("customer.phone", 5511999990001, "customer.phone"),
    ("customer.phone", "+55 11 0000", "customer.phone"),
    ("customer.name", ["Ana"], "customer.name"),
    ("customer.email", "ana(at)example.com", "customer.email"),
    ("customer.email", 42, "customer.email"),
    ("customer.email", "a@b.co" + "m" * 250, "customer.email"),
    ("items", DELETE, "items"),
    ("items", "TS-01", "items"),
    ("items", [{"sku": "A", "name": "B", "quantity": 1, "unit_price": "1.00"}] * 201, "items"),
    ("items.0", "TS-01", "items[0]"),
    ("items.0.sku", DELETE, "items[0].sku"),
    ("items.0.sku", "", "items[0].sku"),
    ("items.0.sku", "S" * 65, "items[0].sku"),
    ("items.0.name", "", "items[0].name"),
    ("items.0.name", None, "items[0].name"),
    ("items.0.quantity", 0, "items[0].quantity"),
    ("items.0.quantity", -1, "items[0].quantity"),
    ("items.0.quantity", "2", "items[0].quantity"),
    ("items.0.quantity", 1.5, "items[0].quantity"),
    ("items.0.quantity", True, "items[0].quantity"),
    ("items.0.quantity", 10**12, "items[0].quantity"),
    ("items.0.unit_price", 79.9, "items[0].unit_price"),
    ("items.0.unit_price", 80, "items[0].unit_price"),
    ("items.0.unit_price", "-1.00", "items[0].unit_price"),
    ("items.0.unit_price", "1.999", "items[0].unit_price"),
    ("items.0.unit_price", "79,90", "items[0].unit_price"),
    ("items.0.unit_price", "1e3", "items[0].unit_price"),
    ("items.0.unit_price", "NaN", "items[0].unit_price"),
    ("items.0.unit_price", "79.90\n", "items[0].unit_price"),
    ("items.0.unit_price", "12345678901.00", "items[0].unit_price"),
    ("total", DELETE, "total"),
    ("total", 159.8, "total"),
    ("total", " 159.80", "total"),
    ("total", "Infinity", "total"),
    ("currency", "USD", "currency"),
    ("currency", DELETE, "currency"),
    ("checkout_url", "ftp://loja.example/c", "checkout_url"),
    ("checkout_url", "javascript:alert(1)", "checkout_url"),
    ("checkout_url", "https://", "checkout_url"),
    ("checkout_url", 42, "checkout_url"),
    ("updated_at", "2026-11-22T10:00:00", "updated_at"),
    ("updated_at", "ontem", "updated_at"),
    ("updated_at", 1763816400, "updated_at"),
    ("updated_at", DELETE, "updated_at"),
    ("updated_at", "1999-12-31T23:59:59Z", "updated_at"),
    ("updated_at", "0001-01-01T00:00:00+14:00", "updated_at"),
]


@pytest.mark.parametrize("path,value,field", CART_CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CART_CASES])
def test_each_cart_validation_error_names_its_field_and_writes_nothing(client, settings, session, runtime,
                                                                        path, value, field):
    response = post(client, settings, CARTS, _set(cart_payload(), path, value))
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid body"
    assert field in body["fields"], body
    assert isinstance(body["fields"][field], str) and body["fields"][field]
    assert nothing_stored(session, runtime)


ORDER_CASES = [
    ("event", "cart.updated", "event"),
    ("event", "order.shipped", "event"),
    ("created_at", "2026-11-22T10:00:00", "created_at"),
    ("created_at", DELETE, "created_at"),
    ("coupon_code", 5, "coupon_code"),
    ("coupon_code", "C" * 65, "coupon_code"),
    ("seller_code", "S" * 33, "seller_code"),
    ("seller_code", {"code": "V1"}, "seller_code"),
    ("total", 159.8, "total"),
    ("items.0.unit_price", "-0.01", "items[0].unit_price"),
    ("customer.phone", "", "customer.phone"),
    ("currency", "brl", "currency"),
]


@pytest.mark.parametrize("path,value,field", ORDER_CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in ORDER_CASES])
def test_each_order_validation_error_names_its_field_and_writes_nothing(client, settings, session, runtime,
                                                                         path, value, field):
    response = post(client, settings, ORDERS, _set(order_payload(), path, value))
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert nothing_stored(session, runtime)


def test_every_bad_field_is_named_at_once(client, settings, session, runtime):
    payload = cart_payload(total=1, currency="USD", updated_at="ontem")
    payload["items"][0]["quantity"] = 0
    fields = post(client, settings, CARTS, payload).get_json()["fields"]
    assert set(fields) == {"total", "currency", "updated_at", "items[0].quantity"}
    assert "texto decimal" in fields["total"]


def test_an_order_event_on_the_carts_endpoint_and_vice_versa_is_refused_on_event(client, settings, session, runtime):
    response = post(client, settings, CARTS, order_payload())
    assert response.status_code == 400 and "event" in response.get_json()["fields"]
    assert "/webhooks/store/orders" in response.get_json()["fields"]["event"]
    response = post(client, settings, ORDERS, cart_payload())
    assert response.status_code == 400 and "event" in response.get_json()["fields"]
    assert nothing_stored(session, runtime)


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000,
                                 b'{"total": 1' + b"0" * 5000 + b"}"])
def test_unparseable_body_is_400_on_body(client, settings, session, runtime, raw):
    response = post(client, settings, CARTS, None, raw=raw)
    assert response.status_code == 400
    assert "body" in response.get_json()["fields"]
    assert nothing_stored(session, runtime)


@pytest.mark.parametrize("value", [[], "cart", 1, None, True])
def test_a_body_that_is_not_an_object_is_400_on_body(client, settings, session, runtime, value):
    response = post(client, settings, ORDERS, value)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid body", "fields": {"body": "o corpo deve ser um objeto JSON"}}


def test_validators_return_typed_events():
    cart = validate_cart_event(cart_payload(at=datetime(2026, 11, 22, 13, 0, tzinfo=timezone.utc)))
    assert cart.updated_at == datetime(2026, 11, 22, 13, 0, tzinfo=timezone.utc)
    assert cart.items[0].unit_price == Decimal("79.90") and cart.total == Decimal("159.80")
    order = validate_order_event(order_payload(event="order.paid", coupon_code="  volta-abc  "))
    assert order.status is OrderStatus.PAID and order.coupon_code == "volta-abc"
    z = validate_cart_event(cart_payload() | {"updated_at": "2026-11-22T13:00:00Z"})
    assert z.updated_at == datetime(2026, 11, 22, 13, 0, tzinfo=timezone.utc)
    with pytest.raises(EventInvalid) as caught:
        validate_order_event(order_payload(created_at="2026-11-22T10:00:00"))
    assert list(caught.value.fields) == ["created_at"]


def test_long_names_are_cut_not_refused():
    payload = cart_payload(name="N" * 300)
    payload["items"][0]["name"] = "P" * 300
    event = validate_cart_event(payload)
    assert len(event.customer.name) == events.MAX_CUSTOMER_NAME and len(event.items[0].name) == events.MAX_ITEM_NAME


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


def _mutations():
    keys = ["event", "id", "customer", "items", "total", "currency", "checkout_url", "updated_at", "created_at",
            "coupon_code", "seller_code"]
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=4)


@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=_mutations(), path=st.sampled_from([CARTS, ORDERS]))
def test_never_a_server_error_on_any_signed_body(client, settings, changes, path):
    base = cart_payload() if path == CARTS else order_payload()
    response = post(client, settings, path, {**base, **changes})
    assert response.status_code in (200, 400), response.data
    if response.status_code == 400:
        assert response.get_json()["fields"]


# --- idempotency and ordering ------------------------------------------------------------------------------

def test_duplicate_delivery_is_reported_and_changes_nothing(client, settings, session, runtime):
    payload = cart_payload()
    assert post(client, settings, CARTS, payload).get_json() == {"status": "applied"}
    due = Tracker(runtime).due_at(customer_id(session))
    assert post(client, settings, CARTS, payload).get_json() == {"status": "duplicate"}
    assert count(session, StoreEvent) == 1 and count(session, Cart) == 1 and count(session, CartItem) == 1
    assert Tracker(runtime).due_at(customer_id(session)) == due

    order = order_payload()
    assert post(client, settings, ORDERS, order).get_json() == {"status": "applied"}
    assert post(client, settings, ORDERS, order).get_json() == {"status": "duplicate"}
    assert count(session, Order) == 1 and count(session, OrderItem) == 1 and count(session, StoreEvent) == 2


def test_a_later_update_of_the_same_cart_is_not_a_duplicate(client, settings, session):
    post(client, settings, CARTS, cart_payload(at=ago(hours=2)))
    response = post(client, settings, CARTS, cart_payload(at=ago(hours=1), total="79.90",
                                                          items=[{"sku": "TS-01", "name": "Camiseta", "quantity": 1,
                                                                  "unit_price": "79.90"}]))
    assert response.get_json() == {"status": "applied"}
    cart = the_cart(session)
    assert cart.total == Decimal("79.90") and cart.items[0].quantity == 1
    assert count(session, Cart) == 1 and count(session, StoreEvent) == 2


def test_an_older_cart_update_arriving_late_does_not_overwrite_newer_contents(client, settings, session, runtime):
    newer, older = ago(minutes=20), ago(minutes=40)
    post(client, settings, CARTS, cart_payload(at=newer, event="cart.abandoned", total="10.00",
                                               items=[{"sku": "NEW", "name": "Novo", "quantity": 1,
                                                       "unit_price": "10.00"}]))
    response = post(client, settings, CARTS, cart_payload(at=older, total="99.00",
                                                          items=[{"sku": "OLD", "name": "Velho", "quantity": 1,
                                                                  "unit_price": "99.00"}]))
    assert response.get_json() == {"status": "applied"}  # processed (recorded), not applied to the contents
    cart = the_cart(session)
    assert cart.total == Decimal("10.00") and [i.sku for i in cart.items] == ["NEW"]
    assert cart.updated_at == newer and cart.status is CartStatus.ABANDONED
    assert count(session, StoreEvent) == 2
    assert Tracker(runtime).due_at(customer_id(session)) == newer + timedelta(minutes=10)
    # and its redelivery is a duplicate
    assert post(client, settings, CARTS, cart_payload(at=older, total="99.00")).get_json() == {"status": "duplicate"}


def test_core_functions_report_duplicates(runtime, session):
    now = utcnow()
    cart = validate_cart_event(cart_payload())
    assert events.apply_cart_event(session, runtime, cart, now) == "applied"
    assert events.apply_cart_event(session, runtime, cart, now) == "duplicate"
    order = validate_order_event(order_payload())
    assert events.apply_order_event(session, runtime, order, now) == "applied"
    assert events.apply_order_event(session, runtime, order, now) == "duplicate"
    assert count(session, StoreEvent) == 2


# --- orders: carts, tracker, status ------------------------------------------------------------------------

def test_an_order_closes_the_carts_and_cancels_the_pending_recovery(client, settings, session, runtime):
    at = ago(hours=1)
    post(client, settings, CARTS, cart_payload(at=at, event="cart.abandoned"))
    post(client, settings, CARTS, cart_payload(id="c-124", at=at))
    cid = customer_id(session)
    assert Tracker(runtime).due_at(cid) == at + timedelta(minutes=10)

    response = post(client, settings, ORDERS, order_payload(seller_code="V011", at=ago(minutes=5)))
    assert response.get_json() == {"status": "applied"}
    assert Tracker(runtime).due_at(cid) is None
    assert {c.status for c in session.scalars(select(Cart))} == {CartStatus.CONVERTED}
    order = the_order(session)
    assert order.status is OrderStatus.CREATED and order.total == Decimal("159.80")
    assert order.seller_code == "V011" and order.customer_id == cid
    assert [(i.sku, i.quantity, i.unit_price) for i in order.items] == [("TS-01", 2, Decimal("79.90"))]


def test_a_converted_cart_stays_converted_and_does_not_restart_the_countdown(client, settings, session, runtime):
    post(client, settings, CARTS, cart_payload(at=ago(hours=2)))
    post(client, settings, ORDERS, order_payload(at=ago(hours=1)))
    post(client, settings, CARTS, cart_payload(at=ago(minutes=30), event="cart.abandoned", total="1.00"))
    cart = the_cart(session)
    assert cart.status is CartStatus.CONVERTED and cart.total == Decimal("1.00")
    assert Tracker(runtime).due_at(customer_id(session)) is None


def test_another_shoppers_countdown_is_untouched_by_an_order(client, settings, session, runtime):
    post(client, settings, CARTS, cart_payload(phone=PHONE_2, id="c-2"))
    post(client, settings, ORDERS, order_payload())
    assert Tracker(runtime).due_at(customer_id(session, PHONE_2)) is not None
    assert the_cart(session, "c-2").status is CartStatus.OPEN


def test_a_cancelled_order_does_not_close_carts_or_stop_the_recovery(client, settings, session, runtime):
    post(client, settings, CARTS, cart_payload())
    post(client, settings, ORDERS, order_payload(event="order.cancelled"))
    assert the_order(session).status is OrderStatus.CANCELLED
    assert the_cart(session).status is CartStatus.OPEN
    assert Tracker(runtime).due_at(customer_id(session)) is not None


@pytest.mark.parametrize("sequence,final", [
    (["order.created", "order.paid"], OrderStatus.PAID),
    (["order.paid", "order.created"], OrderStatus.PAID),
    (["order.created", "order.cancelled", "order.paid"], OrderStatus.CANCELLED),
    (["order.cancelled", "order.created"], OrderStatus.CANCELLED),
    (["order.paid", "order.cancelled", "order.created"], OrderStatus.CANCELLED),
])
def test_order_status_never_moves_backwards(client, settings, session, sequence, final):
    at = ago(hours=1)
    for index, event in enumerate(sequence):
        total = f"{100 + index}.00"
        response = post(client, settings, ORDERS, order_payload(event=event, at=at, total=total))
        assert response.get_json() == {"status": "applied"}
    order = the_order(session)
    assert order.status is final
    assert count(session, Order) == 1 and count(session, StoreEvent) == len(sequence)


def test_a_backwards_event_does_not_overwrite_the_order(client, settings, session):
    at = ago(hours=1)
    post(client, settings, ORDERS, order_payload(event="order.paid", at=at, total="120.00"))
    post(client, settings, ORDERS, order_payload(event="order.created", at=at, total="999.00"))
    assert the_order(session).total == Decimal("120.00")


# --- attribution -------------------------------------------------------------------------------------------

def _sent_attempt(session, cid: int, sent_at: datetime, status=AttemptStatus.SENT) -> RecoveryAttempt:
    attempt = RecoveryAttempt(customer_id=cid, interaction_at=sent_at - timedelta(minutes=10), due_at=sent_at,
                              status=status, sent_at=sent_at if status is AttemptStatus.SENT else None,
                              created_at=sent_at)
    session.add(attempt)
    session.commit()
    return attempt


def _customer(session, phone=PHONE) -> int:
    customer = Customer(phone=phone, name="Ana", tags=[])
    session.add(customer)
    session.commit()
    return customer.id


def test_order_within_the_window_is_credited_to_the_latest_sent_message(client, settings, session):
    cid = _customer(session)
    placed = ago(hours=1)
    older = _sent_attempt(session, cid, placed - timedelta(days=3))
    latest = _sent_attempt(session, cid, placed - timedelta(days=1))
    _sent_attempt(session, cid, placed - timedelta(hours=2), status=AttemptStatus.SKIPPED)
    after = _sent_attempt(session, cid, placed + timedelta(minutes=10))  # sent after the order: no credit
    post(client, settings, ORDERS, order_payload(at=placed))
    order = the_order(session)
    session.expire_all()
    assert session.get(RecoveryAttempt, latest.id).recovered_order_id == order.id
    assert session.get(RecoveryAttempt, latest.id).recovered_at == placed
    assert session.get(RecoveryAttempt, older.id).recovered_order_id is None
    assert session.get(RecoveryAttempt, after.id).recovered_order_id is None

    # The paid event of the same order credits nothing more.
    post(client, settings, ORDERS, order_payload(event="order.paid", at=placed))
    session.expire_all()
    assert session.get(RecoveryAttempt, older.id).recovered_order_id is None
    # A second order is credited to the older, still uncredited message.
    post(client, settings, ORDERS, order_payload(id="o-10", at=placed + timedelta(minutes=1)))
    session.expire_all()
    assert session.get(RecoveryAttempt, older.id).recovered_order_id == the_order(session, "o-10").id


def test_order_outside_the_window_is_not_credited(client, settings, session):
    cid = _customer(session)
    placed = ago(hours=1)
    stale = _sent_attempt(session, cid, placed - timedelta(days=7, minutes=1))  # default window: 7 days
    post(client, settings, ORDERS, order_payload(at=placed))
    session.expire_all()
    assert session.get(RecoveryAttempt, stale.id).recovered_order_id is None


def test_edge_of_the_window_and_the_merchants_window_count(client, settings, session):
    update_settings(session, {"attribution_days": 10})
    session.commit()
    cid = _customer(session)
    placed = ago(hours=1)
    edge = _sent_attempt(session, cid, placed - timedelta(days=9, hours=23))
    post(client, settings, ORDERS, order_payload(at=placed))
    session.expire_all()
    assert session.get(RecoveryAttempt, edge.id).recovered_order_id == the_order(session).id


def test_cancelled_orders_are_not_credited(client, settings, session):
    cid = _customer(session)
    placed = ago(hours=1)
    attempt = _sent_attempt(session, cid, placed - timedelta(hours=3))
    post(client, settings, ORDERS, order_payload(event="order.cancelled", at=placed))
    session.expire_all()
    assert session.get(RecoveryAttempt, attempt.id).recovered_order_id is None


def test_another_shoppers_message_is_not_credited(client, settings, session):
    other = _customer(session, PHONE_2)
    attempt = _sent_attempt(session, other, ago(hours=3))
    post(client, settings, ORDERS, order_payload())
    session.expire_all()
    assert session.get(RecoveryAttempt, attempt.id).recovered_order_id is None


# --- coupons -------------------------------------------------------------------------------------------------

def _coupon(session, cid: int, code="VOLTA-ABCDEFGHJK") -> Coupon:
    rule = CouponRule(name="10%", kind=CouponKind.PERCENT, value=Decimal("10"), min_order=Decimal("0"))
    session.add(rule)
    session.flush()
    coupon = Coupon(code=code, rule_id=rule.id, customer_id=cid, issued_at=ago(hours=2),
                    expires_at=ago(hours=-22))
    session.add(coupon)
    session.commit()
    return coupon


def test_the_coupon_is_redeemed_once(client, settings, session):
    cid = _customer(session)
    coupon = _coupon(session, cid)
    placed = ago(minutes=30)
    post(client, settings, ORDERS, order_payload(coupon_code="volta-abcdefghjk", at=placed))
    first = the_order(session)
    session.expire_all()
    redeemed = session.get(Coupon, coupon.id)
    assert redeemed.redeemed_order_id == first.id and redeemed.redeemed_at == placed
    assert first.coupon_code == "volta-abcdefghjk"

    post(client, settings, ORDERS, order_payload(id="o-10", coupon_code="VOLTA-ABCDEFGHJK"))
    post(client, settings, ORDERS, order_payload(event="order.paid", coupon_code="VOLTA-ABCDEFGHJK", at=placed))
    session.expire_all()
    again = session.get(Coupon, coupon.id)
    assert again.redeemed_order_id == first.id and again.redeemed_at == placed


def test_another_shoppers_code_redeems_nothing(client, settings, session):
    owner = _customer(session, PHONE_2)
    coupon = _coupon(session, owner)
    post(client, settings, ORDERS, order_payload(coupon_code=coupon.code))
    session.expire_all()
    assert session.get(Coupon, coupon.id).redeemed_at is None


def test_a_cancelled_order_redeems_nothing(client, settings, session):
    cid = _customer(session)
    coupon = _coupon(session, cid)
    post(client, settings, ORDERS, order_payload(event="order.cancelled", coupon_code=coupon.code))
    session.expire_all()
    assert session.get(Coupon, coupon.id).redeemed_at is None


# --- the shop's secret after a rotation on the console (web.store_webhooks) --------------------------------


def _rotate(session, settings, now=None) -> str:
    from web.store_webhooks import rotate_store_secret

    secret = rotate_store_secret(session, settings, user_id=None, now=now or utcnow())
    session.commit()
    return secret


def _signed_with(client, key: str, payload: dict, path: str = CARTS):
    raw = json.dumps(payload).encode()
    return client.post(path, data=raw, headers={"Content-Type": "application/json",
                                                "X-Store-Signature": hmac_sha256_hex(key, raw)})


def test_after_a_rotation_the_new_secret_signs_events(client, settings, session):
    new = _rotate(session, settings)
    assert new != settings.store_webhook_secret and len(new) == 64
    assert _signed_with(client, new, cart_payload()).status_code == 200
    assert _signed_with(client, new, order_payload(), ORDERS).status_code == 200
    assert the_cart(session) is not None and the_order(session) is not None


def test_the_previous_secret_is_accepted_for_24_hours_then_refused(client, settings, session, runtime, monkeypatch):
    from web import store_webhooks
    from web.store_webhooks import store_secrets

    old = settings.store_webhook_secret
    rotated_at = utcnow()
    new = _rotate(session, settings, rotated_at)
    assert store_secrets(session, settings, rotated_at + timedelta(hours=24, seconds=-1)).accepted == [new, old]
    assert store_secrets(session, settings, rotated_at + timedelta(hours=24)).accepted == [new]

    assert _signed_with(client, old, cart_payload(id="c-1")).status_code == 200  # the shop has not switched yet
    monkeypatch.setattr(store_webhooks, "utcnow", lambda: rotated_at + timedelta(hours=24, seconds=1))
    refused = _signed_with(client, old, cart_payload(id="c-2"))
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid signature"
    assert the_cart(session, "c-2") is None
    assert _signed_with(client, new, cart_payload(id="c-3")).status_code == 200


def test_a_forged_signature_after_a_rotation_is_401_and_stores_nothing(client, settings, session, runtime):
    new = _rotate(session, settings)
    for key in ("forjado", new + "x", new.upper()):
        assert _signed_with(client, key, cart_payload()).status_code == 401, key
    assert post(client, settings, CARTS, cart_payload(), signature=None).status_code == 401
    assert nothing_stored(session, runtime)


def test_a_second_rotation_keeps_only_the_secret_it_replaced(client, settings, session):
    first = _rotate(session, settings)
    second = _rotate(session, settings)
    assert _signed_with(client, settings.store_webhook_secret, cart_payload(id="c-1")).status_code == 401
    assert _signed_with(client, first, cart_payload(id="c-2")).status_code == 200
    assert _signed_with(client, second, cart_payload(id="c-3")).status_code == 200


def test_a_secret_sealed_under_another_secret_key_falls_back_to_the_environment(client, settings, session):
    from dataclasses import replace

    from web.store_webhooks import store_secrets

    new = _rotate(session, settings)
    changed = replace(settings, secret_key="a-new-secret-key-" + "k" * 30)
    state = store_secrets(session, changed, utcnow())
    assert state.unreadable and not state.rotated and state.current == settings.store_webhook_secret
    assert new not in state.accepted


def test_checking_a_signature_reads_the_secret_once(client, settings, session, db):
    from sqlalchemy import event

    _rotate(session, settings)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if "webhook_secrets" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert post(client, settings, CARTS, cart_payload(), signature="0" * 64).status_code == 401
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
