"""The merchant console: role checks on every page, recoverer settings and message with preview, coupon rules,
the bot's texts and FAQ, catalog import, conversations and the dashboard."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot import texts
from crm.users import create_user
from models import (
    BotText, CouponKind, CouponRule, Customer, Direction, FaqEntry, Message, MessageStatus, Product,
    RecoverySettings, utcnow,
)
from recovery.config import load_settings
from tests.crm_helpers import make_store
from tests.test_recovery_stats import data, utc  # noqa: F401  (the stats tests' hand-computed data set)

PASSWORD = "uma-senha-bem-longa"


@pytest.fixture
def app(runtime):
    from app import create_app

    return create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def people(session):
    sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
    made = {}
    for email, role, store in (("dona", "admin", None), ("marca", "manager", None), ("filial", "manager", sp.id),
                               ("apoio", "backoffice", sp.id), ("ana", "seller", sp.id)):
        made[email] = create_user(session, email=f"{email}@loja.example", role=role, password=PASSWORD,
                                  name=email.title(), store_id=store)
    session.commit()
    return made


def login(client, who):
    response = client.post("/entrar", data={"email": f"{who}@loja.example", "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def text(response) -> str:
    return response.get_data(as_text=True)


CONFIG_PAGES = ["/console/recuperacao", "/console/recuperacao/mensagem", "/console/cupons", "/console/robo",
                "/console/robo/textos/greeting", "/console/robo/duvidas/nova"]
READ_PAGES = ["/console/", "/console/catalogo", "/console/conversas", "/console/descadastros"]


def test_every_console_page_declares_its_roles_and_sends_strangers_to_login(app, client):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("console.")]
    assert len(rules) >= 15
    for rule in rules:
        assert getattr(app.view_functions[rule.endpoint], "required_action", None), f"{rule.endpoint} has no access check"
        url = re.sub(r"<id:\w+>", "1", rule.rule).replace("<key>", "greeting")
        method = "POST" if "GET" not in rule.methods else "GET"
        response = client.open(url, method=method)
        assert response.status_code == 302 and "/entrar" in response.location, rule.rule


# Routes that are not pages for a signed-in person: they authenticate otherwise (bearer tokens, signatures),
# are public by design (login, probes, static files) or exist only in development (simulator, 404 in production).
NOT_SESSION_PAGES = {"api", "crm_api", "webhooks", "store_webhooks", "shop_webhooks", "health", "openapi", "simulator"}
PUBLIC_ENDPOINTS = {"static", "index", "auth.login", "auth.logout"}


def test_every_route_of_the_app_is_a_role_checked_page_or_knowingly_public(app):
    unchecked = [rule.rule for rule in app.url_map.iter_rules()
                 if rule.endpoint not in PUBLIC_ENDPOINTS and rule.endpoint.split(".")[0] not in NOT_SESSION_PAGES
                 and not getattr(app.view_functions[rule.endpoint], "required_action", None)]
    assert unchecked == []


def _strict_client(runtime, who="dona"):
    """A client of an app with CSRF on (as in production), signed in with the login form's own token."""
    from app import create_app

    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text(client.get("/entrar"))).group(1)
    assert client.post("/entrar", data={"email": f"{who}@loja.example", "password": PASSWORD,
                                        "csrf_token": token}).status_code == 302
    return client


