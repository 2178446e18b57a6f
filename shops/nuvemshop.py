"""Nuvemshop (Tiendanube): webhook signatures, reading the orders they name, and polling abandoned checkouts.

The platform's quirks, and what we do about each:

- A webhook carries no order, only ``{"store_id": 123, "event": "order/paid", "id": 1948209}``, signed with
  ``X-Linkedstore-HMAC-SHA256`` = the *hex* HMAC-SHA256 of the raw body with the app's secret. So every order event
  is a ``GET /{store_id}/orders/{id}`` with the store's access token; when that read fails (time-out, 429, 5xx, a
  revoked token) we answer 503 and Nuvemshop redelivers (14 times over three days).
- Deliveries have no id, and an ``order/paid`` may arrive after the ``order/updated`` that followed it. So the
  event name only says "look at this order": its *current* state (``status``, ``payment_status``) is what we map,
  and ``recovery.events`` makes a repeated state a duplicate and never moves an order backwards.
- There is no webhook for abandoned checkouts: ``poll_checkouts`` lists ``GET /{store_id}/checkouts`` every few
  minutes (``shops.jobs``). The platform creates these records late ("up to 6 hours after the purchase has been
  abandoned", says its reference), so each poll reads back from the newest ``updated_at`` already seen minus a
  six-hour overlap; what was seen before is a duplicate and costs nothing. The recoverer's delay counts from the
  checkout's own ``updated_at``, not from when we happened to read it.
- Its ``abandoned_checkout_url`` is the only link that restores a cart: there is no cart permalink, and no link
  applies a coupon (``catalog.links.NuvemshopLinks``: the message carries the code, the shopper types it).

The mappers build a payload of our generic contract and let ``recovery.events`` validate it, so money, times and
lengths are checked once, the same way for every shop; field errors are reported under Nuvemshop's own names
(``products[0].price``, ``total``…). Nuvemshop writes times as ``2021-05-12T19:08:06+0000``, which Python's
``datetime.fromisoformat`` reads.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import requests
from sqlalchemy.orm import Session

from core.runtime import Runtime
from core.settings import Settings
from recovery.events import (
    CartEvent, EventInvalid, OrderEvent, apply_cart_event, validate_cart_event, validate_order_event,
)
from shops import activity
from shops.base import (
    Received, ShopUnavailable, customer_fields, external_id, first_email, first_phone, hmac_sha256_matches,
    json_object, line_sku, map_lines, parse_json, platform_fields,
)

log = logging.getLogger(__name__)

SIGNATURE = "X-Linkedstore-HMAC-SHA256"
# Every order event means "this order changed": which state it is in now is read from the order itself.
ORDER_EVENTS = ("order/created", "order/updated", "order/paid", "order/packed", "order/fulfilled",
                "order/cancelled")
CANCELLED_PAYMENTS = ("voided", "refunded", "abandoned")

# (connect, read) seconds: a webhook waits on this read, and Nuvemshop gives up on a slow receiver.
TIMEOUT = (3.05, 10)
# An order is a few kilobytes and a page of 200 checkouts about a megabyte; anything far larger is not an answer
# we want to hold in memory.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
PER_PAGE = 200  # the most Nuvemshop lists per page
MAX_PAGES = 50  # 10,000 checkouts in one poll's window: far beyond a small shop's day
LOOKBACK = timedelta(days=2)  # the first poll (or one after the watermark expired) reads this far back
OVERLAP = timedelta(hours=6)  # checkouts are created up to 6 h late; re-reading them is a duplicate, missing them is not
WATERMARK_TTL = timedelta(days=7)  # a poller stopped longer than this starts again from LOOKBACK

# Where an order carries a phone, in the order we trust them: the one typed at checkout first.
_ORDER_PHONES = (("contact_phone",), ("customer", "phone"), ("billing_phone",), ("shipping_address", "phone"),
                 ("customer", "default_address", "phone"))
_CHECKOUT_PHONES = (("contact_phone",), ("billing_phone",), ("shipping_phone",))
_ORDER_NAMES = (("contact_name",), ("customer", "name"), ("billing_name",))
_EMAILS = (("contact_email",), ("customer", "email"))
_CHECKOUT_NAMES = (("contact_name",), ("billing_name",), ("shipping_name",))

# Our contract's field -> Nuvemshop's, for error messages the merchant's developer can look up.
_FIELD_NAMES = {"id": "id", "total": "total", "currency": "currency", "checkout_url": "abandoned_checkout_url",
                "updated_at": "updated_at", "created_at": "created_at", "coupon_code": "coupon[0].code",
                "customer": "contact_phone", "customer.phone": "contact_phone", "customer.name": "contact_name",
                "items": "products"}
_ITEM_FIELDS = {"sku": "sku", "name": "name", "quantity": "quantity", "unit_price": "price"}


# --- signatures and webhook bodies -----------------------------------------------------------------------

def verify(raw: bytes, header: str | None, secret: str | None) -> bool:
    """True when ``header`` is the hex HMAC-SHA256 of ``raw`` with ``secret`` (either case); constant-time. No
    secret configured, or no header: False."""
    return hmac_sha256_matches(raw, header, secret, encoding="hex")


def _numeric_id(value: Any) -> str | None:
    """Nuvemshop's ids are JSON integers; a string of digits is taken too. Anything else: None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**20:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20 and int(value) > 0:
        return value
    return None


