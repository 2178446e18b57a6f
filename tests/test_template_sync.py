"""channel.template_sync: the merchant's WhatsApp templates from Twilio's Content API and Meta's Graph API
(intercepted with `responses`), with payloads shaped as the providers document them: every page, the status
mapping, placeholders in header, body and URL buttons, idempotence, templates no longer listed, failures that
write nothing, the CLI command and the periodic job."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
from responses import matchers
from sqlalchemy import select

from channel import jobs as channel_jobs
from channel.template_sync import MAX_PAGES, TemplateSyncError, missing_credentials, sync_templates
from core.schedule import periodic_jobs
from models import TemplateStatus, WhatsAppTemplate
from tests.conftest import installed_runtime, make_settings

TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "t0k3n" + "x" * 27
CONTENT_API = "https://content.twilio.test"
CONTENT_URL = f"{CONTENT_API}/v1/ContentAndApprovals"

META_TOKEN = "EAAG" + "s3cr3t" * 10
WABA_ID = "102290129340398"
GRAPH = "https://graph.facebook.test/v21.0"
TEMPLATES_URL = f"{GRAPH}/{WABA_ID}/message_templates"
META_FIELDS = "id,name,language,status,category,components,rejected_reason"

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


def hx(n: int) -> str:
    return "HX" + f"{n:032x}"


# --- settings and HTTP ---------------------------------------------------------------------------------

@pytest.fixture
def twilio_settings(instance_dir, database_url, redis_url):
    return make_settings(instance_dir, database_url, redis_url, TWILIO_ACCOUNT_SID=TWILIO_SID,
                         TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_CONTENT_API_URL=CONTENT_API)


@pytest.fixture
def meta_settings(instance_dir, database_url, redis_url):
    return make_settings(instance_dir, database_url, redis_url, WHATSAPP_PROVIDER="meta",
                         META_ACCESS_TOKEN=META_TOKEN, META_PHONE_NUMBER_ID="106540352242922", META_WABA_ID=WABA_ID,
                         META_APP_SECRET="a" * 32, META_VERIFY_TOKEN="verify-" + "v" * 16, META_GRAPH_URL=GRAPH)


@pytest.fixture
def api():
    """The providers' APIs; any request not registered by the test fails (ConnectionError)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


# --- Twilio's documented shapes (GET /v1/ContentAndApprovals) ------------------------------------------

def twilio_page(contents: list[dict], *, page: int = 0, next_token: str | None = None) -> dict:
    url = f"https://content.twilio.com/v1/ContentAndApprovals?PageSize=100&Page={page}"
    next_url = (f"https://content.twilio.com/v1/ContentAndApprovals?PageSize=100&Page={page + 1}"
                f"&PageToken={next_token}") if next_token else None
    return {"contents": contents,
            "meta": {"page": page, "page_size": 100, "first_page_url": url.replace(f"Page={page}", "Page=0"),
                     "previous_page_url": None, "url": url, "next_page_url": next_url, "key": "contents"}}


def twilio_content(sid: str, friendly_name: str, types: dict, *, variables: dict | None = None,
                   status: str | None = "approved", category: str = "MARKETING", rejection_reason: str = "",
                   language: str = "pt_BR") -> dict:
    content = {
        "account_sid": TWILIO_SID, "sid": sid, "friendly_name": friendly_name, "language": language,
        "variables": variables or {}, "types": types,
        "date_created": "2025-02-03T14:10:08Z", "date_updated": "2025-02-03T14:12:40Z",
    }
    if status is not None:
        content["approval_requests"] = {
            "type": "whatsapp", "name": friendly_name, "category": category, "content_type": next(iter(types)),
            "status": status, "rejection_reason": rejection_reason, "allow_category_change": True,
        }
    return content


CART_CTA = twilio_content(
    hx(1), "carrinho_abandonado",
    {"twilio/call-to-action": {
        "body": "Oi {{1}}! Você deixou {{2}} no carrinho. Use o cupom {{3}} até {{4}}.",
        "actions": [{"type": "URL", "title": "Finalizar compra", "url": "https://loja.exemplo.com.br/checkout/{{5}}"},
                    {"type": "PHONE_NUMBER", "title": "Ligar para a loja", "phone": "+5511999990001"}]}},
    variables={"1": "Ana", "2": "Tênis Corrida Preto", "3": "VOLTA10", "4": "amanhã", "5": "c8f2a"})
