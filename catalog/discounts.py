"""Creating the recoverer's coupon codes on the shop's own platform, so its checkout accepts them.

Why: the sales recoverer issues one unique code per recovery message (``recovery.coupons``). A shop on the generic
contract asks us whether a code is good (``/api/coupons``), but Shopify's, Nuvemshop's and WooCommerce's checkouts
only accept a code that exists on the platform. So, before the message goes out, the send path publishes the code
there through the platform's API with one of the publishers below (``publisher_for``). A publish is idempotent: a
retried send publishes the same code again and the platform's "this code already exists" answer is a success.

Failures are of two kinds, both with a message in pt-BR that the merchant reads on the console:

- ``DiscountUnavailable``: not now (time-out, connection error, HTTP 429, 5xx, an answer that is not the JSON we
  expect, Shopify's ``THROTTLED``). Try again later.
- ``DiscountRefused``: not ever, until the merchant changes something (HTTP 401/403, a validation error, missing
  scope, a shop address that redirects, WooCommerce keys over plain http).

Every code is created for one use (our codes belong to one shopper), with the rule's minimum order when it has one
(``min_order > 0``) and the coupon's expiry. Nothing secret is logged: a line names the platform, the HTTP status
and the first characters of the code only. Requests have short time-outs, follow no redirects (the credentials
would follow them) and read at most ``MAX_RESPONSE_BYTES`` of the answer.

Each platform's mapping (``CouponKind`` → the platform's terms):

Nuvemshop — ``POST {NUVEMSHOP_API_URL}/{store_id}/coupons`` (resources/coupon.md of TiendaNube/api-docs), header
  ``Authentication: bearer {token}``. ``type`` ``percentage`` / ``absolute`` / ``shipping``; ``value`` a string
  with two decimals (omitted for ``shipping``); ``max_uses: 1``; ``min_price`` a JSON number, only when the rule
  has a minimum; ``start_date`` / ``end_date`` as ``YYYY-MM-DD``. Dates are *days*: ``start_date`` is today and
  ``end_date`` the expiry's date, both in the store's time zone (``STORE_TIMEZONE``), and Nuvemshop honours
  ``end_date`` to the end of that day — so on Nuvemshop a code stays usable up to a day past our ``expires_at``
  (the recoverer still flags such a late redemption as expired). Codes may only hold letters and digits, hence
  ``code_prefix = "VOLTA"``. The app must have been granted the ``write_coupons`` scope.
  "Already exists" is not documented: we assume a 422 whose body mentions the code as taken / existing / in use
  (``{"code": ["has already been taken"]}``, possibly nested under ``description``), see ``_nuvemshop_taken``.

Shopify — Admin GraphQL ``POST https://{SHOPIFY_SHOP_DOMAIN}/admin/api/2025-01/graphql.json`` with
  ``X-Shopify-Access-Token``. PERCENT and FIXED use ``discountCodeBasicCreate`` (``customerGets.value`` is
  ``{"percentage": 0.1}``, from 0 to 1, or ``{"discountAmount": {"amount": "20.00", "appliesOnEachItem": false}}``,
  on all items); FREE_SHIPPING uses ``discountCodeFreeShippingCreate`` to every destination. Both with
  ``usageLimit: 1``, ``appliesOncePerCustomer: true``, every customer, ``startsAt`` now and ``endsAt`` the expiry
  (to the second), and ``minimumRequirement.subtotal`` when the rule has a minimum. GraphQL answers 200 even when
  it fails: a ``userErrors`` entry saying the code is taken is a success, any other one a refusal; top-level
  ``errors`` with ``THROTTLED`` mean try later, ``ACCESS_DENIED`` a missing scope. The merchant creates a custom
  app in the Shopify admin with the ``write_discounts`` scope and sets its Admin API token as
  ``SHOPIFY_ADMIN_TOKEN``. ``code_prefix = "VOLTA-"``.

WooCommerce — REST API v3 ``POST {WOOCOMMERCE_STORE_URL}/wp-json/wc/v3/coupons`` with HTTP basic auth (consumer
  key and secret), which WooCommerce accepts over HTTPS only: over plain http the keys would travel readable, so we
  refuse to send them (localhost excepted, for tests). ``discount_type`` ``percent`` / ``fixed_cart``, ``amount``
  a string with two decimals, ``usage_limit`` and ``usage_limit_per_user`` 1, ``individual_use``,
  ``date_expires_gmt`` (UTC, to the second), ``minimum_amount`` when the rule has a minimum; FREE_SHIPPING is a
  ``fixed_cart`` of ``"0"`` with ``free_shipping: true``, which only works when the shop has a "Frete grátis"
  shipping method set to require "um cupom de frete grátis válido". The rule's name goes in ``description``.
  "Already exists" is a 400 ``woocommerce_rest_coupon_code_already_exists``. WooCommerce stores codes in lower
  case; the recoverer matches order codes case-insensitively. The merchant creates a REST API key with
  Read/Write permission (WooCommerce → Configurações → Avançado → API REST). ``code_prefix = "VOLTA-"``.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Protocol
from urllib.parse import urlparse

import requests

from core.settings import Settings
from models import ZERO, CouponKind, CouponRule

log = logging.getLogger(__name__)

# (connect, read) seconds: a recovery send waits on this call.
TIMEOUT = (3.05, 10)
# A created coupon is a few hundred bytes and an error a few kilobytes; anything far larger is not an answer.
MAX_RESPONSE_BYTES = 1024 * 1024
SHOPIFY_API_VERSION = "2025-01"
CENT = Decimal("0.01")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_CODE_HINT = 8  # characters of a code a log line may show


class DiscountError(RuntimeError):
    """A code could not be created on the platform. ``str(error)`` is the merchant's message, in pt-BR."""

    def __init__(self, message: str, *, platform: str, status: int | None = None) -> None:
        super().__init__(message)
        self.platform = platform
        self.status = status