def _webhook(payload: Any) -> tuple[str, str, Any]:
    """(store id, event, raw id) of a webhook body; EventInvalid naming ``store_id`` or ``event``."""
    if not isinstance(payload, dict):
        raise EventInvalid({"body": "o corpo deve ser um objeto JSON"})
    errors = {}
    store = _numeric_id(payload.get("store_id"))
    if store is None:
        errors["store_id"] = "obrigatório: o número da loja (inteiro)"
    event = payload.get("event")
    if not isinstance(event, str) or not event.strip():
        errors["event"] = "obrigatório: o nome do evento, por exemplo order/paid"
    elif len(event) > 60 or not event.isascii() or not event.isprintable():
        errors["event"] = "no máximo 60 caracteres ASCII"
    if errors:
        raise EventInvalid(errors)
    return store, event.strip(), payload.get("id")


# --- mapping ---------------------------------------------------------------------------------------------

def _first_text(payload: dict, places: tuple[tuple[str, ...], ...]) -> str | None:
    for path in places:
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _item(line: dict) -> dict:
    # Nuvemshop's sku is null unless the merchant typed one; the variant id still names the line.
    name = line.get("name")
    if (not isinstance(name, str) or not name.strip()) and line.get("product_id") is not None:
        name = f"Produto {line['product_id']}"  # a label: better than refusing the whole order for it
    quantity = line.get("quantity")
    if isinstance(quantity, str) and quantity.isascii() and quantity.isdigit():
        quantity = int(quantity)  # some of the API's answers write it as text
    return {"sku": line_sku(line, "variant_id"), "name": name, "quantity": quantity, "unit_price": line.get("price")}


def _nuvemshop_fields(fields: dict[str, str]) -> dict[str, str]:
    return platform_fields(fields, _FIELD_NAMES, "products", _ITEM_FIELDS)


def order_status(order: dict) -> str:
    """Our event for the order's current state: cancelled (the order, or its payment voided, refunded or
    abandoned), paid, or created (pending or authorized: a live order, the shopper bought)."""
    if order.get("status") == "cancelled" or order.get("payment_status") in CANCELLED_PAYMENTS:
        return "order.cancelled"
    if order.get("payment_status") == "paid":
        return "order.paid"
    return "order.created"


