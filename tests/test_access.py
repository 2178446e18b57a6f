"""Every route × every kind of user × both branches, against a table of who may do what written here by hand.

Two layers, both from crm.access: which kinds of user reach an endpoint at all (403 otherwise, or the login page
for strangers), and which rows they reach inside it (another branch's customer, seller or opportunity is a 404,
like one that does not exist). Pages and the JSON API are walked the same way.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import Opportunity, Role, User
from tests.access_world import PASSWORD, PEOPLE, build_world

OFFICE = {"admin", "brand_manager", "branch_manager", "brand_backoffice", "branch_backoffice"}
EVERYONE = OFFICE | {"seller"}
BRAND = {"admin", "brand_manager"}
PEOPLE_MANAGERS = {"admin", "brand_manager", "branch_manager"}
KINDS = ["admin", "brand_manager", "branch_manager", "brand_backoffice", "branch_backoffice", "seller"]

# Who may reach each endpoint: the product's rules, written down independently of the code.
WHO = {
    "console.dashboard": OFFICE,
    "console.catalog": {"GET": OFFICE, "POST": BRAND},  # everyone in the office reads it; importing is brand-wide
    "console.conversations": OFFICE, "console.conversation": OFFICE, "console.opt_outs": OFFICE,
    "console.recovery_settings": BRAND, "console.recovery_message": BRAND, "console.recovery_preview": BRAND,
    "console.coupon_rules": BRAND, "console.coupon_rule": BRAND, "console.coupon_rule_status": BRAND,
    "console.bot": BRAND, "console.bot_text": BRAND, "console.bot_text_preview": BRAND,
    "console.bot_text_reset": BRAND, "console.faq_entry": BRAND, "console.faq_preview": BRAND,
    "console.whatsapp_templates": BRAND, "console.whatsapp_sync": BRAND, "console.whatsapp_mapping": BRAND,
    "console.whatsapp_preview": BRAND,
    "golive.setup": BRAND, "golive.rotate_secret": BRAND, "golive.send_test": BRAND,
    "manager.sellers": PEOPLE_MANAGERS, "manager.seller": PEOPLE_MANAGERS, "manager.seller_status": PEOPLE_MANAGERS,
    "manager.new_user": PEOPLE_MANAGERS,
    "manager.rules": BRAND,
    "manager.opportunities": OFFICE, "manager.results": OFFICE,
    "manager.opportunity": OFFICE, "manager.reassign_opportunity": OFFICE,
    "seller.queue": {"seller"}, "seller.portfolio": {"seller"}, "seller.customer": {"seller"},
    "seller.start_contact": {"seller"}, "seller.opportunity": {"seller"}, "seller.finish": {"seller"},
    "seller.start": {"seller"}, "seller.results": {"seller"},
    # Answering a shopper through the store's number: managers and admins from the console, sellers from their
    # opportunity; the back office reads conversations but does not answer them.
    "replies.console_reply": PEOPLE_MANAGERS, "replies.seller_reply": {"seller"},
    "seller.opt_out": EVERYONE,  # a seller from their app, the office from the Clientes module; rows: may_see_customer
    "auth.change_password": EVERYONE,
    "customers.index": EVERYONE, "customers.detail": EVERYONE, "customers.add_note": EVERYONE,
    "api.get_settings": BRAND, "api.put_settings": BRAND, "api.list_templates": BRAND, "api.get_stats": OFFICE,
    "crm_api.list_opportunities": EVERYONE, "crm_api.patch_opportunity": EVERYONE,
    "crm_api.create_opportunities": OFFICE, "crm_api.get_customer": EVERYONE,
}
# Public by design or authenticated otherwise (signatures, development only): not part of this walk.
NOT_WALKED = {"index", "static", "auth.login", "auth.logout", "health.healthz", "openapi.openapi_json",
              "api.validate_coupon", "simulator.page", "simulator.messages", "simulator.sign",
              "simulator.claim", "webhooks.meta_handshake", "webhooks.meta_events",
              "webhooks.whatsapp_inbound", "webhooks.whatsapp_status", "store_webhooks.store_carts",
              "store_webhooks.store_orders", "shop_webhooks.shopify_webhook", "shop_webhooks.nuvemshop_webhook",
              "shop_webhooks.woocommerce_webhook"}


@pytest.fixture
def world(session):
    return build_world(session)


@pytest.fixture
def lax_app(runtime):
    """The app with CSRF off, so a POST reaches the access check and the view (CSRF has its own tests)."""
    from app import create_app

    return create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})


def signed_in(app, kind):
    client = app.test_client()
    email = PEOPLE[kind][0]
    response = client.post("/entrar", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, (kind, response.status_code)
    return client


def _url(rule, world) -> str:
    """The rule's URL with the caller's own branch's objects (so only the endpoint-level rule decides)."""
    values = {
        "customer_id": world.customers["own"].id, "opportunity_id": world.opportunities["own"].id,
        "seller_id": world.users["seller"].id, "rule_id": world.rule.id, "entry_id": world.faq.id,
        "key": "greeting", "phone": world.customers["own"].phone,
    }
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), rule.rule)