QUICK_REPLY = twilio_content(
    hx(2), "ainda_quer", {"twilio/quick-reply": {
        "body": "{{1}}, ainda quer o seu pedido?",
        "actions": [{"title": "Quero sim", "id": "sim"}, {"title": "Não, obrigado", "id": "nao"}]}},
    variables={"1": "Ana"}, status="pending", category="UTILITY")
TEXT_REJECTED = twilio_content(hx(3), "promo_relampago", {"twilio/text": {"body": "Promoção só hoje!"}},
                               status="rejected", rejection_reason="Template uses promotional content.")
CARD = twilio_content(
    hx(4), "cartao_oferta", {"twilio/card": {
        "title": "Oferta para {{1}}", "subtitle": "Loja Exemplo", "body": None,
        "media": ["https://loja.exemplo.com.br/img/{{2}}"],
        "actions": [{"type": "QUICK_REPLY", "title": "Ver oferta", "id": "ver"}]}},
    variables={"1": "Ana", "2": "tenis.jpg"}, status="paused")
UNSUBMITTED = twilio_content(hx(5), "rascunho", {"twilio/text": {"body": "Olá {{1}}"}}, variables={"1": "Ana"},
                             status=None)


def add_twilio(api, *pages: dict, status: int = 200):
    """Register each page at the query string the previous page's next_page_url names."""
    for number, page in enumerate(pages):
        params = {"PageSize": "100"}
        if number:
            params.update(Page=str(number), PageToken=f"PAHX{number}")
        api.add(responses.GET, CONTENT_URL, json=page, status=status, match=[matchers.query_param_matcher(params)])


def twilio_pages(*chunks: list[dict]) -> list[dict]:
    return [twilio_page(chunk, page=i, next_token=f"PAHX{i + 1}" if i + 1 < len(chunks) else None)
            for i, chunk in enumerate(chunks)]


# --- Meta's documented shapes (GET /{WABA_ID}/message_templates) ---------------------------------------

def meta_page(data: list[dict], *, after: str = "MjQZD", next_url: str | None = None) -> dict:
    paging = {"cursors": {"before": "MAZDZD", "after": after}}
    if next_url:
        paging["next"] = next_url
    return {"data": data, "paging": paging}


def meta_next(after: str) -> str:
    # As Meta writes it: absolute, on graph.facebook.com, with the request's parameters and the cursor.
    return (f"https://graph.facebook.com/v21.0/{WABA_ID}/message_templates?fields={META_FIELDS}"
            f"&limit=100&after={after}")


SEASONAL = {
    "name": "promocao_sazonal",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Nossa {{1}} começou!",
         "example": {"header_text": ["Liquidação"]}},
        {"type": "BODY", "text": "Compre até {{1}} com o código {{2}} e ganhe {{3}} de desconto.",
         "example": {"body_text": [["o fim de agosto", "VOLTA25", "25%"]]}},
        {"type": "FOOTER", "text": "Use os botões abaixo para gerenciar suas mensagens"},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "Comprar", "url": "https://loja.exemplo.com.br/carrinho?promo={{1}}",
             "example": ["https://loja.exemplo.com.br/carrinho?promo=verao"]},
            {"type": "QUICK_REPLY", "text": "Parar promoções"},
            {"type": "PHONE_NUMBER", "text": "Ligar", "phone_number": "5511999990001"},
            {"type": "COPY_CODE", "example": "VOLTA25"}]},
    ],
    "language": "pt_BR", "status": "APPROVED", "category": "MARKETING", "rejected_reason": "NONE",
    "id": "546151681022936",
}
NAMED = {
    "name": "lembrete_carrinho",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2UvanBlZw==:ARb..."]}},
        {"type": "BODY", "text": "Olá {{first_name}}! Seu cupom {{coupon_code}} vale até {{valid_until}}.",
         "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"},
                                                {"param_name": "coupon_code", "example": "VOLTA10"},
                                                {"param_name": "valid_until", "example": "amanhã"}]}},
    ],
    "language": "pt_BR", "status": "APPROVED", "category": "UTILITY", "rejected_reason": "NONE",
    "id": "1667192013751005",
}
REJECTED = {
    "name": "frete_gratis", "components": [{"type": "BODY", "text": "Frete grátis só hoje!"}],
    "language": "pt_BR", "status": "REJECTED", "category": "MARKETING", "rejected_reason": "PROMOTIONAL",
    "id": "774520113385102",
}