def order_to_order_event(payload: Any) -> OrderEvent | None:
    """The order as ``GET /orders/{id}`` returns it, in its current state; None without a usable phone (it
    cannot be tied to a shopper). The first coupon is the coupon. EventInvalid, with Nuvemshop's field names,
    for a malformed one."""
    body = json_object(payload)
    phone = first_phone(body, _ORDER_PHONES)
    if phone is None:
        return None
    coupons = body.get("coupon")
    coupon = None
    if isinstance(coupons, list) and coupons and isinstance(coupons[0], dict):
        coupon = coupons[0].get("code")
    contract = {
        "event": order_status(body),
        "id": external_id(body.get("id")),
        "customer": customer_fields(phone, _first_text(body, _ORDER_NAMES), first_email(body, _EMAILS)),
        "items": map_lines(body.get("products"), _item),
        "total": body.get("total"),
        "currency": body.get("currency"),
        "coupon_code": coupon,
        "seller_code": None,
        "created_at": body.get("created_at"),
    }
    try:
        return validate_order_event(contract)
    except EventInvalid as exc:
        raise EventInvalid(_nuvemshop_fields(exc.fields)) from None


def checkout_to_cart_event(payload: Any) -> CartEvent | None:
    """An abandoned checkout from ``GET /checkouts`` as a ``cart.abandoned`` event, dated by its own
    ``updated_at``; None when it is not a cart we can recover (completed, or no usable phone). EventInvalid, with
    Nuvemshop's field names, for a malformed one."""
    body = json_object(payload)
    if body.get("completed_at"):
        return None  # bought: its order's webhook closes the shopper's carts
    phone = first_phone(body, _CHECKOUT_PHONES)
    if phone is None:
        return None
    contract = {
        "event": "cart.abandoned",
        "id": external_id(body.get("id")),
        "customer": customer_fields(phone, _first_text(body, _CHECKOUT_NAMES), first_email(body, _EMAILS)),
        "items": map_lines(body.get("products"), _item),
        "total": body.get("total"),
        "currency": body.get("currency"),
        "checkout_url": body.get("abandoned_checkout_url"),
        "updated_at": body.get("updated_at") or body.get("created_at"),
    }
    try:
        return validate_cart_event(contract)
    except EventInvalid as exc:
        raise EventInvalid(_nuvemshop_fields(exc.fields)) from None


# --- the API ---------------------------------------------------------------------------------------------

def _user_agent(settings: Settings) -> str:
    """Nuvemshop refuses requests without a User-Agent naming the app and a contact; headers are ASCII."""
    name = unicodedata.normalize("NFKD", settings.store_name).encode("ascii", "ignore").decode().strip()
    return f"{name or 'Loja'} ({settings.public_base_url})"


def _headers(settings: Settings) -> dict[str, str]:
    # "Authentication", not "Authorization": the header name Nuvemshop's reference uses.
    return {"Authentication": f"bearer {settings.nuvemshop_access_token}", "User-Agent": _user_agent(settings),
            "Accept": "application/json"}


def _configured(settings: Settings) -> None:
    missing = [name for name, value in (("NUVEMSHOP_STORE_ID", settings.nuvemshop_store_id),
                                        ("NUVEMSHOP_ACCESS_TOKEN", settings.nuvemshop_access_token)) if not value]
    if missing:
        raise ShopUnavailable(f"Nuvemshop API not configured: set {' and '.join(missing)}")


def _get(http: requests.Session, settings: Settings, path: str, what: str, params: dict | None = None) -> Any:
    """The JSON of ``GET {api}/{store_id}/{path}``, or None for a 404; ShopUnavailable for anything else that is
    not a 200 with JSON (the token is never part of a message)."""
    url = f"{settings.nuvemshop_api_url.rstrip('/')}/{settings.nuvemshop_store_id}/{path}"
    try:
        # No redirects: the token header would follow them wherever they point.
        with http.get(url, params=params, headers=_headers(settings), timeout=TIMEOUT, stream=True,
                      allow_redirects=False) as response:
            status = response.status_code
            if status == 404:
                return None
            if status in (401, 403):
                log.error("Nuvemshop refused the access token (HTTP %s) reading %s of store %s: "
                          "NUVEMSHOP_ACCESS_TOKEN was revoked or the app was uninstalled; reinstall the app and "
                          "set the new token", status, what, settings.nuvemshop_store_id)
                raise ShopUnavailable(f"Nuvemshop refused the access token (HTTP {status}) reading {what}")
            if status == 429:
                raise ShopUnavailable(f"Nuvemshop rate-limited us (HTTP 429) reading {what}")
            if status != 200:
                raise ShopUnavailable(f"Nuvemshop answered HTTP {status} reading {what}")
            raw = _read_bounded(response, what)
    except requests.Timeout:
        raise ShopUnavailable(f"Nuvemshop did not answer in time reading {what}") from None
    except requests.RequestException as exc:
        raise ShopUnavailable(f"could not reach Nuvemshop reading {what} ({type(exc).__name__})") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ShopUnavailable(f"Nuvemshop answered something that is not JSON reading {what}") from None