def test_every_console_form_carries_a_csrf_token_and_every_post_needs_one(runtime, session, people):
    rule = CouponRule(name="Volta 10", kind=CouponKind.PERCENT, value=Decimal("10"))
    entry = FaqEntry(topic="frete", title="Frete", keywords=["frete"], answer="Grátis.", position=0, active=True)
    session.add_all([rule, entry])
    session.commit()
    client = _strict_client(runtime)
    forms = 0
    for url in CONFIG_PAGES + READ_PAGES + [f"/console/cupons/{rule.id}", f"/console/robo/duvidas/{entry.id}"]:
        page = text(client.get(url))
        for form in re.findall(r'<form method="post".*?</form>', page, re.S):
            forms += 1
            assert re.search(r'name="csrf_token" value="[^"]{20,}"', form), (url, form[:200])
    assert forms >= 12
    app = client.application
    posts = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("console.") and "POST" in r.methods]
    assert len(posts) >= 12
    for post in posts:
        url = re.sub(r"<id:\w+>", str(rule.id), post.rule).replace("<key>", "greeting")
        response = client.post(url, data={"delay_minutes": "30", "active": "0", "template": "oi", "body": "oi"})
        assert response.status_code == 400 and "A página expirou" in text(response), post.rule
    session.expire_all()
    assert load_settings(session).delay_minutes != 30 and session.get(CouponRule, rule.id).active


