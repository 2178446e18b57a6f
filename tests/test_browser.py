"""The console and the seller's pages in a real browser: headless Chromium driven by Playwright against the app
served on a free port, with real commits (the server's threads open their own sessions)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.runtime import Runtime, set_runtime
from crm.users import create_user
from models import (
    AttemptStatus, CouponKind, CouponRule, Customer, Direction, Message, MessageStatus, Order, OrderStatus,
    RecoveryAttempt, RecoverySettings, utcnow,
)
from recovery.config import load_settings, update_settings
from tests import browser_helpers
from tests.browser_helpers import ARTIFACTS, CHROMIUM_ARGS, LiveServer, require_chromium, save_screenshot
from tests.conftest import delete_prefixed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "uma-senha-bem-longa"


@pytest.fixture(scope="module")
def browser():
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def server(committed_db, settings, redis_client):
    from app import create_app

    runtime = Runtime(settings, database=committed_db, redis_client=redis_client)
    set_runtime(runtime)
    app = create_app({"RUNTIME": runtime})
    with committed_db.session() as session:
        create_user(session, email="dona@loja.example", role="admin", password=PASSWORD, name="Dona da Loja")
        session.commit()
    try:
        with LiveServer(app) as live:
            live.db = committed_db
            yield live
    finally:
        set_runtime(None)
        delete_prefixed(redis_client, settings.redis_key_prefix)


@pytest.fixture
def page(browser, server, request):
    context = browser.new_context(base_url=server.url, locale="pt-BR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A 400 page for a refused value is expected; script errors and CSP violations are not.
    tab.on("console", lambda msg: problems.append(f"console: {msg.text}")
           if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    yield tab
    failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    if failed or problems:
        save_screenshot(tab, request.node.nodeid)
    context.close()
    assert not problems, problems  # no JavaScript error and no CSP violation on any page visited


def log_in(page, email="dona@loja.example"):
    page.goto("/entrar")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Senha").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()


def test_log_in_change_the_delay_and_see_a_refused_value(page, server):
    from playwright.sync_api import expect

    log_in(page)
    expect(page).to_have_url(f"{server.url}/console/")
    page.get_by_role("link", name="Recuperação").click()
    expect(page.get_by_text("A verificação roda a cada 5 minutos")).to_be_visible()

    page.locator("#delay_minutes").fill("3")
    page.get_by_role("button", name="Salvar").click()
    expect(page.locator("#delay_minutes-error")).to_have_text("deve estar entre 5 e 60")
    expect(page.locator("#delay_minutes")).to_have_attribute("aria-invalid", "true")
    with server.db.session() as session:
        assert load_settings(session).delay_minutes == 10  # nothing saved

    page.locator("#delay_minutes").fill("25")
    page.get_by_role("button", name="Salvar").click()
    expect(page.get_by_role("status")).to_contain_text("Configurações da recuperação salvas")
    expect(page.locator("#delay_minutes")).to_have_value("25")
    with server.db.session() as session:
        assert session.get(RecoverySettings, 1).delay_minutes == 25


def test_edit_the_template_with_chips_and_see_the_live_preview(page, server):
    from playwright.sync_api import expect

    log_in(page)
    page.goto("/console/recuperacao/mensagem")
    editor = page.locator("#template")
    editor.fill("Oi {{ nome }}! Seu cupom: ")
    editor.press("End")
    page.locator("[data-chips-for=template] [data-variable=cupom]").click()
    expect(editor).to_have_value("Oi {{ nome }}! Seu cupom: {{ cupom }}")
    expect(page.locator("#template-preview")).to_have_text("Oi Ana! Seu cupom: VOLTA-7K2M9QX4")

    editor.fill("Oi {{ nome ")
    expect(page.locator("#template-preview-error")).not_to_be_empty()
    expect(page.locator("#template-preview")).to_have_text("")

    editor.fill("Oi {{ nome }}, volte para a {{ loja }}: {{ link_checkout }}")
    expect(page.locator("#template-preview")).to_contain_text("Oi Ana, volte para a Loja Demo")
    page.get_by_role("button", name="Salvar mensagem").click()
    expect(page.get_by_role("status").first).to_contain_text("Mensagem salva")
    with server.db.session() as session:
        assert load_settings(session).template == "Oi {{ nome }}, volte para a {{ loja }}: {{ link_checkout }}"


def _recovered_sales(db) -> None:
    """Two recovery messages sent yesterday, one bought (R$ 250,00), one skipped for frequency."""
    now = utcnow()
    with db.session() as session:
        rule = CouponRule(name="Volta 10", kind=CouponKind.PERCENT, value=Decimal("10"))
        session.add(rule)
        session.flush()
        update_settings(session, {"enabled": True, "coupon_rule_id": rule.id})
        buyers = [Customer(phone=f"+55119999900{i:02d}", name=f"Cliente {i}", tags=[]) for i in range(3)]
        session.add_all(buyers)
        session.flush()
        order = Order(external_id="o-1", customer_id=buyers[0].id, status=OrderStatus.PAID, total=Decimal("250.00"),
                      placed_at=now - timedelta(hours=20))
        session.add(order)
        session.flush()
        for i, buyer in enumerate(buyers[:2]):
            sent_at = now - timedelta(days=1)
            message = Message(customer_id=buyer.id, direction=Direction.OUTBOUND, kind="recovery", body="Volte!",
                              status=MessageStatus.READ, created_at=sent_at)
            session.add(message)
            session.flush()
            session.add(RecoveryAttempt(customer_id=buyer.id, interaction_at=sent_at - timedelta(minutes=10),
                                        due_at=sent_at, status=AttemptStatus.SENT, variant="A", message_id=message.id,
                                        created_at=sent_at, sent_at=sent_at,
                                        recovered_order_id=order.id if i == 0 else None))
        session.add(RecoveryAttempt(customer_id=buyers[2].id, interaction_at=now - timedelta(days=1, minutes=10),
                                    due_at=now - timedelta(days=1), status=AttemptStatus.SKIPPED,
                                    skip_reason="frequency_limit", created_at=now - timedelta(days=1)))
        session.commit()


def test_dashboard_with_data_shows_revenue_and_charts(page, server):
    from playwright.sync_api import expect

    _recovered_sales(server.db)
    log_in(page)
    expect(page.get_by_role("heading", name="Painel da recuperação de vendas")).to_be_visible()
    expect(page.locator("[data-figure=revenue]")).to_have_text("R$\xa0250,00")
    for name in ("Funil da recuperação", "Receita recuperada por dia", "Conversão por variante",
                 "Não enviadas, por motivo"):
        chart = page.get_by_role("img", name=name)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box["width"] > 200 and box["height"] > 80, (name, box)
    expect(page.get_by_role("cell", name="Limite de frequência")).to_be_visible()
    # On a phone the charts shrink to the screen instead of overflowing it.
    page.set_viewport_size({"width": 390, "height": 844})
    chart = page.get_by_role("img", name="Receita recuperada por dia").bounding_box()
    assert chart["width"] <= 390


def test_seller_sees_the_queue_on_a_phone(browser, server, request):
    from playwright.sync_api import expect

    with server.db.session() as session:
        create_user(session, email="ana@loja.example", role="seller", password=PASSWORD, name="Ana Vendedora")
        session.commit()
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True)
    tab = context.new_page()
    try:
        log_in(tab, "ana@loja.example")
        expect(tab).to_have_url(f"{server.url}/vendedor/")
        expect(tab.get_by_role("link", name="Carteira", exact=True)).to_be_visible()
        assert tab.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        tab.goto("/console/")
        expect(tab.get_by_text("Acesso negado")).to_be_visible()
    except Exception:
        save_screenshot(tab, request.node.nodeid)
        raise
    finally:
        context.close()


def test_faq_answer_preview_follows_the_title_and_the_answer(page, server):
    from playwright.sync_api import expect

    log_in(page)
    page.goto("/console/robo/duvidas/nova")
    page.get_by_label("Assunto (como aparece na lista)").fill("Trocas")
    page.locator("#answer").fill("Troca grátis em até 30 dias.")
    expect(page.locator("#answer-preview")).to_have_text("*Trocas*\nTroca grátis em até 30 dias.")
    page.get_by_label("Assunto (como aparece na lista)").fill("Trocas e devoluções")
    expect(page.locator("#answer-preview")).to_contain_text("*Trocas e devoluções*")
    page.locator("#answer").fill("")
    expect(page.locator("#answer-preview-error")).to_have_text("informe a resposta")
    expect(page.locator("#answer-preview")).to_have_text("")


def test_go_live_page_rotate_the_secret_once_and_send_a_test_message(page, server, settings):
    import re

    from playwright.sync_api import expect

    with server.db.session() as session:  # the merchant wrote to the store a minute ago (the 24-hour window)
        session.add(Customer(phone="+5511999990001", name="Dona", tags=[],
                             last_inbound_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    log_in(page)
    page.get_by_role("link", name="Configuração", exact=True).click()
    expect(page).to_have_url(f"{server.url}/console/configuracao")
    expect(page.locator("#url-twilio-inbound")).to_have_text(f"{settings.public_base_url}/webhooks/whatsapp")
    expect(page.locator("#url-store-carts")).to_have_text(f"{settings.public_base_url}/webhooks/store/carts")
    expect(page.locator("#provider")).to_contain_text("Modo de teste (outbox)")

    page.locator("#confirmar").check()
    page.get_by_role("button", name="Gerar novo segredo").click()
    expect(page.locator("#new-secret")).to_be_visible()
    secret = page.locator("#new-secret").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    expect(page.get_by_text("não aparece de novo")).to_be_visible()
    page.reload()
    expect(page.locator("#secret-hint")).to_have_text(f"…{secret[-4:]}")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()

    phone = page.get_by_label("Seu celular (com DDD)")
    phone.fill("123")
    page.get_by_role("button", name="Enviar mensagem de teste").click()
    expect(page.locator("#phone-error")).to_contain_text("número inválido")
    expect(phone).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Seu celular (com DDD)").fill("(11) 99999-0001")
    page.get_by_role("button", name="Enviar mensagem de teste").click()
    result = page.locator("#test-result")
    expect(result).to_contain_text("Mensagem de teste para +55 11 9****-0001 criada")
    expect(result.get_by_role("link", name="simulador")).to_be_visible()
    with server.db.session() as session:
        assert session.scalar(select(Message).where(Message.kind == "setup_test")).status is MessageStatus.PENDING

    # On a phone nothing is wider than the screen: URLs wrap, code blocks scroll inside themselves.
    page.set_viewport_size({"width": 390, "height": 844})
    for section in ("#whatsapp", "#loja", "#horario"):
        page.locator(section).scroll_into_view_if_needed()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, section
    expect(page.locator("#url-twilio-inbound")).to_be_visible()


# --- the harness itself --------------------------------------------------------------------------------


def test_a_missing_chromium_skips_locally_with_how_to_install_but_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CHROMIUM_PATH", "/nonexistent/chromium")
    for name in ("CI", "CI_STRICT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_chromium()
    assert "apt-get install chromium" in str(skipped.value)
    for name, value in (("CI", "true"), ("CI_STRICT", "1")):
        monkeypatch.setenv(name, value)
        with pytest.raises(pytest.fail.Exception) as failed:
            require_chromium()
        assert "apt-get install chromium" in str(failed.value) and "CI" in str(failed.value)
        monkeypatch.delenv(name)
    assert browser_helpers.in_ci({"CI": "false"}) is False


def test_a_screenshot_of_the_page_is_saved_under_test_artifacts(browser, server):
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    tab = context.new_page()
    path = None
    try:
        tab.goto("/entrar")
        path = save_screenshot(tab, "tests/test_browser.py::harness check [phone]")
        assert path.parent == ARTIFACTS and path.name == "harness_check_phone_.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    finally:
        context.close()
        if path is not None:
            path.unlink(missing_ok=True)