def _read_bounded(response: requests.Response, what: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise ShopUnavailable(f"Nuvemshop's answer reading {what} is too large ({declared} bytes)")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ShopUnavailable(f"Nuvemshop's answer reading {what} is larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_order(settings: Settings, order_id: str, *, http: requests.Session | None = None) -> dict | None:
    """The order as Nuvemshop has it now; None when it no longer exists (404). ShopUnavailable when it cannot be
    read."""
    _configured(settings)
    session = http or requests.Session()
    try:
        order = _get(session, settings, f"orders/{order_id}", f"order {order_id}")
    finally:
        if http is None:
            session.close()
    if order is not None and not isinstance(order, dict):
        raise ShopUnavailable(f"Nuvemshop answered order {order_id} with something that is not a JSON object")
    return order


# --- the connector ---------------------------------------------------------------------------------------

class NuvemshopConnector:
    name = "nuvemshop"
    signature_header = SIGNATURE

    def verify(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> bool:
        return verify(raw, headers.get(SIGNATURE), settings.nuvemshop_app_secret)

    def receive(self, raw: bytes, headers: Mapping[str, str], settings: Settings) -> Received:
        """The order a webhook names, read from the API in its current state. Nuvemshop gives deliveries no id
        (``delivery_id`` None): ``recovery.events`` makes a repeated state a duplicate."""
        store, event, raw_id = _webhook(parse_json(raw))
        if event not in ORDER_EVENTS:
            return Received(kind=event, why="event not used")
        if not settings.nuvemshop_store_id:
            # Every store that installs the app signs with its secret: without ours we cannot tell them apart.
            raise ShopUnavailable("NUVEMSHOP_STORE_ID is not set: cannot tell whether the webhook is this store's")
        if store != settings.nuvemshop_store_id:
            return Received(kind=event, why=f"another store ({store})")
        order_id = _numeric_id(raw_id)
        if order_id is None:
            raise EventInvalid({"id": "obrigatório: o número do pedido (inteiro)"})
        order = fetch_order(settings, order_id)
        if order is None:
            return Received(kind=event, why="order no longer exists")
        mapped = order_to_order_event(order)
        return Received(kind=event, event=mapped, why="" if mapped else "no usable phone")


CONNECTOR = NuvemshopConnector()


# --- polling abandoned checkouts -------------------------------------------------------------------------

@dataclass
class PollResult:
    """One poll's counts. ``skipped``: completed checkouts and ones without a usable phone; ``invalid``: malformed
    ones (logged, never stopping the others); ``truncated``: the listing was cut short (page cap, a repeated
    page); ``watermark``: the newest ``updated_at`` seen, which the next poll reads back from."""

    fetched: int = 0
    applied: int = 0
    duplicate: int = 0
    skipped: int = 0
    invalid: int = 0
    pages: int = 0
    truncated: bool = False
    watermark: datetime | None = None

    def as_json(self) -> dict:
        data = asdict(self)
        data["watermark"] = self.watermark.isoformat() if self.watermark else None
        return data


def watermark_key(runtime: Runtime) -> str:
    return runtime.keys("nuvemshop", "checkouts_watermark", runtime.settings.nuvemshop_store_id)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None  # year 1 or 9999 with an offset: not a time any checkout was updated at


def read_watermark(runtime: Runtime) -> datetime | None:
    raw = runtime.redis.get(watermark_key(runtime))
    return _moment(raw.decode() if isinstance(raw, bytes) else raw)


def _api_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")  # as Nuvemshop writes times


def poll_checkouts(session: Session, runtime: Runtime, now: datetime, *,
                   http: requests.Session | None = None) -> PollResult:
    """Read the checkouts updated since the watermark (minus ``OVERLAP``; ``LOOKBACK`` when there is none) and
    apply each recoverable one as a ``cart.abandoned`` event dated by its ``updated_at``.

    Every page is read before anything is applied: an API failure (ShopUnavailable) applies nothing and leaves
    the watermark as it was. A malformed checkout is counted and skipped. The watermark only moves forward, and
    never past ``now`` (a clock ahead on the platform's side must not make us skip what comes next)."""
    settings = runtime.settings
    _configured(settings)
    previous = read_watermark(runtime)
    since = previous - OVERLAP if previous else now - LOOKBACK
    result = PollResult()
    events: dict[str, CartEvent] = {}
    newest: datetime | None = None
    client = http or requests.Session()
    try:
        seen_pages: set[tuple] = set()
        page = 1
        while True:
            if page > MAX_PAGES:
                log.warning("Nuvemshop checkouts: more than %d pages since %s; stopping there (checkouts listed "
                            "after them may be missed)", MAX_PAGES, _api_time(since))
                result.truncated = True
                break
            listed = _get(client, settings, "checkouts", f"checkouts page {page}",
                          params={"per_page": PER_PAGE, "page": page, "updated_at_min": _api_time(since)})
            if listed is None:
                break  # Nuvemshop answers 404 for a page past the last one (or for no checkouts at all)
            if not isinstance(listed, list):
                raise ShopUnavailable(f"Nuvemshop answered checkouts page {page} with something that is not a list")
            ids = tuple(item.get("id") if isinstance(item, dict) else None for item in listed)
            if ids and ids in seen_pages:
                log.warning("Nuvemshop checkouts: page %d repeats an earlier page; stopping there", page)
                result.truncated = True
                break
            seen_pages.add(ids)
            result.pages += 1
            for item in listed:
                result.fetched += 1
                stamp = _moment(item.get("updated_at")) if isinstance(item, dict) else None
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
                try:
                    event = checkout_to_cart_event(item)
                except EventInvalid as exc:
                    result.invalid += 1
                    checkout_id = item.get("id") if isinstance(item, dict) else None
                    log.warning("Nuvemshop checkout %s skipped, malformed: %s", str(checkout_id)[:40],
                                ", ".join(sorted(exc.fields)))
                    continue
                if event is None:
                    result.skipped += 1
                    continue
                kept = events.get(event.id)
                if kept is None or event.updated_at > kept.updated_at:
                    events[event.id] = event  # a listing that shifted between pages may show one twice
            if len(listed) < PER_PAGE:
                break
            page += 1
    finally:
        if http is None:
            client.close()

    for event in events.values():
        if apply_cart_event(session, runtime, event, now) == "applied":
            result.applied += 1
        else:
            result.duplicate += 1
    if newest is not None:
        newest = min(newest, now)
        if previous is None or newest > previous:
            runtime.redis.set(watermark_key(runtime), newest.isoformat(), ex=int(WATERMARK_TTL.total_seconds()))
            previous = newest
    result.watermark = previous
    if result.fetched:
        activity.note(runtime, "nuvemshop", "checkouts", now)  # what the go-live page shows as last received
    log.info("Nuvemshop checkouts polled since %s: %d pages, %d fetched, %d applied, %d duplicate, %d skipped, "
             "%d malformed%s", _api_time(since), result.pages, result.fetched, result.applied, result.duplicate,
             result.skipped, result.invalid, " (truncated)" if result.truncated else "")
    return result
