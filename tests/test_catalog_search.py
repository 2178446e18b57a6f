"""Catalog search in the database: relevance on a realistic catalog, colour/size/stock, unknown brands, plurals,
typos, the index kept in the caller's transaction, and a bounded cost. Runs on SQLite (FTS5) and, with
DATABASE_URL set, on PostgreSQL (tsvector + pg_trgm).

Print the relevance misses with ``-s``: ``pytest tests/test_catalog_search.py -k relevance -s``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text, update

from catalog import index
from catalog.search import parse_query, search
from models import Product, Variant
from models.demo import seed
from tests.search_catalog import generated_products, insert_products

RELEVANCE = Path(__file__).parent / "data" / "search_relevance.tsv"
# Measured on both backends: 184 of 184 first results right (the rules were tuned on this set: it flatters them).
MEASURED_PRECISION_AT_1 = 184 / 184
# Written afterwards by someone who saw only the catalog's product list (not this code nor the set above).
# Measured once before any change: 128 of 150 (synonyms the search lacked: "cor de pele", "soutien", "sobretudo",
# "blusa de frio"; chatty words read as typos: "obrigadaaa", "pedido"; "p" read as size P in "p meu filho"; a
# brand taken for a print). The search was then changed for those classes of error, so this set now flatters it
# too: 139 of 150 on both backends.
HELDOUT = Path(__file__).parent / "data" / "search_relevance_heldout.tsv"
MEASURED_HELDOUT_PRECISION_AT_1 = 139 / 150
# Written after those changes by another person, again from the product list only; measured once: 144 of 160
# (0.900) on both backends. Its misses were again classes of error, then fixed: two words typed as one
# ("calcajeans", "trenchcoat"), "t-shirt", shades named differently ("azul bebê" is the shop's azul claro, "verde
# militar" its verde oliva), "kalsa" (a k for a c: no trigram in common), "tenizinho", "3 pares de meia",
# "calçola", service words read as typos ("prazo" -> Passo Firme). Now 153 of 160: it flatters the search too.
ROUND3 = Path(__file__).parent / "data" / "search_relevance_round3.tsv"
MEASURED_ROUND3_PRECISION_AT_1 = 153 / 160


def add_product(session, name, variants, *, brand="Marca Teste", category="Calçados", key=None, active=True):
    """variants: (size, colour, stock[, active])."""
    key = key or "T-" + "".join(c for c in name.upper() if c.isalnum())[:40]
    product = Product(key=key, name=name, price=Decimal("100.00"), brand=brand, category=category, active=active,
                      url=f"https://loja.example/p/{key.lower()}")
    product.variants = [Variant(sku=f"{key}-{i}", size=v[0], color=v[1], stock=v[2], price=Decimal("100.00"),
                                active=v[3] if len(v) > 3 else True, options={}) for i, v in enumerate(variants)]
    session.add(product)
    session.flush()
    return product


def names(products_or_hits):
    return [getattr(x, "product", x).name for x in products_or_hits]


@pytest.fixture
def demo(session):
    seed(session)
    session.flush()
    return session


# --- relevance ------------------------------------------------------------------------------------------


def _relevance_rows():
    rows = []
    for line in RELEVANCE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        query, expected, checks, _names = (line.split("\t") + ["", ""])[:4]
        rows.append((query, set() if expected == "-" else set(expected.split()),
                     dict(c.split("=", 1) for c in checks.split("; ") if "=" in c) if checks else {}))
    return rows


def _check(result, checks: dict) -> list[str]:
    wrong = []
    for name, want in checks.items():
        got = {"color": result.color, "size": result.size, "unknown_brand": result.unknown_brand}[name]
        if got != want:
            wrong.append(f"{name}={got!r} (want {want!r})")
    return wrong


def test_relevance_precision_at_1(demo):
    """The labelled set: the demo store plus a generated catalog of ~500 products that share words on purpose."""
    session = demo
    first_id = (session.scalar(select(func.max(Product.id))) or 0) + 1
    ids = insert_products(session.connection(), generated_products(), first_id=first_id)
    index.refresh(session, ids)  # Core inserts bypass the ORM: the explicit refresh
    rows = _relevance_rows()
    assert len(rows) >= 80
    right, misses, wrong_checks = 0, [], []
    for query, expected, checks in rows:
        result = search(session, query)
        first = result.hits[0].product.key if result.hits else None
        ok = first is None if not expected else first in expected
        right += ok
        if not ok:
            misses.append(f"  {query!r} -> {names(result.hits[:3]) or 'nothing'}")
        wrong_checks += [f"  {query!r}: {w}" for w in _check(result, checks)]
    precision = right / len(rows)
    print(f"\nsearch relevance: precision@1 = {right}/{len(rows)} = {precision:.3f}")
    print("misses:\n" + ("\n".join(misses) or "  none"))
    assert wrong_checks == []
    assert precision >= MEASURED_PRECISION_AT_1


@pytest.mark.parametrize("path,measured", [(HELDOUT, MEASURED_HELDOUT_PRECISION_AT_1),
                                           (ROUND3, MEASURED_ROUND3_PRECISION_AT_1)], ids=["heldout", "round3"])
def test_heldout_relevance(demo, path, measured):
    """Sets written apart: query -> every product a shop assistant would accept first ('-': nothing should come)."""
    session = demo
    first_id = (session.scalar(select(func.max(Product.id))) or 0) + 1
    index.refresh(session, insert_products(session.connection(), generated_products(), first_id=first_id))
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    assert len(rows) >= 150
    right, misses = 0, []
    for query, expected, _note in rows:
        hits = search(session, query).shown  # what the bot lists (a sold-out size is shown, and said)
        ok = not hits if expected == "-" else bool(hits) and hits[0].product.key in expected.split()
        right += ok
        if not ok:
            misses.append(f"  {query!r} -> {names(hits[:2]) or 'nothing'} ({_note})")
    print(f"\n{path.name} relevance: precision@1 = {right}/{len(rows)} = {right / len(rows):.3f}")
    print("misses:\n" + ("\n".join(misses) or "  none"))
    assert right / len(rows) >= measured


# --- query understanding --------------------------------------------------------------------------------


@pytest.mark.parametrize("text,size", [
    ("tenis 42", "42"), ("tenis preto tamanho 42", "42"), ("tam M camiseta", "M"), ("camiseta tam. gg", "GG"),
    ("bota nº 39", "39"), ("bota n° 39", "39"), ("sapatilha número 36", "36"), ("sapatilha numero 36", "36"),
    ("tenis no 40", "40"), ("calço 38 sandalia", "38"), ("uso G moletom", "G"), ("chinelo 37/38", "37/38"),
    ("chinelo 37 38", "37/38"), ("chinelo 37-38", "37/38"), ("camiseta xgg", "XGG"), ("camiseta EG", "EG"),
    ("blusa pp", "PP"), ("cinto 110", "110"), ("kit 3 meias", None), ("tenis até 200 reais", None),
    ("tenis por R$ 150", None), ("mochila 20L", None), ("vestido p", "P"), ("tenis p/ corrida", None),
])
def test_sizes_as_shoppers_write_them(text, size):
    assert parse_query(text).size == size


@pytest.mark.parametrize("text,colour", [
    ("camiseta preta", "preto"), ("tenis pretos", "preto"), ("blusas pretas", "preto"), ("saia branca", "branco"),
    ("chinelos azuis", "azul"), ("vestido vermelho", "vermelho"), ("bolsa rosa", "rosa"), ("bone bege", "bege"),
    ("moletom cinza mescla", "cinza mescla"), ("bota marrom", "marrom"), ("botas marrons", "marrom"),
    ("legging vinho", "vinho"), ("top lilás", "lilas"), ("sandalia dourada", "dourado"), ("brinco prata", "prata"),
    ("blusa off-white", "off white"), ("blusa off white", "off white"), ("polo azul marinho", "azul marinho"),
    ("polo marinho", "azul marinho"), ("jeans azul claro", "azul claro"), ("calça azul escura", "azul escuro"),
    ("sapatilha nude", "nude"), ("carteira caramelo", "caramelo"), ("tenis bco", "branco"), ("calca pta", "preto"),
    ("camiseta laranja", "laranja"), ("jaqueta amarela", "amarelo"), ("vestido roxo", "roxo"),
])
def test_colours_in_all_their_forms(text, colour):
    query = parse_query(text)
    assert query.color == colour
    assert not set(query.words) & set(colour.split())


def test_words_brand_and_stop_words():
    query = parse_query("Oi, boa tarde! Vocês têm TÊNIS da Nike preto nº 42?")
    assert (query.words, query.size, query.color, query.brand) == (["tenis"], "42", "preto", "nike")
    assert parse_query("oculos ray ban").brand == "ray ban"
    assert parse_query("kit 3 meias").words == ["kit", "3", "meias"]


@pytest.mark.parametrize("forms", [("preto", "preta", "pretos", "pretas"), ("camiseta", "camisetas"),
                                   ("tenis", "tênis", "tennis"), ("calça", "calças", "calca"),
                                   ("sandália", "sandalias"), ("moletom", "moletons"), ("jaqueta", "jaquetas"),
                                   ("vestido", "vestidos"), ("bermuda", "bermudas"), ("bota", "botas"),
                                   ("plissada", "plissado"), ("vermelho", "vermelha", "vermelhas")])
def test_plural_and_gender_forms_share_one_term(forms):
    from core.text import normalize

    assert len({index.stem(normalize(f)) for f in forms}) == 1


def test_words_a_shopper_tells_apart_stay_apart():
    assert index.stem("calca") != index.stem("calcados")  # trousers are not shoes
    assert index.stem("camisa") != index.stem("camiseta")
    assert index.stem("bolsa") != index.stem("bolso")


@pytest.mark.parametrize("size,keys", [("42", {"42"}), ("37/38", {"37", "38"}),
                                       ("34-38", {"34", "35", "36", "37", "38"}), ("M", {"m"}), ("EG", {"xg"}),
                                       ("P/M", {"p", "m"}), ("Único", {"unico"})])
def test_size_keys(size, keys):
    assert index.size_keys(size) == keys


# --- colour, size and stock -----------------------------------------------------------------------------


@pytest.fixture
def runner(session):
    """One shoe: black 40 (in stock), 41 (sold out), 42 (untracked), 44 (inactive); white 41 (in stock),
    43 (sold out)."""
    return add_product(session, "Tênis Aurora Runner", [("40", "Preto", 3), ("41", "Preto", 0), ("42", "Preto", None),
                                                        ("41", "Branco", 5), ("43", "Branco", 0),
                                                        ("44", "Preto", 5, False)])


def test_colour_and_size_pick_the_variant(session, runner):
    result = search(session, "tem tenis aurora preto 42?")
    assert names(result.hits) == ["Tênis Aurora Runner"] and result.out_of_size == []
    assert [(v.size, v.color) for v in result.hits[0].variants] == [("42", "Preto")]
    assert (result.size, result.color) == ("42", "preto")


def test_a_sold_out_size_is_reported_with_the_sizes_still_available(session, runner):
    result = search(session, "tenis aurora preto 41")
    assert result.hits == []
    assert names(result.out_of_size) == ["Tênis Aurora Runner"]
    assert [(v.size, v.color, v.stock) for v in result.out_of_size[0].variants] == [("41", "Preto", 0)]
    assert result.out_of_size[0].available_sizes == ["40", "42"]  # black ones, in the shop's order
    assert result.size == "41"


def test_a_size_the_product_never_had_is_not_sold_out(session, runner):
    for message in ("tenis aurora preto 39", "tenis aurora preto 44", "tenis aurora 45"):  # 44: inactive variant
        result = search(session, message)
        assert result.hits == [] and result.out_of_size == [], message
        assert names(result.other_sizes) == ["Tênis Aurora Runner"], message


def test_any_colour_in_stock_comes_first(session, runner):
    result = search(session, "tenis aurora 41")
    assert names(result.hits) == ["Tênis Aurora Runner"] and result.out_of_size == []
    assert [(v.size, v.color, v.available) for v in result.hits[0].variants] == [("41", "Branco", True),
                                                                                 ("41", "Preto", False)]


def test_no_size_asked_lists_every_active_variant_available_first(session, runner):
    hit = search(session, "tenis aurora").hits[0]
    assert [v.available for v in hit.variants] == [True, True, True, False, False]
    assert {v.size for v in hit.variants} == {"40", "41", "42", "43"}  # not the inactive 44
    assert hit.available_sizes == ["40", "42", "41"]
    white = search(session, "tenis aurora branco").hits[0]
    assert [(v.size, v.available) for v in white.variants] == [("41", True), ("43", False)]
    assert white.available_sizes == ["41"]


def test_a_colour_nobody_has_gives_no_hit_but_the_other_colours(session, runner):
    result = search(session, "tenis aurora rosa")
    assert result.hits == [] and result.color == "rosa"
    assert names(result.other_colors) == ["Tênis Aurora Runner"]


def test_products_in_stock_come_before_sold_out_ones(session):
    add_product(session, "Tênis Boreal Esgotado", [("40", "Preto", 0)])
    add_product(session, "Tênis Boreal Novo", [("40", "Preto", 2)])
    assert names(search(session, "tenis boreal").hits) == ["Tênis Boreal Novo", "Tênis Boreal Esgotado"]
    sold_out = search(session, "tenis boreal 40")
    assert names(sold_out.hits) == ["Tênis Boreal Novo"] and names(sold_out.out_of_size) == ["Tênis Boreal Esgotado"]


def test_compound_colours_and_ranges(demo):
    assert names(search(demo, "camisa polo azul").hits) == ["Camisa Polo Azul Marinho"]  # navy is a blue
    assert names(search(demo, "bermuda jeans azul escuro").hits) == ["Bermuda Jeans Azul Escuro"]
    flip_flops = search(demo, "chinelo 37")  # the shop sells 37/38
    assert flip_flops.size == "37/38" and all(v.size == "37/38" for h in flip_flops.hits for v in h.variants)
    socks = search(demo, "meia 40")  # 39-43
    assert names(socks.hits) == ["Kit 3 Meias Cano Alto Branca"] and socks.size == "39-43"


def test_the_demo_stores_sold_out_size(demo):
    # The demo sells out the largest size of every third product; the black running shoe's 43 is one of them.
    shoe = demo.scalar(select(Product).where(Product.name == "Tênis Corrida Preto"))
    assert [v.stock for v in shoe.variants if v.size == "43"] == [0]
    result = search(demo, "tenis corrida preto 43")
    assert result.hits == [] and names(result.out_of_size) == ["Tênis Corrida Preto"]
    assert result.out_of_size[0].available_sizes == ["38", "39", "40", "41", "42"]
    never = search(demo, "tenis corrida preto 37")
    assert never.out_of_size == [] and names(never.other_sizes) == ["Tênis Corrida Preto"]


# --- brands -----------------------------------------------------------------------------------------------


def test_an_unknown_brand_is_reported_with_the_closest_alternatives(demo):
    result = search(demo, "tem tenis nike preto 42?")
    assert result.unknown_brand == "nike"
    assert names(result.hits)[:2] == ["Tênis Corrida Preto", "Tênis Casual Couro Preto"]
    only_brand = search(demo, "vocês vendem adidas?")
    assert only_brand.unknown_brand == "adidas" and all(h.product.name.startswith("Tênis") for h in only_brand.hits)
    flip_flops = search(demo, "havaianas 37")
    assert flip_flops.unknown_brand == "havaianas" and names(flip_flops.hits)[0].startswith("Chinelo")


def test_a_brand_the_store_carries_matches(demo):
    add_product(demo, "Tênis Wave Rider", [("40", "Azul", 2)], brand="Mizuno")
    result = search(demo, "tenis mizuno")
    assert result.unknown_brand is None and names(result.hits) == ["Tênis Wave Rider"]
    own = search(demo, "camiseta algodao brasil preta")
    assert own.unknown_brand is None and names(own.hits) == ["Camiseta Básica Preta"]


# --- plurals, gender, typos ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text,first", [
    ("camisetas pretas", "Camiseta Básica Preta"), ("camiseta preto", "Camiseta Básica Preta"),
    ("calças jeans pretas", "Calça Jeans Slim Preta"), ("sandalias douradas", "Sandália Rasteira Dourado"),
    ("tenis brancos", "Tênis Corrida Branco"), ("tênis branco", "Tênis Corrida Branco"),
    ("jaquetas amarelas", "Jaqueta Corta-vento Amarela"), ("saias plissadas rosas", "Saia Plissada Rosa"),
])
def test_plurals_and_gender(demo, text, first):
    assert names(search(demo, text).hits)[0] == first


@pytest.mark.parametrize("text,first", [
    ("tenys preto", "Tênis Corrida Preto"), ("tennis preto", "Tênis Corrida Preto"),
    ("tnis branco", "Tênis Corrida Branco"), ("camizeta branca", "Camiseta Básica Branca"),
    ("moleton preto", "Moletom Canguru Preto"), ("jaqueata preta", "Jaqueta Corta-vento Preta"),
    ("calsa jeans preta", "Calça Jeans Slim Preta"), ("xinelo rosa", "Chinelo Slide Rosa"),
    ("sandalha rasteira caramelo", "Sandália Rasteira Caramelo"), ("mochilla cinza", "Mochila Urbana 20L Cinza"),
    ("oculus aviador prata", "Óculos de Sol Aviador Prata"), ("legin fitness", "Legging Fitness Preta"),
    ("tenis pretu", "Tênis Corrida Preto"), ("sapatilia nude", "Sapatilha Bailarina Nude"),
    ("rasteirinha dourada", "Sandália Rasteira Dourado"), ("relogio", "Relógio Digital Preto"),
])
def test_typos_and_diminutives(demo, text, first):
    assert names(search(demo, text).hits)[0] == first


@pytest.mark.parametrize("text,first", [
    ("calcajeans preta", "Calça Jeans Slim Preta"),  # two words typed as one
    ("kalsa jeans preta", "Calça Jeans Slim Preta"),  # a k for a c: no trigram in common with the right word
    ("t-shirt basica preta", "Camiseta Básica Preta"), ("tenizinho corrida azul", "Tênis Corrida Azul"),
    ("3 pares de meia branca", "Kit 3 Meias Cano Alto Branca"),
    ("um presente pro meu marido, carteira slim caramelo", "Carteira Slim Caramelo"),
    ("sapatilha cor de pele", "Sapatilha Bailarina Nude"), ("legging vinhoooo", "Legging Fitness Vinho"),
    ("calça legging vinho", "Legging Fitness Vinho"),  # the first word hid the product
])
def test_chat_writing(demo, text, first):
    assert names(search(demo, text).shown)[0] == first


def test_p_is_a_size_only_where_a_size_goes():
    assert parse_query("camiseta p").size == "P" and parse_query("camiseta p preta").size == "P"
    assert parse_query("camiseta p ou m").size == "P"
    assert parse_query("mochila p notebook").size is None and parse_query("tenis p correr").size is None
    assert parse_query("short p meu filho").size is None


def test_shades_a_shop_names_differently_are_one():
    assert parse_query("polo azul bebê").color == parse_query("polo azul claro").color == "azul claro"
    assert parse_query("jaqueta verde militar").color == "verde oliva"


def test_an_unknown_brand_with_only_qualifiers_is_its_kind_of_product(demo):
    result = search(demo, "qro um adidas feminino branco 39 pfv")
    assert result.unknown_brand == "adidas" and names(result.hits)[0] == "Tênis Corrida Branco"


def test_a_brand_word_the_catalog_uses_otherwise_is_a_word_with_others_and_the_brand_alone(session):
    add_product(session, "Camisa Estampada Havaiana", [("M", "Azul", 3)], category="Roupas")
    add_product(session, "Chinelo Dedo", [("39/40", "Azul", 3)], brand="Brisa")
    assert names(search(session, "camisa havaiana").hits) == ["Camisa Estampada Havaiana"]
    alone = search(session, "tem havaiana azul no 39?")
    assert alone.unknown_brand == "havaiana" and names(alone.hits) == ["Chinelo Dedo"]


def test_nothing_like_it(demo):
    for message in ("quero uma geladeira frost free", "tem pneu aro 15?", "oi", "", "geladeira branca",
                    "presente para namorada preto", "obrigadaaa ❤️", "meu pedido ainda nao chegou",
                    "qual o prazo de entrega pra BH?", "chuteira society"):
        result = search(demo, message)
        assert result.hits == [] and result.out_of_size == [] and result.other_sizes == [], message


# --- the index follows the catalog, in the same transaction ------------------------------------------------


def test_an_update_reaches_the_index_at_flush(session, runner):
    runner.name = "Sandália Lagoa"
    session.flush()
    assert names(search(session, "sandalia lagoa").hits) == ["Sandália Lagoa"]
    assert search(session, "tenis aurora").hits == []


def test_deactivating_a_product_or_all_its_variants_takes_it_out(session, runner):
    runner.active = False
    session.flush()
    assert search(session, "tenis aurora").hits == []
    runner.active = True
    session.flush()
    assert names(search(session, "tenis aurora").hits) == ["Tênis Aurora Runner"]
    for variant in runner.variants:
        variant.active = False
    session.flush()
    assert search(session, "tenis aurora").hits == []


def test_a_stock_change_moves_a_size_between_hits_and_sold_out(session, runner):
    assert search(session, "tenis aurora preto 41").out_of_size
    black_41 = next(v for v in runner.variants if v.size == "41" and v.color == "Preto")
    black_41.stock = 4
    session.flush()
    result = search(session, "tenis aurora preto 41")
    assert names(result.hits) == ["Tênis Aurora Runner"] and result.out_of_size == []
    black_41.stock = 0
    session.flush()
    assert search(session, "tenis aurora preto 41").hits == []


def test_a_variant_colour_change_reaches_the_index(session, runner):
    assert search(session, "tenis aurora verde").hits == []
    runner.variants[0].color = "Verde Oliva"
    session.flush()
    result = search(session, "tenis aurora verde")
    assert [(v.size, v.color) for v in result.hits[0].variants] == [("40", "Verde Oliva")]


def test_a_rollback_leaves_the_index_as_it_was(session, runner):
    savepoint = session.begin_nested()
    runner.name = "Bota Serra"
    session.add(Product(key="NOVO-1", name="Cachecol Boreal", price=Decimal("10.00"),
                        variants=[Variant(sku="NOVO-1-U", size="Único", color="Cinza", price=Decimal("10.00"))]))
    session.flush()
    assert names(search(session, "bota serra").hits) == ["Bota Serra"]
    assert names(search(session, "cachecol boreal").hits) == ["Cachecol Boreal"]
    savepoint.rollback()
    assert search(session, "bota serra").hits == []
    assert search(session, "cachecol boreal").hits == []
    assert names(search(session, "tenis aurora").hits) == ["Tênis Aurora Runner"]


def test_a_rolled_back_transaction_leaves_the_committed_index(committed_db):
    with committed_db.transaction() as session:
        add_product(session, "Tênis Estação", [("40", "Preto", 1)])
    try:
        with committed_db.session() as session:
            product = session.scalar(select(Product).where(Product.name == "Tênis Estação"))
            product.name = "Bolsa Estação"
            session.flush()
            assert names(search(session, "bolsa estacao").hits) == ["Bolsa Estação"]
            session.rollback()
        with committed_db.session() as session:
            assert names(search(session, "tenis estacao").hits) == ["Tênis Estação"]
            assert search(session, "bolsa estacao").hits == []  # no bag in this shop: not the tênis either
    finally:
        with committed_db.transaction() as session:  # through the ORM, so the index forgets it too
            for product in session.scalars(select(Product)):
                session.delete(product)


def test_writes_that_bypass_the_orm_need_refresh(session, runner):
    session.execute(update(Product).where(Product.id == runner.id).values(name="Relógio Horizonte"))
    assert search(session, "relogio horizonte").hits == []  # Core update: the index does not know yet
    index.refresh(session, [runner.id])
    session.expire_all()
    assert names(search(session, "relogio horizonte").hits) == ["Relógio Horizonte"]


def test_a_deleted_product_leaves_the_index(session, runner):
    session.delete(runner)
    session.flush()
    assert search(session, "tenis aurora").hits == []
    assert search(session, "tenis aurora 41").out_of_size == []


def test_rebuild_gives_the_same_answers(demo):
    before = [names(search(demo, t).hits) for t in ("tenis preto 42", "camizeta", "bone")]
    assert index.rebuild(demo) == demo.scalar(select(func.count()).select_from(Product))
    assert [names(search(demo, t).hits) for t in ("tenis preto 42", "camizeta", "bone")] == before


# --- cost: an index lookup and the best few candidates, never the catalog ----------------------------------


def test_a_search_reads_the_index_not_the_catalog(demo):
    first_id = (demo.scalar(select(func.max(Product.id))) or 0) + 1
    index.refresh(demo, insert_products(demo.connection(), generated_products(), first_id=first_id))
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = demo.get_bind().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        demo.expunge_all()
        result = search(demo, "tem camiseta preta tam M?")
        loaded = [obj for obj in demo.identity_map.values() if isinstance(obj, Product)]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert result.hits
    assert len(statements) <= 12, statements
    assert len(loaded) <= 24  # the best candidates, not the ~500 products that say "camiseta" or "preta"
    for statement in statements:
        flat = " ".join(statement.split()).lower()
        if "from products" in flat or "from variants" in flat:
            assert " in (" in flat or "= any" in flat, statement  # always by id


# --- schema ---------------------------------------------------------------------------------------------------


def test_the_models_and_migrations_agree_outside_the_index(migrated_database):
    """The index's tables are not in the ORM metadata; everything else is (tests/test_models.py compares all)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from models import Base

    with migrated_database.engine.connect() as conn:
        opts = {"compare_type": True, "include_name": index.alembic_include_name}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata) == []


def test_migration_0008_indexes_the_existing_catalog(tmp_path):
    from models import Database, migrate

    database = Database(f"sqlite:///{tmp_path / 'old.db'}", pooled=False)
    migrate.upgrade(database.engine, "0007")
    at = "2026-12-01 10:00:00.000000"
    with database.engine.begin() as conn:
        conn.execute(text("INSERT INTO products (id, key, name, price, category, brand, attributes, active, "
                          "created_at, updated_at) VALUES (1, 'SAIA-1', 'Saia Plissada Midi', 149.90, 'Roupas', "
                          "'Flor', '{}', true, :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO variants (product_id, sku, size, color, options, price, active, created_at, "
                          "updated_at) VALUES (1, 'SAIA-1-P', 'P', 'Rosa', '{}', 149.90, true, :at, :at)"), {"at": at})
    migrate.upgrade(database.engine)
    with database.session() as session:
        result = search(session, "saias plissadas rosa p")
        assert names(result.hits) == ["Saia Plissada Midi"] and result.size == "P"
    migrate.downgrade(database.engine, "0007")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name LIKE 'search_%'")).scalar() == 0
    database.engine.dispose()
