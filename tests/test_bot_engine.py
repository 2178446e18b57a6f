"""The conversation engine: realistic pt-BR messages, typos and missing accents, against real Redis and DB."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from bot import texts
from bot.engine import respond
from models import BotText, Cart, CartStatus, Customer, HandoffRequest, Order, OrderStatus
from models.demo import seed

NOW = datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc)


@pytest.fixture
def shop(session):
    seed(session)
    session.commit()
    return session


@pytest.fixture
def ana(shop):
    customer = Customer(phone="+5511999990001", name="Ana Souza", tags=[])
    shop.add(customer)
    shop.commit()
    return customer


@pytest.fixture
def chat(runtime, shop, ana):
    def say(text, **kwargs):
        replies = respond(shop, runtime.redis, runtime.keys, runtime.settings, ana, text, now=NOW, **kwargs)
        shop.commit()
        return "\n".join(replies)

    return say


def bot_cart(session, customer) -> Cart | None:
    return session.scalar(select(Cart).where(Cart.customer_id == customer.id, Cart.source == "bot"))


@pytest.mark.parametrize("text", ["oi", "Olá", "ola", "bom dia", "Boa tarde!", "boa noite", "menu", "0", "oii",
                                  "início", "bom diaa"])
def test_greeting_shows_the_menu_with_the_name(chat, text):
    reply = chat(text)
    assert "Olá, Ana!" in reply and "Loja Demo" in reply
    assert "*1* Buscar produtos" in reply and "*5* Falar com um vendedor" in reply


@pytest.mark.parametrize("text", ["tem tenis preto 42?", "Tem tênis preto 42", "tenis pretu 42", "TÊNIS PRETO",
                                  "voces tem tennis preto?"])
def test_search_finds_the_black_running_shoe_with_price_and_link(chat, text):
    reply = chat(text)
    assert "*1.* Tênis Corrida Preto — R$\xa0299,90" in reply
    assert "https://loja.example/produto/" in reply
    assert "Camiseta" not in reply  # only products matching every word


@pytest.mark.parametrize("text,expected", [("camizeta branca", "Camiseta Básica Branca"),
                                           ("calsa jeans", "Calça Jeans Slim"),
                                           ("mochila", "Mochila Urbana 20L"),
                                           ("oculos de sol", "Óculos de Sol Aviador"),
                                           ("sandalia rasteira dourada", "Sandália Rasteira Dourado")])
def test_search_tolerates_typos_and_missing_accents(chat, text, expected):
    assert expected in chat(text)


def test_a_size_the_product_never_had_is_said_with_the_sizes_it_has(chat):
    reply = chat("tenis corrida preto 37")
    assert "Não temos o tamanho *37*" in reply and "Tênis Corrida Preto" in reply and "38" in reply


def test_a_sold_out_size_is_said_with_the_sizes_left(chat, shop):
    from models import Product, Variant

    sold = shop.scalar(select(Variant).join(Product).where(Product.name == "Tênis Corrida Preto", Variant.size == "42"))
    sold.stock = 0
    shop.commit()
    reply = chat("tenis corrida preto 42")
    assert "O tamanho *42* acabou em" in reply and "ainda tem" in reply and "41" in reply


def test_nothing_found_suggests_categories(chat):
    reply = chat("quero uma geladeira frost free")
    assert "Não encontrei nada" in reply and "Calçados" in reply


def test_pick_details_add_with_quantity_cart_remove_and_checkout(chat, shop, ana):
    chat("tenis preto 42")
    details = chat("1")  # a bare number right after the list picks a product
    assert "*Tênis Corrida Preto*" in details and "42" in details and "quero o 1" in details
    added = chat("quero 2 do 1")  # the size of the search is kept: no question
    assert "2x Tênis Corrida Preto 42" in added and "R$\xa0599,80" in added
    chat("quero o 2")
    cart = bot_cart(shop, ana)
    assert [(i.name, i.quantity) for i in cart.items] == [("Tênis Corrida Preto 42", 2),
                                                          ("Tênis Casual Couro Preto 42", 1)]
    assert cart.total == Decimal("949.70") and cart.status is CartStatus.OPEN
    assert all(item.variant_id is not None for item in cart.items)
    chat("quero o 1")  # same variant again: quantities merge
    assert bot_cart(shop, ana).items[0].quantity == 3
    summary = chat("carrinho")
    assert "*Total: R$\xa01.249,60*" in summary
    removed = chat("remover o 2")
    assert "Tirei Tênis Casual Couro Preto 42" in removed
    link_reply = chat("finalizar")
    cart = bot_cart(shop, ana)
    assert cart.checkout_url in link_reply and "R$\xa0899,70" in link_reply
    query = parse_qs(urlparse(cart.checkout_url).query)
    assert query == {"itens": [f"{cart.items[0].sku}:3"]}
    assert cart.checkout_url.startswith("https://loja.example/checkout?")


def test_without_a_size_the_engine_asks_and_an_unknown_answer_drops_the_question(chat, shop, ana):
    question = chat("quero ver tenis corrida preto") and chat("quero o 1")
    assert "Qual você quer?" in question and "Preto 38" not in question  # one colour: sizes only
    assert "Não encontrei" not in chat("41") and bot_cart(shop, ana).items[0].name == "Tênis Corrida Preto 41"
    chat("tenis corrida preto")
    chat("quero o 1")
    assert "Formas de pagamento" in chat("4")  # not a size of this shoe: the menu option, the question dropped


def test_bare_number_is_a_menu_option_when_no_list_is_showing(chat, shop):
    chat("camiseta")
    chat("quero o 1")  # the cart is now what the shopper sees
    reply = chat("4")
    assert "Formas de pagamento" in reply and "Trocas e devoluções" in reply  # the FAQ topics


def test_empty_cart_and_checkout_of_an_empty_cart(chat):
    assert "carrinho está vazio" in chat("carrinho")
    assert "carrinho está vazio" in chat("finalizar")
    assert "carrinho está vazio" in chat("2")


def test_order_status_in_the_store_time_zone(chat, shop, ana):
    assert "Não encontrei pedidos" in chat("meu pedido")
    shop.add(Order(external_id="o-77", customer_id=ana.id, status=OrderStatus.PAID, total=Decimal("159.80"),
                   placed_at=datetime(2026, 11, 21, 1, 30, tzinfo=timezone.utc)))  # 20/11 22:30 in São Paulo
    shop.commit()
    for text in ("cadê meu pedido?", "status do pedido", "rastrear", "3"):
        reply = chat(text)
        assert "Pedido *o-77* de 20/11/2026 — R$\xa0159,80: *pago*" in reply


@pytest.mark.parametrize("text,title", [
    ("qual o prazo de entrega?", "Frete e entrega"), ("vcs parcelam?", "Formas de pagamento"),
    ("aceita pix", "Formas de pagamento"), ("como faço troca", "Trocas e devoluções"),
    ("que horas abre", "Horário de atendimento"), ("vocês abrem domingo?", "Horário de atendimento"),
    ("qto custa o frete", "Frete e entrega"),
])
def test_faq_answers_the_merchants_text(chat, text, title):
    assert f"*{title}*" in chat(text)


@pytest.mark.parametrize("text", ["falar com vendedor", "quero falar com uma pessoa", "atendente", "humano",
                                  "vendedora", "5", "falar com vendedr"])
def test_asking_for_a_person_records_one_handoff(chat, shop, ana, text):
    assert "vendedor da *Loja Demo* vai falar com você" in chat(text)
    assert "já está registrado" in chat("atendente")
    assert shop.scalar(select(func.count()).select_from(HandoffRequest)) == 1
    assert shop.scalar(select(HandoffRequest)).customer_id == ana.id


def test_opt_out_is_confirmed_and_a_second_sair_gets_a_short_answer(chat):
    confirmed = chat("SAIR", consent_transition="opt_out")
    assert "não vai mais receber mensagens automáticas" in confirmed and "VOLTAR" in confirmed
    again = chat("sair")  # already out: not silence, a short confirmation
    assert "já está fora da nossa lista" in again and "VOLTAR" in again and len(again) < 200
    assert "voltou a receber" in chat("VOLTAR", consent_transition="opt_in")


def test_an_unsure_opt_out_is_asked_about_once(chat):
    assert "Responda *SIM*" in chat("para com isso", consent_transition="ask_out")
    assert "continua com a gente" in chat("não", consent_transition="stay")


def test_second_miss_in_a_row_offers_a_person(chat):
    first = chat("xyzzy plugh")
    assert "não entendi" in first and "*1* Buscar produtos" in first
    second = chat("qwerty zxcv")
    assert "Quer falar com uma pessoa?" in second
    chat("oi")  # understood: the count starts again
    assert "Quer falar com uma pessoa?" not in chat("blorf")


def test_media_empty_emoji_and_very_long_messages(chat):
    assert "só consigo ler mensagens de texto" in chat("", media_count=1)
    assert "*1* Buscar produtos" in chat("")
    assert "*1* Buscar produtos" in chat("😀🔥👟")
    long_reply = chat("tenis " * 1000)
    assert long_reply  # answered, without crashing


def test_merchant_override_of_a_text_is_used(chat, shop):
    shop.add(BotText(key="greeting", body="E aí, {{ nome }}! Aqui é a {{ loja }}.\n{{ menu }}"))
    shop.commit()
    reply = chat("oi")
    assert reply.startswith("E aí, Ana! Aqui é a Loja Demo.") and "*5* Falar com um vendedor" in reply


def test_a_broken_override_falls_back_to_the_default_text(chat, shop):
    shop.add(BotText(key="greeting", body="Oi {{ nome_errado }}"))
    shop.commit()
    assert "Olá, Ana!" in chat("oi")


def test_every_message_template_renders_its_default():
    keys = texts.available_keys()
    assert {"greeting", "menu", "search_results", "cart_summary", "checkout", "opt_out_confirmed"} <= set(keys)
    for key in keys:
        assert texts.default_source(key).strip()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300), media=st.integers(0, 3))
def test_respond_never_raises(runtime, shop, ana, text, media):
    replies = respond(shop, runtime.redis, runtime.keys, runtime.settings, ana, text, media_count=media, now=NOW)
    assert isinstance(replies, list) and all(isinstance(r, str) and r.strip() for r in replies)
    shop.rollback()


def test_a_huge_cart_summary_lists_twenty_lines_and_says_how_many_more(session, runtime):
    from decimal import Decimal

    from bot import carts
    from bot.engine import respond
    from models import Cart, CartItem, CartStatus, Customer, utcnow

    customer = Customer(phone="+5511999990009", name="Ana", tags=[])
    session.add(customer)
    session.flush()
    cart = Cart(customer_id=customer.id, source="bot", status=CartStatus.OPEN)
    cart.items = [CartItem(sku=f"S{n}", name=f"Produto {n}", quantity=1, unit_price=Decimal("5.00"))
                  for n in range(45)]
    cart.recompute_total()
    session.add(cart)
    session.flush()
    [reply] = respond(session, runtime.redis, runtime.keys, runtime.settings, customer, "carrinho", now=utcnow())
    assert f"e mais {45 - carts.LISTED_LINES} itens" in reply and "Produto 19" in reply and "Produto 20" not in reply
