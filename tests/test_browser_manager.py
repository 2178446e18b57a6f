"""The manager's opportunity pages in a real browser: the labelled filters, the detail page with its history and
notes, and a reassignment that shows in the history with who did it (issue 20, item 11)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.assignment import assign
from crm.opportunities import create
from crm.users import create_user
from models import CustomerNote, Opportunity, OpportunityEvent, OpportunityType, utcnow
from tests.crm_helpers import TZ, customer, make_store
from tests.test_browser import PASSWORD, browser, log_in, page, server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_manager_filters_opens_an_opportunity_and_reassigns_it(page, server):
    from playwright.sync_api import expect

    with server.db.session() as session:
        sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
        create_user(session, email="gerente@loja.example", role="manager", password=PASSWORD, name="Gina Gerente",
                    store_id=sp.id)
        sellers = {}
        for name in ("Ana", "Bia"):
            seller = create_user(session, email=f"{name.lower()}@loja.example", role="seller", password=PASSWORD,
                                 name=name, store_id=sp.id)
            seller.region_ddds = ["11"]
            sellers[name] = seller
        session.flush()
        made = create(session, customer(session, "+5511999990001", "Carla Dias"), type=OpportunityType.MANUAL,
                      reason="manual", now=utcnow()).opportunity
        assert assign(session, made, utcnow(), TZ).name == "Ana"
        session.add(CustomerNote(customer_id=made.customer_id, author_id=sellers["Bia"].id, kind="visita",
                                 text="Passou na loja sábado.", created_at=utcnow()))
        session.commit()
        opportunity_id, bia_id, customer_id = made.id, sellers["Bia"].id, made.customer_id

    log_in(page, "gerente@loja.example")
    page.goto("/gestao/oportunidades")
    # Every filter has a visible label.
    page.get_by_label("Status", exact=True).select_option("assigned")
    page.get_by_label("Tipo", exact=True).select_option("manual")
    page.get_by_label("Vendedor", exact=True).select_option(label="Ana")
    page.get_by_role("button", name="Filtrar").click()
    ana_id = page.get_by_label("Vendedor", exact=True).input_value()
    expect(page).to_have_url(f"{server.url}/gestao/oportunidades?status=assigned&tipo=manual&vendedor={ana_id}")
    page.get_by_role("link", name="Carla Dias").click()

    expect(page).to_have_url(f"{server.url}/gestao/oportunidades/{opportunity_id}")
    expect(page.get_by_role("heading", name="Oportunidade de Carla Dias")).to_be_visible()
    expect(page.locator("#opportunity-seller")).to_have_text("Ana")
    expect(page.locator("#opportunity-events")).to_contain_text("Criada")
    expect(page.locator("#customer-notes")).to_contain_text("Passou na loja sábado.")
    expect(page.locator("#customer-link")).to_have_attribute("href", f"/clientes/{customer_id}")

    page.get_by_label("Novo vendedor").select_option(str(bia_id))
    page.get_by_role("button", name="Reatribuir").click()
    expect(page.get_by_role("status")).to_contain_text("Oportunidade reatribuída para Bia")
    expect(page.locator("#opportunity-seller")).to_have_text("Bia")
    first_event = page.locator("#opportunity-events tbody tr").first
    expect(first_event).to_contain_text("Reatribuída")
    expect(first_event).to_contain_text("Ana → Bia")
    expect(first_event).to_contain_text("Gina Gerente")

    with server.db.session() as session:
        event = session.scalars(select(OpportunityEvent).where(OpportunityEvent.opportunity_id == opportunity_id)
                                .order_by(OpportunityEvent.id.desc())).first()
        assert event.kind == "reassigned" and event.to_seller_id == bia_id
        assert session.get(Opportunity, opportunity_id).seller_id == bia_id

    page.locator("#customer-link").click()
    expect(page).to_have_url(f"{server.url}/clientes/{customer_id}")
    expect(page.locator("#contato")).to_contain_text("Passou na loja sábado.")
