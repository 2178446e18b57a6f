"""The "Clientes" pages (web.customers): the list as each kind of user sees it (search, filters, sorting, pages),
one customer's sections from a small hand-made history, shared notes through the form, and the refusals (another
branch's customer is a 404, a value that cannot be used is a 400 naming the field)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm import metrics
from crm.access import may_see_customer, visible_customers
from crm.users import create_user
from models import (
    Customer, CustomerNote, Opportunity, OpportunityStatus, OpportunityType, Order, OrderItem, OrderStatus, Product,
    Variant, utcnow,
)
from tests.crm_helpers import customer, make_store

PASSWORD = "uma-senha-bem-longa"
NOW = utcnow()


@pytest.fixture
def app(runtime):
    from app import create_app

    return create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False})


def _order(session, who, external_id, days_ago, lines, status=OrderStatus.PAID, seller_code=None):
    order = Order(external_id=external_id, customer_id=who.id, status=status, currency="BRL",
                  total=sum(Decimal(price) * quantity for _, _, quantity, price in lines),
                  placed_at=NOW - timedelta(days=days_ago), seller_code=seller_code)
    order.items = [OrderItem(sku=sku, name=name, quantity=quantity, unit_price=Decimal(price))
                   for sku, name, quantity, price in lines]
    session.add(order)
    return order


def _customer(session, phone, name, city, store=None, owner=None):
    made = customer(session, phone, name)
    made.city, made.store_id, made.owner_seller_id = city, store.id if store else None, owner.id if owner else None
    return made


@pytest.fixture
def world(session):
    sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
    rj = make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21")
    users = {}
    for key, role, store in (("dona", "admin", None), ("marca", "manager", None), ("filial", "manager", sp),
                             ("apoio", "backoffice", sp), ("central", "backoffice", None), ("ana", "seller", sp),
                             ("rui", "seller", rj)):
        users[key] = create_user(session, email=f"{key}@loja.example", role=role, password=PASSWORD,
                                 name=key.title(), store_id=store.id if store else None)
    users["ana"].seller_code = "V-ANA"
    shoes = Product(key="tenis-corrida", name="Tênis Corrida", price=Decimal("299.90"), category="Calçados",
                    brand="Passo", attributes={"material": "Couro"}, active=True, created_at=NOW - timedelta(days=400))
    shoes.variants = [Variant(sku="TEN-40", size="40", color="Preto", options={}, price=Decimal("299.90"), stock=3,
                              active=True)]
    shirt = Product(key="camiseta", name="Camiseta Básica", price=Decimal("59.90"), category="Roupas",
                    brand="Fio", attributes={}, active=True, created_at=NOW - timedelta(days=400))
    shirt.variants = [Variant(sku="CAM-M", size="M", color="Branca", options={}, price=Decimal("59.90"), stock=10,
                              active=True)]
    session.add_all([shoes, shirt])
    people = {
        "beatriz": _customer(session, "+5511999990001", "Beatriz Lima", "São Paulo", sp, users["ana"]),
        "carla": _customer(session, "+5511988880002", "Carla Souza", "Campinas", sp),
        "diego": _customer(session, "+5521977770003", "Diego Rocha", "Niterói", rj, users["rui"]),
        "eva": _customer(session, "+5521966660004", "Eva Nunes", "Rio de Janeiro", rj),
        "fabio": _customer(session, "+5531955550005", "Fábio Mendes", "Belo Horizonte"),
    }
    session.flush()
    session.add(Opportunity(customer_id=people["eva"].id, type=OpportunityType.MANUAL, reason="manual",
                            status=OpportunityStatus.ASSIGNED, seller_id=users["ana"].id))
    b = people["beatriz"]
    # Last 90 days: R$ 479,60 in two orders; the 90 days before: R$ 119,80; a cancelled order is no sale.
    _order(session, b, "o-1", 10, [("TEN-40", "Tênis Corrida 40", 1, "299.90"), ("CAM-M", "Camiseta M", 2, "59.90")],
           seller_code="V-ANA")
    _order(session, b, "o-2", 60, [("CAM-M", "Camiseta M", 1, "59.90")])
    _order(session, b, "o-x", 5, [("TEN-40", "Tênis Corrida 40", 5, "299.90")], status=OrderStatus.CANCELLED)
    _order(session, b, "o-3", 120, [("CAM-M", "Camiseta M", 2, "59.90")])
    _order(session, people["carla"], "o-4", 200, [("X-1", "Sofá", 1, "1000.00")])
    _order(session, people["diego"], "o-5", 30, [("X-2", "Meia", 1, "50.00")])
    people["carla"].opted_out_at = NOW - timedelta(days=3)
    people["fabio"].email = "Fabio.Mendes@Example.com"
    session.flush()
    # The list reads crm.metrics' figures, which the scheduler keeps; here they are computed at once.
    metrics.refresh(session, [c.id for c in people.values()], NOW)
    session.commit()
    return {"sp": sp, "rj": rj, "users": users, "customers": people}


SEES = {
    "dona": {"beatriz", "carla", "diego", "eva", "fabio"}, "marca": {"beatriz", "carla", "diego", "eva", "fabio"},
    "central": {"beatriz", "carla", "diego", "eva", "fabio"},
    "filial": {"beatriz", "carla", "eva"}, "apoio": {"beatriz", "carla", "eva"},
    "ana": {"beatriz", "eva"}, "rui": {"diego"},
}
NAMES = {"beatriz": "Beatriz Lima", "carla": "Carla Souza", "diego": "Diego Rocha", "eva": "Eva Nunes",
         "fabio": "Fábio Mendes"}


def login(app, who):
    client = app.test_client()
    response = client.post("/entrar", data={"email": f"{who}@loja.example", "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def text(response) -> str:
    return response.get_data(as_text=True).replace("\xa0", " ")


def listed(response) -> list[str]:
    """The customers' names in the list, in order."""
    block = text(response).split('class="customer-items"', 1)
    if len(block) < 2:
        return []
    return re.findall(r"<strong>([^<]+)</strong>", block[1].split("</ul>", 1)[0])