def add_meta(api, *pages: dict):
    for number, page in enumerate(pages):
        params = {"fields": META_FIELDS, "limit": "100"}
        if number:
            params["after"] = f"CURSOR{number}"
        api.add(responses.GET, TEMPLATES_URL, json=page, match=[matchers.query_param_matcher(params)])


def meta_pages(*chunks: list[dict]) -> list[dict]:
    return [meta_page(chunk, after=f"CURSOR{i + 1}",
                      next_url=meta_next(f"CURSOR{i + 1}") if i + 1 < len(chunks) else None)
            for i, chunk in enumerate(chunks)]


# --- helpers -------------------------------------------------------------------------------------------

def rows(session, provider: str | None = None) -> dict[str, WhatsAppTemplate]:
    session.expire_all()
    query = select(WhatsAppTemplate).order_by(WhatsAppTemplate.id)
    if provider:
        query = query.where(WhatsAppTemplate.provider == provider)
    return {t.external_id: t for t in session.scalars(query)}


def snapshot(session) -> list[tuple]:
    session.expire_all()
    columns = [c.key for c in WhatsAppTemplate.__table__.columns]
    return [tuple(getattr(t, c) for c in columns)
            for t in session.scalars(select(WhatsAppTemplate).order_by(WhatsAppTemplate.id))]


def keys(template: WhatsAppTemplate) -> list[str]:
    return [p["key"] for p in template.placeholders]


# --- Twilio --------------------------------------------------------------------------------------------

def test_twilio_every_page_is_fetched_with_basic_auth_and_stored(session, twilio_settings, api):
    add_twilio(api, *twilio_pages([CART_CTA, QUICK_REPLY], [TEXT_REJECTED, CARD], [UNSUBMITTED]))
    result = sync_templates(session, twilio_settings, now=T0)

    assert (result.provider, result.created, result.updated, result.removed, result.total, result.approved) == \
        ("twilio", 5, 0, 0, 5, 1)
    assert len(api.calls) == 3
    for call in api.calls:  # every page, on the configured host (not the content.twilio.com of next_page_url)
        assert call.request.url.startswith(CONTENT_URL + "?")
        auth = base64.b64decode(call.request.headers["Authorization"].split()[1]).decode()
        assert auth == f"{TWILIO_SID}:{TWILIO_TOKEN}"
    stored = rows(session, "twilio")
    assert list(stored) == [hx(1), hx(2), hx(3), hx(4), hx(5)]

    cart = stored[hx(1)]
    assert (cart.name, cart.language, cart.category, cart.status, cart.rejection_reason) == \
        ("carrinho_abandonado", "pt_BR", "marketing", TemplateStatus.APPROVED, None)
    assert cart.body == "Oi {{1}}! Você deixou {{2}} no carrinho. Use o cupom {{3}} até {{4}}."
    assert cart.header is None and cart.footer is None and cart.synced_at == T0
    assert cart.buttons == [
        {"type": "url", "text": "Finalizar compra", "url": "https://loja.exemplo.com.br/checkout/{{5}}"},
        {"type": "phone_number", "text": "Ligar para a loja", "phone_number": "+5511999990001"}]
    # Twilio numbers its variables across the content: the URL button's {{5}} is just "5".
    assert keys(cart) == ["1", "2", "3", "4", "5"]
    assert cart.placeholders[4] == {"key": "5", "name": "5", "component": "button", "index": 0, "example": "c8f2a"}
    assert [p["example"] for p in cart.placeholders[:4]] == ["Ana", "Tênis Corrida Preto", "VOLTA10", "amanhã"]

    reply = stored[hx(2)]
    assert (reply.status, reply.category, reply.body) == (TemplateStatus.PENDING, "utility",
                                                          "{{1}}, ainda quer o seu pedido?")
    assert reply.buttons == [{"type": "quick_reply", "text": "Quero sim", "id": "sim"},
                             {"type": "quick_reply", "text": "Não, obrigado", "id": "nao"}]

    rejected = stored[hx(3)]
    assert (rejected.status, rejected.rejection_reason, rejected.placeholders, rejected.buttons) == \
        (TemplateStatus.REJECTED, "Template uses promotional content.", [], [])

    card = stored[hx(4)]  # a card without a body: its title is the text, its subtitle the footer
    assert (card.status, card.header, card.body, card.footer) == (TemplateStatus.PAUSED, None, "Oferta para {{1}}",
                                                                  "Loja Exemplo")
    assert card.buttons == [{"type": "quick_reply", "text": "Ver oferta", "id": "ver"}] and keys(card) == ["1"]

    draft = stored[hx(5)]
    assert (draft.status, draft.category) == (TemplateStatus.UNSUBMITTED, None)


