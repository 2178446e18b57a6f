"""A shopper's conversation through the real webhook, the RQ worker, the engine and the outbox."""

from __future__ import annotations

from rq import SimpleWorker
from sqlalchemy import select

from core.queues import queues_for
from models import Customer, Message, MessageStatus
from models.demo import seed
from recovery.tracker import Tracker
from tests.channel_helpers import PHONE, post_inbound


def _run(runtime):
    SimpleWorker(queues_for(runtime), connection=runtime.redis).work(burst=True)


def _replies(session, customer_id):
    session.expire_all()
    replies = [m for m in session.scalars(select(Message).where(Message.customer_id == customer_id,
                                                                Message.direction == "outbound").order_by(Message.id))]
    # End this read's transaction: the suite's sessions share one connection, and a later rollback of this one
    # would take the web app's and the worker's commits made meanwhile with it.
    session.commit()
    return replies


def test_search_add_and_checkout_over_whatsapp(client, runtime, session):
    seed(session)
    session.commit()
    post_inbound(client, runtime.settings, body="oi", ProfileName="Ana Souza")
    _run(runtime)
    customer = session.scalar(select(Customer).where(Customer.phone == PHONE))
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
    customer = session.scalar(select(Customer).where(Customer.phone == PHONE))
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


# --- variants: sizes asked once, stock respected, the cart restored by the recovery link ---------------------

def _say(client, runtime, session, text):
    post_inbound(client, runtime.settings, body=text)
    _run(runtime)
    customer = session.scalar(select(Customer).where(Customer.phone == PHONE))
    return _replies(session, customer.id)[-1].body


def _cart_lines(session):
    from models import Cart, CartItem

    session.expire_all()
    return [(item.sku, item.name, item.quantity, item.variant_id is not None) for item in
            session.scalars(select(CartItem).join(Cart).where(Cart.source == "bot").order_by(CartItem.id))]


def _demo_variant(session, name, size):
    from models import Product, Variant

    return session.scalar(select(Variant).join(Product).where(Product.name == name, Variant.size == size))


def test_a_size_in_the_search_goes_into_the_cart_without_asking(client, runtime, session):
    seed(session)
    session.commit()
    _say(client, runtime, session, "tem tenis preto 42?")
    added = _say(client, runtime, session, "quero o 1")
    shoe = _demo_variant(session, "Tênis Corrida Preto", "42")
    assert "Tênis Corrida Preto 42" in added
    assert _cart_lines(session) == [(shoe.sku, "Tênis Corrida Preto 42", 1, True)]


def test_without_a_size_the_bot_asks_which_and_the_answer_picks_the_variant(client, runtime, session):
    seed(session)
    session.commit()
    _say(client, runtime, session, "tem tenis corrida preto?")
    question = _say(client, runtime, session, "quero o 1")
    assert "Qual você quer?" in question and "40" in question and "42" in question
    assert _cart_lines(session) == []
    added = _say(client, runtime, session, "o 41")
    assert "Tênis Corrida Preto 41" in added
    assert [line[1] for line in _cart_lines(session)] == ["Tênis Corrida Preto 41"]
    # A size in the message itself is used at once.
    _say(client, runtime, session, "camiseta basica branca")
    _say(client, runtime, session, "quero a 1 tamanho G")
    assert [line[1] for line in _cart_lines(session)] == ["Tênis Corrida Preto 41", "Camiseta Básica Branca G"]


def test_a_sold_out_size_is_said_plainly_with_the_sizes_left(client, runtime, session):
    from models import Variant

    seed(session)
    shoe = _demo_variant(session, "Tênis Corrida Preto", "43")
    shoe.stock = 0
    session.commit()
    _say(client, runtime, session, "tenis corrida preto")
    answer = _say(client, runtime, session, "quero o 1 tamanho 43")
    assert "acabou" in answer and "42" in answer
    assert _cart_lines(session) == []
    limited = session.get(Variant, _demo_variant(session, "Tênis Corrida Preto", "42").id)
    limited.stock = 2
    session.commit()
    capped = _say(client, runtime, session, "quero 5 do 1 tamanho 42")
    assert "2x Tênis Corrida Preto 42" in capped and "estoque" in capped
    assert _cart_lines(session)[0][2] == 2


def test_the_recovery_link_restores_a_chat_cart_even_without_finalizar(client, runtime, session):
    from datetime import timedelta
    from urllib.parse import parse_qs, urlparse

    from models import utcnow
    from recovery.tick import run_tick
    from tests.recovery_helpers import enable_recovery, recovery_messages

    seed(session)
    session.commit()
    enable_recovery(session, quiet_start="00:00", quiet_end="00:00")
    _say(client, runtime, session, "tenis corrida preto 42")
    _say(client, runtime, session, "quero o 1")
    run_tick(session, runtime, utcnow() + timedelta(minutes=11))
    [message] = recovery_messages(session)
    link = next(word for word in message.body.split() if "/checkout" in word)
    shoe = _demo_variant(session, "Tênis Corrida Preto", "42")
    query = parse_qs(urlparse(link).query)
    assert query["itens"] == [f"{shoe.sku}:1"]
    [code] = query["cupom"]  # the message's coupon is applied at checkout too
    assert f"*{code}*" in message.body


# --- understanding, end to end: natural phrasings through the webhook and the worker -------------------------

def test_natural_phrasings_through_the_webhook(client, runtime, session):
    from models import HandoffRequest

    seed(session)
    session.commit()
    assert "Tênis Corrida Preto" in _say(client, runtime, session, "oi, vcs tem tenis corrida preto?")
    assert "Qual você quer?" in _say(client, runtime, session, "vou levar o primeiro")
    assert "Coloquei Tênis Corrida Preto 41" in _say(client, runtime, session, "41")
    assert "*Total: R$\xa0299,90*" in _say(client, runtime, session, "qto deu?")
    assert "Frete e entrega" in _say(client, runtime, session, "e o frete pra BH, quanto fica?")
    assert "https://loja.example/checkout?itens=" in _say(client, runtime, session, "pode fechar")
    assert "Imagina" in _say(client, runtime, session, "obrigada!!")
    person = _say(client, runtime, session, "tem como falar com uma consultora?")
    assert "vai falar com você por aqui" in person
    assert session.scalar(select(HandoffRequest.reason)) == "asked_for_person"
    session.commit()


def test_the_replies_keep_their_tappable_options_for_the_provider(client, runtime, session):
    """The bot job stores each reply's options with the message (Meta sends them as a list; Twilio, the text)."""
    seed(session)
    session.commit()
    post_inbound(client, runtime.settings, body="oi")
    _run(runtime)
    customer = session.scalar(select(Customer).where(Customer.phone == PHONE))
    [greeting] = _replies(session, customer.id)
    assert [o["id"] for o in greeting.interactive["options"]] == [f"opt:{n}" for n in range(1, 6)]
    assert "*1* Buscar produtos" in greeting.body