class DiscountUnavailable(DiscountError):
    """The platform could not create the code now (timeout, connection error, 429, 5xx, bad answer): try later."""


class DiscountRefused(DiscountError):
    """The platform refused the code for good (401/403 bad credentials, 4xx validation other than "already
    exists")."""


class DiscountPublisher(Protocol):
    platform: str  # "nuvemshop" | "shopify" | "woocommerce"
    code_prefix: str  # the prefix our codes get on this platform

    def publish(self, code: str, rule: CouponRule, expires_at: datetime, *, title: str) -> None:
        """Create ``code`` on the platform (success when it already exists there); DiscountUnavailable or
        DiscountRefused otherwise."""


# --- which publisher ----------------------------------------------------------------------------------------

def needs_credentials(settings: Settings) -> list[str]:
    """The environment variables missing for the configured platform to accept the recoverer's coupons ([] when
    nothing is missing or the platform is generic) — shown to the merchant on the console."""
    required: tuple[tuple[str, str | None], ...]
    if settings.shop_platform == "shopify":
        required = (("SHOPIFY_SHOP_DOMAIN", settings.shopify_shop_domain),
                    ("SHOPIFY_ADMIN_TOKEN", settings.shopify_admin_token))
    elif settings.shop_platform == "nuvemshop":
        required = (("NUVEMSHOP_STORE_ID", settings.nuvemshop_store_id),
                    ("NUVEMSHOP_ACCESS_TOKEN", settings.nuvemshop_access_token))
    elif settings.shop_platform == "woocommerce":
        required = (("WOOCOMMERCE_STORE_URL", settings.woocommerce_store_url),
                    ("WOOCOMMERCE_CONSUMER_KEY", settings.woocommerce_consumer_key),
                    ("WOOCOMMERCE_CONSUMER_SECRET", settings.woocommerce_consumer_secret))
    else:
        required = ()
    return [name for name, value in required if not value]


def publisher_for(settings: Settings, *, http: requests.Session | None = None,
                  now: Callable[[], datetime] | None = None) -> DiscountPublisher | None:
    """None for SHOP_PLATFORM=generic (the shop checks codes with our /api/coupons) and for a platform whose API
    credentials are missing (Shopify without SHOPIFY_ADMIN_TOKEN, WooCommerce without WOOCOMMERCE_CONSUMER_KEY
    / _SECRET, Nuvemshop without NUVEMSHOP_STORE_ID / NUVEMSHOP_ACCESS_TOKEN).

    ``http``: the session requests go through (a new one per publish, closed after it, when None). ``now``: the
    clock (UTC) the start dates are read from."""
    if needs_credentials(settings):
        return None
    publishers = {"shopify": ShopifyDiscounts, "nuvemshop": NuvemshopDiscounts, "woocommerce": WooCommerceDiscounts}
    cls = publishers.get(settings.shop_platform)
    return cls(settings, http=http, now=now) if cls is not None else None


