"""The crafted inputs an outside test turned into 500s, each now a 400 naming the field (API) or the field's error on
the page. (tests/test_fuzz_routes.py fuzzes every route with values like these.)"""

from __future__ import annotations

import io
import json

import pytest

from core.inputs import InputError, parse_id, parse_int, parse_moment, parse_page
from tests.access_world import PASSWORD, PEOPLE, build_world


@pytest.fixture
def world(session):
    return build_world(session)


@pytest.fixture
def page_client(runtime, world):
    from app import create_app

    client = create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
    assert client.post("/entrar", data={"email": PEOPLE["admin"][0], "password": PASSWORD}).status_code == 302
    return client


def bearer(world, kind="admin"):
    return {"Authorization": f"Bearer {world.tokens[kind]}"}


@pytest.mark.parametrize("query,field", [
    ("page=²", "page"), ("page=٣", "page"), ("page=1000000000000000000", "page"), ("page=0", "page"),
    ("seller_id=²", "seller_id"), ("seller_id=9223372036854775808", "seller_id"), ("seller_id=-1", "seller_id"),
])
def test_opportunity_list_parameters(client, world, query, field):
    response = client.get(f"/api/opportunities?{query}", headers=bearer(world))
    assert response.status_code == 400 and field in response.get_json()["fields"]


@pytest.mark.parametrize("query", ["to=10000000000000000000000000", "from=²", "to=9999-12-31", "from=0001-01-01"])
def test_stats_dates(client, world, query):
    response = client.get(f"/api/recovery/stats?{query}", headers=bearer(world))
    assert response.status_code == 400 and response.get_json()["fields"]


@pytest.mark.parametrize("body,field", [
    ({"deadline": "9999-12-31T23:59:59-23:59"}, "deadline"),
    ({"deadline": "0001-01-01T00:00:00+23:59"}, "deadline"),
    ({"deadline": "²"}, "deadline"),
    ({"seller_id": 2**63}, "seller_id"),
    ({"seller_id": -1}, "seller_id"),
    ({"seller_id": "²"}, "seller_id"),
    ({"priority": []}, "priority"),
    ({"priority": {}}, "priority"),
    ({"status": []}, "status"),
    ({"status": "finished", "result": ["positive"]}, "result"),
])
def test_opportunity_patch_values(client, world, body, field):
    opportunity = world.opportunities["own_backlog"]
    response = client.patch(f"/api/opportunities/{opportunity.id}", json=body, headers=bearer(world))
    assert response.status_code == 400 and field in response.get_json()["fields"], response.get_json()


@pytest.mark.parametrize("row,field", [
    ({"phone": "+5511955554444", "deadline": "9999-12-31T23:59:59-23:59"}, "deadline"),
    ({"phone": "+5511955554444", "priority": []}, "priority"),
    ({"phone": "+5511955554444", "name": 2**63}, "name"),
])
def test_opportunity_creation_values(client, world, row, field):
    response = client.post("/api/opportunities", json=row, headers=bearer(world))
    assert response.status_code == 400 and response.get_json()["rows"][0]["field"] == field


@pytest.mark.parametrize("url", ["/console/conversas", "/console/catalogo", "/console/descadastros"])
@pytest.mark.parametrize("page", ["1000000000000000000", "²", "-3", "1e3"])
def test_console_pagers(page_client, url, page):
    response = page_client.get(f"{url}?pagina={page}")
    assert response.status_code == 400 and "pagina" in response.get_data(as_text=True)


def test_console_coupon_rule_field(page_client):
    response = page_client.post("/console/recuperacao", data={"coupon_rule_id": "²", "delay_minutes": "10"})
    assert response.status_code == 400 and "regra de cupom" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["1e309", "²", "9" * 40, "NaN"])
def test_console_coupon_value(page_client, value):
    response = page_client.post("/console/cupons", data={"name": "X", "kind": "percent", "value": value})
    assert response.status_code == 400 and "informe um número" in response.get_data(as_text=True)


@pytest.mark.parametrize("field", ["avg_conversation_minutes", "max_portfolio", "hours_per_day", "idle_share"])
def test_manager_capacity_fields(page_client, world, field):
    form = {"hours_per_day": "8", "idle_share": "0.3", "avg_conversation_minutes": "15", "max_portfolio": "300",
            field: "²"}
    response = page_client.post(f"/gestao/vendedores/{world.users['seller'].id}", data=form)
    assert response.status_code == 400 and "use um número" in response.get_data(as_text=True)


def test_manager_rules_and_redistribution_fields(page_client, world):
    rules = page_client.post("/gestao/configuracoes", data={"quarantine_days": "²", "recovery_followup_hours": "1",
                                                            "attribution_days": "7", "default_deadline_hours": "9",
                                                            "suggested_message": "Oi"})
    assert rules.status_code == 400 and "use um número inteiro" in rules.get_data(as_text=True)
    moved = page_client.post(f"/gestao/vendedores/{world.users['seller'].id}/status",
                             data={"action": "deactivate", "to": "²"})
    assert moved.status_code == 303  # back to the seller's page with the error; nothing deactivated
    assert world.users["seller"].active


@pytest.mark.parametrize("name,content", [
    ("nested.json", "[" * 100_000 + "]" * 100_000),
    ("price.json", '[{"sku": "A-1", "name": "Camiseta", "price": ' + "9" * 5000 + "}]"),
    ("price.csv", "sku,name,price\nA-1,Camiseta," + "9" * 5000 + "\n"),
])
def test_catalog_uploads(page_client, name, content):
    response = page_client.post("/console/catalogo", data={"arquivo": (io.BytesIO(content.encode()), name)},
                                content_type="multipart/form-data")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "aninhado demais" in text or "longo demais" in text or "alto demais" in text


def test_the_parsers_refuse_what_no_column_can_hold():
    for call in (lambda: parse_int("²", "x", minimum=0, maximum=9), lambda: parse_page("10000000000"),
                 lambda: parse_id(2**63, "id"), lambda: parse_id(True, "id"),
                 lambda: parse_moment("9999-12-31T23:59:59-23:59", "m"), lambda: parse_moment("2026-01-01", "m")):
        with pytest.raises(InputError):
            call()
    assert parse_page(None) == 1 and parse_id("42", "id") == 42
    assert parse_moment("2026-12-01T18:00:00-03:00", "m").isoformat() == "2026-12-01T21:00:00+00:00"
    assert json.loads(json.dumps({"ok": True}))