def test_twilio_card_with_a_body_keeps_its_title_as_the_header(session, twilio_settings, api):
    card = twilio_content(hx(9), "cartao", {"twilio/card": {
        "title": "Olá {{1}}", "body": "Seu carrinho tem {{2}}.", "subtitle": "Loja Exemplo",
        "actions": [{"type": "URL", "title": "Ver", "url": "https://loja.exemplo.com.br/c/{{3}}"}]}})
    add_twilio(api, twilio_page([card]))
    sync_templates(session, twilio_settings, now=T0)
    stored = rows(session)[hx(9)]
    assert (stored.header, stored.body, stored.footer) == ("Olá {{1}}", "Seu carrinho tem {{2}}.", "Loja Exemplo")
    assert [(p["key"], p["component"]) for p in stored.placeholders] == [("1", "header"), ("2", "body"),
                                                                        ("3", "button")]


@pytest.mark.parametrize("twilio_status, expected", [
    ("approved", TemplateStatus.APPROVED), ("received", TemplateStatus.PENDING), ("pending", TemplateStatus.PENDING),
    ("rejected", TemplateStatus.REJECTED), ("paused", TemplateStatus.PAUSED), ("disabled", TemplateStatus.DISABLED),
    ("unsubmitted", TemplateStatus.UNSUBMITTED), ("something_new", TemplateStatus.PENDING),
])
def test_twilio_status_mapping(session, twilio_settings, api, twilio_status, expected):
    add_twilio(api, twilio_page([twilio_content(hx(7), "modelo", {"twilio/text": {"body": "Oi"}},
                                                status=twilio_status)]))
    sync_templates(session, twilio_settings, now=T0)
    assert rows(session)[hx(7)].status is expected


# --- Meta ----------------------------------------------------------------------------------------------

def test_meta_every_page_is_fetched_with_the_bearer_token_and_stored(session, meta_settings, api):
    add_meta(api, *meta_pages([SEASONAL], [NAMED, REJECTED]))
    result = sync_templates(session, meta_settings, now=T0)

    assert (result.provider, result.created, result.total, result.approved) == ("meta", 3, 3, 2)
    assert len(api.calls) == 2
    for call in api.calls:  # Meta's absolute next link is followed on the configured Graph URL
        assert call.request.url.startswith(TEMPLATES_URL + "?")
        assert call.request.headers["Authorization"] == f"Bearer {META_TOKEN}"
    stored = rows(session, "meta")

    seasonal = stored["546151681022936"]
    assert (seasonal.name, seasonal.language, seasonal.category, seasonal.status, seasonal.rejection_reason) == \
        ("promocao_sazonal", "pt_BR", "marketing", TemplateStatus.APPROVED, None)
    assert seasonal.header == "Nossa {{1}} começou!"
    assert seasonal.body == "Compre até {{1}} com o código {{2}} e ganhe {{3}} de desconto."
    assert seasonal.footer == "Use os botões abaixo para gerenciar suas mensagens"
    assert seasonal.buttons == [
        {"type": "url", "text": "Comprar", "url": "https://loja.exemplo.com.br/carrinho?promo={{1}}"},
        {"type": "quick_reply", "text": "Parar promoções"},
        {"type": "phone_number", "text": "Ligar", "phone_number": "5511999990001"},
        {"type": "copy_code", "text": None}]
    # Meta scopes positions per component: the header's {{1}}, the body's and the URL button's are different.
    assert seasonal.placeholders == [
        {"key": "header:1", "name": "1", "component": "header", "index": None, "example": "Liquidação"},
        {"key": "1", "name": "1", "component": "body", "index": None, "example": "o fim de agosto"},
        {"key": "2", "name": "2", "component": "body", "index": None, "example": "VOLTA25"},
        {"key": "3", "name": "3", "component": "body", "index": None, "example": "25%"},
        {"key": "button:0:1", "name": "1", "component": "button", "index": 0, "example": "verao"}]

    named = stored["1667192013751005"]  # named parameters; an image header has no text
    assert named.header is None and named.category == "utility"
    assert keys(named) == ["first_name", "coupon_code", "valid_until"]
    assert [p["example"] for p in named.placeholders] == ["Ana", "VOLTA10", "amanhã"]

    rejected = stored["774520113385102"]
    assert (rejected.status, rejected.rejection_reason) == (TemplateStatus.REJECTED, "PROMOTIONAL")


