"""The console's conversation in a real browser: WhatsApp formatting rendered (bold, not asterisks), the phone as
Brazilians write it, and a reply sent from the page through the store's number with its author shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Customer, Direction, Message, MessageStatus, utcnow
from tests.test_browser import browser, log_in, page, server  # noqa: F401  (the browser tests' fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_bold_and_phone_rendered_and_a_reply_sent_from_the_console(page, server):  # noqa: F811
    from playwright.sync_api import expect

    with server.db.session() as session:
        ana = Customer(phone="+5511988881001", name="Ana Lima", ddd="11", tags=[],
                       last_inbound_at=utcnow() - timedelta(minutes=2))
        session.add(ana)
        session.flush()
        session.add_all([
            Message(customer_id=ana.id, direction=Direction.INBOUND, kind="shopper", body="oi <b>quero</b> ajuda",
                    status=MessageStatus.RECEIVED, created_at=utcnow() - timedelta(minutes=2)),
            Message(customer_id=ana.id, direction=Direction.OUTBOUND, kind="bot", body="Olá! Aqui é a *Loja Demo*.",
                    status=MessageStatus.DELIVERED, sent_as="text", created_at=utcnow() - timedelta(minutes=1)),
        ])
        session.commit()
        customer_id = ana.id

    log_in(page)
    page.goto("/console/conversas")
    row = page.get_by_role("row").filter(has_text="Ana Lima")
    expect(row).to_contain_text("+55 (11) 98888-1001")
    expect(row.locator("strong", has_text="Loja Demo")).to_be_visible()
    row.get_by_role("link", name="Ana Lima").click()
    expect(page).to_have_url(f"{server.url}/console/conversas/{customer_id}")

    thread = page.get_by_role("list", name="Mensagens")
    expect(page.locator("main")).to_contain_text("+55 (11) 98888-1001")
    bold = thread.locator("li.outbound strong")
    expect(bold).to_have_text("Loja Demo")
    assert bold.evaluate("e => getComputedStyle(e).fontWeight") in ("700", "bold")
    expect(thread.locator("li.outbound").first).not_to_contain_text("*Loja Demo*")
    expect(thread.locator("li.inbound")).to_contain_text("oi <b>quero</b> ajuda")  # the shopper's text, as typed
    expect(thread.locator("li.inbound b")).to_have_count(0)
    expect(thread.locator("li.outbound .author").first).to_have_text("Robô")

    page.get_by_label("Mensagem").fill("Oi Ana, aqui é a Dona. Já te ajudo com o *tamanho*.")
    page.get_by_role("button", name="Enviar pelo WhatsApp da loja").click()
    expect(page.get_by_role("status")).to_contain_text("Mensagem enviada pelo número da loja")
    mine = thread.locator("li.outbound.human")
    expect(mine).to_have_count(1)
    expect(mine.locator(".author")).to_have_text("Dona da Loja")
    expect(mine.locator("strong")).to_have_text("tamanho")
    expect(page.get_by_role("note")).to_contain_text("o robô não responde a este cliente até")

    with server.db.session() as session:
        sent = session.scalar(select(Message).where(Message.customer_id == customer_id, Message.kind == "seller"))
        assert sent.body == "Oi Ana, aqui é a Dona. Já te ajudo com o *tamanho*."
        assert sent.author.name == "Dona da Loja" and not sent.automated
        assert session.get(Customer, customer_id).human_replied_at is not None
