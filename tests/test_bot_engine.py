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
from models import BotText, Cart, CartStatus, Customer, HandoffRequest, Order, OrderStatus, Product
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


@pytest.mark.parametrize("text", ["oi", "Olá", "ola", "bom dia", "Boa tarde!", "boa noite", "0", "oii", "bom diaa",
                                  "e aí, tudo certo?"])
def test_greeting_shows_the_menu_with_the_name(chat, text):
    reply = chat(text)
    assert "Olá, Ana!" in reply and "Loja Demo" in reply
    assert "*1* Buscar produtos" in reply and "*5* Falar com um vendedor" in reply


@pytest.mark.parametrize("text", ["menu", "início", "o que vc faz?", "como funciona isso aqui"])
def test_asking_what_the_bot_does_shows_the_menu(chat, text):
    reply = chat(text)
    assert "Posso te ajudar" in reply and "*1* Buscar produtos" in reply and "*5* Falar com um vendedor" in reply


@pytest.mark.parametrize("text", ["tem tenis preto 42?", "Tem tênis preto 42", "tenis pretu 42", "TÊNIS PRETO",
                                  "voces tem tennis preto?"])
def test_search_finds_the_black_running_shoe_with_price_and_link(chat, text):
    reply = chat(text)
    assert "*1.* Tênis Corrida Preto — R$\xa0299,90" in reply
    assert "https://loja.example/produto/" in reply
    assert "Camiseta" not in reply  # only products matching every word


def test_a_search_is_kept_on_the_customer_for_the_sellers_suggestion(chat, shop, ana):
    chat("tem tenis preto 42?")
    shop.refresh(ana)
    found = ana.last_search
    assert found["query"] == "tem tenis preto 42?" and found["at"] == NOW.isoformat()
    names = [shop.get(Product, i).name for i in found["products"]]
    assert names and names[0] == "Tênis Corrida Preto"
    chat("oi")  # a message that is not a search leaves it as it was
    shop.refresh(ana)
    assert ana.last_search == found


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
    assert "👍" in chat("😀🔥👟") and "Imagina" in chat("🙏🙏")  # emoji only: answered in kind, not the menu
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


# --- understanding in context: references, short answers, small talk, people, hours ------------------------

def test_ordinals_demonstratives_and_the_link_resolve_against_what_is_shown(chat, shop, ana):
    chat("camiseta basica")
    assert "Qual você quer?" in chat("vou levar a segunda")  # the second of the list: which size?
    assert "Coloquei" in chat("G")
    chat("mochila")
    details = chat("me fala mais da primeira")
    assert "*Mochila Urbana 20L" in details and "Quer levar?" in details
    assert "Coloquei Mochila Urbana 20L" in chat("quero essa")  # the product in view, one size: no question
    total = chat("qto deu?")
    assert "*Total:" in total and "Mochila Urbana 20L" in total
    link = chat("manda o link")
    assert "https://loja.example/checkout?itens=" in link and len(bot_cart(shop, ana).items) == 2


def test_a_command_with_an_item_is_never_an_faq_answer(chat, shop, ana):
    from bot import faq

    faq.save_entry(shop, None, title="Tabela de medidas", keywords="tamanho, medidas, tabela",
                   answer="Veja a tabela em loja.example/medidas.")
    shop.commit()
    chat("mochila")
    reply = chat("quero o 1 tamanho unico")
    assert "Coloquei Mochila Urbana 20L" in reply and "tabela" not in reply.lower()
    closing = chat("pode fechar")  # "fecha" is a keyword of the hours topic; with a cart it is the checkout
    assert "https://loja.example/checkout?itens=" in closing and "Atendemos" not in closing


@pytest.mark.parametrize("answer", ["M", "G", "gg", "42"])
def test_a_lone_size_is_never_a_request_for_a_person(chat, shop, answer):
    reply = chat(answer)
    assert "vendedor" not in reply.lower() or "Falar com um vendedor" in reply  # at most the menu's option
    assert shop.scalar(select(func.count()).select_from(HandoffRequest)) == 0