@pytest.mark.parametrize("meta_status, expected", [
    ("APPROVED", TemplateStatus.APPROVED), ("PENDING", TemplateStatus.PENDING), ("IN_APPEAL", TemplateStatus.PENDING),
    ("REJECTED", TemplateStatus.REJECTED), ("PAUSED", TemplateStatus.PAUSED), ("DISABLED", TemplateStatus.DISABLED),
    ("ARCHIVED", TemplateStatus.DISABLED), ("LIMIT_EXCEEDED", TemplateStatus.REJECTED),
    ("PENDING_DELETION", TemplateStatus.REMOVED), ("DELETED", TemplateStatus.REMOVED),
    ("SOMETHING_NEW", TemplateStatus.PENDING),
])
def test_meta_status_mapping(session, meta_settings, api, meta_status, expected):
    add_meta(api, meta_page([{**REJECTED, "status": meta_status, "rejected_reason": "NONE"}]))
    sync_templates(session, meta_settings, now=T0)
    template = rows(session)[REJECTED["id"]]
    assert template.status is expected
    assert template.rejection_reason == ("LIMIT_EXCEEDED" if meta_status == "LIMIT_EXCEEDED" else None)


# --- idempotence and removal ---------------------------------------------------------------------------

@pytest.mark.parametrize("provider", ["twilio", "meta"])
def test_a_second_sync_changes_nothing_but_when_it_was_seen(session, twilio_settings, meta_settings, api, provider):
    settings = twilio_settings if provider == "twilio" else meta_settings
    for _ in range(2):
        if provider == "twilio":
            add_twilio(api, *twilio_pages([CART_CTA, QUICK_REPLY], [CARD]))
        else:
            add_meta(api, *meta_pages([SEASONAL], [NAMED, REJECTED]))
    first = sync_templates(session, settings, now=T0)
    session.commit()
    before = {t.external_id: t for t in rows(session).values()}
    before = {k: {c.key: getattr(t, c.key) for c in WhatsAppTemplate.__table__.columns} for k, t in before.items()}

    second = sync_templates(session, settings, now=T0 + timedelta(hours=1))
    session.commit()
    assert (first.created, second.created, second.updated, second.removed, second.unchanged) == (3, 0, 0, 0, 3)
    after = {k: {c.key: getattr(t, c.key) for c in WhatsAppTemplate.__table__.columns}
             for k, t in rows(session).items()}
    for external_id, columns in after.items():
        assert columns["synced_at"] == T0 + timedelta(hours=1)
        assert {k: v for k, v in columns.items() if k != "synced_at"} == \
            {k: v for k, v in before[external_id].items() if k != "synced_at"}  # updated_at included


