"""catalog.discounts: the recoverer's codes created on Nuvemshop, Shopify and WooCommerce (HTTP intercepted with
`responses`; request bodies as each platform documents them)."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
import responses

from catalog import discounts
from catalog.discounts import (
    DiscountRefused, DiscountUnavailable, NuvemshopDiscounts, ShopifyDiscounts, WooCommerceDiscounts,
    needs_credentials, publisher_for,
)
from core.settings import Settings
from models import CouponKind, CouponRule

# 12:30 in São Paulo; the expiry is 23:30 of the same São Paulo day, already the next day in UTC.
NOW = datetime(2025, 3, 10, 15, 30, 0, tzinfo=timezone.utc)
EXPIRES = datetime(2025, 3, 11, 2, 30, 0, tzinfo=timezone.utc)
TITLE = "Recuperação de carrinho"

NUVEM_TOKEN = "nuvem-token-0123456789abcdef"
SHOPIFY_TOKEN = "shpat_0123456789abcdef0123456789abcdef"
WOO_KEY = "ck_0123456789abcdef0123456789abcdef01234567"
WOO_SECRET = "cs_fedcba9876543210fedcba9876543210fedcba98"

BASE_ENV = {"APP_ENV": "test", "STORE_NAME": "Loja Teste", "PUBLIC_BASE_URL": "https://bot.example"}
ENV = {
    "nuvemshop": {"SHOP_PLATFORM": "nuvemshop", "NUVEMSHOP_STORE_ID": "123456", "NUVEMSHOP_ACCESS_TOKEN": NUVEM_TOKEN},
    "shopify": {"SHOP_PLATFORM": "shopify", "SHOPIFY_SHOP_DOMAIN": "loja.myshopify.com",
                "SHOPIFY_ADMIN_TOKEN": SHOPIFY_TOKEN},
    "woocommerce": {"SHOP_PLATFORM": "woocommerce", "WOOCOMMERCE_STORE_URL": "https://loja.example",
                    "WOOCOMMERCE_CONSUMER_KEY": WOO_KEY, "WOOCOMMERCE_CONSUMER_SECRET": WOO_SECRET},
}
URL = {
    "nuvemshop": "https://api.nuvemshop.com.br/v1/123456/coupons",
    "shopify": "https://loja.myshopify.com/admin/api/2025-01/graphql.json",
    "woocommerce": "https://loja.example/wp-json/wc/v3/coupons",
}
CODE = {"nuvemshop": "VOLTAABC234XYZ", "shopify": "VOLTA-ABC234XYZ", "woocommerce": "VOLTA-ABC234XYZ"}
SECRETS = (NUVEM_TOKEN, SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET,
           base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode())
PLATFORMS = sorted(ENV)

SHOPIFY_CREATED = {"data": {"discountCodeBasicCreate": {
    "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/1"}, "userErrors": []}}}
SHOPIFY_TAKEN = {"data": {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": [
    {"field": ["basicCodeDiscount", "code"], "code": "TAKEN",
     "message": "Code must be unique. Please try a different code."}]}}}
CREATED = {
    "nuvemshop": (201, {"id": 32967, "code": CODE["nuvemshop"], "type": "percentage", "value": "10.00",
                        "valid": True, "max_uses": 1}),
    "shopify": (200, SHOPIFY_CREATED),
    "woocommerce": (201, {"id": 720, "code": CODE["woocommerce"].lower(), "amount": "10.00"}),
}
ALREADY_EXISTS = {
    "nuvemshop": (422, {"code": ["has already been taken"]}),
    "shopify": (200, SHOPIFY_TAKEN),
    "woocommerce": (400, {"code": "woocommerce_rest_coupon_code_already_exists",
                          "message": "O código de cupom já existe", "data": {"status": 400}}),
}


def settings_for(tmp_path, **env: str) -> Settings:
    return Settings.from_env({**BASE_ENV, **env}, instance_path=tmp_path)


def platform_settings(tmp_path, platform: str, **env: str) -> Settings:
    return settings_for(tmp_path, **{**ENV[platform], **env})


def make_publisher(tmp_path, platform: str, *, http=None, **env: str):
    publisher = publisher_for(platform_settings(tmp_path, platform, **env), http=http, now=lambda: NOW)
    assert publisher is not None
    return publisher


def rule(kind: CouponKind = CouponKind.PERCENT, value: str = "10", min_order: str = "0") -> CouponRule:
    return CouponRule(name="Recuperação", kind=kind, value=Decimal(value), min_order=Decimal(min_order))


def sent(call) -> dict:
    return json.loads(call.request.body)


@pytest.fixture
def api():
    """The platforms' APIs; a request to a URL no test registered fails with ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_no_secret_logged(caplog, code: str) -> None:
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in SECRETS:
        assert secret not in text
    assert code not in text  # the code's first characters only