# --- shared plumbing ----------------------------------------------------------------------------------------

def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive value is taken as UTC (how the database stores it)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _money(value: Decimal | int | str) -> str:
    """'10.00': two decimals, as a string (how the platforms write money)."""
    return f"{Decimal(value).quantize(CENT)}"


def _number(value: Decimal) -> int | float:
    """A JSON number for an amount: 100 or 99.9."""
    amount = Decimal(value).quantize(CENT)
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _code_hint(code: str) -> str:
    """What a log line may show of a code: its first characters."""
    return code[:_CODE_HINT] + ("…" if len(code) > _CODE_HINT else "")


def _user_agent(settings: Settings) -> str:
    # Header values must be ASCII-safe: "Café" is sent as "Cafe".
    name = unicodedata.normalize("NFKD", settings.store_name).encode("ascii", "ignore").decode().strip()
    return f"{name or 'Loja'} ({settings.public_base_url})"


def _excerpt(payload: Any, limit: int = 200) -> str:
    """A short, one-line rendering of the platform's error, for the merchant's message."""
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        text = payload["message"]
    elif isinstance(payload, (dict, list)):
        text = json.dumps(payload, ensure_ascii=False)
    else:
        text = str(payload or "")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:limit] + ("…" if len(text) > limit else "")


class _Answer:
    """What the platform answered: the status and the body, parsed as JSON when it is (``json_ok``)."""

    def __init__(self, status: int, raw: bytes) -> None:
        self.status = status
        self.raw = raw
        try:
            self.payload: Any = json.loads(raw)
            self.json_ok = True
        except (ValueError, RecursionError):
            self.payload, self.json_ok = None, False