def test_a_template_no_longer_listed_becomes_removed_and_comes_back(session, twilio_settings, api):
    other = WhatsAppTemplate(provider="demo", external_id="demo-1", name="demo", body="Oi {{1}}",
                             status=TemplateStatus.APPROVED, placeholders=[], buttons=[])
    session.add(other)
    session.commit()
    add_twilio(api, twilio_page([CART_CTA, QUICK_REPLY]))
    add_twilio(api, twilio_page([CART_CTA]))
    add_twilio(api, twilio_page([CART_CTA]))
    add_twilio(api, twilio_page([CART_CTA, {**QUICK_REPLY, "approval_requests": {
        **QUICK_REPLY["approval_requests"], "status": "approved"}}]))

    sync_templates(session, twilio_settings, now=T0)
    gone = sync_templates(session, twilio_settings, now=T0 + timedelta(hours=1))
    assert (gone.removed, gone.unchanged, gone.total) == (1, 1, 1)
    stored = rows(session)
    assert stored[hx(2)].status is TemplateStatus.REMOVED and stored[hx(2)].synced_at == T0  # kept, last seen at T0
    assert stored["demo-1"].status is TemplateStatus.APPROVED  # another provider's: untouched

    again = sync_templates(session, twilio_settings, now=T0 + timedelta(hours=2))
    assert again.removed == 0  # already removed

    back = sync_templates(session, twilio_settings, now=T0 + timedelta(hours=3))
    assert (back.created, back.updated) == (0, 1)
    assert rows(session)[hx(2)].status is TemplateStatus.APPROVED


def test_a_changed_template_is_updated(session, meta_settings, api):
    add_meta(api, meta_page([SEASONAL]))
    add_meta(api, meta_page([{**SEASONAL, "status": "PAUSED", "category": "UTILITY"}]))
    sync_templates(session, meta_settings, now=T0)
    result = sync_templates(session, meta_settings, now=T0 + timedelta(hours=1))
    assert (result.updated, result.unchanged) == (1, 0)
    template = rows(session)[SEASONAL["id"]]
    assert (template.status, template.category) == (TemplateStatus.PAUSED, "utility")


def test_a_template_listed_twice_is_stored_once(session, twilio_settings, api):
    add_twilio(api, *twilio_pages([CART_CTA], [CART_CTA, QUICK_REPLY]))
    result = sync_templates(session, twilio_settings, now=T0)
    assert (result.created, result.total) == (2, 2)
    assert sorted(rows(session)) == [hx(1), hx(2)]


# --- failures write nothing ----------------------------------------------------------------------------

FAILURES = {
    "401": {"twilio": dict(status=401, json={"code": 20003, "message": "Authenticate", "more_info":
                                             "https://www.twilio.com/docs/errors/20003", "status": 401}),
            "meta": dict(status=401, json={"error": {
                "message": "Invalid OAuth access token - Cannot parse access token", "type": "OAuthException",
                "code": 190, "fbtrace_id": "AbCdEf"}})},
    "500": {"twilio": dict(status=500, json={"code": 20500, "message": "Internal Server Error", "status": 500}),
            "meta": dict(status=500, json={"error": {"message": "An unknown error has occurred.",
                                                     "type": "OAuthException", "code": 1, "fbtrace_id": "AbCdEf"}})},
    "not json": dict(status=200, body="<html><body>Bad gateway</body></html>", content_type="text/html"),
    "not a listing": dict(status=200, json=[1, 2, 3]),
    "timeout": dict(body=requests.ReadTimeout("read timed out")),
    "unreachable": dict(body=requests.ConnectionError("connection refused")),
}
EXPECTED = {"401": "recusou as credenciais (401", "500": "está com problemas (HTTP 500)",
            "not json": "não é um objeto JSON", "not a listing": "não é um objeto JSON",
            "timeout": "não respondeu a tempo", "unreachable": "não foi possível falar com"}


def _failure(name: str, provider: str) -> dict:
    failure = FAILURES[name]
    return failure[provider] if provider in failure else failure


