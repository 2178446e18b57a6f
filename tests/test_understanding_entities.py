"""bot.understanding.entities: item references, quantities, sizes, colours, money, dates and order numbers in chat
messages as shoppers type them (no accents, typos, abbreviations), and resolving a reference against a list."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from bot.understanding.entities import MIDDLE, Entities, ItemRef, extract, resolve
from catalog.search import parse_query

TODAY = date(2025, 11, 19)  # a Wednesday


def read(text: str) -> Entities:
    return extract(text, today=TODAY)


def ref(**fields) -> ItemRef:
    return ItemRef(**fields)


# --- item references ----------------------------------------------------------------------------------------

REFS = [
    # numbers after an article, a contraction or an item noun
    ("quero o 2", [ref(index=2)]),
    ("o 1 e o 3", [ref(index=1), ref(index=3)]),
    ("o 1, o 3 e o 5", [ref(index=1), ref(index=3), ref(index=5)]),
    ("a 3 tem em azul?", [ref(index=3)]),
    ("n 3", [ref(index=3)]),
    ("item 1", [ref(index=1)]),
    ("opção 4", [ref(index=4)]),
    ("opcao 4 pfv", [ref(index=4)]),
    ("a opção número 2", [ref(index=2)]),
    ("quero o item 12", [ref(index=12)]),
    ("foto 3", [ref(index=3)]),
    ("o 10", [ref(index=10)]),
    ("quero o dois", [ref(index=2)]),
    # bare digits
    ("quero 2", [ref(index=2)]),
    ("2", [ref(index=2)]),
    ("1 e 3", [ref(index=1), ref(index=3)]),
    ("2, 3 e 5", [ref(index=2), ref(index=3), ref(index=5)]),
    ("o 1 e 3", [ref(index=1), ref(index=3)]),
    ("quero 2 por favor", [ref(index=2)]),
    # ordinals
    ("a primeira", [ref(index=1)]),
    ("o segundo", [ref(index=2)]),
    ("terceira", [ref(index=3)]),
    ("quero a quarta", [ref(index=4)]),
    ("o quinto", [ref(index=5)]),
    ("a sexta opção", [ref(index=6)]),
    ("o setimo", [ref(index=7)]),
    ("a oitava", [ref(index=8)]),
    ("o nono", [ref(index=9)]),
    ("a decima", [ref(index=10)]),
    ("primeiro", [ref(index=1)]),
    ("quero a primera", [ref(index=1)]),
    ("1º", [ref(index=1)]),
    ("a 2ª", [ref(index=2)]),
    ("quero o 1o", [ref(index=1)]),
    ("a 1a", [ref(index=1)]),
    ("o 3o por favor", [ref(index=3)]),
    ("a primeira e a quarta", [ref(index=1), ref(index=4)]),
    ("segunda opção", [ref(index=2)]),
    ("quero a segunda", [ref(index=2)]),
    ("o primeiro item", [ref(index=1)]),
    # last, middle, superlatives
    ("o último", [ref(last=True)]),
    ("a ultima", [ref(last=True)]),
    ("ultimo", [ref(last=True)]),
    ("a do meio", [ref(attributes=(MIDDLE,))]),
    ("o do meio", [ref(attributes=(MIDDLE,))]),
    ("o mais barato", [ref(cheapest=True)]),
    ("a mais barata", [ref(cheapest=True)]),
    ("o mais caro", [ref(priciest=True)]),
    ("o mais em conta", [ref(cheapest=True)]),
    ("o de menor preço", [ref(cheapest=True)]),
    ("a azul mais barata", [ref(attributes=("azul",), cheapest=True)]),
    ("a mais barata de couro", [ref(attributes=("couro",), cheapest=True)]),
    # attributes
    ("a azul", [ref(attributes=("azul",))]),
    ("quero a preta", [ref(attributes=("preta",))]),
    ("o de couro", [ref(attributes=("couro",))]),
    ("a camiseta", [ref(attributes=("camiseta",))]),
    ("a sem manga", [ref(attributes=("sem", "manga"))]),
    ("a de manga longa", [ref(attributes=("manga", "longa"))]),
    ("gostei da preta", [ref(attributes=("preta",))]),
    ("quero a camiseta da nike", [ref(attributes=("camiseta", "nike"))]),
    ("o de couro vem em que cor?", [ref(attributes=("couro",))]),
    ("2 da azul e 1 da preta", [ref(attributes=("azul",)), ref(attributes=("preta",))]),
    # demonstratives
    ("esse", [ref(demonstrative=True)]),
    ("essa aqui", [ref(demonstrative=True)]),
    ("esse mesmo", [ref(demonstrative=True)]),
    ("quero essa", [ref(demonstrative=True)]),
    ("quero esta", [ref(demonstrative=True)]),
    ("esta aqui", [ref(demonstrative=True)]),
    ("quero isso", [ref(demonstrative=True)]),
    ("tem desse em azul?", [ref(demonstrative=True)]),
    ("quero ele", [ref(demonstrative=True)]),
    ("manda ela", [ref(demonstrative=True)]),
    ("pode ser ela", [ref(demonstrative=True)]),
    ("fico com ele", [ref(demonstrative=True)]),
    ("gostei dela", [ref(demonstrative=True)]),
    ("quero o mesmo", [ref(demonstrative=True)]),
    ("aquela", [ref(demonstrative=True)]),
    ("quero essa azul", [ref(demonstrative=True, attributes=("azul",))]),
    ("esse de couro", [ref(demonstrative=True, attributes=("couro",))]),
]


@pytest.mark.parametrize("text, expected", REFS, ids=[t for t, _ in REFS])
def test_references(text, expected):
    assert list(read(text).refs) == expected


NO_REFS = [
    "essencial",  # a demonstrative never inside a word
    "estampa floral",
    "estampado",
    "isso",  # an answer, not a pick
    "isso mesmo",
    "é isso",
    "isso ai",
    "por isso",
    "esta disponivel?",  # the verb "está" without its accent
    "está disponível?",
    "essa semana chega?",
    "esse mes tem promoção?",
    "chega segunda?",
    "segunda-feira",
    "a segunda feira",
    "na quarta",
    "até a sexta",
    "a partir da segunda",
    "a primeira vez que compro",
    "minha primeira compra",
    "primeiro queria saber o frete",
    "só um segundo",
    "segundo o site",
    "ultimo pedido",
    "a ultima vez",
    "quero uma camiseta preta",  # "uma" is an article
    "camiseta da nike",  # "da nike" qualifies the product
    "o frete",
    "a entrega demora?",
    "o que voces tem?",
    "posso pagar no cartao?",
    "pagamento a vista",
    "tem no 42?",
    "o 42",
    "a 11",
    "o GG",
    "tem a M?",
    "ele é lindo",  # "ele" as a subject
    "ela gostou",
    "quero os dois",  # both: not one reference
]


@pytest.mark.parametrize("text", NO_REFS)
def test_no_reference(text):
    assert read(text).refs == ()


# --- quantities ---------------------------------------------------------------------------------------------

QUANTITIES = [
    ("quero 2 do 1", 2, [ref(index=1)]),
    ("duas da primeira", 2, [ref(index=1)]),
    ("uma da primeira", 1, [ref(index=1)]),
    ("quero um do 2", 1, [ref(index=2)]),
    ("3 unidades", 3, []),
    ("quero 12 unidades", 12, []),
    ("mais um", 1, []),
    ("mais uma da azul", 1, [ref(attributes=("azul",))]),
    ("mais 2 da azul", 2, [ref(attributes=("azul",))]),
    ("um par", 1, []),
    ("dois pares de meia", 2, []),
    ("2 peças", 2, []),
    ("2 dessa", 2, [ref(demonstrative=True)]),
    ("2 dela", 2, [ref(demonstrative=True)]),
    ("2x do 1", 2, [ref(index=1)]),
    ("quero duas", 2, []),
    ("quero 2 camisetas pretas", 2, []),
    ("3 pretas tamanho M", 3, []),
    ("quero uma camiseta", None, []),
    ("quero um tenis", None, []),
    ("quero o 2", None, [ref(index=2)]),
    ("parcela em 3x?", None, []),
    ("3x sem juros", None, []),
    ("kit 3 meias", None, []),
    ("o 2 de couro", None, [ref(index=2)]),
]


@pytest.mark.parametrize("text, quantity, refs", QUANTITIES, ids=[t for t, _, _ in QUANTITIES])
def test_quantities(text, quantity, refs):
    entities = read(text)
    assert entities.quantity == quantity
    assert list(entities.refs) == refs


# --- sizes --------------------------------------------------------------------------------------------------

SIZES = [
    ("tamanho M", "M"),
    ("tem no 42?", "42"),
    ("numero 40", "40"),
    ("nº 38", "38"),
    ("tam G", "G"),
    ("tam. gg", "GG"),
    ("o GG", "GG"),
    ("a preta P", "P"),
    ("camiseta p", "P"),
    ("camiseta p preta", "P"),
    ("tem P?", "P"),
    ("M", "M"),
    ("tem xg?", "XG"),
    ("tem eg?", "EG"),
    ("tamanho g1", "G1"),
    ("quero o 1 tamanho 42", "42"),
    ("o 42", "42"),
    ("tem 42?", "42"),
    ("tenis 39 preto", "39"),
    ("calço 38", "38"),
    ("tamanho 4", "4"),
    ("na 3", "3"),
    ("n 42", "42"),
    ("tem 37/38?", "37/38"),
    ("chinelo 37 38", "37/38"),
    ("37 ou 38", "37/38"),
    ("38-39", "38/39"),
    ("tam 1/2", "1/2"),
    ("tem do 38 ate 42", "38"),
    ("quero o 1 tamanho unico", "Único"),
    ("tamanho único", "Único"),
    ("tam u", "Único"),
    ("mochila p notebook", None),  # "p" is "para"
    ("presente p minha filha", None),
    ("quero o 2", None),  # 1-10 only after a size cue
    ("ela tem 15 anos", None),
    ("custa 30?", None),
    ("500 g", None),
    ("até 100 reais", None),
]


@pytest.mark.parametrize("text, size", SIZES, ids=[t for t, _ in SIZES])
def test_sizes(text, size):
    assert read(text).size == size


def test_reference_and_size_together():
    entities = read("quero o 1 tamanho unico")
    assert entities.refs == (ref(index=1),)
    assert entities.size == "Único"
    entities = read("quero 2 do 1 tamanho G")
    assert (entities.quantity, entities.refs, entities.size) == (2, (ref(index=1),), "G")
    entities = read("o 2 no M")
    assert (entities.refs, entities.size) == ((ref(index=2),), "M")


# --- colours: as the catalog search reads them ----------------------------------------------------------------

COLOUR_TEXTS = [
    "quero a preta", "tem esse em azul marinho?", "a azul clara tam M", "cor de pele", "off white tam M",
    "tem vinho?", "quero o 2 branco", "camiseta p preta", "nao tem cor", "quero a pretinha", "azul bebe 38",
    "duas da vermelha", "black", "quero o 1", "bordô", "verde militar g",
]


@pytest.mark.parametrize("text", COLOUR_TEXTS)
def test_colour_as_parse_query_reports_it(text):
    assert read(text).color == parse_query(text).color


def test_colour_values():
    assert read("quero a preta").color == "preto"
    assert read("tem esse em azul marinho?").color == "azul marinho"
    assert read("quero o 1").color is None


# --- money --------------------------------------------------------------------------------------------------

MONEY = [
    ("até 100 reais", Decimal(100), True),
    ("R$ 59,90", Decimal("59.90"), False),
    ("r$59", Decimal(59), False),
    ("uns 200 conto", Decimal(200), False),
    ("150,00", Decimal("150.00"), False),
    ("59.90", Decimal("59.90"), False),
    ("1.299,90", Decimal("1299.90"), False),
    ("2 mil reais", Decimal(2000), False),
    ("no máximo 150", Decimal(150), True),
    ("menos de 80 reais", Decimal(80), True),
    ("até R$ 100", Decimal(100), True),
    ("tem tenis ate 300?", Decimal(300), True),
    ("por volta de 120", Decimal(120), False),
    ("abaixo de 200 reais", Decimal(200), True),
    ("ate uns 250 reais", Decimal(250), True),
    ("tem do 38 ate 42", None, False),  # below 50 with no currency: a size
    ("quero o 2", None, False),
]


@pytest.mark.parametrize("text, money, at_most", MONEY, ids=[t for t, _, _ in MONEY])
def test_money(text, money, at_most):
    entities = read(text)
    assert entities.money == money
    assert entities.money_max is at_most


# --- dates --------------------------------------------------------------------------------------------------

DATES = [
    ("hoje", date(2025, 11, 19)),
    ("hj", date(2025, 11, 19)),
    ("chega amanhã?", date(2025, 11, 20)),
    ("depois de amanha", date(2025, 11, 21)),
    ("ontem", date(2025, 11, 18)),
    ("anteontem", date(2025, 11, 17)),
    ("sexta", date(2025, 11, 21)),
    ("chega segunda?", date(2025, 11, 24)),
    ("segunda-feira", date(2025, 11, 24)),
    ("2a feira", date(2025, 11, 24)),
    ("na quarta", date(2025, 11, 19)),  # today is a Wednesday: on or after today
    ("proxima quarta", date(2025, 11, 26)),
    ("quarta que vem", date(2025, 11, 26)),
    ("sexta passada", date(2025, 11, 14)),
    ("comprei sexta", date(2025, 11, 14)),
    ("sábado", date(2025, 11, 22)),
    ("até a sexta", date(2025, 11, 21)),
    ("essa sexta", date(2025, 11, 21)),
    ("dia 12", date(2025, 12, 12)),  # a day alone: the next one
    ("dia 25", date(2025, 11, 25)),
    ("comprei dia 12", date(2025, 11, 12)),
    ("dia 31", date(2025, 12, 31)),
    ("12/11", date(2025, 11, 12)),  # a day and month: the nearest
    ("chega 02/01?", date(2026, 1, 2)),
    ("12/11/2024", date(2024, 11, 12)),
    ("12 de dezembro", date(2025, 12, 12)),
    ("quero a segunda", None),
    ("tem 37/38?", None),
]


@pytest.mark.parametrize("text, expected", DATES, ids=[t for t, _ in DATES])
def test_dates(text, expected):
    assert read(text).date == expected


def test_date_defaults_to_the_machines_today():
    assert extract("hoje").date == date.today()


# --- order numbers ------------------------------------------------------------------------------------------

ORDERS = [
    ("pedido 1234", "1234"),
    ("pedido #A-1001", "A-1001"),
    ("cadê meu pedido a-1001?", "A-1001"),
    ("nº 5521", "5521"),
    ("meu pedido é o 4432", "4432"),
    ("pedido numero 98765 nao chegou", "98765"),
    ("#1234", "1234"),
    ("pedido 12", None),
    ("pedido de 2 camisetas", None),
    ("quero o 2", None),
]


@pytest.mark.parametrize("text, expected", ORDERS, ids=[t for t, _ in ORDERS])
def test_order_numbers(text, expected):
    assert read(text).order_number == expected


def test_short_order_number_is_not_a_size_and_a_real_order_keeps_its_quantity():
    assert read("pedido 12").size is None
    entities = read("pedido de 2 camisetas")
    assert (entities.quantity, entities.rest) == (2, "camisetas")


# --- rest ---------------------------------------------------------------------------------------------------

RESTS = [
    ("quero o 1 tamanho G azul", "azul"),
    ("quero 2 do 1 tamanho M", ""),
    ("quero a camiseta preta", "camiseta preta"),
    ("tem esse em vermelho tam M?", "vermelho"),
    ("quero 2 camisetas pretas tamanho M", "camisetas pretas"),
    ("tem tenis ate 300 reais pra entregar amanha?", "tenis"),
    ("o de couro", "couro"),
    ("o mais caro", ""),
    ("a do meio", ""),
    ("Tênis PRETO, 42!", "tenis preto"),
    ("pedido #A-1001 chega sexta?", "chega"),
]


@pytest.mark.parametrize("text, rest", RESTS, ids=[t for t, _ in RESTS])
def test_rest(text, rest):
    assert read(text).rest == rest


def test_empty_and_hostile_input():
    assert read("") == Entities(refs=(), quantity=None, size=None, color=None, money=None, money_max=False,
                                date=None, order_number=None, rest="")
    assert read("???!!!") == read("")
    long = read("quero o 2 " + "blablabla " * 500)
    assert long.refs == (ref(index=2),)
    for hostile in ("pedido" + " " * 600 + "x", "1/" * 400, "a " * 400, "pedido " + "de " * 300, "r$ " * 300,
                    "#" + "1-" * 300, "o 1 " * 200, "\n".join(["oi"] * 300), "🙂ªº" * 200):
        started = time.perf_counter()
        extract(hostile, today=TODAY)
        assert time.perf_counter() - started < 0.05, hostile[:20]


# --- resolve ------------------------------------------------------------------------------------------------

ITEMS = [
    ("Camiseta Básica Preta", Decimal("59.90")),
    ("Camiseta Básica Azul", Decimal("59.90")),
    ("Jaqueta de Couro Preta", Decimal("399.90")),
    ("Tênis Runner Azul", Decimal("249.90")),
    ("Bolsa Tiracolo Caramelo", Decimal("259.90")),
]


def positions(item_ref: ItemRef, items=ITEMS, with_price=True) -> list[int]:
    return resolve(item_ref, items, describe=lambda item: item[0], price=(lambda item: item[1]) if with_price else None)


RESOLVED = [
    (ref(index=2), [2]),
    (ref(index=5), [5]),
    (ref(index=6), []),
    (ref(index=0), []),
    (ref(last=True), [5]),
    (ref(demonstrative=True), []),
    (ref(demonstrative=True, attributes=("azul",)), []),
    (ref(), []),
    (ref(attributes=("azul",)), [2, 4]),
    (ref(attributes=("preta",)), [1, 3]),
    (ref(attributes=("pretas",)), [1, 3]),  # plural: same stem
    (ref(attributes=("preto",)), [1, 3]),  # other gender
    (ref(attributes=("black",)), [1, 3]),  # the same colour in another form
    (ref(attributes=("couro",)), [3]),
    (ref(attributes=("camiseta", "azul")), [2]),
    (ref(attributes=("camizeta",)), [1, 2]),  # a typo, 5+ letters
    (ref(attributes=("camisetas",)), [1, 2]),
    (ref(attributes=("tenis",)), [4]),
    (ref(attributes=("tenys",)), [4]),
    (ref(attributes=("jaketa",)), [3]),
    (ref(attributes=("prata",)), []),  # colours are never matched loosely: prata is not preta
    (ref(attributes=("bolso",)), []),  # nor short words one letter apart: a pocket is not a bag
    (ref(attributes=("vestido",)), []),
    (ref(cheapest=True), [1, 2]),  # a tie: both
    (ref(priciest=True), [3]),
    (ref(attributes=("azul",), cheapest=True), [2]),
    (ref(attributes=("preta",), priciest=True), [3]),
    (ref(attributes=(MIDDLE,)), [3]),
    (ref(attributes=("azul", MIDDLE)), [2, 4]),  # two: both middle ones
    (ref(index=1, attributes=("couro",)), [1]),  # an index wins
]


@pytest.mark.parametrize("item_ref, expected", RESOLVED, ids=[repr(r) for r, _ in RESOLVED])
def test_resolve(item_ref, expected):
    assert positions(item_ref) == expected


def test_resolve_without_prices_or_items():
    assert positions(ref(cheapest=True), with_price=False) == []
    assert positions(ref(last=True), items=[]) == []
    assert positions(ref(attributes=(MIDDLE,)), items=[]) == []
    assert resolve(ref(cheapest=True), ITEMS, describe=lambda i: i[0],
                   price=lambda i: None if i[1] < 100 else i[1]) == [4]


def test_resolve_demonstrative_with_attributes_when_the_caller_drops_the_focus():
    item_ref = read("quero essa azul").refs[0]
    assert positions(item_ref) == []
    assert positions(replace(item_ref, demonstrative=False)) == [2, 4]


END_TO_END = [
    ("quero a azul mais barata", [2]),
    ("o de couro", [3]),
    ("a camizeta azul", [2]),
    ("o ultimo", [5]),
    ("a do meio", [3]),
    ("o mais caro", [3]),
    ("quero o tenis", [4]),
    ("a 2ª", [2]),
]


@pytest.mark.parametrize("text, expected", END_TO_END, ids=[t for t, _ in END_TO_END])
def test_extract_then_resolve(text, expected):
    refs = read(text).refs
    assert len(refs) == 1
    assert positions(refs[0]) == expected


# --- cost ---------------------------------------------------------------------------------------------------


def test_fast_enough():
    texts = [t for t, *_ in REFS + QUANTITIES + SIZES + MONEY + DATES + ORDERS + RESTS] + NO_REFS
    for text in texts:  # warm-up (lru caches, regex compilation done at import)
        extract(text, today=TODAY)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            extract(text, today=TODAY)
    per_message = (time.perf_counter() - started) / (rounds * len(texts))
    assert per_message < 0.001, f"{per_message * 1e6:.0f} µs per message"  # typically ~30 µs; generous for CI