# --- Nuvemshop ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "value", "min_order", "expected"), [
    (CouponKind.PERCENT, "10", "0", {"type": "percentage", "value": "10.00"}),
    (CouponKind.PERCENT, "12.5", "150.00", {"type": "percentage", "value": "12.50", "min_price": 150}),
    (CouponKind.FIXED, "20", "0", {"type": "absolute", "value": "20.00"}),
    (CouponKind.FIXED, "20.00", "99.90", {"type": "absolute", "value": "20.00", "min_price": 99.9}),
    (CouponKind.FREE_SHIPPING, "0", "0", {"type": "shipping"}),
    (CouponKind.FREE_SHIPPING, "0", "100", {"type": "shipping", "min_price": 100}),
])
def test_nuvemshop_creates_the_coupon_as_documented(tmp_path, api, logs, kind, value, min_order, expected):
    api.add(responses.POST, URL["nuvemshop"], json=CREATED["nuvemshop"][1], status=201)
    publisher = make_publisher(tmp_path, "nuvemshop")

    publisher.publish(CODE["nuvemshop"], rule(kind, value, min_order), EXPIRES, title=TITLE)

    (call,) = api.calls
    assert call.request.url == URL["nuvemshop"]
    assert call.request.headers["Authentication"] == f"bearer {NUVEM_TOKEN}"
    assert call.request.headers["User-Agent"] == "Loja Teste (https://bot.example)"
    assert call.request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in call.request.headers
    # Days in the store's time zone: 23:30 of 10 March in São Paulo is already 11 March in UTC.
    assert sent(call) == {"code": CODE["nuvemshop"], **expected, "max_uses": 1,
                          "start_date": "2025-03-10", "end_date": "2025-03-10"}
    assert isinstance(sent(call).get("min_price", 0), (int, float))
    assert_no_secret_logged(logs, CODE["nuvemshop"])


def test_nuvemshop_dates_follow_the_store_time_zone(tmp_path, api):
    api.add(responses.POST, URL["nuvemshop"], json=CREATED["nuvemshop"][1], status=201)
    make_publisher(tmp_path, "nuvemshop", STORE_TIMEZONE="UTC").publish(CODE["nuvemshop"], rule(), EXPIRES,
                                                                         title=TITLE)
    assert (sent(api.calls[0])["start_date"], sent(api.calls[0])["end_date"]) == ("2025-03-10", "2025-03-11")


def test_nuvemshop_uses_the_configured_api_url_and_an_ascii_user_agent(tmp_path, api):
    url = "https://api.tiendanube.com/v1/123456/coupons"
    api.add(responses.POST, url, json=CREATED["nuvemshop"][1], status=201)
    publisher = make_publisher(tmp_path, "nuvemshop", NUVEMSHOP_API_URL="https://api.tiendanube.com/v1/",
                               STORE_NAME="Café & Cia")
    publisher.publish(CODE["nuvemshop"], rule(), EXPIRES, title=TITLE)
    assert api.calls[0].request.headers["User-Agent"] == "Cafe & Cia (https://bot.example)"


@pytest.mark.parametrize("answer", [
    {"code": ["has already been taken"]},
    {"code": 422, "message": "Unprocessable Entity", "description": {"code": ["has already been taken"]}},
    {"code": ["já está em uso"]},
    {"description": "Coupon code already exists"},
])
def test_nuvemshop_code_already_taken_is_a_success(tmp_path, api, answer):
    api.add(responses.POST, URL["nuvemshop"], json=answer, status=422)
    make_publisher(tmp_path, "nuvemshop").publish(CODE["nuvemshop"], rule(), EXPIRES, title=TITLE)
    assert len(api.calls) == 1


