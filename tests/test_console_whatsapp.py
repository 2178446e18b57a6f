"""The console's WhatsApp templates page: who may see it, the synced templates and the empty state, the
Sincronizar button, the recovery template mapping per variant with its preview, and the dashboard's delivery
paths (free-form text vs approved template, Meta's marketing limit) and template skip reasons."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import responses

from channel import template_sync
from models import MessageStatus, TemplateStatus, WhatsAppTemplate
from recovery.config import load_settings
from recovery.stats import recovery_stats
from recovery.tick import run_tick
from recovery.tracker import note_interaction
from tests import test_browser as browser_tests
from tests import test_console_pages as pages
from tests.conftest import installed_runtime, make_settings
from tests.recovery_helpers import (
    AFTERNOON, RECOVERY_TEMPLATE_PARAMS, approved_template, enable_recovery, map_template, minutes,
    recovery_messages, shopper, with_cart,
)
from tests.test_console_pages import login, text

# The console tests' app (CSRF off) and people of every role; the browser tests' Chromium, live server and tab.
app, people = pages.app, pages.people
browser, server, page = browser_tests.browser, browser_tests.server, browser_tests.page

PAGE = "/console/whatsapp"
SYNC = "/console/whatsapp/sincronizar"
MAPPING = "/console/whatsapp/modelo"
PREVIEW = "/console/whatsapp/previa"


def mapping_form(template: WhatsAppTemplate | None, params: dict | None = None, *, variant="A",
                 action="salvar") -> dict:
    form = {"variante": variant, "acao": action, "modelo": str(template.id) if template else ""}
    form.update({f"marcador_{key}": value for key, value in (params or {}).items()})
    return form


def top_of(page: str) -> str:
    """What comes before the page's title: where flashed results show."""
    return page.split("<main", 1)[1].split("<h1>", 1)[0]


# --- who -----------------------------------------------------------------------------------------------

def test_admins_and_brand_managers_see_the_page_branch_people_are_refused_strangers_log_in(app, client, people,
                                                                                          session):
    template = approved_template(session)
    assert client.get(PAGE).status_code == 302 and "/entrar" in client.get(PAGE).location
    for url in (SYNC, MAPPING, PREVIEW):
        response = client.post(url, data=mapping_form(template, RECOVERY_TEMPLATE_PARAMS))
        assert response.status_code == 302 and "/entrar" in response.location, url
    for who in ("dona", "marca"):
        login(client, who)
        assert client.get(PAGE).status_code == 200, who
        client.post("/sair")
    for who in ("ana", "filial", "apoio"):  # a seller, a branch manager, a branch back office
        login(client, who)
        assert client.get(PAGE).status_code == 403, who
        for url in (SYNC, MAPPING, PREVIEW):
            assert client.post(url, data=mapping_form(template, RECOVERY_TEMPLATE_PARAMS)).status_code == 403
        client.post("/sair")
    session.expire_all()
    assert load_settings(session).whatsapp_template_id is None
    assert "console.whatsapp_templates" in app.view_functions


# --- the list --------------------------------------------------------------------------------------------

def test_without_templates_the_page_says_where_to_create_one_and_to_sync(client, people):
    login(client, "dona")
    page = text(client.get(PAGE))
    assert "<title>Modelos do WhatsApp" in page or "Modelos do WhatsApp</h1>" in page
    assert "só entrega <strong>modelos aprovados</strong>" in page and "mais barata" in page
    empty = page.split('id="sem-modelos"')[1].split("</div>")[0]
    assert "Content Template Builder" in empty and "WhatsApp Manager" in empty and "Sincronizar" in empty
    assert 'action="/console/whatsapp/sincronizar"' in page
    assert "Ainda não há modelo aprovado ou em análise para escolher" in page


