"""The recovery's WhatsApp template mapping: validated for every shopper shape it can reach, filled per shopper,
exposed by the API (GET /api/whatsapp/templates, PUT /api/recovery/settings)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from channel import templates
from models import TemplateStatus, WhatsAppTemplate, utcnow
from recovery import whatsapp_templates as wt
from recovery.config import SettingsInvalid, load_settings, update_settings
from recovery.messages import CartLine, build_variables, sample_variables
from tests.recovery_helpers import RECOVERY_TEMPLATE_BODY, RECOVERY_TEMPLATE_PARAMS, approved_template, enable_recovery
from tests.test_recovery_api import auth, token_for

TZ = ZoneInfo("America/Sao_Paulo")
SETTINGS = "/api/recovery/settings"


def _variables(*, name="Ana Souza", items=(("Tênis Corrida Preto", 1, Decimal("299.90")),), coupon=True):
    return build_variables(
        name=name, store_name="Loja Demo", items=list(items),
        total=sum((p * q for _, q, p in items), Decimal(0)) if items else None,
        checkout_url="https://loja.example/checkout/c-1", coupon_code="VOLTA-ABC" if coupon else None,
        coupon_description="10% de desconto" if coupon else None,
        coupon_url="https://loja.example/cupom/VOLTA-ABC" if coupon else None,
        coupon_expires_at=utcnow() + timedelta(hours=24) if coupon else None, timezone=TZ)


# --- every shopper shape -------------------------------------------------------------------------------

def test_items_line_lists_quantities_names_and_prices_on_one_line():
    line = wt.items_line([CartLine("Tênis Corrida Preto", 1, "R$\xa0299,90"), CartLine("Meia", 2, "R$\xa019,90")], 0)
    assert line == "1x Tênis Corrida Preto (R$ 299,90), 2x Meia (R$ 19,90)"


def test_a_long_cart_is_cut_with_how_many_were_left_out():
    lines = [CartLine(f"Produto de exemplo número {n}", 1, "R$\xa049,90") for n in range(40)]
    line = wt.items_line(lines[:10], 30)
    assert len(line) <= wt.ITEMS_LINE_LIMIT + 20
    shown = line.count("1x ")
    assert line.endswith(f"e mais {40 - shown} itens") and shown >= 1


def test_one_huge_product_name_still_fits_one_parameter():
    line = wt.items_line([CartLine("X" * 2000, 1, "R$\xa01,00")], 0)
    assert len(line) <= templates.MAX_VALUE and "\n" not in line


@pytest.mark.parametrize("name, expected", [("Ana Souza", "Ana"), (None, "cliente"), ("  ", "cliente"),
                                            ("José  da Silva", "José")])
def test_the_name_placeholder_is_never_empty(name, expected):
    assert wt.sources(_variables(name=name), name)["nome"] == expected


def test_sources_without_coupon_leave_coupon_values_empty():
    values = wt.sources(_variables(coupon=False), "Ana")
    assert values["cupom"] == values["desconto"] == values["link_cupom"] == ""
    assert values["link"] == "https://loja.example/checkout/c-1" and values["total"] == "R$\xa0299,90"


def test_a_mapping_with_every_variable_passes_for_a_variant_with_a_coupon(session):
    template = approved_template(session)
    preview = wt.check_mapping(template, RECOVERY_TEMPLATE_PARAMS, has_coupon=True, sample=sample_variables(TZ))
    assert preview.startswith("Oi, Ana! Seus itens na Loja Demo estão esperando: 1x Tênis Corrida Preto")
    assert "VOLTA-7K2M9QX4" in preview


def test_a_coupon_placeholder_on_a_variant_without_coupon_is_refused(session):
    template = approved_template(session)
    with pytest.raises(wt.MappingInvalid, match=r"\{\{3\}\} \(cupom\) ficaria vazio"):
        wt.check_mapping(template, RECOVERY_TEMPLATE_PARAMS, has_coupon=False, sample=sample_variables(TZ))


def test_an_unmapped_placeholder_is_refused(session):
    template = approved_template(session)
    params = {k: v for k, v in RECOVERY_TEMPLATE_PARAMS.items() if k != "2"}
    with pytest.raises(wt.MappingInvalid, match=r"escolha o que vai em \{\{2\}\}"):
        wt.check_mapping(template, params, has_coupon=True, sample=sample_variables(TZ))


def test_a_key_the_template_does_not_have_is_refused(session):
    template = approved_template(session, body="Oi {{1}}")
    with pytest.raises(wt.MappingInvalid, match=r"não tem \{\{7\}\}"):
        wt.check_mapping(template, {"1": "nome", "7": "link"}, has_coupon=True, sample=sample_variables(TZ))


@pytest.mark.parametrize("status", [TemplateStatus.REJECTED, TemplateStatus.PAUSED, TemplateStatus.REMOVED])
def test_a_template_whatsapp_does_not_allow_cannot_be_mapped(session, status):
    template = approved_template(session, status=status)
    with pytest.raises(wt.MappingInvalid, match="não está aprovado"):
        wt.check_mapping(template, RECOVERY_TEMPLATE_PARAMS, has_coupon=True, sample=sample_variables(TZ))


def test_a_template_too_long_once_filled_is_refused(session):
    template = approved_template(session, body="A" * 900 + " {{1}} {{2}}")
    with pytest.raises(wt.MappingInvalid, match="1024 caracteres"):
        wt.check_mapping(template, {"1": "itens", "2": "link"}, has_coupon=True, sample=sample_variables(TZ))


def test_meta_header_and_url_button_placeholders_are_mapped_separately(session):
    template = approved_template(
        session, provider="meta", header="Oi {{1}}", body="Seu carrinho de {{1}} espera: {{2}}",
        buttons=[{"type": "url", "text": "Finalizar", "url": "https://loja.example/c/{{1}}"}])
    keys = template.keys
    assert keys == ["header:1", "1", "2", "button:0:1"]
    preview = wt.check_mapping(template, {"header:1": "nome", "1": "total", "2": "itens", "button:0:1": "cupom"},
                               has_coupon=True, sample=sample_variables(TZ))
    assert preview.startswith("*Oi Ana*\nSeu carrinho de R$")


names = st.one_of(st.none(), st.text(max_size=60))
product = st.tuples(st.text(min_size=1, max_size=120), st.integers(1, 99),
                    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2))


@hsettings(max_examples=150, deadline=None)
@given(name=names, items=st.lists(product, min_size=1, max_size=40), coupon=st.booleans())
def test_an_accepted_mapping_fills_every_placeholder_with_one_clean_line_for_any_shopper(name, items, coupon):
    """Whatever the shopper's name and cart, an accepted mapping gives values WhatsApp accepts: never empty,
    one line, no runs of spaces, within the parameter limit."""
    body = RECOVERY_TEMPLATE_BODY
    template = WhatsAppTemplate(provider="twilio", external_id="HX" + "9" * 32, name="t", language="pt_BR",
                                status=TemplateStatus.APPROVED, body=body, buttons=[],
                                placeholders=templates.placeholders_in(None, body, [], provider="twilio"))
    params = RECOVERY_TEMPLATE_PARAMS if coupon else {"1": "nome", "2": "itens", "3": "total", "4": "loja",
                                                      "5": "link"}
    wt.check_mapping(template, params, has_coupon=coupon, sample=sample_variables(TZ))
    variables = _variables(name=name, items=items[:10], coupon=coupon)
    variables["outros_itens"] = max(0, len(items) - 10)
    filled = templates.fill(template, params, wt.sources(variables, name))
    for value in filled.values.values():
        assert value and value == value.strip() and "\n" not in value and "\t" not in value and "     " not in value
        assert len(value) <= templates.MAX_VALUE


# --- settings and API ----------------------------------------------------------------------------------

def test_settings_refuse_a_coupon_placeholder_when_the_variant_has_no_rule(session):
    enable_recovery(session, coupon_rule_id=None)
    template = approved_template(session)
    with pytest.raises(SettingsInvalid) as caught:
        update_settings(session, {"whatsapp_template_id": template.id,
                                  "whatsapp_template_params": RECOVERY_TEMPLATE_PARAMS})
    assert "ficaria vazio" in caught.value.errors["whatsapp_template_params"]
    assert load_settings(session).whatsapp_template_id is None


def test_removing_the_coupon_rule_of_a_variant_whose_template_uses_it_is_refused(session):
    enable_recovery(session)
    template = approved_template(session)
    update_settings(session, {"whatsapp_template_id": template.id, "whatsapp_template_params": RECOVERY_TEMPLATE_PARAMS})
    with pytest.raises(SettingsInvalid) as caught:
        update_settings(session, {"coupon_rule_id": None})
    assert "whatsapp_template_params" in caught.value.errors


def test_the_api_lists_templates_and_saves_a_mapping(client, session):
    headers = auth(token_for(session, "admin"))
    enable_recovery(session)
    template = approved_template(session)
    listed = client.get("/api/whatsapp/templates", headers=headers).get_json()
    assert listed["provider"] == "twilio"
    [entry] = listed["templates"]
    assert entry["status"] == "approved" and [p["key"] for p in entry["placeholders"]] == ["1", "2", "3", "4", "5"]
    saved = client.put(SETTINGS, json={"whatsapp_template_id": template.id,
                                       "whatsapp_template_params": RECOVERY_TEMPLATE_PARAMS}, headers=headers)
    assert saved.status_code == 200
    assert saved.get_json()["whatsapp_template_params"] == RECOVERY_TEMPLATE_PARAMS


@pytest.mark.parametrize("change, field", [
    ({"whatsapp_template_id": 999999}, "whatsapp_template_id"),
    ({"whatsapp_template_id": "1"}, "whatsapp_template_id"),
    ({"whatsapp_template_params": {"1": "senha"}}, "whatsapp_template_params"),
    ({"whatsapp_template_params": {"1\x00": "nome"}}, "whatsapp_template_params"),
    ({"whatsapp_template_params": ["nome"]}, "whatsapp_template_params"),
    ({"whatsapp_template_params": {"1": 3}}, "whatsapp_template_params"),
])
def test_the_api_refuses_a_bad_mapping_with_the_field(client, session, change, field):
    headers = auth(token_for(session, "admin"))
    response = client.put(SETTINGS, json=change, headers=headers)
    assert response.status_code == 400 and field in response.get_json()["fields"]


@pytest.mark.parametrize("role", ["seller", "backoffice"])
def test_templates_are_for_those_who_configure(client, session, role):
    assert client.get("/api/whatsapp/templates", headers=auth(token_for(session, role))).status_code == 403


# --- the console's message editor (issue 20) --------------------------------------------------------------------

EDITOR_PASSWORD = "uma-senha-bem-longa"


@pytest.fixture
def editor(runtime, session):
    from app import create_app
    from crm.users import create_user

    app = create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})
    create_user(session, email="dona@loja.example", role="admin", password=EDITOR_PASSWORD, name="Dona")
    session.commit()
    client = app.test_client()
    assert client.post("/entrar", data={"email": "dona@loja.example", "password": EDITOR_PASSWORD}).status_code == 302
    return client


def test_every_chip_of_the_editor_previews_readable_text(editor):
    page = editor.get("/console/recuperacao/mensagem").get_data(as_text=True)
    chips = re.findall(r'data-chips-for="template".*?</div>', page, re.S)[0]
    offered = re.findall(r'data-variable="(\w+)"', chips)
    assert "itens" in offered and "outros_itens" not in offered
    for name in offered:
        # (text around it: a message that is only {{ cupom }} is empty, and refused, for a shopper without coupon)
        answer = editor.post("/console/recuperacao/previa", data={"template": "Oi! {{ " + name + " }}"}).get_json()
        assert answer["ok"] and answer["preview"], name
        assert not any(word in answer["preview"] for word in ("CartLine", "None", "[", "{")), (name, answer)
    itens = editor.post("/console/recuperacao/previa", data={"template": "Oi!\n{{ itens }}"}).get_json()
    assert itens["preview"] == "Oi!\n1x Tênis Corrida Preto (R$\xa0299,90)\n2x Camiseta Básica Branca (R$\xa059,90 cada)"
    looped = editor.post("/console/recuperacao/previa",
                         data={"template": "Oi! {% for i in itens %}{{ i.nome }}/{% endfor %}"}).get_json()
    assert looped["preview"] == "Oi! Tênis Corrida Preto/Camiseta Básica Branca/"


def test_a_syntax_error_is_explained_with_its_line_in_the_preview_and_on_save(editor, session):
    broken = "Oi {{ nome }}!\nSeu cupom: {{ cupom }"
    preview = editor.post("/console/recuperacao/previa", data={"template": broken}).get_json()
    assert preview["ok"] is False and preview["error"].startswith("faltou fechar `}}` na linha 2")
    saved = editor.post("/console/recuperacao/mensagem", data={"template": broken, "variant_b_template": ""})
    page = saved.get_data(as_text=True)
    assert saved.status_code == 400
    assert re.search(r'id="template-error">faltou fechar `}}` na linha 2', page)
    assert "unexpected" not in page
    session.expire_all()
    assert load_settings(session).template != broken


def test_a_bot_text_syntax_error_is_explained_with_its_line(editor):
    answer = editor.post("/console/robo/textos/greeting/previa", data={"body": "Oi!\n{{ loja }"}).get_json()
    assert answer["ok"] is False and answer["error"].startswith("faltou fechar `}}` na linha 2")
    saved = editor.post("/console/robo/textos/greeting", data={"body": "Oi!\n{{ loja }"})
    assert saved.status_code == 400 and "faltou fechar `}}` na linha 2" in saved.get_data(as_text=True)


def test_a_stored_template_with_the_old_default_still_sends_the_same_text(session):
    from models.recovery import LEGACY_DEFAULT_TEMPLATE
    from recovery.messages import render_message

    text = render_message(LEGACY_DEFAULT_TEMPLATE, _variables(items=(("Tênis Corrida Preto", 1, Decimal("299.90")),
                                                                      ("Meia", 2, Decimal("10")))))
    assert text.startswith("Oi, Ana! Vimos que você deixou alguns itens esperando na Loja Demo: "
                           "1x Tênis Corrida Preto, 2x Meia (R$\xa0319,90).")
