"""The customer's "Produtos recomendados" (popular, repurchase, trending) and "Mais comprados", on small catalogs
whose expected lists are computed by hand in each test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from crm.recommendations import (
    POPULAR_DAYS,
    Recommendation,
    attribute_keys,
    most_bought,
    popular,
    recommendations,
    repurchase,
    trending,
    valid_grouping,
)
from models import Customer, Order, OrderItem, OrderStatus, Product, Variant

# Far from the dates other tests write, so a shared PostgreSQL database's other rows fall outside every window.
NOW = datetime(2031, 6, 15, 12, 0, tzinfo=timezone.utc)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def make_product(session, key: str, name: str, *, price: str = "100.00", stock: int | None = 5, active: bool = True,
                 variant_active: bool = True, created: datetime | None = None, category: str | None = None,
                 brand: str | None = None, attributes: dict | None = None, variants: list[dict] | None = None
                 ) -> Product:
    """One variant ``RECO-<key>-V`` unless ``variants`` (dicts of Variant fields, ``sku`` suffix required)."""
    key = f"RECO-{key}"
    product = Product(key=key, name=name, price=Decimal(price), category=category, brand=brand,
                      attributes=attributes or {}, url=f"https://loja.example/p/{key.lower()}",
                      image_url=f"https://loja.example/img/{key.lower()}.jpg", active=active,
                      created_at=created or days_ago(400))
    specs = variants or [{"sku": "V", "price": price, "stock": stock, "active": variant_active}]
    product.variants = [
        Variant(sku=f"{key}-{spec['sku']}", size=spec.get("size"), color=spec.get("color"),
                options=spec.get("options", {}), price=Decimal(spec.get("price", price)),
                stock=spec.get("stock", 5), active=spec.get("active", True))
        for spec in specs]
    session.add(product)
    session.flush()
    return product


def sku(product: Product, index: int = 0) -> str:
    return product.variants[index].sku


def people(session, count: int) -> list[Customer]:
    made = []
    for n in range(count):
        person = Customer(phone=f"+55999777{n:05d}", name=f"Cliente {n}", tags=[])
        session.add(person)
        made.append(person)
    session.flush()
    return made


_orders = iter(range(1, 10**9))


def buy(session, who: Customer, when: datetime, *lines, status: OrderStatus = OrderStatus.PAID) -> Order:
    """lines: (sku, quantity, unit_price[, item name])."""
    order = Order(external_id=f"reco-{next(_orders)}", customer_id=who.id, status=status, total=Decimal(0),
                  placed_at=when)
    for line in lines:
        code, quantity, price, *name = line
        order.items.append(OrderItem(sku=code, name=name[0] if name else "Item", quantity=quantity,
                                     unit_price=Decimal(price)))
    order.total = sum((i.unit_price * i.quantity for i in order.items), Decimal(0))
    session.add(order)
    session.flush()
    return order


def buy_one(session, who, product, when, *, quantity=1, status=OrderStatus.PAID):
    return buy(session, who, when, (sku(product), quantity, str(product.variants[0].price)), status=status)


def listed(items: list[Recommendation]) -> list[tuple[str, str]]:
    return [(r.name, r.why) for r in items]


# --- popular -----------------------------------------------------------------------------------------------------


def test_popular_counts_distinct_customers_in_the_window_and_ignores_cancelled_orders(session):
    me, c1, c2, c3, c4, c5 = people(session, 6)
    polo = make_product(session, "POLO", "Camisa Polo")
    bermuda = make_product(session, "BERMUDA", "Bermuda")
    meia = make_product(session, "MEIA", "Meia")
    cinto = make_product(session, "CINTO", "Cinto")
    bone = make_product(session, "BONE", "Boné")
    for n in range(3):
        buy_one(session, c1, polo, days_ago(10 + n))
    buy_one(session, c2, polo, days_ago(20))
    buy_one(session, c3, polo, days_ago(89))
    buy_one(session, c1, bermuda, days_ago(5))
    buy_one(session, c2, bermuda, days_ago(6))
    buy_one(session, c4, bermuda, days_ago(7), status=OrderStatus.CANCELLED)  # not a purchase
    buy_one(session, c5, bermuda, days_ago(POPULAR_DAYS + 1))  # before the window
    buy_one(session, c1, meia, days_ago(3))  # one buyer: not popular
    buy_one(session, c2, meia, days_ago(3), status=OrderStatus.CANCELLED)
    buy_one(session, c4, cinto, days_ago(1), status=OrderStatus.CREATED)  # created (unpaid) orders count
    buy_one(session, c5, cinto, days_ago(2))
    for n in range(10):  # ten orders of one customer are one buyer
        buy_one(session, c1, bone, days_ago(30 + n), quantity=3)
    buy_one(session, c2, bone, days_ago(31))
    buy_one(session, c3, bone, NOW + timedelta(days=1))  # after "now": not yet

    assert listed(popular(session, me.id, NOW)) == [
        ("Camisa Polo", "comprado por 3 clientes nos últimos 90 dias"),
        ("Bermuda", "comprado por 2 clientes nos últimos 90 dias"),
        ("Boné", "comprado por 2 clientes nos últimos 90 dias"),
        ("Cinto", "comprado por 2 clientes nos últimos 90 dias"),
    ]
    assert [r.name for r in popular(session, me.id, NOW, limit=2)] == ["Camisa Polo", "Bermuda"]


def test_a_recommendation_carries_the_lowest_price_of_its_variants_in_stock(session):
    me, c1, c2 = people(session, 3)
    tenis = make_product(session, "TENIS", "Tênis Corrida", variants=[
        {"sku": "39", "price": "199.90", "stock": 0},
        {"sku": "40", "price": "249.90", "stock": None},
        {"sku": "41", "price": "229.90", "stock": 2},
        {"sku": "42", "price": "149.90", "stock": 9, "active": False}])
    buy(session, c1, days_ago(3), (sku(tenis, 0), 1, "199.90"))  # the sold-out size still counts as a sale
    buy(session, c2, days_ago(4), (sku(tenis, 3), 1, "149.90"))

    [rec] = popular(session, me.id, NOW)
    assert rec.price == Decimal("229.90")
    assert rec.as_json() == {
        "product_id": tenis.id, "key": "RECO-TENIS", "name": "Tênis Corrida", "price": "229.90",
        "url": "https://loja.example/p/reco-tenis", "image_url": "https://loja.example/img/reco-tenis.jpg",
        "why": "comprado por 2 clientes nos últimos 90 dias"}


# --- repurchase --------------------------------------------------------------------------------------------------


def test_repurchase_ranks_by_the_share_of_buyers_who_came_back(session):
    me, *c = people(session, 9)
    cafe = make_product(session, "CAFE", "Café")
    biscoito = make_product(session, "BISCOITO", "Biscoito", variants=[{"sku": "DOCE"}, {"sku": "SAL"}])
    geleia = make_product(session, "GELEIA", "Geleia")
    cha = make_product(session, "CHA", "Chá")
    pao = make_product(session, "PAO", "Pão")
    mate = make_product(session, "MATE", "Mate")
    suco = make_product(session, "SUCO", "Suco")

    def orders(product, who, count, start=10):
        for n in range(count):
            buy_one(session, who, product, days_ago(start + 20 * n))

    # Café: c0 and c1 came back, c2 and c3 did not -> 2 of 4 = 50 %.
    orders(cafe, c[0], 2), orders(cafe, c[1], 2), orders(cafe, c[2], 1), orders(cafe, c[3], 1)
    # Biscoito: the same 2 of 4; c2's two flavours in one order are one order, and its cancelled order no repeat.
    orders(biscoito, c[0], 2), orders(biscoito, c[1], 2), orders(biscoito, c[3], 1)
    buy(session, c[2], days_ago(5), (sku(biscoito, 0), 1, "100.00"), (sku(biscoito, 1), 2, "100.00"))
    buy_one(session, c[2], biscoito, days_ago(50), status=OrderStatus.CANCELLED)
    # Geleia: 2 of 3 = 67 %.
    orders(geleia, c[0], 2), orders(geleia, c[1], 3), orders(geleia, c[2], 1)
    # Chá: 1 of 3 = 33 %.
    orders(cha, c[0], 3), orders(cha, c[1], 1), orders(cha, c[2], 1)
    # Pão: 3 of 8 = 37.5 % -> 38 %; more customers came back than for Café, but a smaller share.
    for n in range(8):
        orders(pao, c[n], 2 if n < 3 else 1)
    # Mate: everyone came back, but only two buyers.
    orders(mate, c[0], 5), orders(mate, c[1], 5)
    # Suco: three buyers, none came back.
    orders(suco, c[0], 1), orders(suco, c[1], 1), orders(suco, c[2], 1)
    # A repeat outside the 365-day window does not count: Chá stays 1 of 3.
    buy_one(session, c[1], cha, days_ago(400))

    assert listed(repurchase(session, me.id, NOW, limit=10)) == [
        ("Geleia", "67% de quem comprou voltou a comprar (2 de 3 clientes)"),
        ("Biscoito", "50% de quem comprou voltou a comprar (2 de 4 clientes)"),
        ("Café", "50% de quem comprou voltou a comprar (2 de 4 clientes)"),
        ("Pão", "38% de quem comprou voltou a comprar (3 de 8 clientes)"),
        ("Chá", "33% de quem comprou voltou a comprar (1 de 3 clientes)"),
    ]


def test_repurchase_keeps_the_customers_own_products_only_on_the_other_customers_numbers(session):
    me, c1, c2, c3 = people(session, 4)
    cafe = make_product(session, "CAFE", "Café")
    mate = make_product(session, "MATE", "Mate")
    suco = make_product(session, "SUCO", "Suco")
    for who in (c1, c2):
        buy_one(session, who, cafe, days_ago(10))
        buy_one(session, who, cafe, days_ago(40))
    buy_one(session, c3, cafe, days_ago(12))
    # The customer buys all three, Mate twice: with their orders Mate would be 3 buyers, 3 repeats.
    buy_one(session, me, cafe, days_ago(2))
    buy_one(session, me, mate, days_ago(3))
    buy_one(session, me, mate, days_ago(33))
    buy_one(session, me, suco, days_ago(4))
    for who in (c1, c2):
        buy_one(session, who, mate, days_ago(5))
        buy_one(session, who, mate, days_ago(25))
    for who in (c1, c2, c3):
        buy_one(session, who, suco, days_ago(8))

    assert listed(repurchase(session, me.id, NOW)) == [
        ("Café", "67% de quem comprou voltou a comprar (2 de 3 clientes); este cliente já comprou")]
    # For c3, c3's own orders leave the numbers and the customer's come in: Café is c1, c2 (both came back) and
    # the customer (once) = 2 of 3, kept with the note since c3 bought it; Mate is the customer, c1, c2, all back.
    assert listed(repurchase(session, c3.id, NOW)) == [
        ("Mate", "100% de quem comprou voltou a comprar (3 de 3 clientes)"),
        ("Café", "67% de quem comprou voltou a comprar (2 de 3 clientes); este cliente já comprou"),
    ]


# --- trending ----------------------------------------------------------------------------------------------------


def test_trending_lists_recent_launches_that_already_sell(session):
    me, c1, c2, c3 = people(session, 4)
    classico = make_product(session, "CLASSICO", "Tênis Clássico", created=days_ago(400))
    novo = make_product(session, "NOVO", "Tênis Novo", created=days_ago(12.5))
    sandalia = make_product(session, "SANDALIA", "Sandália", created=days_ago(45))
    chinelo = make_product(session, "CHINELO", "Chinelo", created=days_ago(5))
    mochila = make_product(session, "MOCHILA", "Mochila", created=days_ago(10))
    bone = make_product(session, "BONE", "Boné", created=days_ago(70))
    relogio = make_product(session, "RELOGIO", "Relógio", created=days_ago(20))
    for who in (c1, c2, c3):
        buy_one(session, who, classico, days_ago(3), quantity=4)  # sells best, but is not new
        buy_one(session, who, bone, days_ago(3))  # launched 70 days ago: no longer news
        buy_one(session, who, relogio, days_ago(3), status=OrderStatus.CANCELLED)
    buy_one(session, c1, novo, days_ago(2), quantity=2)
    buy_one(session, c2, novo, days_ago(4))
    buy_one(session, c3, novo, days_ago(6), quantity=3)
    buy_one(session, c1, sandalia, days_ago(40), quantity=5)  # before the last 30 days
    buy_one(session, c2, sandalia, days_ago(20), quantity=2)
    buy_one(session, c3, sandalia, days_ago(29), quantity=2)
    buy_one(session, c1, mochila, days_ago(1), quantity=9)  # a single buyer
    assert chinelo.id  # launched, never sold

    assert listed(trending(session, me.id, NOW)) == [
        ("Tênis Novo", "lançado há 12 dias, já vendeu 6 unidades"),
        ("Sandália", "lançado há 45 dias, vendeu 4 unidades nos últimos 30 dias"),
    ]


def test_the_catalogs_first_load_is_not_news(session):
    me, c1, c2 = people(session, 3)
    first = make_product(session, "A", "Catálogo A", created=days_ago(20))
    same_load = make_product(session, "B", "Catálogo B", created=days_ago(20) + timedelta(hours=3))
    launch = make_product(session, "C", "Lançamento", created=days_ago(1))
    for who in (c1, c2):
        for product in (first, same_load, launch):
            buy_one(session, who, product, days_ago(0.5))

    assert listed(trending(session, me.id, NOW)) == [("Lançamento", "lançado ontem, já vendeu 2 unidades")]


# --- exclusions --------------------------------------------------------------------------------------------------


def test_only_sellable_products_the_customer_has_not_bought_are_recommended(session):
    me, c1, c2, c3 = people(session, 4)
    make_product(session, "OLD", "Antigo", created=days_ago(300))  # the catalog's first load
    fresh = days_ago(10)
    made = {name: make_product(session, key, name, created=fresh, **kw) for key, name, kw in [
        ("ESGOTADO", "Esgotado", {"variants": [{"sku": "P", "stock": 0}, {"sku": "M", "stock": 0}]}),
        ("PARCIAL", "Parcial", {"variants": [{"sku": "P", "stock": 0, "price": "50.00"},
                                             {"sku": "M", "stock": 3, "price": "60.00"}]}),
        ("SEMCONTROLE", "Sem controle de estoque", {"stock": None}),
        ("INATIVO", "Produto inativo", {"active": False}),
        ("VARINATIVA", "Variante inativa", {"variant_active": False}),
        ("COMPRADO", "Já comprado", {}),
        ("CANCELADO", "Pedido cancelado", {}),
        ("CHAVE", "Vendido pela chave", {}),
    ]}
    for who in (c1, c2):
        for product in made.values():
            if product.name == "Vendido pela chave":  # the shop sent the product's key instead of a SKU
                buy(session, who, days_ago(2), (product.key, 1, "100.00"))
            else:
                buy_one(session, who, product, days_ago(2))
        buy(session, who, days_ago(2), ("NAO-EXISTE", 7, "10.00", "Fora do catálogo"))
    buy(session, c3, days_ago(2), ("NAO-EXISTE", 7, "10.00", "Fora do catálogo"))
    buy_one(session, me, made["Já comprado"], days_ago(200))  # long ago, still bought
    buy_one(session, me, made["Pedido cancelado"], days_ago(1), status=OrderStatus.CANCELLED)

    expected = ["Parcial", "Pedido cancelado", "Sem controle de estoque", "Vendido pela chave"]
    result = recommendations(session, me.id, NOW, limit=10)
    assert sorted(result) == ["popular", "repurchase", "trending"]
    assert [r.name for r in result["popular"]] == expected
    assert [r.name for r in result["trending"]] == expected
    assert result["repurchase"] == []
    assert {r.name: r.price for r in result["popular"]}["Parcial"] == Decimal("60.00")
    # For another customer, the product the first one bought is there.
    assert "Já comprado" in [r.name for r in popular(session, c3.id, NOW, limit=10)]


def test_a_customer_who_bought_everything_gets_empty_lists(session):
    me, c1, c2 = people(session, 3)
    make_product(session, "OLD", "Antigo", created=days_ago(300), stock=0)
    only = make_product(session, "ONLY", "Único", created=days_ago(5))
    for who in (me, c1, c2):
        buy_one(session, who, only, days_ago(1))
    assert recommendations(session, me.id, NOW) == {"popular": [], "repurchase": [], "trending": []}


# --- determinism ---------------------------------------------------------------------------------------------------


def test_ties_go_to_the_name_then_the_id(session):
    me, c1, c2 = people(session, 3)
    gama = make_product(session, "GAMA", "Gama", created=days_ago(9))
    kit_first = make_product(session, "KIT1", "Kit", created=days_ago(9))
    beta = make_product(session, "BETA", "Beta", created=days_ago(9))
    kit_second = make_product(session, "KIT2", "Kit", created=days_ago(9))
    alfa = make_product(session, "ALFA", "Alfa", created=days_ago(9))
    make_product(session, "OLD", "Antigo", created=days_ago(300))  # the catalog's first load
    for product in (kit_second, gama, alfa, kit_first, beta):
        for who in (c1, c2):
            buy_one(session, who, product, days_ago(3))
            buy_one(session, who, product, days_ago(13))
    buy_one(session, me, gama, days_ago(300), status=OrderStatus.CANCELLED)

    expected = [alfa.id, beta.id, gama.id, kit_first.id, kit_second.id]
    assert kit_first.id < kit_second.id
    for _ in range(3):
        assert [r.product_id for r in popular(session, me.id, NOW)] == expected
        assert [r.product_id for r in trending(session, me.id, NOW)] == expected
    # Repurchase ties (2 buyers is below the minimum): a third buyer for each, then all tie at 2 of 3.
    c3 = people_more(session)
    for product in (gama, kit_second, alfa, beta, kit_first):
        buy_one(session, c3, product, days_ago(4))
    assert [r.product_id for r in repurchase(session, me.id, NOW)] == expected


def people_more(session) -> Customer:
    person = Customer(phone="+5599977799999", name="Mais um", tags=[])
    session.add(person)
    session.flush()
    return person


# --- most bought ---------------------------------------------------------------------------------------------------


@pytest.fixture
def history(session):
    """The customer's orders (hand totals in each test):
    o1 40 days ago, paid:    Tênis 42 Preto x1 @299.90, Camiseta M preto x2 @79.90
    o2 10 days ago, created: Tênis 43 Azul x1 @279.90, Meia x3 @19.90, gift card (not in the catalog) x1 @50.00
    o3  5 days ago, cancelled: Tênis 42 x5 (ignored); another customer's order (ignored)."""
    me, other = people(session, 2)
    tenis = make_product(session, "TN", "Tênis Corrida", category="Calçados", brand="Veloz",
                         attributes={"material": "Mesh"}, variants=[
                             {"sku": "42PR", "size": "42", "color": "Preto", "price": "299.90",
                              "options": {"Tamanho": "42", "Cor": "Preto"}},
                             {"sku": "43AZ", "size": "43", "color": "Azul", "price": "299.90",
                              "options": {"Tamanho": "43", "Cor": "Azul"}}])
    camiseta = make_product(session, "CM", "Camiseta Dry", category="Roupas", brand="Veloz",
                            attributes={"material": "Poliéster", "Gênero": "Unissex"}, variants=[
                                {"sku": "MPR", "size": "M", "color": "preto", "price": "79.90",
                                 "options": {"Tamanho": "M", "Cor": "preto"}}])
    meia = make_product(session, "MC", "Meia Cano Alto", variants=[{"sku": "U", "price": "19.90"}])
    o1 = buy(session, me, days_ago(40), (sku(tenis, 0), 1, "299.90", "TENIS 42"), (sku(camiseta), 2, "79.90"))
    o2 = buy(session, me, days_ago(10), (sku(tenis, 1), 1, "279.90", "Tênis Corrida Azul 43"),
             (sku(meia), 3, "19.90"), ("RECO-GIFT", 1, "50.00", "Cartão Presente"), status=OrderStatus.CREATED)
    buy(session, me, days_ago(5), (sku(tenis, 0), 5, "299.90"), status=OrderStatus.CANCELLED)
    buy(session, other, days_ago(3), (sku(tenis, 0), 8, "299.90"))
    return {"me": me, "o1": o1.placed_at.isoformat(), "o2": o2.placed_at.isoformat()}