def test_synced_templates_are_listed_with_category_status_reason_marked_body_and_sync_time(client, session, people):
    approved = approved_template(session)
    approved.synced_at = datetime(2026, 11, 24, 18, 5, tzinfo=UTC)  # 15:05 in São Paulo
    rejected = approved_template(session, name="pedido_enviado", external_id="HX" + "2" * 32,
                                 body="Seu pedido saiu, {{1}}!", status=TemplateStatus.REJECTED)
    rejected.category, rejected.rejection_reason = "utility", "INVALID_FORMAT: variável no fim do texto"
    auth = approved_template(session, name="codigo", external_id="HX" + "3" * 32, body="Código: {{1}}",
                             status=TemplateStatus.PENDING)
    auth.category = "authentication"
    rejected.synced_at = auth.synced_at = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    session.commit()
    login(client, "dona")
    page = text(client.get(PAGE))
    table = page.split('id="modelos"')[1].split("</table>")[0]
    row = table.split(f'data-template="{approved.id}"')[1].split("</tr>")[0]
    assert "carrinho_abandonado" in row and "pt_BR" in row and "Marketing" in row and "aprovado" in row
    assert '<mark class="placeholder">{{1}}</mark>' in row and '<mark class="placeholder">{{5}}</mark>' in row
    assert "Oi, " in row and "24/11/2026 15:05" in row
    row = table.split(f'data-template="{rejected.id}"')[1].split("</tr>")[0]
    assert "Utilidade" in row and "rejeitado" in row and "INVALID_FORMAT: variável no fim do texto" in row
    row = table.split(f'data-template="{auth.id}"')[1].split("</tr>")[0]
    assert "Autenticação" in row and "em análise" in row
    assert "Última sincronização: 24/11/2026 15:05" in page  # the latest of them
    # Only approved and in-review templates can be chosen for the recovery.
    select = page.split('id="modelo-a"')[1].split("</select>")[0]
    assert f'value="{approved.id}"' in select and f'value="{auth.id}"' in select
    assert f'value="{rejected.id}"' not in select and "Não usar modelo" in select


def test_the_placeholder_text_is_escaped(client, session, people):
    approved_template(session, body="<script>alert(1)</script> {{1}}")
    login(client, "dona")
    page = text(client.get(PAGE))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- sync --------------------------------------------------------------------------------------------------

def test_sync_shows_how_many_templates_came_at_the_top(client, session, people, monkeypatch):
    calls = []

    def fake_sync(db, settings):
        calls.append(settings.whatsapp_provider)
        approved_template(db)
        return template_sync.SyncResult(provider="twilio", created=1, updated=2, total=3, approved=3)

    monkeypatch.setattr(template_sync, "sync_templates", fake_sync)
    login(client, "dona")
    response = client.post(SYNC)
    assert response.status_code == 303 and response.location.endswith(PAGE)
    page = text(client.get(PAGE))
    assert "3 modelos sincronizados: 1 novo, 2 atualizados." in top_of(page)
    assert calls == ["twilio"] and "carrinho_abandonado" in page


def test_sync_counts_read_naturally():
    def summary(**counts):
        return template_sync.SyncResult(provider="meta", **counts).summary()

    assert summary(total=1, created=1) == "1 modelo sincronizado: 1 novo."
    assert summary(total=4, updated=1, unchanged=3, removed=2) == \
        "4 modelos sincronizados: 1 atualizado, 3 sem mudança, 2 removidos no provedor."
    assert summary(total=3, created=1, unchanged=2) == "3 modelos sincronizados: 1 novo, 2 sem mudança."
    assert summary(total=0) == "Nenhum modelo encontrado no provedor."


def test_a_sync_error_is_shown_in_portuguese_at_the_top_and_nothing_changes(client, session, people, monkeypatch):
    def failing_sync(db, settings):
        db.add(WhatsAppTemplate(provider="twilio", external_id="HX" + "9" * 32, name="pela_metade", body="oi",
                                placeholders=[], buttons=[]))
        db.flush()  # half-done work is rolled back
        raise template_sync.TemplateSyncError("o Twilio recusou as credenciais (401): confira TWILIO_AUTH_TOKEN")

    monkeypatch.setattr(template_sync, "sync_templates", failing_sync)
    login(client, "dona")
    assert client.post(SYNC).status_code == 303
    page = text(client.get(PAGE))
    top = top_of(page)
    assert 'class="flash error"' in top
    assert "Não foi possível sincronizar os modelos: o Twilio recusou as credenciais (401)" in top
    assert "Nenhum modelo sincronizado ainda" in page


def test_in_outbox_mode_sync_says_which_credentials_are_missing(client, people):
    login(client, "dona")
    assert client.post(SYNC).status_code == 303
    top = top_of(text(client.get(PAGE)))
    assert "Não foi possível sincronizar os modelos: sem credenciais do provedor" in top
    assert "TWILIO_ACCOUNT_SID" in top


