"""The one interface every shop platform's connector follows, and what a verified webhook delivery turns into.

A connector is a module-level object with:

- ``name``: ``"shopify"``, ``"nuvemshop"``, ``"woocommerce"`` (SHOP_PLATFORM's values);
- ``signature_header``: the header the platform signs with (named in the 401's message);
- ``verify(raw, headers, settings) -> bool``: the signature over the raw bytes, constant-time; False when the
  platform's secret is not configured;
- ``receive(raw, headers, settings) -> Received``: the shop event the delivery carries, mapped onto our generic
  contract (``recovery.events`` validates it, so money, times and lengths are checked once for every shop).
  Raises ``EventInvalid`` (400, field names as the platform names them) or ``ShopUnavailable`` (503: the
  platform's API could not be read, the platform retries).

What the web layer does with it (``web.shop_webhooks``): verify → 401, receive → 400/503, remember the delivery
id (redeliveries do nothing) and apply the event in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from core.inputs import EMAIL, MAX_EMAIL, MAX_EXTERNAL_ID
from core.phones import InvalidPhone, normalize_phone
from core.settings import Settings
from recovery.events import CartEvent, EventInvalid, OrderEvent

ShopEvent = CartEvent | OrderEvent


@dataclass(frozen=True)
class Received:
    """What one verified delivery carried.

    ``delivery_id``: the platform's id of this delivery, repeated on its redeliveries (None when the platform
    gives none: then the events' own idempotency is all there is). ``kind``: the platform's topic, for the log
    and the delivery record. ``event``: None when there is nothing we use (a topic we ignore, no usable phone, a
    completed checkout, a ping); ``why`` then says why, for the log.
    """

    kind: str
    delivery_id: str | None = None
    event: ShopEvent | None = None
    why: str = ""
    answer: str | None = None  # a status to answer without storing anything (WooCommerce's ping)
    then: ShopEvent | None = None  # a second event the same delivery stands for, applied after ``event``


class ShopUnavailable(RuntimeError):
    """The platform's API could not be read (timeout, 5xx, 429): answer 503 so the platform redelivers."""


class Connector(Protocol):
    name: str
    signature_header: str

    def verify(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> bool: ...

    def receive(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> Received: ...


def hmac_sha256_matches(raw: bytes, header: str | None, secret: str | None, *, encoding: str) -> bool:
    """True when ``header`` is the HMAC-SHA256 of ``raw`` with ``secret``, written in ``encoding`` (``base64``
    as Shopify and WooCommerce send it, ``hex`` as Nuvemshop does); constant-time. No secret configured, no
    header or a non-ASCII one: False."""
    if not secret or not header or not header.isascii():
        return False
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    if encoding == "hex":
        return hmac.compare_digest(digest.hex(), header.strip().lower())
    return hmac.compare_digest(base64.b64encode(digest), header.strip().encode("ascii"))


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or EventInvalid naming the body (bad UTF-8, absurd nesting or integers included)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise EventInvalid({"body": "JSON inválido"}) from None


def header_id(headers: Mapping[str, str], name: str) -> str | None:
    """A platform's delivery id header, checked to be something we can store; None when absent."""
    value = (headers.get(name) or "").strip()
    if not value:
        return None
    if len(value) > MAX_EXTERNAL_ID or not value.isascii() or not value.isprintable():
        raise EventInvalid({name: f"no máximo {MAX_EXTERNAL_ID} caracteres ASCII"})
    return value


def first_phone(payload: dict, places: tuple[tuple[str, ...], ...]) -> str | None:
    """The first value at ``places`` (paths of keys) that is a valid phone, in E.164 (Brazil by default:
    ``(11) 99999-0001`` becomes ``+5511999990001``); None when there is none."""
    for path in places:
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            try:
                return normalize_phone(value)
            except InvalidPhone:
                continue
    return None


def first_email(payload: dict, places: tuple[tuple[str, ...], ...]) -> str | None:
    """The first value at ``places`` that has an e-mail's shape (a platform's malformed e-mail is left out, never
    a reason to refuse the order)."""
    for path in places:
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and len(value.strip()) <= MAX_EMAIL and EMAIL.match(value.strip()):
            return value.strip()
    return None


def customer_fields(phone: str, name: str | None, email: str | None) -> dict:
    """The store event's ``customer`` object (``email`` only when the platform sent one)."""
    return {"phone": phone, "name": name, **({"email": email} if email else {})}


def external_id(value: Any) -> Any:
    """Platform ids are JSON integers; ours are text. Anything else is passed on for validation to judge."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def platform_fields(fields: dict[str, str], names: dict[str, str], items_key: str,
                    item_names: dict[str, str]) -> dict[str, str]:
    """Field errors of our contract (``items[0].unit_price``) renamed as the platform names them
    (``line_items[0].price``), so the merchant's developer finds them in the platform's payload."""
    renamed = {}
    for path, message in fields.items():
        if path.startswith("items["):
            index, _, rest = path[len("items["):].partition("]")
            field = item_names.get(rest.lstrip("."), rest.lstrip("."))
            renamed[f"{items_key}[{index}]" + (f".{field}" if field else "")] = message
        else:
            renamed[names.get(path, path)] = message
    return renamed


def json_object(payload: Any) -> dict:
    """The parsed body as an object, or EventInvalid naming the body."""
    if not isinstance(payload, dict):
        raise EventInvalid({"body": "o corpo deve ser um objeto JSON"})
    return payload


def map_lines(lines: Any, to_item: Callable[[dict], dict]) -> Any:
    """A platform's order or cart lines as our items, each made by ``to_item``; a value that is not a list, and a
    line that is not an object, are passed on as they are, for validation to refuse with the field's name."""
    if not isinstance(lines, list):
        return lines
    return [to_item(line) if isinstance(line, dict) else line for line in lines]


def line_sku(line: dict, *ids: str) -> str | None:
    """The line's SKU; platforms leave it empty unless the merchant typed one, so else the first of the line's
    ``ids`` (variant, product…) that is set (a positive number or a text), as text."""
    sku = line.get("sku")
    if isinstance(sku, str) and sku.strip():
        return sku
    for key in ids:
        value = line.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def full_name(payload: dict, places: tuple[str, ...]) -> str | None:
    """``first_name last_name`` of the first of ``places`` (customer, billing, shipping…) that has one."""
    for place in places:
        part = payload.get(place)
        if not isinstance(part, dict):
            continue
        name = " ".join(str(part.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
        if name:
            return name
    return None