def test_a_size_alone_picks_it_for_the_product_in_view_and_a_question_answers_it(chat, shop, ana):
    chat("tenis corrida preto")
    chat("detalhes do 1")
    assert "Temos sim!" in chat("tem no 40?") and bot_cart(shop, ana) is None  # asked: answered, not added
    assert "Coloquei Tênis Corrida Preto 40" in chat("sim")
    chat("detalhes do 1")
    assert "Coloquei Tênis Corrida Preto 41" in chat("41")


def test_another_colour_of_the_product_in_view_is_its_twin_product(chat):
    chat("tenis corrida preto")
    chat("detalhes do 1")
    assert "Tênis Corrida Branco" in chat("e na cor branca?")


@pytest.mark.parametrize("text", ["quero falar com um vendedor", "tem alguém aí?", "me passa pra uma atendente",
                                  "quero ser atendida por uma pessoa de verdade", "robô não, quero gente"])
def test_asking_for_a_person_in_any_phrasing_says_when(chat, shop, text):
    reply = chat(text)
    assert "vai falar com você por aqui, no WhatsApp da loja, em até 30 minutos" in reply
    assert shop.scalar(select(func.count()).select_from(HandoffRequest)) == 1


def test_out_of_hours_the_handoff_says_when_the_store_opens_and_the_deadline_follows(runtime, shop, ana):
    from models import Opportunity

    sunday_night = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)  # Sunday 23:00 in São Paulo
    reply = "\n".join(respond(shop, runtime.redis, runtime.keys, runtime.settings, ana, "quero falar com alguém",
                              now=sunday_night))
    shop.commit()
    assert "amanhã (segunda) a partir das 9h" in reply and "segunda a sábado, das 9h às 21h" in reply
    deadline = shop.scalar(select(Opportunity.deadline))
    assert deadline == datetime(2026, 11, 30, 12, 30, tzinfo=timezone.utc)  # Monday 09:30: 30 open minutes


@pytest.mark.parametrize("text,expected", [("obrigado!", "Imagina, Ana!"), ("kkkk", "👍"), ("ok", "👍"),
                                           ("tchau, até mais", "Até mais, Ana!"), ("valeu mesmo", "Imagina")])
def test_small_talk_gets_a_short_human_reply_not_the_menu(chat, text, expected):
    reply = chat(text)
    assert expected in reply and "*1* Buscar produtos" not in reply and len(reply) < 120


def test_a_complaint_goes_to_a_person(chat, shop):
    reply = chat("que absurdo, veio tudo errado e ninguém resolve")
    assert "Sinto muito, Ana" in reply and "em até 30 minutos" in reply
    assert shop.scalar(select(HandoffRequest.reason)) == "complaint"


def test_an_opt_out_the_rules_did_not_catch_is_asked_about_and_opt_in_while_in_is_explained(chat, shop, ana):
    assert "já recebe nossas mensagens" in chat("quero voltar a receber")
    assert ana.opt_out_asked_at is None
    assert "Responda *SIM*" in chat("nao autorizei vcs a me mandarem isso")  # the consent rules read nothing here
    shop.refresh(ana)
    assert ana.opt_out_asked_at is not None and ana.opted_out_at is None


def test_when_unsure_between_two_intents_the_bot_asks_and_the_answer_acts(chat, monkeypatch):
    from bot import engine
    from bot.understanding.model import Guess

    real = engine.read

    def unsure(session, text, **kwargs):
        reading = real(session, text, **kwargs)
        if text == "hmm o carrinho e o pagamento":
            return engine.Reading(guesses=[Guess("cart", 0.4), Guess("checkout", 0.35), Guess("help", 0.1)],
                                  entities=reading.entities, topics=reading.topics, known_words=3)
        return reading

    monkeypatch.setattr(engine, "read", unsure)
    chat("mochila")
    chat("quero o 1")
    question = chat("hmm o carrinho e o pagamento")
    assert "*ver o seu carrinho* ou *receber o link de pagamento*" in question
    assert "https://loja.example/checkout?itens=" in chat("2")