@pytest.mark.parametrize("answer", [
    # The numeric "code" is the HTTP status repeated: not a word about the coupon's code.
    {"code": 422, "message": "Unprocessable Entity", "description": {"value": ["must be greater than 0"]}},
    {"end_date": ["must be after start_date"]},
    {"code": ["is invalid"]},
])
def test_nuvemshop_other_validation_errors_are_refusals(tmp_path, api, answer):
    api.add(responses.POST, URL["nuvemshop"], json=answer, status=422)
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "nuvemshop").publish(CODE["nuvemshop"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value).startswith("a Nuvemshop recusou o cupom: HTTP 422")
    assert caught.value.status == 422 and caught.value.platform == "nuvemshop"


def test_nuvemshop_refuses_a_code_with_a_hyphen_without_asking(tmp_path, api):
    with pytest.raises(DiscountRefused, match="só pode ter letras e números"):
        make_publisher(tmp_path, "nuvemshop").publish("VOLTA-ABC234", rule(), EXPIRES, title=TITLE)
    assert len(api.calls) == 0


@pytest.mark.parametrize(("status", "message"), [
    (401, "a Nuvemshop recusou o cupom: NUVEMSHOP_ACCESS_TOKEN inválido ou revogado (HTTP 401)"),
    (403, "a Nuvemshop recusou o cupom: token sem permissão write_coupons (HTTP 403)"),
    (404, "a Nuvemshop recusou o cupom: loja não encontrada (HTTP 404)"),
])
def test_nuvemshop_credential_problems_are_explained(tmp_path, api, logs, status, message):
    api.add(responses.POST, URL["nuvemshop"], json={"code": status, "message": "nope"}, status=status)
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "nuvemshop").publish(CODE["nuvemshop"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value).startswith(message)
    assert_no_secret_logged(logs, CODE["nuvemshop"])


# --- Shopify ------------------------------------------------------------------------------------------------

COMMON_SHOPIFY = {"title": TITLE, "code": CODE["shopify"], "startsAt": "2025-03-10T15:30:00Z",
                  "endsAt": "2025-03-11T02:30:00Z", "usageLimit": 1, "appliesOncePerCustomer": True,
                  "customerSelection": {"all": True}}


@pytest.mark.parametrize(("kind", "value", "min_order", "gets", "minimum"), [
    (CouponKind.PERCENT, "10", "0", {"percentage": 0.1}, None),
    (CouponKind.PERCENT, "12.5", "150", {"percentage": 0.125}, "150.00"),
    (CouponKind.FIXED, "20", "0", {"discountAmount": {"amount": "20.00", "appliesOnEachItem": False}}, None),
    (CouponKind.FIXED, "20.5", "99.9", {"discountAmount": {"amount": "20.50", "appliesOnEachItem": False}}, "99.90"),
])
def test_shopify_creates_a_basic_code_discount(tmp_path, api, logs, kind, value, min_order, gets, minimum):
    api.add(responses.POST, URL["shopify"], json=SHOPIFY_CREATED, status=200)

    make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(kind, value, min_order), EXPIRES, title=TITLE)

    (call,) = api.calls
    assert call.request.url == URL["shopify"]
    assert call.request.headers["X-Shopify-Access-Token"] == SHOPIFY_TOKEN
    assert call.request.headers["Content-Type"] == "application/json"
    body = sent(call)
    assert set(body) == {"query", "variables"}
    assert body["query"].startswith("mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!)")
    assert "discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount)" in body["query"]
    assert "userErrors { field code message }" in body["query"]
    expected = {**COMMON_SHOPIFY, "customerGets": {"value": gets, "items": {"all": True}}}
    if minimum is not None:
        expected["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": minimum}}
    assert body["variables"] == {"basicCodeDiscount": expected}
    assert_no_secret_logged(logs, CODE["shopify"])