def test_session_cookie_is_http_only_same_site_and_secure_outside_local_development(runtime, people):
    from dataclasses import replace

    from app import create_app
    from core.runtime import Runtime

    def session_cookie(settings):
        rt = Runtime(settings, database=runtime.db, redis_client=runtime.redis)
        client = create_app({"RUNTIME": rt, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
        response = client.post("/entrar", data={"email": "dona@loja.example", "password": PASSWORD})
        assert response.status_code == 302
        [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
        return cookie

    local = session_cookie(runtime.settings)  # development on http://127.0.0.1: a Secure cookie would be dropped
    assert "HttpOnly" in local and "SameSite=Lax" in local and "Secure" not in local
    https = session_cookie(replace(runtime.settings, public_base_url="https://painel.loja.example"))
    assert "HttpOnly" in https and "SameSite=Lax" in https and "Secure" in https
    production = session_cookie(replace(runtime.settings, app_env="production"))  # even with an http:// URL
    assert "Secure" in production and "HttpOnly" in production


def test_error_pages_a_merchant_meets_are_in_portuguese(client, people):
    login(client, "dona")
    missing = client.get("/console/cupons/999999")
    assert missing.status_code == 404 and "Página não encontrada" in text(missing)
    assert "Not Found" not in text(missing)
    wrong_method = client.get("/console/cupons/1/status")
    assert wrong_method.status_code == 405 and "Ação não permitida" in text(wrong_method)
    assert client.get("/console").status_code == 308  # redirects are left alone


def test_pages_load_nothing_from_elsewhere_and_static_files_are_our_own():
    from core.settings import PROJECT_ROOT

    external = re.compile(r'<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I)
    templates = list((PROJECT_ROOT / "templates" / "pages").rglob("*.html"))
    assert len(templates) >= 20
    for path in templates:
        source = path.read_text()
        assert not external.search(source) and "cdn" not in source.lower(), path
    for path in (PROJECT_ROOT / "web" / "static").iterdir():
        source = path.read_text()
        assert path.suffix in (".css", ".js"), path  # no vendored bundles, fonts or minified libraries
        assert "@import" not in source and "url(http" not in source and "cdn" not in source.lower(), path
        assert "@license" not in source and "copyright" not in source.lower(), path  # nothing copied in
        assert max(len(line) for line in source.splitlines()) < 300, path  # readable, not minified


def test_counts_and_dates_are_formatted_for_brazil(app):
    from datetime import date

    filters = app.jinja_env.filters
    assert filters["numero"](1234567) == "1.234.567"
    assert filters["numero"](Decimal("1234.5")) == "1.234,5"
    assert filters["data"](date(2026, 11, 5)) == "05/11/2026"
    assert filters["reais"](Decimal("1234.5")) == "R$\xa01.234,50"
    assert filters["percentual"](0.125) == "12,5%"


@pytest.mark.parametrize("who,allowed,forbidden", [
    ("dona", CONFIG_PAGES + READ_PAGES, []),
    ("marca", CONFIG_PAGES + READ_PAGES, []),
    ("filial", READ_PAGES, CONFIG_PAGES),
    ("apoio", READ_PAGES, CONFIG_PAGES),
    ("ana", [], CONFIG_PAGES + READ_PAGES),
])
def test_role_matrix(client, people, who, allowed, forbidden):
    login(client, who)
    for url in allowed:
        assert client.get(url).status_code == 200, url
    for url in forbidden:
        assert client.get(url).status_code == 403, url
    # The forbidden pages' forms are refused too, not only their GET.
    if "/console/recuperacao" in forbidden:
        assert client.post("/console/recuperacao", data={"delay_minutes": "30"}).status_code == 403
        assert client.post("/console/recuperacao/previa", data={"template": "oi"}).status_code == 403


def test_office_people_land_on_the_dashboard_and_sellers_on_their_queue(client, people):
    assert login(client, "dona").location.endswith("/console/")
    client.post("/sair")
    assert login(client, "ana").location.endswith("/vendedor/")


def test_pages_carry_a_content_security_policy(client, people):
    login(client, "dona")
    response = client.get("/console/")
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'self' covers scripts
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


# --- recovery settings ------------------------------------------------------------------------------------


def settings_form(**overrides) -> dict:
    base = {"enabled": "on", "delay_minutes": "20", "coupon_rule_id": "", "coupon_validity_hours": "48",
            "frequency_count": "3", "frequency_unit": "days", "coupon_use_pause_days": "15", "quiet_start": "22:00",
            "quiet_end": "08:00", "variant_b_percent": "0", "variant_b_coupon_rule_id": "", "attribution_days": "5",
            "max_age_hours": "20", "coupon_url_pattern": "{shop}/cupom/{code}"}
    return {**base, **overrides}


def test_settings_page_says_when_the_check_runs_and_saves_every_field(client, session, people):
    login(client, "dona")
    page = text(client.get("/console/recuperacao"))
    assert "A verificação roda a cada 5 minutos" in page
    rule = CouponRule(name="Volta 10", kind=CouponKind.PERCENT, value=Decimal("10"))
    session.add(rule)
    session.commit()
    response = client.post("/console/recuperacao", data=settings_form(coupon_rule_id=str(rule.id)))
    assert response.status_code == 303
    session.expire_all()
    stored = session.get(RecoverySettings, 1)
    assert (stored.enabled, stored.delay_minutes, stored.coupon_rule_id, stored.coupon_validity_hours) == \
        (True, 20, rule.id, 48)
    assert (stored.frequency_count, stored.frequency_unit.value, stored.quiet_start, stored.attribution_days) == \
        (3, "days", "22:00", 5)
    # Unticking the box turns the recoverer off.
    form = settings_form()
    del form["enabled"]
    assert client.post("/console/recuperacao", data=form).status_code == 303
    session.expire_all()
    assert session.get(RecoverySettings, 1).enabled is False


@pytest.mark.parametrize("field,value,message", [
    ("delay_minutes", "3", "deve estar entre 5 e 60"),
    ("delay_minutes", "61", "deve estar entre 5 e 60"),
    ("delay_minutes", "dez", "deve ser um número inteiro"),
    ("quiet_start", "25:00", "use o formato HH:MM"),
    ("coupon_rule_id", "999999", "regra de cupom não encontrada"),
    ("coupon_url_pattern", "{shop}/cupom", "o padrão precisa conter {code}"),
    ("frequency_unit", "weeks", "use 'hours' ou 'days'"),
])
def test_a_refused_value_is_shown_next_to_its_field_and_nothing_is_saved(client, session, people, field, value,
                                                                          message):
    login(client, "dona")
    before = load_settings(session).delay_minutes
    response = client.post("/console/recuperacao", data=settings_form(**{field: value, "delay_minutes": "20"}
                                                                      if field != "delay_minutes" else {field: value}))
    assert response.status_code == 400
    page = text(response)
    assert f'id="{field}-error">{message}' in page.replace("&#39;", "'")
    assert "nada foi salvo" in page
    session.expire_all()
    assert load_settings(session).delay_minutes == before
    # The refused value is shown back so the merchant can correct it.
    if field == "delay_minutes":
        assert f'value="{value}"' in page


# --- recovery message -------------------------------------------------------------------------------------


def test_message_editor_shows_chips_and_a_preview_rendered_like_the_sender(client, session, people):
    login(client, "dona")
    page = text(client.get("/console/recuperacao/mensagem"))
    for variable in ("nome", "itens", "total", "link_checkout", "cupom", "validade_cupom"):
        assert f'data-variable="{variable}"' in page
    answer = client.post("/console/recuperacao/previa",
                         data={"template": "Oi {{ nome }}! Total {{ total }}, cupom {{ cupom }}"}).get_json()
    assert answer == {"ok": True, "preview": "Oi Ana! Total R$\xa0419,70, cupom VOLTA-7K2M9QX4", "error": None}
    wrong = client.post("/console/recuperacao/previa", data={"template": "Oi {{ nome"}).get_json()
    assert wrong["ok"] is False and wrong["preview"] == "" and wrong["error"]
    unknown = client.post("/console/recuperacao/previa", data={"template": "Oi {{ apelido }}"}).get_json()
    assert "variável desconhecida: 'apelido'" in unknown["error"]
    # The sandbox refuses what would reach into Python.
    escape = client.post("/console/recuperacao/previa",
                         data={"template": "{{ nome.__class__.__mro__ }}"}).get_json()
    assert escape["ok"] is False
    assert client.post("/console/recuperacao/previa", data={"template": "", "optional": "1"}).get_json()["ok"]


def test_the_preview_refuses_what_saving_refuses(client, session, people):
    """Saving also renders the text for a shopper without a coupon; the preview shows that error first."""
    login(client, "dona")
    source = "Oi {{ nome }}, use {{ cupom[0] }}"
    preview = client.post("/console/recuperacao/previa", data={"template": source}).get_json()
    assert preview["ok"] is False and preview["error"].startswith("sem cupom:")
    saved = client.post("/console/recuperacao/mensagem", data={"template": source, "variant_b_template": ""})
    assert saved.status_code == 400 and 'id="template-error"' in text(saved)
    fine = "Oi {{ nome }}{% if cupom %}, use {{ cupom[0] }}{% endif %}"
    assert client.post("/console/recuperacao/previa", data={"template": fine}).get_json() == \
        {"ok": True, "preview": "Oi Ana, use V", "error": None}


def test_the_check_interval_is_said_plainly_for_any_tick(runtime, session, people):
    from dataclasses import replace

    from app import create_app
    from core.runtime import Runtime

    for seconds, said in ((60, "a cada 1 minuto: a mensagem sai até 1 minuto depois"),
                          (90, "a cada 90 segundos: a mensagem sai até 90 segundos depois"),
                          (600, "a cada 10 minutos: a mensagem sai até 10 minutos depois")):
        rt = Runtime(replace(runtime.settings, recovery_tick_seconds=seconds), database=runtime.db,
                     redis_client=runtime.redis)
        client = create_app({"RUNTIME": rt, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
        login(client, "dona")
        assert said in text(client.get("/console/recuperacao"))


def test_message_is_saved_only_when_it_renders(client, session, people):
    login(client, "dona")
    before = load_settings(session).template
    response = client.post("/console/recuperacao/mensagem", data={"template": "Oi {{ nome }", "variant_b_template": ""})
    assert response.status_code == 400 and 'id="template-error"' in text(response)
    session.expire_all()
    assert load_settings(session).template == before
    good = "Oi {{ nome }}, seu carrinho na {{ loja }} te espera: {{ link_checkout }}"
    assert client.post("/console/recuperacao/mensagem",
                       data={"template": good, "variant_b_template": ""}).status_code == 303
    session.expire_all()
    assert load_settings(session).template == good
    assert load_settings(session).variant_b_template is None
    page = text(client.get("/console/recuperacao/mensagem"))
    assert "Oi Ana, seu carrinho na" in page  # the saved text's preview is on the page


# --- coupon rules -----------------------------------------------------------------------------------------


def test_coupon_rules_are_created_edited_disabled_and_counted(client, session, people, data):  # noqa: F811
    login(client, "dona")
    page = text(client.get("/console/cupons"))
    # From the stats data set: R1 sent with 3 attempts (2 redeemed), R2 once.
    r1_row = re.search(r"Recuperador 10%.*?</tr>", page, re.S).group(0)
    assert re.findall(r'class="num">(\d+)<', r1_row) == ["3", "2"]

    response = client.post("/console/cupons", data={"name": "Frete", "kind": "free_shipping", "value": "",
                                                     "min_order": "150,00", "recovery_only": "on"})
    assert response.status_code == 303
    rule = session.scalar(select(CouponRule).where(CouponRule.name == "Frete"))
    assert (rule.kind, rule.min_order, rule.active) == (CouponKind.FREE_SHIPPING, Decimal("150.00"), True)

    bad = client.post(f"/console/cupons/{rule.id}", data={"name": "Frete", "kind": "percent", "value": "120"})
    assert bad.status_code == 400 and 'id="value-error">o percentual deve estar entre 0 e 100' in text(bad)
    session.expire_all()
    assert session.get(CouponRule, rule.id).kind is CouponKind.FREE_SHIPPING

    assert client.post(f"/console/cupons/{rule.id}", data={"name": "Dez reais", "kind": "fixed", "value": "10,00",
                                                           "min_order": "0"}).status_code == 303
    session.expire_all()
    assert (session.get(CouponRule, rule.id).kind, session.get(CouponRule, rule.id).value) == \
        (CouponKind.FIXED, Decimal("10.00"))
    assert client.post(f"/console/cupons/{rule.id}/status", data={"active": "0", "confirmar": "1"}).status_code == 303
    session.expire_all()
    assert session.get(CouponRule, rule.id).active is False
    assert client.get("/console/cupons/999999").status_code == 404


@pytest.mark.parametrize("form,field", [
    ({"name": "", "kind": "percent", "value": "10"}, "name"),
    ({"name": "X", "kind": "bogus", "value": "10"}, "kind"),
    ({"name": "X", "kind": "percent", "value": "abc"}, "value"),
    ({"name": "X", "kind": "fixed", "value": "0"}, "value"),
    ({"name": "X", "kind": "fixed", "value": "10.555"}, "value"),
    ({"name": "X", "kind": "percent", "value": "10", "min_order": "-1"}, "min_order"),
    ({"name": "X", "kind": "percent", "value": "NaN"}, "value"),
])
def test_a_bad_coupon_rule_is_refused_per_field(client, session, people, form, field):
    login(client, "dona")
    response = client.post("/console/cupons", data=form)
    assert response.status_code == 400 and f'id="{field}-error"' in text(response)
    assert session.scalar(select(func.count()).select_from(CouponRule)) == 0


# --- bot texts and FAQ ------------------------------------------------------------------------------------


def test_every_bot_text_has_a_sample_its_default_renders_with():
    assert set(texts.available_keys()) == set(texts.SAMPLES) == set(texts.DESCRIPTIONS)


def test_bot_text_override_is_previewed_saved_refused_when_broken_and_reset(client, session, people):
    login(client, "dona")
    preview = client.post("/console/robo/textos/greeting/previa", data={"body": "Oi {{ nome }}! {{ loja }} aqui."})
    assert preview.get_json() == {"ok": True, "preview": "Oi Ana! Loja Demo aqui.", "error": None}
    assert client.post("/console/robo/textos/greeting/previa", data={"body": "{{ produtos }}"}).get_json()["ok"] is False

    broken = client.post("/console/robo/textos/greeting", data={"body": "Oi {{ cliente }}"})
    assert broken.status_code == 400 and "variável desconhecida" in text(broken)
    assert session.get(BotText, "greeting") is None

    assert client.post("/console/robo/textos/greeting", data={"body": "Oi {{ nome }}!\n{{ menu }}"}).status_code == 303
    session.expire_all()
    assert session.get(BotText, "greeting").body == "Oi {{ nome }}!\n{{ menu }}"
    assert texts.render(session, "greeting", store_name="Loja", nome="Bia").startswith("Oi Bia!\nComo posso ajudar?")

    assert client.post("/console/robo/textos/greeting/restaurar", data={"confirmar": "1"}).status_code == 303
    session.expire_all()
    assert session.get(BotText, "greeting") is None
    assert client.get("/console/robo/textos/nao_existe").status_code == 404


def test_faq_entries_are_created_edited_and_refused_when_incomplete(client, session, people):
    login(client, "dona")
    response = client.post("/console/robo/duvidas/nova", data={
        "title": "Frete", "keywords": "frete, entrega, envio", "answer": "Grátis acima de R$ 199.", "position": "1",
        "active": "on"})
    assert response.status_code == 303
    entry = session.scalar(select(FaqEntry).where(FaqEntry.topic == "frete"))
    assert entry.keywords == ["frete", "entrega", "envio"] and entry.active
    duplicate = client.post("/console/robo/duvidas/nova", data={"title": "frete", "answer": "x"})
    assert duplicate.status_code == 400 and "já existe" in text(duplicate)
    empty = client.post(f"/console/robo/duvidas/{entry.id}", data={"title": "Frete", "answer": ""})
    assert empty.status_code == 400 and 'id="answer-error"' in text(empty)
    page = text(client.get(f"/console/robo/duvidas/{entry.id}"))
    assert "Grátis acima de R$ 199." in page and "*Frete*" in page  # preview through the faq_answer text
    assert client.post(f"/console/robo/duvidas/{entry.id}", data={"title": "Frete", "answer": "Sempre grátis.",
                                                                   "keywords": "frete"}).status_code == 303
    session.expire_all()
    assert (session.get(FaqEntry, entry.id).answer, session.get(FaqEntry, entry.id).active) == ("Sempre grátis.", False)


def test_faq_answer_preview_endpoint(client, session, people):
    login(client, "dona")
    answer = client.post("/console/robo/duvidas/previa", data={"title": "Trocas", "answer": "Em até 30 dias."})
    assert answer.get_json() == {"ok": True, "preview": "*Trocas*\nEm até 30 dias.", "error": None}
    empty = client.post("/console/robo/duvidas/previa", data={"title": "Trocas", "answer": " "}).get_json()
    assert empty == {"ok": False, "preview": "", "error": "informe a resposta"}
    long = client.post("/console/robo/duvidas/previa", data={"title": "T", "answer": "x" * 1201}).get_json()
    assert long["ok"] is False and "1200" in long["error"]
    page = text(client.get("/console/robo/duvidas/nova"))
    assert 'id="answer-preview"' in page and 'data-preview-with="title"' in page
    assert session.scalar(select(func.count()).select_from(FaqEntry)) == 0  # previews store nothing


# --- catalog ----------------------------------------------------------------------------------------------


def upload(client, name: str, content: str):
    return client.post("/console/catalogo", data={"arquivo": (io.BytesIO(content.encode()), name)},
                       content_type="multipart/form-data")


def test_catalog_import_is_all_or_nothing_with_line_numbers_and_search_finds_products(client, session, people):
    login(client, "dona")
    bad = upload(client, "catalogo.csv", "sku,nome,preco\nTS-01,Camiseta,59.90\nTS-02,,10\nTS-03,Boné,abc\n")
    page = text(bad)
    assert bad.status_code == 400 and "Nada foi importado" in page
    assert re.search(r"<td>3</td><td>nome</td>", page) and re.search(r"<td>4</td><td>preco</td>", page)
    assert session.scalar(select(func.count()).select_from(Product)) == 0

    good = upload(client, "catalogo.csv", "sku;nome;preço;categoria\nTS-01;Camiseta Básica;59,90;Camisetas\n"
                                          "TN-01;Tênis Corrida;299,90;Calçados\n")
    assert good.status_code == 303
    assert session.scalar(select(func.count()).select_from(Product)) == 2
    found = text(client.get("/console/catalogo?q=tênis"))
    assert "Tênis Corrida" in found and "Camiseta Básica" not in found and "R$\xa0299,90" in found
    assert upload(client, "catalogo.xlsx", "x").status_code == 400


def test_only_configuring_roles_may_import_the_catalog(client, session, people):
    login(client, "apoio")
    assert client.get("/console/catalogo").status_code == 200
    assert "Importar planilha" not in text(client.get("/console/catalogo"))
    assert upload(client, "catalogo.csv", "sku,nome,preco\nTS-01,Camiseta,59.90\n").status_code == 403
    assert session.scalar(select(func.count()).select_from(Product)) == 0


# --- conversations ----------------------------------------------------------------------------------------


def test_conversations_list_thread_ticks_and_opt_out_list(client, session, people):
    ana = Customer(phone="+5511999990001", name="Ana Souza", ddd="11", tags=[])
    bia = Customer(phone="+5521999990002", name="Bia Lima", ddd="21", tags=[], opted_out_at=utcnow())
    session.add_all([ana, bia])
    session.flush()
    session.add_all([
        Message(customer_id=ana.id, direction=Direction.INBOUND, kind="inbound", body="quero um tênis",
                status=MessageStatus.RECEIVED, created_at=utc(20, 12)),
        Message(customer_id=ana.id, direction=Direction.OUTBOUND, kind="bot", body="Encontrei 2 opções",
                status=MessageStatus.READ, created_at=utc(20, 12, 1)),
        Message(customer_id=bia.id, direction=Direction.OUTBOUND, kind="recovery", body="Seu carrinho te espera",
                status=MessageStatus.FAILED, error_code="63016", created_at=utc(20, 13)),
        Message(customer_id=bia.id, direction=Direction.INBOUND, kind="inbound", body="SAIR",
                status=MessageStatus.RECEIVED, created_at=utc(20, 14)),
    ])
    session.commit()
    login(client, "apoio")  # the São Paulo branch's back office: only its customers (DDD 11), not Rio's Bia
    branch_listing = text(client.get("/console/conversas"))
    assert "Ana Souza" in branch_listing and "Bia Lima" not in branch_listing
    assert client.get(f"/console/conversas/{bia.id}").status_code == 404
    assert "+5521999990002" not in text(client.get("/console/descadastros"))
    client.post("/sair")
    login(client, "dona")
    listing = text(client.get("/console/conversas"))
    assert listing.index("Bia Lima") < listing.index("Ana Souza")  # latest conversation first
    assert "Cliente: SAIR" in listing and "Encontrei 2 opções" in listing and "Lida" in listing
    assert "quero um tênis" not in listing  # only the last message of each shopper
    assert "Bia Lima" in text(client.get("/console/conversas?q=bia")) and \
        "Ana Souza" not in text(client.get("/console/conversas?q=bia"))
    assert "Ana Souza" in text(client.get("/console/conversas?q=1199999"))

    thread = text(client.get(f"/console/conversas/{ana.id}"))
    assert thread.index("quero um tênis") < thread.index("Encontrei 2 opções")
    assert 'class="tick read" title="Lida"' in thread
    assert 'class="tick failed" title="Falhou"' in text(client.get(f"/console/conversas/{bia.id}"))
    assert client.get("/console/conversas/999999").status_code == 404

    opt_outs = text(client.get("/console/descadastros"))
    assert "Bia Lima" in opt_outs and "Ana Souza" not in opt_outs and "1 cliente(s)" in opt_outs


# --- dashboard --------------------------------------------------------------------------------------------


def test_dashboard_shows_the_period_figures_and_charts(client, session, people, data):  # noqa: F811
    for i, day in enumerate((10, 11)):
        shopper = session.get(Customer, session.scalar(select(Customer.id).order_by(Customer.id).offset(i)))
        session.add(Message(customer_id=shopper.id, direction=Direction.INBOUND, kind="inbound", body="oi",
                            status=MessageStatus.RECEIVED, created_at=utc(day, 14)))
    session.commit()
    login(client, "apoio")
    page = text(client.get("/console/?de=2026-11-10&ate=2026-11-11"))
    assert "R$\xa0180,25" in page  # recovered revenue, hand-computed in the stats tests
    for label in ("Funil da recuperação", "Receita recuperada por dia", "Conversão por variante",
                  "Não enviadas, por motivo"):
        assert f'<svg role="img" aria-label="{label}"' in page
    assert "<script" not in page.split("<main")[1].split("</main>")[0]  # charts carry no script
    funnel = re.findall(r'<tr data-step="\w+"><td>([^<]+)</td>\s*<td class="num">(\d+)</td>', page)
    assert funnel == [("Acompanhados", "2"), ("Prazo vencido", "10"), ("Adiadas", "1"), ("Enviadas", "5"),
                      ("Entregues", "2"), ("Lidas", "1"), ("Recuperados", "2")]
    assert "Limite de frequência" in page or "frequency" in page
    # A day that cannot be read is the period form again with each field's error, not a silent other period.
    refused = client.get("/console/?de=ontem&ate=2026-13-40")
    assert refused.status_code == 400 and 'id="de-error"' in text(refused) and 'id="ate-error"' in text(refused)


def test_dashboard_with_no_data_renders_empty_charts(client, session, people):
    login(client, "dona")
    response = client.get("/console/")
    assert response.status_code == 200
    page = text(response)
    assert "A recuperação está <strong>desligada</strong>" in page
    assert 'aria-label="Receita recuperada por dia"' in page


def test_csrf_is_required_on_console_forms(runtime, people):
    from app import create_app

    app = create_app({"RUNTIME": runtime, "TESTING": True})
    client = app.test_client()
    page = text(client.get("/entrar"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'name="csrf_token" value="([^"]+)"', page)
    client.post("/entrar", data={"email": "dona@loja.example", "password": PASSWORD, "csrf_token": token.group(1)})
    assert client.post("/console/recuperacao", data=settings_form(delay_minutes="30")).status_code == 400
    assert client.post("/console/recuperacao/previa", data={"template": "oi"}).status_code == 400
    assert load_settings_from(runtime).delay_minutes != 30


def load_settings_from(runtime):
    with runtime.db.session() as session:
        return load_settings(session)


def test_an_upload_over_the_size_limit_gets_a_clear_page(app, client, people):
    login(client, "dona")
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = upload(client, "catalogo.csv", "sku,nome,preco\n" + "TS-01,Camiseta,59.90\n" * 60000)
    assert response.status_code == 413 and "Arquivo grande demais" in text(response) and "até 1 MB" in text(response)


def test_a_conversation_says_which_message_went_as_an_approved_template(client, session, people):
    from tests.recovery_helpers import approved_template

    template = approved_template(session)
    carla = Customer(phone="+5511988881001", name="Carla Dias", ddd="11", tags=[], marketing_opted_out_at=utcnow())
    session.add(carla)
    session.flush()
    session.add_all([
        Message(customer_id=carla.id, direction=Direction.OUTBOUND, kind="recovery", body="Oi, Carla! Seus itens…",
                sent_as="template", template_id=template.id, status=MessageStatus.DELIVERED, created_at=utc(20, 12)),
        Message(customer_id=carla.id, direction=Direction.OUTBOUND, kind="bot", body="Claro, te ajudo!",
                sent_as="text", status=MessageStatus.READ, created_at=utc(20, 13)),
    ])
    session.commit()
    login(client, "dona")
    thread = text(client.get(f"/console/conversas/{carla.id}"))
    assert thread.count("modelo aprovado") == 1 and "modelo aprovado (carrinho_abandonado)" in thread
    assert "+55 (11) 98888-1001" in thread and "parou as mensagens de marketing" in thread