def test_replies_to_a_recovery_message_restore_the_cart_with_the_coupon(chat, shop, ana):
    from datetime import timedelta

    from bot import carts
    from models import AttemptStatus, CouponRule, Product, RecoveryAttempt, Variant
    from recovery import coupons

    variant = shop.scalar(select(Variant).join(Product).where(Product.name == "Tênis Corrida Preto",
                                                              Variant.size == "42"))
    cart = carts.open_cart(shop, ana, create=True, now=NOW - timedelta(minutes=40))
    carts.add_variant(cart, variant, 1, NOW - timedelta(minutes=40))
    attempt = RecoveryAttempt(customer_id=ana.id, interaction_at=NOW - timedelta(minutes=40), due_at=NOW,
                              status=AttemptStatus.SENT, sent_at=NOW - timedelta(minutes=20))
    shop.add(attempt)
    shop.flush()
    rule = shop.scalar(select(CouponRule))
    code = coupons.issue(shop, rule=rule, customer_id=ana.id, attempt_id=attempt.id, now=NOW - timedelta(minutes=20),
                         validity_hours=24).code
    shop.commit()
    assert "Temos sim!" in chat("ainda tem o 42?")
    used = chat("quero usar o cupom")
    assert f"cupom={code}" in used and "itens=" in used
    info = chat("o cupom vale até quando?")
    assert code in info and "10% de desconto" in info


_FRAGMENTS = ["oi", "tenis preto", "quero o 2", "a primeira", "essa", "sim", "não", "42", "M", "tem no 40?",
              "e na cor branca?", "tira um", "deixa só a camiseta", "coloca mais um igual", "qto deu?", "manda o link",
              "pode fechar", "frete?", "obrigado", "kkk", "1", "2", "5", "quero usar o cupom", "tem de outra cor?",
              "camiseta basica", "mochila", "detalhes do 3", "o último", "quero falar com alguém", "aff", "🙏", "",
              "xkcd qwe", "me ve 3 do 1", "remove o 9", "e em azul?", "outra coisa", "tchau"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=8))
def test_any_sequence_of_messages_gets_a_reply_and_keeps_the_cart_consistent(runtime, shop, ana, messages):
    runtime.redis.delete(runtime.keys("conv", ana.id))
    for text in messages:
        replies = respond(shop, runtime.redis, runtime.keys, runtime.settings, ana, text, now=NOW)
        assert replies and all(r.strip() for r in replies)
        cart = bot_cart(shop, ana)
        if cart is not None:
            assert all(item.quantity >= 1 for item in cart.items)
            assert cart.total == sum((item.unit_price * item.quantity for item in cart.items), Decimal("0"))
    shop.rollback()


# --- tappable options (Meta's reply buttons and lists) ------------------------------------------------------

@pytest.fixture
def replies(runtime, shop, ana):
    def say(text):
        out = respond(shop, runtime.redis, runtime.keys, runtime.settings, ana, text, now=NOW)
        shop.commit()
        return out

    return say


def _options(reply) -> list[tuple[str, str]]:
    return [(o["id"], o["title"]) for o in reply.interactive["options"]]


def test_search_results_carry_one_option_per_listed_product_in_the_listed_order(replies):
    *_, last = replies("tem tenis preto?")
    options = _options(last)
    assert options and [oid for oid, _ in options] == [f"opt:{n}" for n in range(1, len(options) + 1)]
    for number, (_, title) in enumerate(options, 1):
        assert f"{number}" in last and title in last  # the text lists the same products: the Twilio fallback


def test_a_tapped_result_number_picks_that_product(replies):
    *_, listed = replies("tem tenis preto?")
    first_title = _options(listed)[0][1]
    # What channel.meta_inbound makes of a tap on "opt:1": the text the shopper would have typed.
    assert first_title in "\n".join(replies("1"))


def test_the_size_question_offers_the_sizes_as_options(replies):
    replies("tenis corrida preto")
    *_, asked = replies("quero o 1")
    ids = [oid for oid, _ in _options(asked)]
    assert "opt:42" in ids and all(oid.removeprefix("opt:") in asked for oid in ids)


def test_the_greeting_offers_the_menu_unless_the_merchant_rewrote_it(replies, shop):
    *_, greeting = replies("oi")
    assert [title for _, title in _options(greeting)][:2] == ["Buscar produtos", "Meu carrinho"]
    texts.save_override(shop, "menu", "Escolha: *1* Ofertas *2* Atendimento", store_name="Loja Demo")
    shop.commit()
    *_, again = replies("oi")
    assert getattr(again, "interactive", None) is None
