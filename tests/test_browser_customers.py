"""The "Clientes" module in a real browser: side by side on a laptop, stacked on a phone without sideways
scrolling, and a note added through the form lands in the timeline."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from models import Customer, Order, OrderItem, OrderStatus, utcnow
from tests.test_browser import browser, log_in, page, server  # noqa: F401  (the browser tests' fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _box(tab, selector):
    return tab.locator(selector).bounding_box()


def _no_sideways_scroll(tab) -> bool:
    return tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_list_and_detail_side_by_side_then_stacked_and_a_note_in_the_timeline(page, server):  # noqa: F811
    from playwright.sync_api import expect

    with server.db.session() as session:
        who = Customer(phone="+5511999990001", name="Beatriz Lima", city="São Paulo", state="SP", ddd="11", tags=[])
        session.add(who)
        session.flush()
        order = Order(external_id="b-1", customer_id=who.id, status=OrderStatus.PAID, currency="BRL",
                      total=Decimal("199.90"), placed_at=utcnow() - timedelta(days=12))
        order.items = [OrderItem(sku="X-1", name="Tênis Corrida 40", quantity=1, unit_price=Decimal("199.90"))]
        session.add(order)
        session.commit()
        customer_id = who.id

    log_in(page)
    page.get_by_role("link", name="Clientes", exact=True).click()
    expect(page).to_have_url(f"{server.url}/clientes")
    page.get_by_role("link", name="Beatriz Lima").click()
    expect(page).to_have_url(f"{server.url}/clientes/{customer_id}")

    page.set_viewport_size({"width": 1280, "height": 800})
    listing, detail = _box(page, ".customer-list"), _box(page, ".customer-detail")
    assert listing["x"] + listing["width"] <= detail["x"] + 1  # the list on the left, the detail on the right
    assert abs(listing["y"] - detail["y"]) < 5
    assert _no_sideways_scroll(page)

    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator(".customer-list")).to_be_hidden()  # a customer's page on a phone: just the customer
    expect(page.get_by_role("link", name="« voltar à lista")).to_be_visible()
    assert _no_sideways_scroll(page)
    page.goto("/clientes")
    listing, detail = _box(page, ".customer-list"), _box(page, ".customer-detail")
    assert detail["y"] >= listing["y"] + listing["height"] - 1  # stacked
    assert _no_sideways_scroll(page)

    page.goto(f"/clientes/{customer_id}")
    page.locator("#note-kind").select_option("feedback")
    page.locator("#note-text").fill("Adorou o tênis, quer a versão azul.")
    page.get_by_role("button", name="Salvar anotação").click()
    expect(page).to_have_url(f"{server.url}/clientes/{customer_id}#contato")
    timeline = page.locator(".notes-timeline li").first
    expect(timeline).to_contain_text("Adorou o tênis, quer a versão azul.")
    expect(timeline).to_contain_text("Feedback")
    expect(timeline).to_contain_text("Dona da Loja")
    assert _no_sideways_scroll(page)