class _Publisher:
    platform = ""
    label = ""  # how the merchant's message names the platform: "a Shopify"
    code_prefix = "VOLTA-"

    def __init__(self, settings: Settings, *, http: requests.Session | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.http = http
        self.now = now or _utc_now

    # Subclasses: the request for one code, and what a non-transient answer means.
    def _check_code(self, code: str) -> None:
        if not code or not code.isascii() or not code.isprintable() or code != code.strip():
            raise DiscountRefused(f"{self.label} recusou o cupom: código inválido", platform=self.platform)

    def _unavailable(self, why: str, status: int | None = None) -> DiscountUnavailable:
        return DiscountUnavailable(f"{self.label} {why} ao criar o cupom; tentaremos de novo",
                                   platform=self.platform, status=status)

    def _refused(self, why: str, status: int | None = None) -> DiscountRefused:
        return DiscountRefused(f"{self.label} recusou o cupom: {why}", platform=self.platform, status=status)

    def _post(self, url: str, body: dict, code: str, *, headers: dict[str, str],
              auth: tuple[str, str] | None = None) -> _Answer:
        """POST ``body`` as JSON. Transport failures, 429 and 5xx raise DiscountUnavailable, redirects and
        401/403 DiscountRefused; every other answer is returned for the platform to judge."""
        session = self.http or requests.Session()
        headers = {"Accept": "application/json", "User-Agent": _user_agent(self.settings), **headers}
        try:
            with session.post(url, json=body, headers=headers, auth=auth, timeout=TIMEOUT, stream=True,
                              allow_redirects=False) as response:
                status = response.status_code
                raw = self._read_bounded(response, code)
        except requests.Timeout:
            log.warning("discount code not published: %s timed out (code %s)", self.platform, _code_hint(code))
            raise self._unavailable("não respondeu a tempo") from None
        except requests.RequestException as exc:
            log.warning("discount code not published: %s unreachable, %s (code %s)", self.platform,
                        type(exc).__name__, _code_hint(code))
            raise self._unavailable(f"não pôde ser contatada ({type(exc).__name__})") from None
        finally:
            if self.http is None:
                session.close()
        if status == 429 or status >= 500 or status == 408:
            log.warning("discount code not published: %s answered HTTP %s (code %s)", self.platform, status,
                        _code_hint(code))
            why = "limitou as requisições (HTTP 429)" if status == 429 else f"respondeu HTTP {status}"
            raise self._unavailable(why, status)
        if 300 <= status < 400:
            log.warning("discount code not published: %s redirected (HTTP %s, code %s)", self.platform, status,
                        _code_hint(code))
            raise self._refused(f"o endereço da loja redireciona (HTTP {status}); {self._address_hint()}", status)
        return _Answer(status, raw)

    def _address_hint(self) -> str:
        return "confira o endereço configurado"

    def _read_bounded(self, response: requests.Response, code: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            raise self._too_large(code, response.status_code)
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise self._too_large(code, response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, code: str, status: int) -> DiscountUnavailable:
        log.warning("discount code not published: %s answered more than %s bytes (HTTP %s, code %s)",
                    self.platform, MAX_RESPONSE_BYTES, status, _code_hint(code))
        return self._unavailable("deu uma resposta grande demais", status)

    def _not_json(self, answer: _Answer, code: str) -> DiscountUnavailable:
        log.warning("discount code not published: %s answered HTTP %s that is not JSON (code %s)", self.platform,
                    answer.status, _code_hint(code))
        return self._unavailable("deu uma resposta inválida", answer.status)

    def _created(self, code: str, status: int, *, existed: bool = False) -> None:
        log.info("discount code %s on %s (HTTP %s, code %s)", "already existed" if existed else "published",
                 self.platform, status, _code_hint(code))

    def _expiring(self, expires_at: datetime) -> tuple[datetime, datetime]:
        """(now, expiry) in UTC; a code that has already expired is refused without asking the platform."""
        now, expiry = _utc(self.now()), _utc(expires_at)
        if expiry <= now:
            raise DiscountRefused(f"{self.label} não recebeu o cupom: ele já venceu", platform=self.platform)
        return now, expiry


# --- Nuvemshop ----------------------------------------------------------------------------------------------

_TAKEN_WORDS = re.compile(r"taken|exist|\buso\b|already|duplicad", re.IGNORECASE)
_CODE_WORDS = re.compile(r"\bcode\b|c[oó]digo|cupom|cup[oó]n|coupon", re.IGNORECASE)


def _nuvemshop_taken(payload: Any, depth: int = 0) -> bool:
    """Does a 422 body say the code already exists? Not documented by Nuvemshop; we assume its validation errors
    look like ``{"code": ["has already been taken"]}``, perhaps nested (``{"code": 422, "description": {...}}``):
    a ``code`` key holding text about being taken / existing / in use, or any text naming the code and saying so
    (``"O código já está em uso"``). A numeric ``code`` (the HTTP status some answers repeat) says nothing."""
    if depth > 5:
        return False
    if isinstance(payload, dict):
        for key, value in payload.items():
            if str(key).lower() == "code" and _texts_say_taken(value):
                return True
            if _nuvemshop_taken(value, depth + 1):
                return True
        return False
    if isinstance(payload, list):
        return any(_nuvemshop_taken(item, depth + 1) for item in payload)
    if isinstance(payload, str):
        return bool(_CODE_WORDS.search(payload) and _TAKEN_WORDS.search(payload))
    return False


def _texts_say_taken(value: Any) -> bool:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        texts = [item for item in value if isinstance(item, str)]
    else:
        texts = []
    return any(_TAKEN_WORDS.search(text) for text in texts)


class NuvemshopDiscounts(_Publisher):
    """Creates codes with Nuvemshop's coupons API. ``end_date`` is a day: Nuvemshop honours the code to the end of
    the expiry's date in the store's time zone, so it may stay usable up to a day past ``expires_at``."""

    platform = "nuvemshop"
    label = "a Nuvemshop"
    code_prefix = "VOLTA"  # Nuvemshop codes hold letters and digits only

    def url(self) -> str:
        return f"{self.settings.nuvemshop_api_url.rstrip('/')}/{self.settings.nuvemshop_store_id}/coupons"

    def body(self, code: str, rule: CouponRule, expires_at: datetime) -> dict:
        now, expiry = self._expiring(expires_at)
        zone = self.settings.store_timezone
        body: dict[str, Any] = {"code": code}
        if rule.kind is CouponKind.PERCENT:
            body.update(type="percentage", value=_money(rule.value))
        elif rule.kind is CouponKind.FIXED:
            body.update(type="absolute", value=_money(rule.value))
        elif rule.kind is CouponKind.FREE_SHIPPING:
            body["type"] = "shipping"
        else:
            raise ValueError(f"unknown coupon kind {rule.kind!r}")
        body["max_uses"] = 1
        if rule.min_order is not None and rule.min_order > ZERO:
            body["min_price"] = _number(rule.min_order)
        body["start_date"] = now.astimezone(zone).date().isoformat()
        body["end_date"] = expiry.astimezone(zone).date().isoformat()
        return body

    def publish(self, code: str, rule: CouponRule, expires_at: datetime, *, title: str) -> None:
        self._check_code(code)
        if not code.isalnum():
            raise self._refused("o código só pode ter letras e números")
        body = self.body(code, rule, expires_at)
        # "Authentication", not "Authorization": the header name Nuvemshop's reference uses.
        answer = self._post(self.url(), body, code,
                            headers={"Authentication": f"bearer {self.settings.nuvemshop_access_token}"})
        if answer.status in (200, 201):
            if not (answer.json_ok and isinstance(answer.payload, dict)):
                raise self._not_json(answer, code)
            self._created(code, answer.status)
            return
        if answer.status == 422 and answer.json_ok and _nuvemshop_taken(answer.payload):
            self._created(code, answer.status, existed=True)
            return
        log.warning("discount code not published: nuvemshop answered HTTP %s (code %s)", answer.status,
                    _code_hint(code))
        if answer.status == 401:
            raise self._refused("NUVEMSHOP_ACCESS_TOKEN inválido ou revogado (HTTP 401); reinstale o aplicativo e "
                                "configure o novo token", 401)
        if answer.status == 403:
            raise self._refused("token sem permissão write_coupons (HTTP 403); reinstale o aplicativo com essa "
                                "permissão", 403)
        if answer.status == 404:
            raise self._refused("loja não encontrada (HTTP 404); confira NUVEMSHOP_STORE_ID", 404)
        detail = _excerpt(answer.payload) if answer.json_ok else ""
        raise self._refused(f"HTTP {answer.status}" + (f": {detail}" if detail else ""), answer.status)


# --- Shopify ------------------------------------------------------------------------------------------------

_USER_ERRORS = "userErrors { field code message }"
BASIC_MUTATION = (
    "mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {"
    " discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {"
    f" codeDiscountNode {{ id }} {_USER_ERRORS} }} }}"
)
FREE_SHIPPING_MUTATION = (
    "mutation discountCodeFreeShippingCreate($freeShippingCodeDiscount: DiscountCodeFreeShippingInput!) {"
    " discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount) {"
    f" codeDiscountNode {{ id }} {_USER_ERRORS} }} }}"
)
_SHOPIFY_TAKEN_CODES = frozenset({"TAKEN", "DUPLICATE"})
_SHOPIFY_TAKEN_WORDS = re.compile(r"unique|taken|already|exist", re.IGNORECASE)
# Top-level GraphQL error codes that pass: try again later.
_SHOPIFY_TRANSIENT = frozenset({"THROTTLED", "INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"})


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _shopify_taken(error: dict) -> bool:
    """A userError saying the code is taken: ``{"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
    "message": "Code must be unique. Please try a different code."}``."""
    field = error.get("field")
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    about_code = (isinstance(field, list) and bool(field) and field[-1] == "code") or "code" in message.lower()
    return about_code and (error.get("code") in _SHOPIFY_TAKEN_CODES or bool(_SHOPIFY_TAKEN_WORDS.search(message)))


class ShopifyDiscounts(_Publisher):
    """Creates codes with the Admin GraphQL API (``discountCodeBasicCreate`` / ``discountCodeFreeShippingCreate``).
    ``endsAt`` is the expiry to the second."""

    platform = "shopify"
    label = "a Shopify"
    code_prefix = "VOLTA-"

    def url(self) -> str:
        return f"https://{self.settings.shopify_shop_domain}/admin/api/{SHOPIFY_API_VERSION}/graphql.json"

    def request(self, code: str, rule: CouponRule, expires_at: datetime, *, title: str) -> tuple[str, dict]:
        """(mutation name, GraphQL request body)."""
        now, expiry = self._expiring(expires_at)
        common: dict[str, Any] = {
            "title": (title or code)[:255], "code": code, "startsAt": _iso(now), "endsAt": _iso(expiry),
            "usageLimit": 1, "appliesOncePerCustomer": True, "customerSelection": {"all": True},
        }
        if rule.min_order is not None and rule.min_order > ZERO:
            common["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": _money(rule.min_order)}}
        if rule.kind is CouponKind.FREE_SHIPPING:
            variables = {"freeShippingCodeDiscount": {**common, "destination": {"all": True}}}
            return "discountCodeFreeShippingCreate", {"query": FREE_SHIPPING_MUTATION, "variables": variables}
        if rule.kind is CouponKind.PERCENT:
            value: dict = {"percentage": float(Decimal(rule.value) / Decimal(100))}
        elif rule.kind is CouponKind.FIXED:
            value = {"discountAmount": {"amount": _money(rule.value), "appliesOnEachItem": False}}
        else:
            raise ValueError(f"unknown coupon kind {rule.kind!r}")
        variables = {"basicCodeDiscount": {**common, "customerGets": {"value": value, "items": {"all": True}}}}
        return "discountCodeBasicCreate", {"query": BASIC_MUTATION, "variables": variables}

    def _address_hint(self) -> str:
        return "use o endereço loja.myshopify.com em SHOPIFY_SHOP_DOMAIN"

    def publish(self, code: str, rule: CouponRule, expires_at: datetime, *, title: str) -> None:
        self._check_code(code)
        mutation, body = self.request(code, rule, expires_at, title=title)
        answer = self._post(self.url(), body, code,
                            headers={"X-Shopify-Access-Token": self.settings.shopify_admin_token or ""})
        if not 200 <= answer.status < 300:
            log.warning("discount code not published: shopify answered HTTP %s (code %s)", answer.status,
                        _code_hint(code))
            if answer.status == 401:
                raise self._refused("SHOPIFY_ADMIN_TOKEN inválido ou revogado (HTTP 401)", 401)
            if answer.status == 403:
                raise self._refused("token sem permissão write_discounts (HTTP 403)", 403)
            if answer.status == 404:
                raise self._refused("loja não encontrada (HTTP 404); confira SHOPIFY_SHOP_DOMAIN", 404)
            if answer.status == 402:
                raise self._refused("a loja está bloqueada por pagamento pendente (HTTP 402)", 402)
            detail = _excerpt(answer.payload.get("errors") if isinstance(answer.payload, dict) else None)
            raise self._refused(f"HTTP {answer.status}" + (f": {detail}" if detail else ""), answer.status)
        if not (answer.json_ok and isinstance(answer.payload, dict)):
            raise self._not_json(answer, code)
        data = answer.payload.get("data")
        result = data.get(mutation) if isinstance(data, dict) else None
        if isinstance(result, dict):
            user_errors = [e for e in result.get("userErrors") or [] if isinstance(e, dict)]
            if any(_shopify_taken(error) for error in user_errors):
                self._created(code, 200, existed=True)
                return
            if user_errors:
                log.warning("discount code not published: shopify userErrors %s (code %s)",
                            [e.get("code") for e in user_errors], _code_hint(code))
                detail = "; ".join(_excerpt(e.get("message") or e.get("code")) for e in user_errors[:3])
                raise self._refused(detail or "erro de validação", 200)
            if isinstance(result.get("codeDiscountNode"), dict):
                self._created(code, 200)
                return
        raw_errors = answer.payload.get("errors")
        errors = [e for e in raw_errors if isinstance(e, dict)] if isinstance(raw_errors, list) else []
        codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e.get("extensions"), dict)}
        log.warning("discount code not published: shopify errors %s (code %s)", sorted(map(str, codes)),
                    _code_hint(code))
        if codes & _SHOPIFY_TRANSIENT:
            why = "limitou as requisições (THROTTLED)" if "THROTTLED" in codes else "teve um erro interno"
            raise self._unavailable(why, 200)
        if "ACCESS_DENIED" in codes:
            raise self._refused("token sem permissão write_discounts", 200)
        if errors:
            raise self._refused(_excerpt(errors[0].get("message")) or "erro na API", 200)
        raise self._unavailable("deu uma resposta inesperada", 200)


