"""Shopify: webhook signatures and the mapping of its checkouts and orders onto our shop events.

Shopify signs each webhook with ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256 of the raw body with the app's
secret. It sends no "cart abandoned" event: a checkout (``checkouts/create``, ``checkouts/update``) with a phone
and no ``completed_at`` is an open cart, and the recoverer's own delay, counted from the checkout's ``updated_at``,
decides when it is abandoned. A completed checkout is not a cart: its order event closes the shopper's carts.

The mappers build a payload of our generic contract and let ``recovery.events`` validate it, so money, times and
lengths are checked once, the same way for every shop; field errors are reported under Shopify's own names
(``line_items[0].price``, ``total_price``…).
"""

from __future__ import annotations

from typing import Any, Mapping

from core.settings import Settings
from recovery.events import CartEvent, EventInvalid, OrderEvent, validate_cart_event, validate_order_event
from shops.base import (
    Received, customer_fields, external_id, first_email, first_phone, full_name, header_id, hmac_sha256_matches,
    json_object, line_sku, map_lines, parse_json, platform_fields,
)

CHECKOUT_TOPICS = ("checkouts/create", "checkouts/update")
ORDER_TOPICS = {"orders/create": "order.created", "orders/paid": "order.paid", "orders/cancelled": "order.cancelled"}
TOPICS = (*CHECKOUT_TOPICS, *ORDER_TOPICS)

# Where a checkout or order carries a phone, in the order we trust them: the one typed at checkout first.
_PHONE_PLACES = (("phone",), ("billing_address", "phone"), ("shipping_address", "phone"), ("customer", "phone"))

# Our contract's field -> Shopify's, for error messages the merchant's developer can look up.
_FIELD_NAMES = {"id": "id", "total": "total_price", "currency": "currency", "checkout_url": "abandoned_checkout_url",
                "updated_at": "updated_at", "created_at": "created_at", "coupon_code": "discount_codes[0].code",
                "customer": "phone", "customer.phone": "phone", "customer.name": "customer.first_name",
                "items": "line_items"}
_ITEM_FIELDS = {"sku": "sku", "name": "title", "quantity": "quantity", "unit_price": "price"}


SIGNATURE = "X-Shopify-Hmac-Sha256"
TOPIC = "X-Shopify-Topic"
WEBHOOK_ID = "X-Shopify-Webhook-Id"
SHOP_DOMAIN = "X-Shopify-Shop-Domain"


def verify(raw: bytes, header: str | None, secret: str | None) -> bool:
    """True when ``header`` is the base64 HMAC-SHA256 of ``raw`` with ``secret``; constant-time. No secret
    configured, or no header: False."""
    return hmac_sha256_matches(raw, header, secret, encoding="base64")


def phone_of(payload: dict) -> str | None:
    """The first valid phone among the checkout/order's, billing, shipping and customer's, in E.164."""
    return first_phone(payload, _PHONE_PLACES)


_NAME_PLACES = ("customer", "billing_address", "shipping_address")
_EMAIL_PLACES = (("email",), ("contact_email",), ("customer", "email"))


def _item(line: dict) -> dict:
    title, variant = line.get("title"), line.get("variant_title")
    name = f"{title} - {variant}" if isinstance(title, str) and isinstance(variant, str) and variant.strip() \
        else title
    return {"sku": line_sku(line, "variant_id"), "name": name, "quantity": line.get("quantity"),
            "unit_price": line.get("price")}


def _shopify_fields(fields: dict[str, str]) -> dict[str, str]:
    return platform_fields(fields, _FIELD_NAMES, "line_items", _ITEM_FIELDS)


def checkout_to_cart_event(payload: Any) -> CartEvent | None:
    """The cart in a ``checkouts/create`` or ``checkouts/update`` payload; None when it is not a cart we can
    recover (completed, or no usable phone). EventInvalid, with Shopify's field names, for a malformed one."""
    body = json_object(payload)
    if body.get("completed_at"):
        return None  # bought: the order event closes the shopper's carts
    phone = phone_of(body)
    if phone is None:
        return None
    contract = {
        "event": "cart.updated",
        "id": external_id(body.get("id")),
        "customer": customer_fields(phone, full_name(body, _NAME_PLACES), first_email(body, _EMAIL_PLACES)),
        "items": map_lines(body.get("line_items"), _item),
        "total": body.get("total_price"),
        "currency": body.get("currency"),
        "checkout_url": body.get("abandoned_checkout_url"),
        "updated_at": body.get("updated_at") or body.get("created_at"),
    }
    try:
        return validate_cart_event(contract)
    except EventInvalid as exc:
        raise EventInvalid(_shopify_fields(exc.fields)) from None


def order_to_order_event(payload: Any, topic: str) -> OrderEvent | None:
    """The order in an ``orders/create``, ``orders/paid`` or ``orders/cancelled`` payload; None for another topic or
    an order without a usable phone (it cannot be tied to a shopper). An order created already paid
    (``financial_status`` paid) counts as paid. The first discount code is the coupon."""
    event = ORDER_TOPICS.get(topic)
    if event is None:
        return None
    body = json_object(payload)
    phone = phone_of(body)
    if phone is None:
        return None
    if event == "order.created" and body.get("financial_status") == "paid":
        event = "order.paid"
    codes = body.get("discount_codes")
    coupon = None
    if isinstance(codes, list) and codes and isinstance(codes[0], dict):
        coupon = codes[0].get("code")
    contract = {
        "event": event,
        "id": external_id(body.get("id")),
        "customer": customer_fields(phone, full_name(body, _NAME_PLACES), first_email(body, _EMAIL_PLACES)),
        "items": map_lines(body.get("line_items"), _item),
        "total": body.get("total_price"),
        "currency": body.get("currency"),
        "coupon_code": coupon,
        "seller_code": None,
        "created_at": body.get("created_at"),
    }
    try:
        return validate_order_event(contract)
    except EventInvalid as exc:
        raise EventInvalid(_shopify_fields(exc.fields)) from None


class ShopifyConnector:
    name = "shopify"
    signature_header = SIGNATURE

    def verify(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> bool:
        return verify(raw, headers.get(SIGNATURE), settings.shopify_webhook_secret)

    def receive(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> Received:
        topic = (headers.get(TOPIC) or "").strip()[:60]
        delivery_id = header_id(headers, WEBHOOK_ID)
        payload = parse_json(raw)
        if topic not in TOPICS:
            return Received(kind=topic or "?", why="topic not used")
        shop = (headers.get(SHOP_DOMAIN) or "").strip().lower()
        if settings.shopify_shop_domain and shop and shop != settings.shopify_shop_domain:
            # Signed with our app's secret, but for another shop that installed the app: not this store's.
            return Received(kind=topic, delivery_id=delivery_id, why=f"another shop ({shop[:60]})")
        if topic in CHECKOUT_TOPICS:
            event = checkout_to_cart_event(payload)
            why = "no usable phone, or a completed checkout"
        else:
            event = order_to_order_event(payload, topic)
            why = "no usable phone"
        return Received(kind=topic, delivery_id=delivery_id, event=event, why="" if event else why)


CONNECTOR = ShopifyConnector()