@pytest.mark.parametrize(("min_order", "minimum"), [("0", None), ("80", "80.00")])
def test_shopify_free_shipping_uses_its_own_mutation(tmp_path, api, min_order, minimum):
    api.add(responses.POST, URL["shopify"], status=200, json={"data": {"discountCodeFreeShippingCreate": {
        "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/2"}, "userErrors": []}}})

    make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(CouponKind.FREE_SHIPPING, "0", min_order),
                                                EXPIRES, title=TITLE)

    body = sent(api.calls[0])
    assert body["query"].startswith(
        "mutation discountCodeFreeShippingCreate($freeShippingCodeDiscount: DiscountCodeFreeShippingInput!)")
    assert "discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount)" in body["query"]
    expected = {**COMMON_SHOPIFY, "destination": {"all": True}}
    if minimum is not None:
        expected["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": minimum}}
    assert body["variables"] == {"freeShippingCodeDiscount": expected}


def test_shopify_free_shipping_taken_is_read_from_its_own_mutation(tmp_path, api):
    taken = {"data": {"discountCodeFreeShippingCreate": SHOPIFY_TAKEN["data"]["discountCodeBasicCreate"]}}
    api.add(responses.POST, URL["shopify"], json=taken, status=200)
    make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(CouponKind.FREE_SHIPPING, "0"), EXPIRES,
                                                title=TITLE)


def test_shopify_user_errors_are_refusals(tmp_path, api, logs):
    api.add(responses.POST, URL["shopify"], status=200, json={"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": None, "userErrors": [
            {"field": ["basicCodeDiscount", "endsAt"], "code": "INVALID",
             "message": "Ends at needs to be after starts_at"}]}}})
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value) == "a Shopify recusou o cupom: Ends at needs to be after starts_at"
    assert_no_secret_logged(logs, CODE["shopify"])


def test_shopify_an_invalid_code_is_not_mistaken_for_a_taken_one(tmp_path, api):
    api.add(responses.POST, URL["shopify"], status=200, json={"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": None, "userErrors": [
            {"field": ["basicCodeDiscount", "code"], "code": "INVALID", "message": "Code is invalid"}]}}})
    with pytest.raises(DiscountRefused, match="Code is invalid"):
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)


def test_shopify_throttled_is_unavailable(tmp_path, api):
    api.add(responses.POST, URL["shopify"], status=200, json={"errors": [
        {"message": "Throttled",
         "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]})
    with pytest.raises(DiscountUnavailable) as caught:
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)
    assert "THROTTLED" in str(caught.value) and "tentaremos de novo" in str(caught.value)


def test_shopify_missing_scope_names_write_discounts(tmp_path, api):
    api.add(responses.POST, URL["shopify"], status=200, json={
        "data": {"discountCodeBasicCreate": None},
        "errors": [{"message": "Access denied for discountCodeBasicCreate field.",
                    "extensions": {"code": "ACCESS_DENIED"}}]})
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value) == "a Shopify recusou o cupom: token sem permissão write_discounts"


@pytest.mark.parametrize(("status", "message"), [
    (401, "a Shopify recusou o cupom: SHOPIFY_ADMIN_TOKEN inválido ou revogado (HTTP 401)"),
    (403, "a Shopify recusou o cupom: token sem permissão write_discounts (HTTP 403)"),
    (404, "a Shopify recusou o cupom: loja não encontrada (HTTP 404); confira SHOPIFY_SHOP_DOMAIN"),
])
def test_shopify_http_refusals(tmp_path, api, logs, status, message):
    api.add(responses.POST, URL["shopify"], status=status, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value) == message
    assert_no_secret_logged(logs, CODE["shopify"])


def test_shopify_redirect_is_not_followed(tmp_path, api):
    api.add(responses.POST, URL["shopify"], status=301, headers={"Location": "https://elsewhere.example/graphql"})
    with pytest.raises(DiscountRefused, match="redireciona"):
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)
    assert len(api.calls) == 1


def test_shopify_success_without_a_node_is_unavailable(tmp_path, api):
    api.add(responses.POST, URL["shopify"], status=200, json={"data": {}})
    with pytest.raises(DiscountUnavailable):
        make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), EXPIRES, title=TITLE)


