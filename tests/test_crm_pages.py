"""Seller and manager pages: login, CSRF, role checks on every page, and the flows sellers and managers use."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from crm.assignment import assign
from crm.opportunities import create, crm_settings
from crm.users import create_user
from models import Customer, Opportunity, OpportunityStatus, OpportunityType, User, utcnow
from tests.crm_helpers import TZ, customer, make_seller, make_store

PASSWORD = "uma-senha-bem-longa"


@pytest.fixture
def app(runtime):
    from app import create_app

    return create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})


@pytest.fixture
def shop(session):
    sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
    people = {"sp": sp}
    for email, role in (("admin", "admin"), ("gerente", "manager"), ("apoio", "backoffice")):
        people[email] = create_user(session, email=f"{email}@loja.example", role=role, password=PASSWORD,
                                    store_id=sp.id)
    for name in ("ana", "bia"):
        seller = create_user(session, email=f"{name}@loja.example", role="seller", password=PASSWORD,
                             name=name.title(), store_id=sp.id)
        seller.region_ddds = ["11"]
        people[name] = seller
    session.commit()
    return people


def login(client, email, password=PASSWORD, next_url=None, ip="127.0.0.1"):
    url = "/entrar" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password}, environ_overrides={"REMOTE_ADDR": ip})


def _held(session, seller, phone):
    opportunity = create(session, customer(session, phone, "Carla Dias"), type=OpportunityType.MANUAL,
                         reason="manual", now=utcnow()).opportunity
    assert assign(session, opportunity, utcnow(), TZ).id == seller.id
    session.commit()
    return opportunity


def _page_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in ("seller", "manager")]


def test_every_page_declares_its_roles_and_sends_strangers_to_login(app, client, shop):
    rules = _page_rules(app)
    assert len(rules) >= 12
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_action", None), f"{rule.endpoint} has no access check"
        url = re.sub(r"<id:\w+>", "1", rule.rule)
        method = "POST" if "POST" in rule.methods and "GET" not in rule.methods else "GET"
        response = client.open(url, method=method)
        assert response.status_code == 302 and "/entrar" in response.location, rule.rule


@pytest.mark.parametrize("who,allowed,forbidden", [
    ("ana", ["/vendedor/", "/vendedor/carteira", "/vendedor/resultados"],
     ["/gestao/vendedores", "/gestao/oportunidades", "/gestao/resultados", "/gestao/configuracoes"]),
    # A manager of one branch: the brand's CRM rules are not theirs to change (crm.access).
    ("gerente", ["/gestao/vendedores", "/gestao/oportunidades", "/gestao/resultados", "/gestao/usuarios/novo"],
     ["/vendedor/", "/vendedor/carteira", "/gestao/configuracoes"]),
    ("apoio", ["/gestao/oportunidades", "/gestao/resultados"],
     ["/gestao/vendedores", "/gestao/configuracoes", "/gestao/usuarios/novo", "/vendedor/"]),
])
def test_role_matrix(client, shop, who, allowed, forbidden):
    assert login(client, f"{who}@loja.example").status_code == 302
    for url in allowed:
        assert client.get(url).status_code == 200, url
    for url in forbidden:
        response = client.get(url)
        assert response.status_code == 403 and "Acesso negado" in response.get_data(as_text=True), url


def test_a_successful_login_does_not_give_back_the_guesses_counted_before_it(client, session, shop):
    for _ in range(3):
        assert login(client, "ana@loja.example", "senha-errada-123").status_code == 401
    assert login(client, "ana@loja.example").status_code == 302  # the 4th attempt, counted too
    client.post("/sair")
    assert login(client, "ana@loja.example", "senha-errada-123").status_code == 401  # the 5th
    assert login(client, "ana@loja.example", "senha-errada-123").status_code == 429  # not five more


def test_login_failures_are_rate_limited_and_inactive_users_cannot_enter(client, session, shop):
    for _ in range(5):
        assert login(client, "ana@loja.example", "senha-errada-123").status_code == 401
    blocked = login(client, "ana@loja.example")  # even the right password: this (e-mail, address) is locked
    assert blocked.status_code == 429 and "Muitas tentativas" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) == 60
    # The lock is per (e-mail, address): nobody can lock an account out from elsewhere, nor other accounts here.
    assert login(client, "bia@loja.example").status_code == 302
    assert login(client, "ana@loja.example", ip="10.0.0.9").status_code == 302
    shop["bia"].active = False
    session.commit()
    assert login(client, "bia@loja.example", ip="10.0.0.2").status_code == 401


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example", "/\\evil.example"])
def test_login_never_redirects_off_site(client, shop, target):
    response = login(client, "gerente@loja.example", next_url=target)
    assert response.status_code == 302 and urlparse(response.location).netloc in ("", "localhost")
    assert response.location.endswith("/console/")


def test_login_returns_to_the_requested_page(client, shop):
    assert login(client, "gerente@loja.example", next_url="/gestao/resultados").location.endswith(
        "/gestao/resultados")


def test_forms_need_a_csrf_token_but_the_api_does_not(runtime, shop):
    from app import create_app

    strict = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()
    assert login(strict, "gerente@loja.example").status_code == 400  # no token: refused
    page = strict.get("/entrar").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    ok = strict.post("/entrar", data={"email": "gerente@loja.example", "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 302
    assert strict.post("/sair").status_code == 400  # logging out needs the token too
    assert strict.get("/api/opportunities").status_code == 401  # bearer auth, not session, and no CSRF


def test_seller_starts_a_conversation_in_whatsapp_and_finishes_it(client, session, shop):
    mine = _held(session, shop["ana"], "+5511999990001")
    other = _held(session, shop["bia"], "+5511999990002")
    login(client, "ana@loja.example")
    queue = client.get("/vendedor/").get_data(as_text=True)
    assert "Carla Dias" in queue and "Atribuída" in queue
    page = client.get(f"/vendedor/oportunidades/{mine.id}").get_data(as_text=True)
    assert "Oi, Carla! Aqui é Ana" in page  # the brand's suggested message, rendered
    assert client.get(f"/vendedor/oportunidades/{other.id}").status_code == 404

    started = client.post(f"/vendedor/oportunidades/{mine.id}/iniciar", data={"message": "Oi Carla, tudo bem?"})
    link = urlparse(started.location)
    assert link.netloc == "wa.me" and link.path == "/5511999990001"
    assert parse_qs(link.query)["text"] == ["Oi Carla, tudo bem?"]
    session.expire_all()
    assert session.get(Opportunity, mine.id).status is OpportunityStatus.IN_PROGRESS

    assert client.post(f"/vendedor/oportunidades/{mine.id}/finalizar", data={"result": "talvez"}).status_code == 303
    session.expire_all()
    assert session.get(Opportunity, mine.id).status is OpportunityStatus.IN_PROGRESS  # refused, nothing changed
    client.post(f"/vendedor/oportunidades/{mine.id}/finalizar", data={"result": "positive", "note": "vai passar na loja"})
    session.expire_all()
    done = session.get(Opportunity, mine.id)
    assert done.status is OpportunityStatus.FINISHED and done.result_note == "vai passar na loja"


def test_seller_contacts_a_portfolio_customer(client, session, shop):
    buyer = customer(session, "+5511999990003", "Davi")
    buyer.owner_seller_id = shop["ana"].id
    stranger = customer(session, "+5511999990004", "Eva")
    session.commit()
    login(client, "ana@loja.example")
    assert "Davi" in client.get("/vendedor/carteira").get_data(as_text=True)
    response = client.post(f"/vendedor/clientes/{buyer.id}/contato")
    assert response.status_code == 303
    opened = session.scalar(select(Opportunity).where(Opportunity.customer_id == buyer.id))
    assert opened.type is OpportunityType.CONTACT and opened.status is OpportunityStatus.ASSIGNED
    assert client.get(f"/vendedor/clientes/{stranger.id}").status_code == 404
    client.post(f"/vendedor/clientes/{stranger.id}/contato")
    assert session.scalar(select(Opportunity).where(Opportunity.customer_id == stranger.id)) is None


def test_manager_edits_capacity_with_errors_next_to_fields(client, session, shop):
    login(client, "gerente@loja.example")
    seller_id = shop["ana"].id
    page = client.get(f"/gestao/vendedores/{seller_id}").get_data(as_text=True)
    assert 'id="daily-cap">9<' in page  # 8 h, 30 % idle, 15 min
    bad = client.post(f"/gestao/vendedores/{seller_id}", data={
        "hours_per_day": "30", "idle_share": "0.5", "avg_conversation_minutes": "10", "max_portfolio": "200",
        "region_ddds": "11, 00"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'id="hours_per_day-error"' in body and "DDD inválido: 00" in body
    session.expire_all()
    assert session.get(User, seller_id).max_portfolio == 300  # nothing saved
    good = client.post(f"/gestao/vendedores/{seller_id}", data={
        "hours_per_day": "6", "idle_share": "0,5", "avg_conversation_minutes": "10", "max_portfolio": "200",
        "region_ddds": "11, 12"})
    assert good.status_code == 303
    session.expire_all()
    seller = session.get(User, seller_id)
    assert (seller.max_portfolio, seller.region_ddds) == (200, ["11", "12"])
    assert 'id="daily-cap">18<' in client.get(f"/gestao/vendedores/{seller_id}").get_data(as_text=True)


def test_manager_deactivates_a_seller_and_spreads_the_portfolio(client, session, shop):
    carol = make_seller(session, "Carol", shop["sp"], ddds=["11"])
    for i in range(4):
        buyer = customer(session, f"+55119999900{i:02d}")
        buyer.owner_seller_id = shop["ana"].id
    session.commit()
    login(client, "gerente@loja.example")
    response = client.post(f"/gestao/vendedores/{shop['ana'].id}/status",
                           data={"action": "deactivate", "to": "even", "confirmar": "1"})
    assert response.status_code == 303
    session.expire_all()
    assert not session.get(User, shop["ana"].id).active
    owners = session.scalars(select(Customer.owner_seller_id)).all()
    assert sorted(owners) == sorted([shop["bia"].id, shop["bia"].id, carol.id, carol.id])


def test_manager_of_one_store_cannot_touch_another_stores_seller(client, session, shop):
    rj = make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21")
    far = make_seller(session, "Rui", rj, ddds=["21"])
    session.commit()
    login(client, "gerente@loja.example")
    assert client.get(f"/gestao/vendedores/{far.id}").status_code == 404
    assert client.post(f"/gestao/vendedores/{far.id}/status", data={"action": "deactivate"}).status_code == 404


def test_rules_refuse_a_suggested_message_that_does_not_render(client, session, shop):
    login(client, "admin@loja.example")
    data = {"quarantine_days": "10", "recovery_followup_hours": "12", "attribution_days": "7",
            "default_deadline_hours": "24", "suggested_message": "Oi {{ nome"}
    response = client.post("/gestao/configuracoes", data=data)
    assert response.status_code == 400
    session.expire_all()
    assert crm_settings(session).quarantine_days == 7
    data["suggested_message"] = "Oi {{ nome }}, aqui é {{ vendedor }}."
    assert client.post("/gestao/configuracoes", data=data).status_code == 303
    session.expire_all()
    assert crm_settings(session).quarantine_days == 10


def test_csv_import_page_reports_lines_and_creates_nothing_on_error(client, session, shop):
    from io import BytesIO

    login(client, "apoio@loja.example")
    bad = client.post("/gestao/oportunidades", data={
        "arquivo": (BytesIO(b"phone,name\n+5511999990001,Ana\nxx,Bia\n"), "lista.csv")},
        content_type="multipart/form-data")
    assert bad.status_code == 400 and "Linha 3, campo phone" in bad.get_data(as_text=True)
    assert session.scalar(select(Opportunity.id)) is None
    good = client.post("/gestao/oportunidades", data={
        "arquivo": (BytesIO(b"phone,name\n+5511999990001,Ana\n+5511999990002,Bia\n"), "lista.csv")},
        content_type="multipart/form-data")
    assert good.status_code == 303
    assert len(session.scalars(select(Opportunity)).all()) == 2


def test_results_page_ranks_sellers(client, session, shop):
    login(client, "gerente@loja.example")
    page = client.get("/gestao/resultados?de=2026-11-01&ate=2026-11-30").get_data(as_text=True)
    assert 'id="ranking"' in page and "Ana" in page and "Bia" in page and "R$" in page


@pytest.mark.parametrize("query", ["de=9999-12-30&ate=9999-12-31", "de=0001-01-01&ate=0001-01-02"])
def test_results_pages_refuse_dates_out_of_range_with_the_fields_error(client, session, shop, query):
    """The period's end + 1 day overflowed past year 9999 (a 500); unusable dates are the form's field errors."""
    login(client, "gerente@loja.example")
    page = client.get(f"/gestao/resultados?{query}")
    assert page.status_code == 400
    assert "use uma data entre 01/01/2000 e 31/12/2100" in page.get_data(as_text=True)


def test_sellers_page_formats_counts_for_pt_br(client, session, shop):
    shop["ana"].max_portfolio = 5000
    session.commit()
    login(client, "gerente@loja.example")
    page = client.get("/gestao/vendedores").get_data(as_text=True)
    assert "0 / 5.000" in page and "5000" not in page
