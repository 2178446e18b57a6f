"""A shopper's conversation through the real webhook, the RQ worker, the engine and the outbox."""

from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import select

from core.queues import queues_for
from models import Customer, Message, MessageStatus
from models.demo import seed
from recovery.tracker import Tracker
from tests.channel_helpers import post_inbound


def _run(runtime):
    SimpleWorker(queues_for(runtime), connection=runtime.redis).work(burst=True)


def _replies(session, customer_id):
    session.expire_all()
    return [m for m in session.scalars(select(Message).where(Message.customer_id == customer_id,
                                                             Message.direction == "outbound").order_by(Message.id))]


def test_search_add_and_checkout_over_whatsapp(client, runtime, session):
    seed(session)
    session.commit()
    post_inbound(client, runtime.settings, body="oi", ProfileName="Ana Souza")
    _run(runtime)
    customer = session.scalar(select(Customer))
    assert customer.name == "Ana Souza" and customer.ddd == "11" and customer.state == "SP"
    for text in ("tem tenis preto 42?", "quero o 1", "finalizar"):
        post_inbound(client, runtime.settings, body=text)
        _run(runtime)
    replies = _replies(session, customer.id)
    assert len(replies) == 4 and all(m.status is MessageStatus.OUTBOX for m in replies)
    assert "Olá, Ana!" in replies[0].body
    assert "Tênis Corrida Preto" in replies[1].body
    assert "Coloquei Tênis Corrida Preto" in replies[2].body
    assert "https://loja.example/checkout?itens=" in replies[3].body
    assert all(not m.automated for m in replies)
    # Each interaction moved the shopper's recovery due time.
    assert Tracker(runtime).due_at(customer.id) is not None


def test_opt_out_confirmed_once_then_no_automated_message(client, runtime, session):
    from channel.sender import queue_message
    from models import utcnow

    post_inbound(client, runtime.settings, body="oi")
    post_inbound(client, runtime.settings, body="SAIR")
    customer = session.scalar(select(Customer))
    session.refresh(customer)
    assert customer.opted_out_at is not None
    assert Tracker(runtime).due_at(customer.id) is None  # recovery cancelled at once
    post_inbound(client, runtime.settings, body="sair")
    _run(runtime)
    bodies = [m.body for m in _replies(session, customer.id)]
    assert sum("não vai mais receber mensagens automáticas" in b for b in bodies) == 1
    blocked = queue_message(session, runtime, customer, kind="recovery", body="volte!", automated=True, now=utcnow())
    session.commit()
    assert blocked.status is MessageStatus.BLOCKED and blocked.error_reason == "opted_out"
