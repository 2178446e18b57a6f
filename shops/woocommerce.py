"""WooCommerce: webhook signatures and the mapping of its orders onto our shop events.

WooCommerce (REST API v3 webhooks, set up by the merchant under WooCommerce > Settings > Advanced > Webhooks)
signs each delivery with ``X-WC-Webhook-Signature`` = base64 HMAC-SHA256 of the raw body with the webhook's
secret. The body is the v3 order object, built when the delivery is sent, so it carries the order's state at that
moment rather than at the event's.

``X-WC-Webhook-Delivery-ID`` is deliberately not used as a redelivery key: WooCommerce computes it as
``wp_hash(webhook id . current second)``, so every delivery one webhook sends within the same second (its queue
runner sends them in batches, e.g. two orders updated together) carries the same id, and keying on it would
drop all but the first. WooCommerce does not redeliver a failed delivery either (it counts
failures and disables the webhook after five), so the id has nothing to deduplicate. The events' own idempotency
(``recovery.events``: the same order state twice changes nothing) is what makes a repeat harmless.

The ping: when the merchant saves a webhook, WooCommerce POSTs the form body ``webhook_id=<id>`` without any
signature and refuses to save the webhook unless the answer is 200. That exact body is accepted unsigned and
answered ``ok`` without storing anything; any other unsigned body is refused.

WooCommerce sends no cart events: its checkout creates the order first, as ``pending`` (awaiting payment: a Pix
or boleto not paid yet, a card not charged), and the payment moves it on. So a ``pending`` or ``failed`` order
(WooCommerce still lets the shopper pay a failed one) is the shopper's cart, with the order's own "pay for this
order" page as its checkout link; the recoverer's delay, counted from the order's last modification, decides
when it is abandoned. By status:

- ``pending``, ``failed``: ``cart.updated`` (id: the order id; link: ``payment_url``);
- ``cancelled`` never paid (WooCommerce cancels unpaid orders when their held stock expires, a merchant cancels an
  on-hold transfer that never came): ``order.cancelled`` (an on-hold order we stored as placed is not a purchase
  any more), then still the shopper's unbought cart, but its pay page is dead: ``cart.updated`` without a link,
  so catalog.links rebuilds one;
- ``on-hold`` (placed, awaiting a bank transfer or a manual check): ``order.created``, which stops recovery;
- ``processing``, ``completed``: ``order.paid``;
- ``refunded``, and ``cancelled`` after being paid: ``order.cancelled``;
- ``checkout-draft`` (the block checkout's draft), ``trash`` and any status a plugin adds: ignored.

An order's time is when it became a purchase (``date_paid_gmt``; the last modification while unpaid, e.g.
on-hold), not when the pending order was created: a pending order recovered by our message was created before
the message, and the message is credited only with an order placed after it was sent. WooCommerce's ``*_gmt``
dates carry no offset: they are UTC and are read so.

The mappers build a payload of our generic contract and let ``recovery.events`` validate it, so money, times and
lengths are checked once, the same way for every shop; field errors are reported under WooCommerce's own names
(``line_items[0].subtotal``, ``date_modified_gmt``…). Money is never read from WooCommerce's float ``price``: a
line's unit price is its decimal-string ``subtotal`` divided by its quantity.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping
from urllib.parse import urlsplit

from core.settings import Settings
from recovery.events import CartEvent, EventInvalid, OrderEvent, validate_cart_event, validate_order_event
from shops.base import (
    Received, customer_fields, external_id, first_email, first_phone, full_name, hmac_sha256_matches, json_object,
    line_sku, map_lines, parse_json, platform_fields,
)

SIGNATURE = "X-WC-Webhook-Signature"
TOPIC = "X-WC-Webhook-Topic"
SOURCE = "X-WC-Webhook-Source"

# order.restored (out of the trash) carries the order object like an update: its status says what it is.
TOPICS = ("order.created", "order.updated", "order.restored")

CART_STATUSES = ("pending", "failed")  # awaiting payment, and the shopper may still pay
ORDER_STATUSES = {"on-hold": "order.created", "processing": "order.paid", "completed": "order.paid",
                  "refunded": "order.cancelled"}
STATUSES = (*CART_STATUSES, "cancelled", *ORDER_STATUSES)

# The unsigned body WooCommerce sends when a webhook is saved (its id, form-encoded).
PING = re.compile(rb"webhook_id=\d{1,20}")

# Where an order carries a phone, in the order we trust them for WhatsApp: the "Celular" field that the
# Brazilian Market on WooCommerce plugin adds (a mobile, where billing.phone is often a landline), then
# WooCommerce's own billing and shipping phones.
_PHONE_PLACES = (("billing", "cellphone"), ("billing", "phone"), ("shipping", "phone"))

# Our contract's field -> WooCommerce's, for error messages the merchant's developer can look up. The dates are
# named per payload (whichever of WooCommerce's dates was used).
_FIELD_NAMES = {"id": "id", "total": "total", "currency": "currency", "checkout_url": "payment_url",
                "coupon_code": "coupon_lines[0].code", "customer": "billing.phone", "customer.phone": "billing.phone",
                "customer.name": "billing.first_name", "items": "line_items"}
_ITEM_FIELDS = {"sku": "sku", "name": "name", "quantity": "quantity", "unit_price": "subtotal"}

_NAIVE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_DECIMAL = re.compile(r"\d{1,12}(\.\d{1,10})?")
_CENT = Decimal("0.01")


def verify(raw: bytes, header: str | None, secret: str | None) -> bool:
    """True when ``header`` is the base64 HMAC-SHA256 of ``raw`` with ``secret``; constant-time. No secret
    configured, or no header: False."""
    return hmac_sha256_matches(raw, header, secret, encoding="base64")


def is_ping(raw: bytes) -> bool:
    """The body WooCommerce sends, unsigned, to check the delivery URL when a webhook is saved."""
    return PING.fullmatch(raw) is not None


def phone_of(payload: dict) -> str | None:
    """The first valid phone among the order's billing cellphone, billing and shipping phones, in E.164."""
    return first_phone(payload, _PHONE_PLACES)