# --- WooCommerce --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "value", "min_order", "expected"), [
    (CouponKind.PERCENT, "10", "0", {"discount_type": "percent", "amount": "10.00"}),
    (CouponKind.PERCENT, "12.5", "150", {"discount_type": "percent", "amount": "12.50", "minimum_amount": "150.00"}),
    (CouponKind.FIXED, "20", "0", {"discount_type": "fixed_cart", "amount": "20.00"}),
    (CouponKind.FIXED, "20", "99.9", {"discount_type": "fixed_cart", "amount": "20.00", "minimum_amount": "99.90"}),
    (CouponKind.FREE_SHIPPING, "0", "0", {"discount_type": "fixed_cart", "amount": "0", "free_shipping": True}),
    (CouponKind.FREE_SHIPPING, "0", "100", {"discount_type": "fixed_cart", "amount": "0", "free_shipping": True,
                                            "minimum_amount": "100.00"}),
])
def test_woocommerce_creates_the_coupon_as_documented(tmp_path, api, logs, kind, value, min_order, expected):
    api.add(responses.POST, URL["woocommerce"], json=CREATED["woocommerce"][1], status=201)

    make_publisher(tmp_path, "woocommerce").publish(CODE["woocommerce"], rule(kind, value, min_order), EXPIRES,
                                                    title=TITLE)

    (call,) = api.calls
    assert call.request.url == URL["woocommerce"]
    basic = base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
    assert call.request.headers["Authorization"] == f"Basic {basic}"
    assert call.request.headers["Content-Type"] == "application/json"
    assert sent(call) == {"code": CODE["woocommerce"], **expected, "usage_limit": 1, "usage_limit_per_user": 1,
                          "individual_use": True, "date_expires_gmt": "2025-03-11T02:30:00", "description": TITLE}
    assert_no_secret_logged(logs, CODE["woocommerce"])


def test_woocommerce_in_a_subdirectory(tmp_path, api):
    url = "https://loja.example/loja/wp-json/wc/v3/coupons"
    api.add(responses.POST, url, json=CREATED["woocommerce"][1], status=201)
    make_publisher(tmp_path, "woocommerce", WOOCOMMERCE_STORE_URL="https://loja.example/loja/").publish(
        CODE["woocommerce"], rule(), EXPIRES, title=TITLE)
    assert api.calls[0].request.url == url


@pytest.mark.parametrize("store_url", ["http://loja.example", "http://10.0.0.5:8080"])
def test_woocommerce_keys_never_travel_over_plain_http(tmp_path, api, logs, store_url):
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "woocommerce", WOOCOMMERCE_STORE_URL=store_url).publish(
            CODE["woocommerce"], rule(), EXPIRES, title=TITLE)
    assert "https://" in str(caught.value) and str(caught.value).startswith("a WooCommerce recusou o cupom")
    assert len(api.calls) == 0
    assert_no_secret_logged(logs, CODE["woocommerce"])


def test_woocommerce_over_http_on_localhost_is_allowed(tmp_path, api):
    url = "http://localhost:8080/wp-json/wc/v3/coupons"
    api.add(responses.POST, url, json=CREATED["woocommerce"][1], status=201)
    make_publisher(tmp_path, "woocommerce", WOOCOMMERCE_STORE_URL="http://localhost:8080").publish(
        CODE["woocommerce"], rule(), EXPIRES, title=TITLE)
    assert api.calls[0].request.url == url


@pytest.mark.parametrize("status", [401, 403])
def test_woocommerce_bad_or_read_only_keys(tmp_path, api, logs, status):
    api.add(responses.POST, URL["woocommerce"], status=status, json={
        "code": "woocommerce_rest_cannot_create", "message": "Sorry, you are not allowed to create resources.",
        "data": {"status": status}})
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "woocommerce").publish(CODE["woocommerce"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value).startswith("a WooCommerce recusou o cupom: chave da API inválida ou sem permissão")
    assert "Read/Write" in str(caught.value)
    assert_no_secret_logged(logs, CODE["woocommerce"])


def test_woocommerce_other_validation_errors_are_refusals(tmp_path, api):
    api.add(responses.POST, URL["woocommerce"], status=400, json={
        "code": "rest_invalid_param", "message": "Parâmetro(s) inválido(s): discount_type", "data": {"status": 400}})
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, "woocommerce").publish(CODE["woocommerce"], rule(), EXPIRES, title=TITLE)
    assert str(caught.value) == "a WooCommerce recusou o cupom: HTTP 400: Parâmetro(s) inválido(s): discount_type"