TWILIO_SID = "AC" + "7" * 32
CONTENT_API = "https://content.twilio.test"


@pytest.fixture
def twilio_client(instance_dir, database_url, redis_url, db, redis_client):
    """A console client whose runtime has Twilio credentials and its Content API at CONTENT_API."""
    from app import create_app

    settings = make_settings(instance_dir, database_url, redis_url, TWILIO_ACCOUNT_SID=TWILIO_SID,
                             TWILIO_AUTH_TOKEN="k" * 32, TWILIO_CONTENT_API_URL=CONTENT_API)
    with installed_runtime(settings, db, redis_client) as rt:
        yield create_app({"RUNTIME": rt, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()


def twilio_content(sid: str, name: str, body: str, status: str, *, reason: str = "") -> dict:
    """One content of GET /v1/ContentAndApprovals, as Twilio documents it."""
    return {"sid": sid, "account_sid": TWILIO_SID, "friendly_name": name, "language": "pt_BR",
            "variables": {"1": "Ana", "2": "https://loja.example/c/1"},
            "types": {"twilio/text": {"body": body}},
            "approval_requests": {"name": name, "category": "MARKETING", "content_type": "twilio/text",
                                  "status": status, "rejection_reason": reason, "allow_category_change": True},
            "date_created": "2026-11-20T12:00:00Z", "date_updated": "2026-11-21T12:00:00Z",
            "url": f"https://content.twilio.com/v1/Content/{sid}", "links": {}}


def test_sync_through_twilios_content_api(twilio_client, session, people):
    page = {"contents": [
        twilio_content("HX" + "a" * 32, "carrinho_abandonado", "Oi, {{1}}! Finalize: {{2}}", "approved"),
        twilio_content("HX" + "b" * 32, "promo_relampago", "Promoção {{1}}", "rejected",
                       reason="A variável não pode ficar no fim do texto"),
    ], "meta": {"page": 0, "page_size": 100, "first_page_url": f"{CONTENT_API}/v1/ContentAndApprovals?PageSize=100",
                "previous_page_url": None, "url": f"{CONTENT_API}/v1/ContentAndApprovals?PageSize=100",
                "next_page_url": None, "key": "contents"}}
    login(twilio_client, "dona")
    with responses.RequestsMock() as api:
        api.get(f"{CONTENT_API}/v1/ContentAndApprovals", json=page)
        assert twilio_client.post(SYNC).status_code == 303
    listing = text(twilio_client.get(PAGE))
    assert "2 modelos sincronizados: 2 novos." in top_of(listing)
    table = listing.split('id="modelos"')[1].split("</table>")[0]
    assert "carrinho_abandonado" in table and "aprovado" in table and "Marketing" in table
    assert "rejeitado" in table and "A variável não pode ficar no fim do texto" in table
    assert '<mark class="placeholder">{{2}}</mark>' in table
    select = listing.split('id="modelo-a"')[1].split("</select>")[0]
    assert "carrinho_abandonado" in select and "promo_relampago" not in select

    with responses.RequestsMock() as api:
        api.get(f"{CONTENT_API}/v1/ContentAndApprovals", status=401,
                json={"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003",
                      "status": 401})
        assert twilio_client.post(SYNC).status_code == 303
    top = top_of(text(twilio_client.get(PAGE)))
    assert 'class="flash error"' in top and "o Twilio recusou as credenciais (401" in top


# --- mapping -------------------------------------------------------------------------------------------

def test_a_mapping_is_saved_and_shown_with_its_preview(client, session, people):
    enable_recovery(session)
    template = approved_template(session)
    login(client, "dona")
    response = client.post(MAPPING, data=mapping_form(template, RECOVERY_TEMPLATE_PARAMS))
    assert response.status_code == 303, text(response)[:500]
    session.expire_all()
    settings = load_settings(session)
    assert settings.whatsapp_template_id == template.id
    assert settings.whatsapp_template_params == RECOVERY_TEMPLATE_PARAMS
    page = text(client.get(PAGE))
    assert "o modelo carrinho_abandonado será enviado fora da janela de 24 h" in top_of(page)
    form = page.split('id="variante-a"')[1].split("</form>")[0]
    assert f'<option value="{template.id}" selected>' in form
    assert '<option value="nome" selected>' in form.split('name="marcador_1"')[1].split("</select>")[0]
    assert '<option value="link" selected>' in form.split('name="marcador_5"')[1].split("</select>")[0]
    preview = form.split("data-mapping-output")[1].split("</div>")[0]
    assert "Oi, Ana! Seus itens na Loja Demo estão esperando: 1x Tênis Corrida Preto" in preview
    assert "VOLTA-7K2M9QX4" in preview
    assert 'name="acao" value="remover"' in form  # "Não usar modelo"


def test_a_coupon_placeholder_is_refused_for_a_variant_without_coupon_rule(client, session, people):
    enable_recovery(session, coupon_rule_id=None)
    template = approved_template(session)
    login(client, "dona")
    response = client.post(MAPPING, data=mapping_form(template, RECOVERY_TEMPLATE_PARAMS))
    assert response.status_code == 400
    page = text(response)
    form = page.split('id="variante-a"')[1].split("</form>")[0]
    assert "Nada foi salvo" in form
    error = form.split('id="marcadores-a-error"')[1].split("</div>")[0]
    assert "{{3}} (cupom) ficaria vazio: esta variante não tem regra de cupom" in error
    assert "Esta variante não tem regra de cupom" in form and "(esta variante não tem cupom)" in form
    # What the merchant chose is still there to fix.
    assert '<option value="cupom" selected>' in form.split('name="marcador_3"')[1].split("</select>")[0]
    session.expire_all()
    assert load_settings(session).whatsapp_template_id is None


def test_an_incomplete_mapping_says_which_placeholder_is_missing(client, session, people):
    enable_recovery(session)
    template = approved_template(session)
    login(client, "dona")
    response = client.post(MAPPING, data=mapping_form(template, {"1": "nome", "2": "itens"}))
    assert response.status_code == 400 and "escolha o que vai em {{3}}" in text(response)


def test_variant_b_has_its_own_template_and_coupon_rule(client, session, people):
    enable_recovery(session, variant_b_template="B: {{ nome }}", variant_b_percent=30)  # B has no coupon rule
    template_a = approved_template(session)
    template_b = approved_template(session, body="Oi, {{1}}! Volte: {{2}}", external_id="HX" + "4" * 32,
                                   name="volta_sem_cupom")
    login(client, "dona")
    page = text(client.get(PAGE))
    assert "O teste A/B está ligado: 30% dos clientes recebem a variante B" in page
    refused = client.post(MAPPING, data=mapping_form(template_a, RECOVERY_TEMPLATE_PARAMS, variant="B"))
    assert refused.status_code == 400
    form = text(refused).split('id="variante-b"')[1].split("</form>")[0]
    assert "ficaria vazio: esta variante não tem regra de cupom" in form
    assert client.post(MAPPING, data=mapping_form(template_b, {"1": "nome", "2": "link"},
                                                  variant="B")).status_code == 303
    session.expire_all()
    settings = load_settings(session)
    assert settings.variant_b_whatsapp_template_id == template_b.id and settings.whatsapp_template_id is None
    assert settings.variant_b_whatsapp_template_params == {"1": "nome", "2": "link"}


def test_a_mapping_can_be_removed(client, session, people):
    enable_recovery(session)
    map_template(session, approved_template(session))
    login(client, "dona")
    assert client.post(MAPPING, data={"variante": "A", "acao": "remover"}).status_code == 303
    session.expire_all()
    settings = load_settings(session)
    assert settings.whatsapp_template_id is None and settings.whatsapp_template_params == {}
    assert "nenhum modelo" in top_of(text(client.get(PAGE)))


def test_without_javascript_choosing_a_template_shows_its_placeholders_and_saves_nothing(client, session, people):
    enable_recovery(session)
    template = approved_template(session)
    login(client, "dona")
    page = text(client.get(PAGE))
    form = page.split('id="variante-a"')[1].split("</form>")[0]
    visible = form.split("data-mapping-fields>")[1].split("</div>")[0]
    assert 'name="marcador_1"' not in visible  # nothing chosen yet
    assert f'<template data-slots-for="{template.id}">' in form  # what the script shows without a round trip
    response = client.post(MAPPING, data=mapping_form(template, action="escolher"))
    assert response.status_code == 200
    form = text(response).split('id="variante-a"')[1].split("</form>")[0]
    visible = form.split("data-mapping-fields>")[1].split("<template")[0]
    for key in "12345":
        assert f'name="marcador_{key}"' in visible
    assert "nome: primeiro nome do cliente" in visible
    assert "escolha o que vai em {{1}}" in form  # the preview says what is still missing
    session.expire_all()
    assert load_settings(session).whatsapp_template_id is None


def test_an_unknown_template_id_is_refused_in_portuguese(client, session, people):
    enable_recovery(session)
    login(client, "dona")
    for value in ("999999", "abc", "9" * 30):
        response = client.post(MAPPING, data={"variante": "A", "acao": "salvar", "modelo": value})
        assert response.status_code == 400, value
        assert "modelo não encontrado" in text(response) or "id de modelo inválido" in text(response)
    assert client.post(MAPPING, data={"variante": "C", "modelo": ""}).status_code == 400


# --- preview --------------------------------------------------------------------------------------------

def test_the_preview_endpoint_fills_the_template_or_says_what_is_wrong(client, session, people):
    enable_recovery(session)
    template = approved_template(session)
    login(client, "dona")
    body = client.post(PREVIEW, data=mapping_form(template, RECOVERY_TEMPLATE_PARAMS)).get_json()
    assert set(body) == {"text"}
    assert body["text"].startswith("Oi, Ana! Seus itens na Loja Demo estão esperando: 1x Tênis Corrida Preto")
    body = client.post(PREVIEW, data=mapping_form(template, {"1": "nome"})).get_json()
    assert body == {"error": "escolha o que vai em {{2}}"}
    body = client.post(PREVIEW, data=mapping_form(template, RECOVERY_TEMPLATE_PARAMS, variant="B")).get_json()
    assert "ficaria vazio: esta variante não tem regra de cupom" in body["error"]  # B has no coupon rule
    assert client.post(PREVIEW, data={"variante": "A", "modelo": ""}).get_json() == {"text": ""}
    assert "modelo não encontrado" in client.post(PREVIEW, data={"variante": "A", "modelo": "4242"}).get_json()["error"]
    assert "error" in client.post(PREVIEW, data={"variante": "Z", "modelo": str(template.id)}).get_json()


# --- dashboard ----------------------------------------------------------------------------------------------

def test_dashboard_shows_which_path_each_message_took_and_the_no_template_reason(client, session, runtime, people):
    enable_recovery(session, quiet_start="00:00", quiet_end="00:00")
    caio = shopper(session, phone="+5511999990003", name="Caio Lima", last_inbound=None)  # web cart only
    with_cart(session, caio)
    note_interaction(session, runtime, caio.id, AFTERNOON)
    run_tick(session, runtime, AFTERNOON + minutes(10))  # no template chosen yet: skipped

    map_template(session, approved_template(session))
    ana = shopper(session, phone="+5511999990001", name="Ana Souza")  # wrote to the bot: inside the window
    bia = shopper(session, phone="+5511999990002", name="Bia Reis", last_inbound=None)
    duda = shopper(session, phone="+5511999990004", name="Duda Melo", last_inbound=None)
    for customer in (ana, bia, duda):
        with_cart(session, customer)
        note_interaction(session, runtime, customer.id, AFTERNOON + minutes(20))
    run_tick(session, runtime, AFTERNOON + minutes(30))
    by_customer = {m.customer_id: m for m in recovery_messages(session)}
    assert by_customer[ana.id].sent_as == "text"
    assert by_customer[bia.id].sent_as == by_customer[duda.id].sent_as == "template"
    refused = by_customer[duda.id]  # Meta refused it: the shopper's marketing cap for the period
    refused.status, refused.error_code = MessageStatus.FAILED, "131049"
    refused.error_reason = "marketing_limit: (#131049) This message was not delivered to maintain healthy ecosystem"
    session.commit()

    stats = recovery_stats(session, start=date(2026, 11, 24), end=date(2026, 11, 24),
                           tz=runtime.settings.store_timezone)
    assert stats["paths"] == {"text": 1, "template": 2, "marketing_limit": 1, "blocked": 0, "blocked_by_reason": {}}
    assert stats["totals"]["skipped_by_reason"] == {"no_template_mapped": 1}

    login(client, "dona")
    page = text(client.get("/console/?de=2026-11-24&ate=2026-11-24"))
    paths = page.split('id="caminhos"')[1].split("</table>")[0]
    assert '<tr data-path="text"><td>Texto livre, dentro da janela de 24 h</td><td class="num">1</td>' in paths
    assert '<tr data-path="template"><td>Modelo aprovado, fora da janela de 24 h</td><td class="num">2</td>' in paths
    assert "Recusada pelo limite de mensagens de marketing da Meta (erro 131049)</td><td class=\"num\">1</td>" in paths
    reasons = page.split('id="motivos"')[1].split("</table>")[0]
    row = reasons.split('data-reason="no_template_mapped"')[1].split("</tr>")[0]
    assert "Fora da janela de 24 h, sem modelo aprovado escolhido" in row
    assert '<a href="/console/whatsapp">escolher um modelo</a>' in row and '<td class="num">1</td>' in row


def test_blocked_messages_are_counted_by_reason_apart_from_both_paths(client, session, runtime, people):
    enable_recovery(session, quiet_start="00:00", quiet_end="00:00")
    map_template(session, approved_template(session))
    bia = shopper(session, phone="+5511999990002", name="Bia Reis", last_inbound=None)
    with_cart(session, bia)
    note_interaction(session, runtime, bia.id, AFTERNOON)
    run_tick(session, runtime, AFTERNOON + minutes(10))
    (message,) = recovery_messages(session)
    message.status, message.error_reason = MessageStatus.BLOCKED, "template_variables_missing: {{1}} (nome)"
    session.commit()
    stats = recovery_stats(session, start=date(2026, 11, 24), end=date(2026, 11, 24),
                           tz=runtime.settings.store_timezone)
    assert stats["paths"] == {"text": 0, "template": 0, "marketing_limit": 0, "blocked": 1,
                              "blocked_by_reason": {"template_variables_missing": 1}}
    login(client, "dona")
    page = text(client.get("/console/?de=2026-11-24&ate=2026-11-24"))
    paths = page.split('id="caminhos"')[1].split("</table>")[0]
    row = paths.split('data-reason="template_variables_missing"')[1].split("</tr>")[0]
    assert "Bloqueada antes do envio: Um marcador do modelo ficaria vazio para o cliente" in row
    assert 'href="/console/whatsapp"' in row


def test_every_new_reason_has_a_portuguese_label():
    from web.formatting import LABELS

    for key in ("no_template_mapped", "template_not_approved", "marketing_opted_out", "template_variables_missing",
                "outside_24h_window_no_template", "marketing_limit"):
        assert LABELS[key] and "_" not in LABELS[key], key


# --- in a browser -------------------------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_in_a_browser_choosing_a_template_shows_its_placeholders_and_a_live_preview(page, server):
    from playwright.sync_api import expect

    from tests.test_browser import log_in

    with server.db.session() as session:
        enable_recovery(session)
        template = approved_template(session)
        template_id = template.id
    log_in(page)
    page.goto(PAGE)
    form = page.locator("#variante-a")
    expect(form.get_by_role("button", name="Mostrar os marcadores do modelo")).to_be_hidden()  # the script does it
    form.locator("select[name=modelo]").select_option(str(template_id))
    expect(form.locator("select[name=marcador_5]")).to_be_visible()
    expect(form.locator("[data-mapping-problem]")).to_have_text("escolha o que vai em {{1}}")
    for key, variable in RECOVERY_TEMPLATE_PARAMS.items():
        form.locator(f"select[name=marcador_{key}]").select_option(variable)
    expect(form.locator("[data-mapping-output]")).to_contain_text("Oi, Ana! Seus itens na Loja Demo")
    expect(form.locator("[data-mapping-problem]")).to_have_text("")
    form.get_by_role("button", name="Salvar variante A").click()
    expect(page.get_by_role("status").first).to_contain_text("o modelo carrinho_abandonado será enviado")
    with server.db.session() as session:
        settings = load_settings(session)
        assert settings.whatsapp_template_id == template_id
        assert settings.whatsapp_template_params == RECOVERY_TEMPLATE_PARAMS
    form = page.locator("#variante-a")
    form.locator("select[name=modelo]").select_option("")
    expect(form.locator("select[name=marcador_1]")).to_have_count(0)
    expect(form.locator("[data-mapping-output]")).to_contain_text("Sem modelo")