def _seed_previous_sync(session, settings, api, provider):
    if provider == "twilio":
        add_twilio(api, twilio_page([CART_CTA, QUICK_REPLY]))
    else:
        add_meta(api, meta_page([SEASONAL, NAMED]))
    sync_templates(session, settings, now=T0)
    session.commit()


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("provider", ["twilio", "meta"])
def test_a_failure_on_a_later_page_writes_nothing(session, twilio_settings, meta_settings, provider, failure):
    settings = twilio_settings if provider == "twilio" else meta_settings
    with responses.RequestsMock(assert_all_requests_are_fired=True) as api:
        _seed_previous_sync(session, settings, api, provider)
    before = snapshot(session)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as api:
        if provider == "twilio":
            first, _ = twilio_pages([CART_CTA, CARD, UNSUBMITTED], [TEXT_REJECTED])  # would create, update, remove
            api.add(responses.GET, CONTENT_URL, json=first,
                    match=[matchers.query_param_matcher({"PageSize": "100"})])
            api.add(responses.GET, CONTENT_URL, **_failure(failure, provider), match=[matchers.query_param_matcher(
                {"PageSize": "100", "Page": "1", "PageToken": "PAHX1"})])
        else:
            first, _ = meta_pages([REJECTED, {**SEASONAL, "status": "PAUSED"}], [NAMED])
            api.add(responses.GET, TEMPLATES_URL, json=first,
                    match=[matchers.query_param_matcher({"fields": META_FIELDS, "limit": "100"})])
            api.add(responses.GET, TEMPLATES_URL, **_failure(failure, provider), match=[matchers.query_param_matcher(
                {"fields": META_FIELDS, "limit": "100", "after": "CURSOR1"})])
        with pytest.raises(TemplateSyncError) as raised:
            sync_templates(session, settings, now=T0 + timedelta(hours=1))
    session.rollback()
    assert snapshot(session) == before
    message = str(raised.value)
    assert EXPECTED[failure] in message
    assert ("o Twilio" if provider == "twilio" else "a Meta") in message
    assert TWILIO_TOKEN not in message and META_TOKEN not in message


def test_a_database_error_while_writing_writes_nothing(session, twilio_settings, api, monkeypatch):
    from sqlalchemy.exc import IntegrityError

    with responses.RequestsMock() as first:
        _seed_previous_sync(session, twilio_settings, first, "twilio")
    before = snapshot(session)
    add_twilio(api, twilio_page([CARD, TEXT_REJECTED]))

    def concurrent_insert():
        raise IntegrityError("INSERT INTO whatsapp_templates", {}, Exception("duplicate key"))

    monkeypatch.setattr(session, "flush", concurrent_insert)
    with pytest.raises(TemplateSyncError, match="outra sincronização"):
        sync_templates(session, twilio_settings, now=T0 + timedelta(hours=1))
    monkeypatch.undo()
    session.commit()  # the caller's transaction goes on: the savepoint alone was rolled back
    assert snapshot(session) == before