def rows(result: list[dict]) -> list[tuple]:
    return [(g["group"], g["quantity"], g["orders"], g["spent"]) for g in result]


def test_most_bought_by_name_keeps_unknown_items_under_their_own_name(session, history):
    result = most_bought(session, history["me"].id)
    assert rows(result) == [
        ("Meia Cano Alto", 3, 1, "59.70"),
        ("Tênis Corrida", 2, 2, "579.80"),  # the catalog's name, not the items' "TENIS 42" / "...Azul 43"
        ("Camiseta Dry", 2, 1, "159.80"),
        ("Cartão Presente", 1, 1, "50.00"),
    ]
    assert [g["last_bought_at"] for g in result] == [history["o2"], history["o2"], history["o1"], history["o2"]]


@pytest.mark.parametrize("group_by, expected", [
    ("category", [("Sem categoria", 4, 1, "109.70"), ("Calçados", 2, 2, "579.80"), ("Roupas", 2, 1, "159.80")]),
    ("brand", [("Veloz", 4, 2, "739.60"), ("Sem marca", 4, 1, "109.70")]),
    # "Preto" and "preto" are one colour, shown as bought most.
    ("color", [("Sem cor", 4, 1, "109.70"), ("preto", 3, 1, "459.70"), ("Azul", 1, 1, "279.90")]),
    ("size", [("Sem tamanho", 4, 1, "109.70"), ("M", 2, 1, "159.80"), ("42", 1, 1, "299.90"),
              ("43", 1, 1, "279.90")]),
    ("material", [("Não informado", 4, 1, "109.70"), ("Mesh", 2, 2, "579.80"), ("Poliéster", 2, 1, "159.80")]),
    ("attr:material", [("Não informado", 4, 1, "109.70"), ("Mesh", 2, 2, "579.80"), ("Poliéster", 2, 1, "159.80")]),
    # A variant option, by a key typed without its case.
    ("tamanho", [("Não informado", 4, 1, "109.70"), ("M", 2, 1, "159.80"), ("42", 1, 1, "299.90"),
                 ("43", 1, 1, "279.90")]),
    # A product attribute, by a key typed without its accent.
    ("genero", [("Não informado", 6, 2, "689.50"), ("Unissex", 2, 1, "159.80")]),
])
def test_most_bought_groupings(session, history, group_by, expected):
    assert valid_grouping(session, group_by)
    assert rows(most_bought(session, history["me"].id, group_by=group_by)) == expected


def test_most_bought_since_and_limit(session, history):
    assert rows(most_bought(session, history["me"].id, since=days_ago(20))) == [
        ("Meia Cano Alto", 3, 1, "59.70"), ("Tênis Corrida", 1, 1, "279.90"), ("Cartão Presente", 1, 1, "50.00")]
    assert [g["group"] for g in most_bought(session, history["me"].id, limit=2)] == ["Meia Cano Alto",
                                                                                      "Tênis Corrida"]


def test_unknown_groupings_are_refused(session, history):
    assert {"Cor", "Tamanho", "material", "Gênero"} <= set(attribute_keys(session))
    for bad in ("peso", "attr:peso", "attr:", "", "  ", "Name", "categoria"):
        assert not valid_grouping(session, bad), bad
    for good in ("name", "category", "brand", "color", "size", "Gênero", "attr:cor", "MATERIAL"):
        assert valid_grouping(session, good), good
    with pytest.raises(ValueError):
        most_bought(session, history["me"].id, group_by="peso")


def test_a_customer_without_orders_bought_nothing(session, history):
    nobody = people_more(session)
    assert most_bought(session, nobody.id) == []
    assert most_bought(session, nobody.id, group_by="material") == []