# --- every platform -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", PLATFORMS)
def test_publishing_the_same_code_twice_succeeds_both_times(tmp_path, api, platform):
    """A retried send: created the first time, "already exists" the second, success both times."""
    status, body = CREATED[platform]
    api.add(responses.POST, URL[platform], json=body, status=status)
    status, body = ALREADY_EXISTS[platform]
    api.add(responses.POST, URL[platform], json=body, status=status)
    publisher = make_publisher(tmp_path, platform)

    publisher.publish(CODE[platform], rule(), EXPIRES, title=TITLE)
    publisher.publish(CODE[platform], rule(), EXPIRES, title=TITLE)

    assert [call.response.status_code for call in api.calls] == [CREATED[platform][0], ALREADY_EXISTS[platform][0]]
    assert sent(api.calls[0]) == sent(api.calls[1])


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("answer", [
    {"status": 500, "body": "Internal Server Error"},
    {"status": 502, "body": "<html>Bad Gateway</html>"},
    {"status": 503, "json": {"errors": "unavailable"}},
    {"status": 429, "json": {"errors": "Exceeded 2 calls per second"}, "headers": {"Retry-After": "2"}},
    {"body": requests.exceptions.ConnectTimeout("connect timed out")},
    {"body": requests.exceptions.ReadTimeout("read timed out")},
    {"body": requests.exceptions.ConnectionError("connection refused")},
    {"status": 200, "body": "<html>maintenance</html>"},
    {"status": 201, "body": "not json"},
])
def test_transient_failures_are_unavailable(tmp_path, api, logs, platform, answer):
    api.add(responses.POST, URL[platform], **answer)
    with pytest.raises(DiscountUnavailable) as caught:
        make_publisher(tmp_path, platform).publish(CODE[platform], rule(), EXPIRES, title=TITLE)
    assert caught.value.platform == platform
    assert "tentaremos de novo" in str(caught.value)
    assert not isinstance(caught.value, DiscountRefused)
    assert_no_secret_logged(logs, CODE[platform])
    assert all(secret not in str(caught.value) for secret in SECRETS)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("status", [401, 403, 400, 422, 404])
def test_permanent_failures_are_refused(tmp_path, api, logs, platform, status):
    api.add(responses.POST, URL[platform], status=status, json={"message": "no", "code": "some_error"})
    with pytest.raises(DiscountRefused) as caught:
        make_publisher(tmp_path, platform).publish(CODE[platform], rule(), EXPIRES, title=TITLE)
    assert caught.value.status == status and caught.value.platform == platform
    assert "recusou o cupom" in str(caught.value)
    assert_no_secret_logged(logs, CODE[platform])
    assert all(secret not in str(caught.value) for secret in SECRETS)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_huge_answer_is_not_read_whole(tmp_path, api, monkeypatch, platform):
    monkeypatch.setattr(discounts, "MAX_RESPONSE_BYTES", 1000)
    api.add(responses.POST, URL[platform], status=CREATED[platform][0],
            body=json.dumps({"padding": "x" * 5000}), content_type="application/json")
    with pytest.raises(DiscountUnavailable, match="grande demais"):
        make_publisher(tmp_path, platform).publish(CODE[platform], rule(), EXPIRES, title=TITLE)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_already_expired_code_is_not_sent(tmp_path, api, platform):
    with pytest.raises(DiscountRefused, match="já venceu"):
        make_publisher(tmp_path, platform).publish(CODE[platform], rule(), NOW - timedelta(minutes=1), title=TITLE)
    assert len(api.calls) == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_given_session_is_used(tmp_path, api, platform):
    status, body = CREATED[platform]
    api.add(responses.POST, URL[platform], json=body, status=status)
    http = requests.Session()
    http.headers["X-Probe"] = "given-session"
    make_publisher(tmp_path, platform, http=http).publish(CODE[platform], rule(), EXPIRES, title=TITLE)
    assert api.calls[0].request.headers["X-Probe"] == "given-session"
    http.close()


def test_a_naive_expiry_is_read_as_utc(tmp_path, api):
    api.add(responses.POST, URL["woocommerce"], json=CREATED["woocommerce"][1], status=201)
    make_publisher(tmp_path, "woocommerce").publish(CODE["woocommerce"], rule(), EXPIRES.replace(tzinfo=None),
                                                    title=TITLE)
    assert sent(api.calls[0])["date_expires_gmt"] == "2025-03-11T02:30:00"