def test_visible_customers_agrees_with_may_see_customer_for_every_user_and_customer(session, world):
    customers = session.scalars(select(Customer)).all()
    for key, user in world["users"].items():
        visible = {c.id for c in session.scalars(visible_customers(session, user))}
        for c in customers:
            assert (c.id in visible) == may_see_customer(session, user, c), (key, c.name)
        assert {k for k, c in world["customers"].items() if c.id in visible} == SEES[key], key


@pytest.mark.parametrize("who", sorted(SEES))
def test_each_kind_of_user_lists_exactly_the_customers_they_may_see(app, world, who):
    client = login(app, who)
    response = client.get("/clientes")
    assert response.status_code == 200
    assert set(listed(response)) == {NAMES[k] for k in SEES[who]}
    assert 'href="/clientes"' in text(response)  # the menu links to the module
    for key, c in world["customers"].items():
        status = client.get(f"/clientes/{c.id}").status_code
        assert status == (200 if key in SEES[who] else 404), (who, key, status)


def test_search_by_name_phone_digits_and_city_without_case(app, world):
    client = login(app, "dona")
    assert listed(client.get("/clientes?q=beatriz")) == ["Beatriz Lima"]
    assert listed(client.get("/clientes?q=LIMA")) == ["Beatriz Lima"]
    assert listed(client.get("/clientes?q=97777")) == ["Diego Rocha"]
    assert listed(client.get("/clientes?q=(21) 96666-0004")) == ["Eva Nunes"]
    assert listed(client.get("/clientes?q=campinas")) == ["Carla Souza"]
    assert listed(client.get("/clientes?q=100%25")) == []  # a LIKE wildcard is a character like any other
    assert listed(client.get("/clientes?q=mendes@example")) == ["Fábio Mendes"]  # the e-mail, any case
    # A seller searches only their own customers.
    assert listed(login(app, "ana").get("/clientes?q=souza")) == []