def status_of(payload: Any) -> str | None:
    """The order's status as the REST API writes it (``wc-`` prefixes, which some plugins leak, removed)."""
    status = payload.get("status") if isinstance(payload, dict) else None
    return status.strip().lower().removeprefix("wc-") if isinstance(status, str) else None


_NAME_PLACES = ("billing", "shipping")
_EMAIL_PLACES = (("billing", "email"),)


def _utc(value: Any) -> Any:
    """WooCommerce's ``*_gmt`` dates have no offset ("2020-03-11T19:54:40"): they are UTC, so say so. Anything
    else is passed on for validation to judge."""
    if isinstance(value, str) and _NAIVE_TIME.fullmatch(value.strip()):
        return value.strip() + "+00:00"
    return value


def _moment(body: dict, places: tuple[str, ...]) -> tuple[Any, str]:
    """The first of ``places`` the order has a date in, as UTC, and its name (for an error message); the last
    place's name when none has one (so the error names the date every order has)."""
    for place in places:
        value = body.get(place)
        if value is not None and value != "":
            return _utc(value), place
    return None, places[-1]


def _unit_price(subtotal: Any, quantity: Any) -> Any:
    """The line's unit price as a decimal string: its ``subtotal`` (before coupons, a decimal string) over its
    quantity, to the cent. A subtotal or quantity we cannot divide is passed on for validation to refuse."""
    if (isinstance(subtotal, str) and _DECIMAL.fullmatch(subtotal.strip())
            and isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 1):
        return str((Decimal(subtotal.strip()) / quantity).quantize(_CENT, rounding=ROUND_HALF_UP))
    return subtotal


def _item(line: dict) -> dict:
    # A line without a SKU is named by its variation, else its product; a line whose product was deleted since
    # (both ids 0) by its own id, rather than refusing the whole order.
    quantity = line.get("quantity")
    return {"sku": line_sku(line, "variation_id", "product_id", "id"), "name": line.get("name"),
            "quantity": quantity, "unit_price": _unit_price(line.get("subtotal"), quantity)}


def _coupon(body: dict) -> Any:
    lines = body.get("coupon_lines")
    if isinstance(lines, list) and lines and isinstance(lines[0], dict):
        # WooCommerce lowercases codes ("volta-7k2m…"); recovery.coupons matches them case-insensitively.
        return lines[0].get("code")
    return None


def _woocommerce_fields(fields: dict[str, str], dates: dict[str, str]) -> dict[str, str]:
    return platform_fields(fields, {**_FIELD_NAMES, **dates}, "line_items", _ITEM_FIELDS)