# --- WooCommerce --------------------------------------------------------------------------------------------

WOO_ALREADY_EXISTS = "woocommerce_rest_coupon_code_already_exists"


class WooCommerceDiscounts(_Publisher):
    """Creates codes with the WooCommerce REST API v3. ``date_expires_gmt`` is the expiry to the second, in UTC.
    The consumer key and secret go as HTTP basic auth, over HTTPS only (localhost excepted)."""

    platform = "woocommerce"
    label = "a WooCommerce"
    code_prefix = "VOLTA-"

    def url(self) -> str:
        return f"{(self.settings.woocommerce_store_url or '').rstrip('/')}/wp-json/wc/v3/coupons"

    def body(self, code: str, rule: CouponRule, expires_at: datetime, *, title: str) -> dict:
        _, expiry = self._expiring(expires_at)
        body: dict[str, Any] = {"code": code}
        if rule.kind is CouponKind.PERCENT:
            body.update(discount_type="percent", amount=_money(rule.value))
        elif rule.kind is CouponKind.FIXED:
            body.update(discount_type="fixed_cart", amount=_money(rule.value))
        elif rule.kind is CouponKind.FREE_SHIPPING:
            body.update(discount_type="fixed_cart", amount="0", free_shipping=True)
        else:
            raise ValueError(f"unknown coupon kind {rule.kind!r}")
        body.update(usage_limit=1, usage_limit_per_user=1, individual_use=True,
                    date_expires_gmt=expiry.strftime("%Y-%m-%dT%H:%M:%S"))
        if rule.min_order is not None and rule.min_order > ZERO:
            body["minimum_amount"] = _money(rule.min_order)
        if title:
            body["description"] = title
        return body

    def _address_hint(self) -> str:
        return "use em WOOCOMMERCE_STORE_URL o endereço final da loja, com https://"

    def publish(self, code: str, rule: CouponRule, expires_at: datetime, *, title: str) -> None:
        self._check_code(code)
        url = self.url()
        parsed = urlparse(url)
        if parsed.scheme != "https" and (parsed.hostname or "") not in LOCAL_HOSTS:
            log.warning("discount code not published: woocommerce store URL is not https (code %s)",
                        _code_hint(code))
            raise self._refused("WOOCOMMERCE_STORE_URL usa http://; as chaves da API só são enviadas por https://. "
                                "Ative o HTTPS na loja e use o endereço com https://")
        body = self.body(code, rule, expires_at, title=title)
        auth = (self.settings.woocommerce_consumer_key or "", self.settings.woocommerce_consumer_secret or "")
        answer = self._post(url, body, code, headers={}, auth=auth)
        if answer.status in (200, 201):
            if not (answer.json_ok and isinstance(answer.payload, dict)):
                raise self._not_json(answer, code)
            self._created(code, answer.status)
            return
        error = answer.payload.get("code") if answer.json_ok and isinstance(answer.payload, dict) else None
        if answer.status == 400 and error == WOO_ALREADY_EXISTS:
            self._created(code, answer.status, existed=True)
            return
        log.warning("discount code not published: woocommerce answered HTTP %s %s (code %s)", answer.status,
                    error if isinstance(error, str) else "", _code_hint(code))
        if answer.status in (401, 403):
            raise self._refused(f"chave da API inválida ou sem permissão de escrita (HTTP {answer.status}); crie "
                                "uma chave com permissão Leitura/Escrita (Read/Write) e confira se o servidor "
                                "repassa o cabeçalho Authorization", answer.status)
        if answer.status == 404:
            raise self._refused("API REST não encontrada (HTTP 404); confira WOOCOMMERCE_STORE_URL e se os links "
                                "permanentes do WordPress não estão como \"Simples\"", 404)
        detail = _excerpt(answer.payload) if answer.json_ok else ""
        raise self._refused(f"HTTP {answer.status}" + (f": {detail}" if detail else ""), answer.status)