def test_filters_by_seller_and_store(app, world):
    users, stores = world["users"], world
    admin = login(app, "dona")
    assert listed(admin.get(f"/clientes?seller={users['ana'].id}")) == ["Beatriz Lima"]
    assert set(listed(admin.get(f"/clientes?store={stores['rj'].id}"))) == {"Diego Rocha", "Eva Nunes"}
    page = text(admin.get("/clientes"))
    assert 'name="seller"' in page and 'name="store"' in page
    branch = login(app, "filial")
    page = text(branch.get("/clientes"))
    assert 'name="seller"' in page and 'name="store"' not in page
    # Another branch's seller is not a filter a branch manager may use; the store filter is ignored for them.
    assert branch.get(f"/clientes?seller={users['rui'].id}").status_code == 400
    assert set(listed(branch.get(f"/clientes?store={stores['rj'].id}"))) == {"Beatriz Lima", "Carla Souza", "Eva Nunes"}
    seller = login(app, "ana")
    assert 'name="seller"' not in text(seller.get("/clientes"))
    assert set(listed(seller.get(f"/clientes?seller={users['rui'].id}"))) == {"Beatriz Lima", "Eva Nunes"}


def test_sorting_by_name_last_purchase_and_revenue(app, world):
    client = login(app, "dona")
    assert listed(client.get("/clientes")) == ["Beatriz Lima", "Carla Souza", "Diego Rocha", "Eva Nunes",
                                               "Fábio Mendes"]
    # Beatriz 10 days ago (the cancelled order 5 days ago does not count), Diego 30, Carla 200, then nobody.
    assert listed(client.get("/clientes?ordem=ultima_compra"))[:3] == ["Beatriz Lima", "Diego Rocha", "Carla Souza"]
    # Carla R$ 1.000,00, Beatriz R$ 599,40, Diego R$ 50,00.
    assert listed(client.get("/clientes?ordem=receita"))[:3] == ["Carla Souza", "Beatriz Lima", "Diego Rocha"]
    assert "R$ 599,40" in text(client.get("/clientes?q=beatriz"))


def test_filters_by_risk_band_and_last_purchase_and_sorting_by_risk(app, world):
    client = login(app, "dona")
    # Beatriz bought 10, 60 and 120 days ago (steady): low risk; Diego once, 30 days ago; Carla once, 200 days ago
    # (over twice the store's interval): high; Eva and Fábio never bought.
    assert listed(client.get("/clientes?risco=inativo")) == ["Eva Nunes", "Fábio Mendes"]
    assert listed(client.get("/clientes?risco=alto")) == ["Carla Souza"]
    assert listed(client.get("/clientes?ultima_compra=30")) == ["Beatriz Lima", "Diego Rocha"]
    assert listed(client.get("/clientes?ultima_compra=180")) == ["Beatriz Lima", "Diego Rocha"]
    assert listed(client.get("/clientes?ultima_compra=365")) == ["Beatriz Lima", "Carla Souza", "Diego Rocha"]
    assert listed(client.get("/clientes?ultima_compra=nunca")) == ["Eva Nunes", "Fábio Mendes"]
    assert listed(client.get("/clientes?ultima_compra=mais_365")) == []
    by_risk = listed(client.get("/clientes?ordem=risco"))
    assert by_risk[0] == "Carla Souza" and by_risk[-2:] == ["Fábio Mendes", "Eva Nunes"]  # inactive last
    # Filters combine, and the page keeps them in its links.
    page = text(client.get("/clientes?risco=alto&ultima_compra=365&ordem=risco"))
    assert 'value="alto" selected' in page and 'value="365" selected' in page
    assert "Risco alto" in page


def test_the_count_stops_at_the_cap_and_pages_go_on_while_full(app, session, world, monkeypatch):
    import web.customers

    monkeypatch.setattr(web.customers, "COUNT_CAP", 3)
    monkeypatch.setattr(web.customers, "PER_PAGE", 2)
    client = login(app, "dona")
    first = text(client.get("/clientes"))
    assert "Mais de 3 clientes" in first and "Próxima" in first and "Página 1<" in first
    third = client.get("/clientes?page=3")
    assert listed(third) == ["Fábio Mendes"] and "Próxima" not in text(third)