def _who(endpoint: str, method: str) -> set[str]:
    entry = WHO[endpoint]
    return entry[method] if isinstance(entry, dict) else entry


def _methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def test_the_table_covers_every_route(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - NOT_WALKED == set(WHO), "a route is missing from (or gone from) the access table"


@pytest.mark.parametrize("kind", KINDS)
def test_every_route_as_every_kind_of_user(lax_app, world, kind):
    client = signed_in(lax_app, kind)
    token = {"Authorization": f"Bearer {world.tokens[kind]}"}
    refused, let_in = [], []
    for rule in lax_app.url_map.iter_rules():
        if rule.endpoint in NOT_WALKED:
            continue
        for method in _methods(rule):
            url = _url(rule, world)
            api = url.startswith("/api/")
            response = client.open(url, method=method, headers=token if api else None,
                                   json={} if api and method != "GET" else None)
            allowed = kind in _who(rule.endpoint, method)
            if allowed and response.status_code in (401, 403) or (not api and response.status_code == 302
                                                                  and "/entrar" in response.location):
                refused.append((method, url, response.status_code))
            if not allowed and response.status_code != 403:
                let_in.append((method, url, response.status_code))
            assert response.status_code < 500, (method, url, response.status_code)
    assert refused == [], f"{kind} was refused where the table lets them in"
    assert let_in == [], f"{kind} got in where the table refuses them"


def test_strangers_go_to_the_login_page_or_get_401(lax_app, world):
    client = lax_app.test_client()
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint in NOT_WALKED:
            continue
        for method in _methods(rule):
            url = _url(rule, world)
            response = client.open(url, method=method)
            if url.startswith("/api/"):
                assert response.status_code == 401, (method, url)
            else:
                assert response.status_code == 302 and "/entrar" in response.location, (method, url)


# --- rows: another branch's customers, sellers and opportunities ---------------------------------------------


def api(client, world, kind, method, url, **kwargs):
    return client.open(url, method=method, headers={"Authorization": f"Bearer {world.tokens[kind]}"}, **kwargs)


@pytest.mark.parametrize("kind,visible", [
    ("admin", {"own", "other", "own_backlog", "other_backlog"}),
    ("brand_manager", {"own", "other", "own_backlog", "other_backlog"}),
    ("brand_backoffice", {"own", "other", "own_backlog", "other_backlog"}),
    ("branch_manager", {"own", "own_backlog"}),
    ("branch_backoffice", {"own", "own_backlog"}),
    ("seller", {"own"}),
])
def test_who_sees_which_opportunities_and_customers(client, world, kind, visible):
    listed = api(client, world, kind, "GET", "/api/opportunities").get_json()["items"]
    by_id = {o.id: key for key, o in world.opportunities.items()}
    assert {by_id[item["id"]] for item in listed} == visible
    for key, person in world.customers.items():
        status = api(client, world, kind, "GET", f"/api/customers/{person.phone}").status_code
        assert status == (200 if key in visible else 404), (kind, key, status)


def test_a_branch_manager_cannot_reassign_another_branchs_backlog(client, world):
    other = world.opportunities["other_backlog"]
    response = api(client, world, "branch_manager", "PATCH", f"/api/opportunities/{other.id}",
                   json={"seller_id": world.users["seller"].id})
    assert response.status_code == 404
    own = world.opportunities["own_backlog"]
    to_other_seller = api(client, world, "branch_manager", "PATCH", f"/api/opportunities/{own.id}",
                          json={"seller_id": world.users["other_seller"].id})
    assert to_other_seller.status_code == 400 and "seller_id" in to_other_seller.get_json()["fields"]
    ok = api(client, world, "branch_manager", "PATCH", f"/api/opportunities/{own.id}",
             json={"seller_id": world.users["seller"].id})
    assert ok.status_code == 200 and ok.get_json()["seller_id"] == world.users["seller"].id


def test_branch_users_create_opportunities_only_for_their_branchs_customers(client, world, session):
    refused = api(client, world, "branch_manager", "POST", "/api/opportunities",
                  json={"phone": world.customers["other"].phone, "reason": "manual"})
    assert refused.status_code == 400 and refused.get_json()["rows"][0]["field"] == "phone"
    created = api(client, world, "branch_backoffice", "POST", "/api/opportunities",
                  json={"phone": "+5511955554444", "name": "Nova Cliente", "reason": "manual"})
    assert created.status_code == 201
    from models import Customer

    new = session.scalar(select(Customer).where(Customer.phone == "+5511955554444"))
    assert new.store_id == world.stores["SP"].id  # a branch's new customer is the branch's


def test_brand_wide_settings_are_refused_to_a_branch_manager(client, lax_app, world):
    for method in ("GET", "PUT"):
        assert api(client, world, "branch_manager", method, "/api/recovery/settings",
                   json={"delay_minutes": 15}).status_code == 403
    page = signed_in(lax_app, "branch_manager")
    assert page.post("/gestao/configuracoes", data={"quarantine_days": "1"}).status_code == 403
    assert api(client, world, "brand_manager", "PUT", "/api/recovery/settings",
               json={"delay_minutes": 15}).status_code == 200


@pytest.mark.parametrize("store_field", ["", "other"])
def test_a_branch_manager_creates_users_only_in_their_branch(lax_app, world, session, store_field):
    page = signed_in(lax_app, "branch_manager")
    store_id = "" if store_field == "" else str(world.stores["RJ"].id)
    response = page.post("/gestao/usuarios/novo", data={
        "name": "Novo Apoio", "email": "novo.apoio@acesso.loja", "password": "uma-senha-bem-longa",
        "role": "backoffice", "store_id": store_id})
    created = session.scalar(select(User).where(User.email == "novo.apoio@acesso.loja"))
    if store_field == "":
        # Nothing chosen: the new user belongs to the manager's branch, never to the whole brand.
        assert response.status_code == 303 and created.store_id == world.stores["SP"].id
    else:
        assert response.status_code == 400 and created is None
    assert page.post("/gestao/usuarios/novo", data={
        "name": "Outro Gerente", "email": "outro.gerente@acesso.loja", "password": "uma-senha-bem-longa",
        "role": "manager", "store_id": str(world.stores["SP"].id)}).status_code == 400


def test_pages_show_a_branch_only_its_rows(lax_app, world):
    page = signed_in(lax_app, "branch_manager")
    other_customer, other_seller = world.customers["other"], world.users["other_seller"]
    assert page.get(f"/console/conversas/{other_customer.id}").status_code == 404
    assert "Bia Carioca" not in page.get("/console/conversas").get_data(as_text=True)
    assert page.get(f"/gestao/vendedores/{other_seller.id}").status_code == 404
    assert page.post(f"/gestao/vendedores/{other_seller.id}/status", data={"action": "deactivate"}).status_code == 404
    listing = page.get("/gestao/oportunidades").get_data(as_text=True)
    assert "Ana Paulista" in listing and "Bia Carioca" not in listing and "Duda Carioca" not in listing
    assert "Other Seller" not in page.get("/gestao/resultados").get_data(as_text=True)
    seller = signed_in(lax_app, "seller")
    assert seller.get(f"/vendedor/clientes/{other_customer.id}").status_code == 404
    backlog = world.customers["own_backlog"]
    assert seller.post(f"/vendedor/clientes/{backlog.id}/contato").status_code == 404  # not in their portfolio
    assert seller.get(f"/vendedor/oportunidades/{world.opportunities['other'].id}").status_code == 404


def test_the_kinds_of_user_match_the_roles(world):
    from crm.access import Kind, kind_of

    assert {kind: kind_of(user).value for kind, user in world.users.items() if not kind.startswith("other")} == {
        k: k for k in KINDS}
    assert kind_of(world.users["other_seller"]) is Kind.SELLER
    assert world.users["branch_manager"].role is Role.MANAGER
    assert isinstance(world.opportunities["own"], Opportunity)