def test_an_expiry_in_another_zone_is_converted(tmp_path, api):
    api.add(responses.POST, URL["shopify"], json=SHOPIFY_CREATED, status=200)
    local = EXPIRES.astimezone(timezone(timedelta(hours=-3)))
    make_publisher(tmp_path, "shopify").publish(CODE["shopify"], rule(), local, title=TITLE)
    assert sent(api.calls[0])["variables"]["basicCodeDiscount"]["endsAt"] == "2025-03-11T02:30:00Z"


# --- which publisher, which credentials ---------------------------------------------------------------------

@pytest.mark.parametrize(("platform", "cls", "prefix"), [
    ("nuvemshop", NuvemshopDiscounts, "VOLTA"),
    ("shopify", ShopifyDiscounts, "VOLTA-"),
    ("woocommerce", WooCommerceDiscounts, "VOLTA-"),
])
def test_publisher_for_a_configured_platform(tmp_path, platform, cls, prefix):
    settings = platform_settings(tmp_path, platform)
    publisher = publisher_for(settings)
    assert isinstance(publisher, cls)
    assert (publisher.platform, publisher.code_prefix) == (platform, prefix)
    assert needs_credentials(settings) == []


def test_generic_needs_no_publisher(tmp_path):
    # Even with another platform's keys around: the generic shop asks our /api/coupons.
    settings = settings_for(tmp_path, SHOPIFY_ADMIN_TOKEN=SHOPIFY_TOKEN, SHOPIFY_SHOP_DOMAIN="loja.myshopify.com")
    assert settings.shop_platform == "generic"
    assert publisher_for(settings) is None
    assert needs_credentials(settings) == []


@pytest.mark.parametrize(("platform", "removed", "missing"), [
    ("shopify", ("SHOPIFY_ADMIN_TOKEN",), ["SHOPIFY_ADMIN_TOKEN"]),
    ("shopify", ("SHOPIFY_SHOP_DOMAIN",), ["SHOPIFY_SHOP_DOMAIN"]),
    ("shopify", ("SHOPIFY_SHOP_DOMAIN", "SHOPIFY_ADMIN_TOKEN"), ["SHOPIFY_SHOP_DOMAIN", "SHOPIFY_ADMIN_TOKEN"]),
    ("nuvemshop", ("NUVEMSHOP_ACCESS_TOKEN",), ["NUVEMSHOP_ACCESS_TOKEN"]),
    ("nuvemshop", ("NUVEMSHOP_STORE_ID",), ["NUVEMSHOP_STORE_ID"]),
    ("nuvemshop", ("NUVEMSHOP_STORE_ID", "NUVEMSHOP_ACCESS_TOKEN"), ["NUVEMSHOP_STORE_ID", "NUVEMSHOP_ACCESS_TOKEN"]),
    ("woocommerce", ("WOOCOMMERCE_CONSUMER_KEY",), ["WOOCOMMERCE_CONSUMER_KEY"]),
    ("woocommerce", ("WOOCOMMERCE_CONSUMER_SECRET",), ["WOOCOMMERCE_CONSUMER_SECRET"]),
    ("woocommerce", ("WOOCOMMERCE_CONSUMER_KEY", "WOOCOMMERCE_CONSUMER_SECRET"),
     ["WOOCOMMERCE_CONSUMER_KEY", "WOOCOMMERCE_CONSUMER_SECRET"]),
    ("woocommerce", ("WOOCOMMERCE_STORE_URL",), ["WOOCOMMERCE_STORE_URL"]),
])
def test_missing_credentials_mean_no_publisher(tmp_path, platform, removed, missing):
    env = {name: value for name, value in ENV[platform].items() if name not in removed}
    settings = settings_for(tmp_path, **env)
    assert settings.shop_platform == platform
    assert needs_credentials(settings) == missing
    assert publisher_for(settings) is None


def test_empty_values_count_as_missing(tmp_path):
    settings = platform_settings(tmp_path, "shopify", SHOPIFY_ADMIN_TOKEN="")
    assert needs_credentials(settings) == ["SHOPIFY_ADMIN_TOKEN"]
    assert publisher_for(settings) is None