def test_pages_of_thirty_keep_the_filters(app, session, world):
    for i in range(31):
        _customer(session, f"+55119400000{i:02d}", f"Zeca {i:02d}", "Santos", world["sp"])
    session.commit()
    client = login(app, "dona")
    first = client.get("/clientes?q=zeca")
    assert len(listed(first)) == 30 and "Página 1 de 2" in text(first)
    assert "/clientes?q=zeca&amp;page=2" in text(first)
    second = client.get("/clientes?q=zeca&page=2")
    assert listed(second) == ["Zeca 30"]
    assert listed(client.get("/clientes?q=zeca&page=3")) == []


@pytest.mark.parametrize("query,field", [
    ("page=0", "page"), ("page=abc", "page"), ("ordem=x", "ordem"), ("seller=abc", "seller"),
    ("store=abc", "store"), ("seller=999999", "seller"), ("risco=altissimo", "risco"),
    ("ultima_compra=7", "ultima_compra"),
])
def test_a_bad_list_value_is_a_400_naming_the_field(app, world, query, field):
    response = login(app, "dona").get(f"/clientes?{query}")
    assert response.status_code == 400
    assert f"O campo “{field}” não pôde ser usado" in text(response)


@pytest.mark.parametrize("query,field", [("periodo=7", "periodo"), ("periodo=abc", "periodo"),
                                         ("agrupar=nada", "agrupar"), ("page=-1", "page")])
def test_a_bad_detail_value_is_a_400_naming_the_field(app, world, query, field):
    beatriz = world["customers"]["beatriz"]
    response = login(app, "ana").get(f"/clientes/{beatriz.id}?{query}")
    assert response.status_code == 400 and f"O campo “{field}”" in text(response)


