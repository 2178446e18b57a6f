"""The console for daily use in a real browser (issue 20): the menu on a laptop and on a 390×844 phone, the funnel
with a deferred attempt, the confirmation steps, and a period typed as dd/mm/aaaa. Headless Chromium through
Playwright, with the live server and page fixtures of tests/test_browser.py."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.users import create_user
from models import AttemptStatus, CouponKind, CouponRule, Customer, RecoveryAttempt, User, utcnow
from tests.browser_helpers import save_screenshot
from tests.crm_helpers import make_store
from tests.test_browser import PASSWORD, browser, log_in, page, server  # noqa: F401  (shared fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The admin's menu, in order, and where each entry leads.
OFFICE_MENU = [("Painel", "/console/"), ("Recuperação", "/console/recuperacao"), ("Cupons", "/console/cupons"),
               ("Robô", "/console/robo"), ("Catálogo", "/console/catalogo"), ("Conversas", "/console/conversas"),
               ("Clientes", "/clientes"), ("Vendedores", "/gestao/vendedores"),
               ("Oportunidades", "/gestao/oportunidades"), ("Resultados", "/gestao/resultados"),
               ("WhatsApp", "/console/whatsapp"), ("Configuração", "/console/configuracao")]


def _menu_link(tab, label):
    return tab.locator("header.top nav").get_by_role("link", name=label, exact=True)


def test_on_a_laptop_every_menu_entry_is_in_view(page, server):  # noqa: F811
    from playwright.sync_api import expect

    log_in(page)
    expect(page).to_have_url(f"{server.url}/console/")
    expect(page.locator("header.top summary")).to_be_hidden()  # no "Menu" button on a laptop
    for label, _ in OFFICE_MENU:
        expect(_menu_link(page, label)).to_be_visible()
    assert page.locator("header.top nav a").all_inner_texts() == [label for label, _ in OFFICE_MENU]
    _menu_link(page, "Configuração").click()
    expect(page).to_have_url(f"{server.url}/console/configuracao")
    expect(_menu_link(page, "Configuração")).to_have_attribute("aria-current", "page")


def test_on_a_phone_the_menu_opens_and_every_entry_is_reachable(browser, server, request):  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(base_url=server.url, locale="pt-BR", viewport={"width": 390, "height": 844},
                                  is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        log_in(tab)
        expect(tab).to_have_url(f"{server.url}/console/")
        menu = tab.locator("header.top summary")
        expect(menu).to_be_visible()
        expect(_menu_link(tab, "Painel")).to_be_hidden()  # closed: the bar is one row
        assert tab.locator("header.top").bounding_box()["height"] < 80
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
        for label, path in OFFICE_MENU:
            menu.click()
            link = _menu_link(tab, label)
            expect(link).to_be_visible()
            box = link.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["y"] + box["height"] <= 844, label
            assert box["height"] >= 36, label  # a finger-sized target
            link.tap()
            expect(tab).to_have_url(f"{server.url}{path}")
            expect(_menu_link(tab, label)).to_be_hidden()  # a new page: the menu is closed again
            assert tab.evaluate("document.documentElement.scrollWidth") <= 390, label
        assert not problems, problems
    except Exception:
        save_screenshot(tab, request.node.nodeid)
        raise
    finally:
        context.close()


def test_on_a_phone_the_sellers_menu_is_always_in_view(browser, server, request):  # noqa: F811
    from playwright.sync_api import expect

    with server.db.session() as session:
        create_user(session, email="ana@loja.example", role="seller", password=PASSWORD, name="Ana Vendedora")
        session.commit()
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    tab = context.new_page()
    try:
        log_in(tab, "ana@loja.example")
        for label, path in (("Carteira", "/vendedor/carteira"), ("Clientes", "/clientes"),
                            ("Resultados", "/vendedor/resultados"), ("Oportunidades", "/vendedor/")):
            _menu_link(tab, label).tap()
            expect(tab).to_have_url(f"{server.url}{path}")
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390
    except Exception:
        save_screenshot(tab, request.node.nodeid)
        raise
    finally:
        context.close()


def test_the_funnel_shows_a_deferred_attempt_and_when_it_goes(page, server):  # noqa: F811
    from playwright.sync_api import expect

    now = utcnow()
    due = (now + timedelta(days=1)).replace(hour=11, minute=0, second=0, microsecond=0)  # 08:00 in São Paulo
    with server.db.session() as session:
        shopper = Customer(phone="+5511955550001", name="Cláudia", ddd="11", tags=[])
        session.add(shopper)
        session.flush()
        session.add(RecoveryAttempt(customer_id=shopper.id, interaction_at=now - timedelta(hours=1), created_at=now,
                                    due_at=due, status=AttemptStatus.DEFERRED, skip_reason="quiet_hours"))
        session.commit()
    log_in(page)
    row = page.locator('#funil tr[data-step="deferred"]')
    expect(row).to_contain_text("Adiadas")
    expect(row.locator("td").nth(1)).to_have_text("1")
    local = due.astimezone(ZoneInfo("America/Sao_Paulo"))
    expect(page.locator('#funil tr[data-step="deferred-detail"]')).to_contain_text(
        f"Horário de silêncio: 1. Próximo envio previsto: {local:%d/%m/%Y} 08:00")
    expect(page.locator("#funil-outbox")).to_contain_text("Entrega e leitura não podem ser medidas")
    expect(page.locator('#funil tr[data-step="delivered"]')).to_contain_text("não medido no modo de teste")


def test_disabling_a_coupon_rule_asks_once_and_cancel_keeps_it(page, server):  # noqa: F811
    from playwright.sync_api import expect

    with server.db.session() as session:
        rule = CouponRule(name="Frete grátis", kind=CouponKind.FREE_SHIPPING, value=0, min_order=0, active=True)
        session.add(rule)
        session.commit()
        rule_id = rule.id
    log_in(page)
    page.goto("/console/cupons")
    page.get_by_role("button", name="Desativar…").click()
    expect(page.get_by_role("heading", name="Desativar a regra “Frete grátis”?")).to_be_visible()
    expect(page.locator(".confirm")).to_contain_text("Nenhum código novo é criado com ela")
    page.get_by_role("link", name="Cancelar").click()
    expect(page).to_have_url(f"{server.url}/console/cupons")
    with server.db.session() as session:
        assert session.get(CouponRule, rule_id).active

    page.get_by_role("button", name="Desativar…").click()
    page.get_by_role("button", name="Sim, desativar").click()
    expect(page.get_by_role("status")).to_contain_text("Regra “Frete grátis” desativada")
    with server.db.session() as session:
        assert not session.get(CouponRule, rule_id).active


def test_deactivating_a_seller_says_how_many_move_then_does_it(page, server):  # noqa: F811
    from playwright.sync_api import expect

    with server.db.session() as session:
        store = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
        ana = create_user(session, email="ana@loja.example", role="seller", password=PASSWORD, name="Ana",
                          store_id=store.id)
        create_user(session, email="bia@loja.example", role="seller", password=PASSWORD, name="Bia",
                    store_id=store.id)
        for i in range(2):
            session.add(Customer(phone=f"+55119444400{i:02d}", name=f"Cliente {i}", ddd="11", tags=[],
                                 owner_seller_id=ana.id))
        session.commit()
        ana_id = ana.id
    log_in(page)
    page.goto(f"/gestao/vendedores/{ana_id}")
    page.get_by_label("Quem recebe a carteira e as oportunidades abertas").select_option(label="Bia")
    page.get_by_role("button", name="Inativar vendedor…").click()
    expect(page.get_by_role("heading", name="Inativar Ana?")).to_be_visible()
    expect(page.locator(".confirm")).to_contain_text(
        "2 clientes da carteira e 0 oportunidades abertas serão redistribuídos para Bia.")
    with server.db.session() as session:
        assert session.get(User, ana_id).active
    page.get_by_role("button", name="Sim, inativar e redistribuir").click()
    expect(page).to_have_url(f"{server.url}/gestao/vendedores")
    expect(page.get_by_role("status")).to_contain_text("2 clientes e 0 oportunidades redistribuídos")
    with server.db.session() as session:
        assert not session.get(User, ana_id).active


def test_restoring_a_bot_text_asks_once(page, server):  # noqa: F811
    from playwright.sync_api import expect

    log_in(page)
    page.goto("/console/robo/textos/greeting")
    page.locator("#body").fill("Oi {{ nome }}! {{ menu }}")
    page.get_by_role("button", name="Salvar").click()
    expect(page.get_by_text("Versão personalizada pela loja.")).to_be_visible()
    page.get_by_role("button", name="Restaurar o texto original…").click()
    expect(page.get_by_role("heading", name="Restaurar o texto original?")).to_be_visible()
    page.get_by_role("button", name="Sim, restaurar o original").click()
    expect(page.locator(".flash")).to_contain_text("Texto original restaurado")
    expect(page.get_by_text("Texto original.", exact=True)).to_be_visible()


def test_typing_a_period_as_dd_mm_aaaa(page, server):  # noqa: F811
    from playwright.sync_api import expect

    log_in(page)
    start = page.get_by_label("De")
    expect(start).to_have_attribute("placeholder", "dd/mm/aaaa")
    expect(start).to_have_attribute("type", "text")
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", start.input_value())  # the default period, shown as typed
    start.fill("01/11/2026")
    page.get_by_label("Até").fill("30112026")  # a phone's numeric keypad has no slash
    page.get_by_role("button", name="Atualizar").click()
    expect(page).to_have_url(re.compile(r"de=01%2F11%2F2026&ate=30112026"))
    expect(page.get_by_label("De")).to_have_value("01/11/2026")
    expect(page.get_by_label("Até")).to_have_value("30/11/2026")

    page.get_by_label("De").fill("31/02/2026")
    page.get_by_role("button", name="Atualizar").click()
    expect(page.get_by_role("heading", name="Período inválido")).to_be_visible()
    expect(page.locator("#de-error")).to_have_text("a data 31/02/2026 não existe no calendário")
    expect(page.get_by_label("De")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("De").fill("01/02/2026")
    page.get_by_label("Até").fill("28/02/2026")
    page.get_by_role("button", name="Atualizar").click()
    expect(page.get_by_role("heading", name="Painel da recuperação de vendas")).to_be_visible()