def _cart_event(body: dict, phone: str, checkout_url: Any) -> CartEvent:
    updated_at, place = _moment(body, ("date_modified_gmt", "date_created_gmt"))
    contract = {
        "event": "cart.updated",
        "id": external_id(body.get("id")),
        "customer": customer_fields(phone, full_name(body, _NAME_PLACES), first_email(body, _EMAIL_PLACES)),
        "items": map_lines(body.get("line_items"), _item),
        "total": body.get("total"),
        "currency": body.get("currency"),
        "checkout_url": checkout_url,
        "updated_at": updated_at,
    }
    try:
        return validate_cart_event(contract)
    except EventInvalid as exc:
        raise EventInvalid(_woocommerce_fields(exc.fields, {"updated_at": place})) from None


def _order_event(body: dict, phone: str, event: str) -> OrderEvent:
    created_at, place = _moment(body, ("date_paid_gmt", "date_modified_gmt", "date_created_gmt"))
    contract = {
        "event": event,
        "id": external_id(body.get("id")),
        "customer": customer_fields(phone, full_name(body, _NAME_PLACES), first_email(body, _EMAIL_PLACES)),
        "items": map_lines(body.get("line_items"), _item),
        "total": body.get("total"),
        "currency": body.get("currency"),
        "coupon_code": _coupon(body),
        "seller_code": None,
        "created_at": created_at,
    }
    try:
        return validate_order_event(contract)
    except EventInvalid as exc:
        raise EventInvalid(_woocommerce_fields(exc.fields, {"created_at": place})) from None


def order_to_event(payload: Any) -> CartEvent | OrderEvent | None:
    """The shop event a v3 order object stands for, by its status (see the module's docstring): a cart for an
    order awaiting payment or cancelled unpaid, an order event otherwise; None for a status we do not use or an
    order without a usable phone (it cannot be tied to a shopper). EventInvalid, with WooCommerce's field names,
    for a malformed one."""
    body = json_object(payload)
    status = status_of(body)
    if status not in STATUSES:
        return None
    phone = phone_of(body)
    if phone is None:
        return None
    if status in CART_STATUSES:
        return _cart_event(body, phone, body.get("payment_url"))
    if status == "cancelled":
        if body.get("date_paid_gmt"):
            return _order_event(body, phone, "order.cancelled")
        return _cart_event(body, phone, None)  # unbought, and its pay page no longer takes payment
    return _order_event(body, phone, ORDER_STATUSES[status])


def _host(url: str | None) -> str:
    """The host of a store URL, lowercase and without ``www.`` (the same store is often written both ways)."""
    try:
        host = (urlsplit((url or "").strip()).hostname or "").lower()
    except ValueError:
        return ""
    return host.removeprefix("www.")


class WooCommerceConnector:
    name = "woocommerce"
    signature_header = SIGNATURE

    def verify(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> bool:
        # The ping is unsigned by WooCommerce's design and stores nothing; everything else must be signed.
        return verify(raw, headers.get(SIGNATURE), settings.woocommerce_webhook_secret) or is_ping(raw)

    def receive(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> Received:
        if is_ping(raw):
            return Received(kind="ping", answer="ok")
        topic = (headers.get(TOPIC) or "").strip()[:60]
        payload = parse_json(raw)
        if topic not in TOPICS:
            return Received(kind=topic or "?", why="topic not used")
        source = _host(headers.get(SOURCE))
        if settings.woocommerce_store_url and source and source != _host(settings.woocommerce_store_url):
            # Signed with this webhook's secret but sent by another site: typically a staging copy of the
            # store, which keeps the webhooks (and their secrets) it was cloned with.
            return Received(kind=topic, why=f"another shop ({source[:60]})")
        event = order_to_event(payload)
        if isinstance(event, CartEvent) and status_of(payload) == "cancelled":
            cancelled = _order_event(payload, event.customer.phone, "order.cancelled")
            return Received(kind=topic, event=cancelled, then=event)
        if event is not None:
            return Received(kind=topic, event=event)
        status = status_of(payload)
        why = "no usable phone" if status in STATUSES else f"status {str(status)[:30]} not used"
        return Received(kind=topic, why=why)


CONNECTOR = WooCommerceConnector()