def test_overview_risk_contact_recommended_and_most_bought_from_a_small_history(app, world):
    beatriz = world["customers"]["beatriz"]
    client = login(app, "ana")
    page = text(client.get(f"/clientes/{beatriz.id}"))
    for tab in ("Visão geral", "Risco de perda", "Contato", "Produtos recomendados", "Mais comprados"):
        assert f">{tab}</a>" in page
    assert 'aria-current="page"' in page and "voltar à lista" in page
    # Visão geral: 90 days R$ 479,60 against R$ 119,80 before (+300,3%); 2 orders against 1 (+100%).
    values = page.split('class="period-values"', 1)[1].split("</table>", 1)[0]
    assert "R$ 479,60" in values and "R$ 119,80" in values and "+300,3%" in values and "+100,0%" in values
    assert 'aria-label="Compras nos últimos 12 meses"' in page and "<script" not in page.split("<svg", 1)[1]
    assert "Tênis Corrida 40" in page and "Total R$ 419,70" in page and "Vendedor: Ana" in page
    assert "Loja: Loja São Paulo" in page
    # Another period: 30 days hold only o-1.
    thirty = text(client.get(f"/clientes/{beatriz.id}?periodo=30"))
    assert "R$ 419,70" in thirty.split('class="period-values"', 1)[1].split("</table>", 1)[0]
    # Risco de perda: an active customer, with an index, a band and each factor's reason.
    risk = page.split('id="risco"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"\d+,\d%", risk) and re.search(r"Risco (Baixo|Médio|Alto)", risk)
    for factor in ("Última compra", "Ticket médio", "Frequência", "Crescimento", "Mix de produtos"):
        assert factor in risk
    # Contato.
    contact = page.split('id="contato"', 1)[1].split("</section>", 1)[0]
    assert "+55 (11) 99999-0001" in contact and "São Paulo" in contact and "Loja São Paulo" in contact
    assert "Ana" in contact and "Recebe mensagens" in contact and 'name="csrf_token"' in contact
    # Produtos recomendados: the three lists.
    for label in ("Mais populares", "Maior índice de satisfação", "Novidades em destaque"):
        assert label in page
    # Mais comprados, by name and by category.
    bought = page.split('class="most-bought"', 1)[1].split("</table>", 1)[0]
    assert "Camiseta Básica" in bought and "R$ 299,50" in bought
    by_category = text(client.get(f"/clientes/{beatriz.id}?agrupar=category"))
    bought = by_category.split('class="most-bought"', 1)[1].split("</table>", 1)[0]
    assert "Roupas" in bought and "Calçados" in bought
    assert "Couro" in text(client.get(f"/clientes/{beatriz.id}?agrupar=attr:material"))


def test_an_inactive_customer_and_a_consent_refusal_are_said_plainly(app, world):
    client = login(app, "dona")
    fabio = text(client.get(f"/clientes/{world['customers']['fabio'].id}"))
    assert "Cliente inativo: sem compras nos últimos 12 meses" in fabio and "Nenhuma compra ainda." in fabio
    carla = text(client.get(f"/clientes/{world['customers']['carla'].id}"))
    day = (NOW - timedelta(days=3)).astimezone(client.application.extensions["runtime"].settings.store_timezone)
    assert f"Pediu para não receber mensagens em {day:%d/%m/%Y}" in carla


def test_a_note_is_added_through_the_form_and_shown_newest_first(app, session, world):
    beatriz = world["customers"]["beatriz"]
    client = login(app, "filial")
    first = client.post(f"/clientes/{beatriz.id}/anotacoes", data={"kind": "visita", "text": "Visitou a loja."})
    assert first.status_code == 303 and first.location.endswith(f"/clientes/{beatriz.id}#contato")
    seller = login(app, "ana")
    assert seller.post(f"/clientes/{beatriz.id}/anotacoes",
                       data={"kind": "reclamacao", "text": "Reclamou <b>do frete</b>."}).status_code == 303
    page = text(seller.get(f"/clientes/{beatriz.id}"))
    timeline = page.split('class="history notes-timeline"', 1)[1].split("</ol>", 1)[0]
    assert timeline.index("Reclamou") < timeline.index("Visitou a loja.")
    assert "&lt;b&gt;do frete&lt;/b&gt;" in timeline and "Reclamação" in timeline and "Visita" in timeline
    assert "Filial" in timeline and "Ana" in timeline
    assert session.scalar(select(CustomerNote).where(CustomerNote.kind == "visita")).author_id == \
        world["users"]["filial"].id


@pytest.mark.parametrize("form,field", [
    ({"kind": "oportunidade", "text": "oi"}, "tipo"), ({"kind": "xyz", "text": "oi"}, "tipo"),
    ({"kind": "nota", "text": "   "}, "anotação"), ({"kind": "nota", "text": "a" * 2001}, "anotação"),
])
def test_a_refused_note_is_a_400_naming_the_field_and_nothing_is_saved(app, session, world, form, field):
    beatriz = world["customers"]["beatriz"]
    response = login(app, "ana").post(f"/clientes/{beatriz.id}/anotacoes", data=form)
    assert response.status_code == 400 and f"O campo “{field}”" in text(response)
    assert session.scalars(select(CustomerNote)).all() == []


def test_a_note_on_a_customer_out_of_scope_is_a_404(app, session, world):
    diego = world["customers"]["diego"]
    for who in ("ana", "filial", "apoio"):
        response = login(app, who).post(f"/clientes/{diego.id}/anotacoes", data={"kind": "nota", "text": "oi"})
        assert response.status_code == 404, who
    assert login(app, "ana").get("/clientes/999999").status_code == 404
    assert session.scalars(select(CustomerNote)).all() == []


def test_strangers_go_to_the_login_page(app, world):
    client = app.test_client()
    for url in ("/clientes", f"/clientes/{world['customers']['beatriz'].id}"):
        response = client.get(url)
        assert response.status_code == 302 and "/entrar" in response.location