def test_meta_refusing_the_token_says_so_without_the_token(session, meta_settings, api, caplog):
    error = {"error": {"message": f"Error validating access token: Session has expired (token {META_TOKEN})",
                       "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "AbCdEf"}}
    api.add(responses.GET, TEMPLATES_URL, json=error, status=400)
    with caplog.at_level(logging.DEBUG), pytest.raises(TemplateSyncError) as raised:
        sync_templates(session, meta_settings, now=T0)
    assert "a Meta recusou as credenciais (400, código 190)" in str(raised.value)
    assert META_TOKEN not in str(raised.value) and META_TOKEN not in caplog.text
    assert rows(session) == {}


def test_meta_unknown_waba_points_at_the_setting(session, meta_settings, api):
    error = {"error": {"message": f"Unsupported get request. Object with ID '{WABA_ID}' does not exist",
                       "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": "AbCdEf"}}
    api.add(responses.GET, TEMPLATES_URL, json=error, status=400)
    with pytest.raises(TemplateSyncError, match="META_WABA_ID"):
        sync_templates(session, meta_settings, now=T0)


def test_a_next_link_that_repeats_a_page_stops_the_sync(session, meta_settings, api):
    looping = meta_page([SEASONAL], next_url=f"{TEMPLATES_URL}?fields={META_FIELDS}&limit=100")
    api.add(responses.GET, TEMPLATES_URL, json=looping)
    with pytest.raises(TemplateSyncError, match="repetiu uma página"):
        sync_templates(session, meta_settings, now=T0)
    assert len(api.calls) == 1 and rows(session) == {}


def test_a_listing_longer_than_the_page_cap_stops_the_sync(session, twilio_settings, api):
    counter = iter(range(1, 10_000))

    def endless(request):
        n = next(counter)
        page = twilio_page([twilio_content(hx(n), f"modelo_{n}", {"twilio/text": {"body": "Oi"}})], page=n,
                           next_token=f"PAHX{n + 1}")
        return 200, {}, json.dumps(page)

    api.add_callback(responses.GET, CONTENT_URL, callback=endless, content_type="application/json")
    with pytest.raises(TemplateSyncError, match=f"mais de {MAX_PAGES} páginas"):
        sync_templates(session, twilio_settings, now=T0)
    assert len(api.calls) == MAX_PAGES and rows(session) == {}


def test_requests_have_time_outs(session, twilio_settings):
    class Recorder(requests.Session):
        def get(self, url, **kwargs):
            self.kwargs = kwargs
            raise requests.ConnectTimeout("no route")

    http = Recorder()
    with pytest.raises(TemplateSyncError, match="não respondeu a tempo"):
        sync_templates(session, twilio_settings, http=http, now=T0)
    assert http.kwargs["timeout"] == (5.0, 15.0)


def test_outbox_mode_has_nothing_to_sync(session, settings, api):
    assert missing_credentials(settings) == ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]
    with pytest.raises(TemplateSyncError, match="sem credenciais do provedor: defina TWILIO_ACCOUNT_SID"):
        sync_templates(session, settings)
    assert len(api.calls) == 0


# --- CLI and periodic job ------------------------------------------------------------------------------

@pytest.fixture
def twilio_rt(twilio_settings, db, redis_client):
    with installed_runtime(twilio_settings, db, redis_client) as rt:
        yield rt


@pytest.fixture
def twilio_app(twilio_rt):
    from app import create_app

    return create_app({"RUNTIME": twilio_rt, "TESTING": True})


def test_cli_sync_prints_the_counts(twilio_app, session, api):
    add_twilio(api, *twilio_pages([CART_CTA, QUICK_REPLY], [TEXT_REJECTED]))
    add_twilio(api, twilio_page([CART_CTA]))
    runner = twilio_app.test_cli_runner()

    result = runner.invoke(args=["templates", "sync"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3 modelos sincronizados: 3 novos."
    assert len(rows(session, "twilio")) == 3  # committed

    again = runner.invoke(args=["templates", "sync", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output) == {"provider": "twilio", "created": 0, "updated": 0,
                                                      "unchanged": 1, "removed": 2, "total": 1, "approved": 1}


def test_cli_sync_failure_exits_1_with_the_reason(twilio_app, session, api):
    api.add(responses.GET, CONTENT_URL, json={"code": 20003, "message": "Authenticate", "status": 401}, status=401)
    result = twilio_app.test_cli_runner().invoke(args=["templates", "sync"])
    assert result.exit_code == 1
    assert "o Twilio recusou as credenciais (401" in result.output
    assert TWILIO_TOKEN not in result.output
    assert rows(session) == {}


def test_cli_sync_in_outbox_mode_exits_1(app):
    result = app.test_cli_runner().invoke(args=["templates", "sync"])
    assert result.exit_code == 1 and "sem credenciais do provedor" in result.output


def test_the_periodic_job_syncs_hourly(twilio_rt, session, api):
    [job] = [j for j in periodic_jobs(twilio_rt) if j.func == "channel.jobs.sync_templates"]
    assert (job.interval, job.queue) == (3600, "low")
    add_twilio(api, twilio_page([CART_CTA]))
    assert channel_jobs.sync_templates()["created"] == 1
    assert list(rows(session)) == [hx(1)]


def test_the_periodic_job_skips_outbox_mode_silently(runtime, api):
    assert channel_jobs.sync_templates() == {"skipped": "no provider credentials"}
    assert len(api.calls) == 0


def test_the_periodic_job_logs_a_failure(twilio_rt, api, caplog):
    api.add(responses.GET, CONTENT_URL, status=503, body="unavailable")
    with caplog.at_level(logging.WARNING):
        outcome = channel_jobs.sync_templates()
    assert "está com problemas (HTTP 503)" in outcome["error"]
    assert "template sync failed" in caplog.text and TWILIO_TOKEN not in caplog.text
