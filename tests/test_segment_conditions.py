"""The segment condition language: what validation refuses (with the path and a Portuguese message), and the SQL
compiled from a condition agreeing with the plain-Python evaluator on random condition trees over random stores."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from models import CartStatus, OrderStatus
from segments.compile import anniversary_codes, load_facts, matches, matching_ids
from segments.conditions import MAX_DEPTH, MAX_LEAVES, ConditionInvalid, leaves, validate
from tests.segment_helpers import (
    NOW, PRODUCTS, attempt, branch_and_sellers, buy, catalog, leave_cart, make_customer, set_figures,
)

TZ = ZoneInfo("America/Sao_Paulo")


def leaf(field, op, value=None):
    return {"field": field, "op": op} | ({} if value is None else {"value": value})


# --- validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("condition,path,fragment", [
    ([], "", "esperava um grupo"),
    ({"all": []}, "all", "vazio"),
    ({"all": [], "any": []}, "", "só uma chave"),
    ({"any": "x"}, "any", "lista"),
    ({"all": [leaf("cor_favorita", "=", "azul")]}, "all[0].field", "campo desconhecido"),
    ({"all": [{"op": "=", "value": 1}]}, "all[0].field", "falta o campo"),
    ({"all": [leaf("orders_count", "contains", 1)]}, "all[0].op", "não serve para número de compras"),
    ({"all": [leaf("orders_count", ">=")]}, "all[0].value", "falta o valor"),
    ({"all": [leaf("orders_count", ">=", "três")]}, "all[0].value", "número inteiro"),
    ({"all": [leaf("orders_count", ">=", True)]}, "all[0].value", "número inteiro"),
    ({"all": [leaf("days_since_last_purchase", ">=", -1)]}, "all[0].value", "entre 0 e"),
    ({"any": [{"all": [leaf("total_revenue", "between", [100, 50])]}]}, "any[0].all[0].value", "menor ou igual"),
    ({"all": [leaf("total_revenue", ">", "12,345")]}, "all[0].value", "dois decimais"),
    ({"all": [leaf("total_revenue", ">", "abc")]}, "all[0].value", "valor em reais"),
    ({"all": [leaf("total_revenue", "=", 10)]}, "all[0].op", "não serve"),
    ({"all": [leaf("tag", "is_set", "vip")]}, "all[0].value", "não leva valor"),
    ({"all": [leaf("tag", "contains", "")]}, "all[0].value", "informe um texto"),
    ({"all": [leaf("tag", "contains", "x" * 121)]}, "all[0].value", "no máximo 120"),
    ({"all": [leaf("churn_band", "=", "altissimo")]}, "all[0].value", "valor desconhecido"),
    ({"all": [leaf("consent", "in", [])]}, "all[0].value", "ao menos um valor"),
    ({"all": [leaf("first_purchase", "before", "2026-13-01")]}, "all[0].value", "data inválida"),
    ({"all": [leaf("first_purchase", "before", "1999-12-31")]}, "all[0].value", "entre 2000 e 2100"),
    ({"all": [leaf("birthday", "month", 13)]}, "all[0].value", "o mês deve estar entre 1 e 12"),
    ({"all": [leaf("bought", "contains", "tenis")]}, "all[0].value", "informe o produto"),
    ({"all": [leaf("bought", "contains", {"product": "a", "brand": "b"})]}, "all[0].value", "escolha um só"),
    ({"all": [leaf("bought", "contains", {"attribute": "material"})]}, "all[0].value.equals", "falta o valor"),
    ({"all": [leaf("bought", "contains", {"attribute": "a'b", "equals": "x"})]}, "all[0].value.attribute",
     "nome de atributo"),
    ({"all": [leaf("bought", "contains", {"brand": "b", "within_days": "muitos"})]}, "all[0].value.within_days",
     "número inteiro"),
    ({"all": [leaf("left_in_cart", "contains", {"brand": "b", "preco": 1})]}, "all[0].value.preco",
     "chave desconhecida"),
    ({"all": [{"field": "tag", "op": "contains", "value": "a", "extra": 1}]}, "all[0]", "chave desconhecida"),
])
def test_invalid_conditions_name_the_path_and_say_what_is_wrong(condition, path, fragment):
    with pytest.raises(ConditionInvalid) as error:
        validate(condition)
    assert error.value.path == path
    assert fragment in error.value.message, error.value.message


def test_depth_and_size_are_bounded():
    deep = leaf("tag", "is_set")
    for _ in range(MAX_DEPTH):
        deep = {"all": [deep]}
    validate(deep)
    with pytest.raises(ConditionInvalid) as error:
        validate({"any": [deep]})
    assert "aninhados demais" in error.value.message and error.value.path == "any[0].all[0].all[0].all[0].all[0]"
    validate({"all": [leaf("tag", "is_set")] * MAX_LEAVES})
    with pytest.raises(ConditionInvalid) as error:
        validate({"all": [leaf("tag", "is_set")] * (MAX_LEAVES + 1)})
    assert error.value.path == f"all[{MAX_LEAVES}]" and "no máximo 50" in error.value.message


def test_validation_normalises_values_and_aliases():
    got = validate({"any": [leaf("utm_source", "=", " instagram "), leaf("total_revenue", ">=", 99.9),
                            leaf("orders_count", "between", ["1", 3])]})
    assert got == {"any": [leaf("source", "=", "instagram"), leaf("total_revenue", ">=", "99.90"),
                           leaf("orders_count", "between", [1, 3])]}
    assert [x["field"] for x in leaves(got)] == ["source", "total_revenue", "orders_count"]


def test_anniversaries_cross_the_new_year_and_count_29_february_on_the_28th():
    codes = anniversary_codes(NOW.replace(month=12, day=30), 3, TZ)
    assert codes == [101, 102, 1230, 1231]
    assert 229 in anniversary_codes(NOW.replace(year=2027, month=2, day=27), 1, TZ)  # 2027 has no 29 February
    assert 229 not in anniversary_codes(NOW.replace(year=2027, month=2, day=20), 3, TZ)


# --- SQL and Python agree ----------------------------------------------------------------------------------

TAGS = ["vip", "atacado", "novo"]
KEYS = [p[0] for p in PRODUCTS]
CATEGORIES = sorted({p[1] for p in PRODUCTS})
BRANDS = sorted({p[2] for p in PRODUCTS})
SOURCES = ["instagram", "google"]
CITIES = [("São Paulo", "SP", "11"), ("Campinas", "SP", "19"), ("Rio de Janeiro", "RJ", "21")]
money = st.integers(0, 80).map(lambda n: str(Decimal(n) / 2))
small_days = st.integers(0, 4)  # few values: boundaries (exactly N days) come up often
near_date = st.integers(-5, 2).map(lambda n: (NOW.astimezone(TZ).date() + timedelta(days=n)).isoformat())


def _cmp(field, values, ops):
    return st.builds(lambda op, v: leaf(field, op, v), st.sampled_from(ops), values)


def _set_like(field, values, presence=True):
    options = [_cmp(field, values, ["=", "!="]),
               st.builds(lambda op, v: leaf(field, op, v), st.sampled_from(["in", "not_in"]),
                         st.lists(values, min_size=1, max_size=3))]
    if presence:
        options.append(st.sampled_from([leaf(field, "is_set"), leaf(field, "is_not_set")]))
    return st.one_of(*options)


def _products(field):
    target = st.one_of(
        st.sampled_from(KEYS).map(lambda v: {"product": v}),
        st.sampled_from(CATEGORIES).map(lambda v: {"category": v}),
        st.sampled_from(BRANDS).map(lambda v: {"brand": v}),
        st.sampled_from(["couro", "algodao"]).map(lambda v: {"attribute": "material", "equals": v}),
        st.sampled_from(["42", "M"]).map(lambda v: {"attribute": "tamanho", "equals": v}),
        st.sampled_from(["Preto", "Branco"]).map(lambda v: {"attribute": "cor", "equals": v}))
    within = st.one_of(st.none(), small_days)
    return st.builds(lambda op, t, w: leaf(field, op, t | ({} if w is None else {"within_days": w})),
                     st.sampled_from(["contains", "not_contains"]), target, within)


def _dates(field):
    return st.one_of(
        st.builds(lambda n: leaf(field, "within_days", n), small_days),
        st.builds(lambda op, d: leaf(field, op, d), st.sampled_from(["before", "after"]), near_date),
        st.builds(lambda pair: leaf(field, "between", sorted(pair)), st.lists(near_date, min_size=2, max_size=2)),
        st.sampled_from([leaf(field, "is_set"), leaf(field, "is_not_set")]))


def leaf_strategy(ids: dict):
    comparisons = ["=", "!=", "<", "<=", ">", ">="]
    money_ops = ["<", "<=", ">", ">="]
    return st.one_of(
        st.one_of(_cmp("tag", st.sampled_from(TAGS), ["contains", "not_contains"]),
                  st.sampled_from([leaf("tag", "is_set"), leaf("tag", "is_not_set")])),
        _set_like("owner", st.sampled_from(ids["sellers"] + [999_999])),
        _set_like("branch", st.sampled_from([ids["store"], 999_999])),
        _cmp("days_since_last_purchase", small_days, comparisons),
        st.builds(lambda v: leaf("days_since_last_purchase", "between", sorted(v)),
                  st.lists(small_days, min_size=2, max_size=2)),
        st.sampled_from([leaf("days_since_last_purchase", "is_set"), leaf("days_since_last_purchase", "is_not_set")]),
        _cmp("orders_count", st.integers(0, 4), comparisons),
        _cmp("total_revenue", money, money_ops),
        st.builds(lambda v: leaf("total_revenue", "between", sorted(v, key=Decimal)),
                  st.lists(money, min_size=2, max_size=2)),
        _cmp("average_ticket", money, money_ops),
        st.builds(lambda v: leaf("average_ticket", "between", sorted(v, key=Decimal)),
                  st.lists(money, min_size=2, max_size=2)),
        st.sampled_from([leaf("average_ticket", "is_set"), leaf("average_ticket", "is_not_set")]),
        _products("bought"), _products("left_in_cart"),
        _dates("first_purchase"), _dates("last_purchase"), _dates("customer_since"),
        st.builds(lambda m: leaf("birthday", "month", m), st.sampled_from([11, 12, 1, 2])),
        st.builds(lambda n: leaf("birthday", "anniversary_within_days", n), st.integers(0, 70)),
        st.sampled_from([leaf("birthday", "is_set"), leaf("birthday", "is_not_set")]),
        _set_like("source", st.sampled_from(SOURCES)),
        _set_like("city", st.sampled_from([c for c, _, _ in CITIES])),
        _set_like("state", st.sampled_from(["SP", "RJ"])),
        _set_like("ddd", st.sampled_from(["11", "19", "21"])),
        _set_like("churn_band", st.sampled_from(["baixo", "medio", "alto", "inativo"]), presence=False),
        _set_like("consent", st.sampled_from(["opted_out", "marketing_opted_out", "subscribed"]), presence=False),
        _set_like("recovery_outcome", st.sampled_from(["recovered", "sent_not_recovered", "none"]), presence=False),
    )


def condition_strategy(ids: dict):
    return st.recursive(leaf_strategy(ids), lambda children: st.builds(
        lambda key, items: {key: items}, st.sampled_from(["all", "any"]), st.lists(children, min_size=1, max_size=3)),
        max_leaves=8)


customer_strategy = st.fixed_dictionaries({
    "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=2),
    "owner": st.sampled_from([None, 0, 1]),
    "branch": st.booleans(),
    "source": st.sampled_from([None, *SOURCES]),
    "place": st.sampled_from([None, *CITIES]),
    "birthday": st.one_of(st.none(), st.builds(date, st.just(1990), st.sampled_from([11, 12, 1, 2]),
                                               st.integers(1, 28)), st.just(date(1992, 2, 29))),
    "opted_out": st.booleans(), "marketing": st.booleans(),
    "created_days": st.integers(0, 5), "created_seconds": st.sampled_from([0, 1, 3600 * 3, 86_399]),
    "orders": st.integers(0, 4), "revenue_halves": st.integers(0, 80),
    "last_days": small_days, "last_seconds": st.sampled_from([0, 1, 3600 * 3, 86_399]),
    "first_extra_days": st.integers(0, 5), "band": st.sampled_from(["baixo", "medio", "alto", "inativo"]),
    "bought": st.lists(st.tuples(st.integers(0, 2), small_days, st.booleans(), st.sampled_from([0, 1, 86_399])),
                      max_size=3),
    "carts": st.lists(st.tuples(st.integers(0, 2), small_days, st.sampled_from(list(CartStatus)), st.booleans(),
                                st.sampled_from([0, 1, 86_399])),
                      max_size=2),
    "recovery": st.sampled_from([None, "sent", "recovered", "skipped"]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_sql_and_python_agree_on_random_conditions_over_random_stores(session, data):
    nested = session.begin_nested()
    try:
        products = catalog(session)
        store, s1, s2 = branch_and_sellers(session)
        sellers = [s1, s2]
        products_list = [products[k] for k in KEYS]
        people = data.draw(st.lists(customer_strategy, max_size=7), label="customers")
        for n, spec in enumerate(people):
            city, state, ddd = spec["place"] or (None, None, None)
            who = make_customer(
                session, f"+5511970000{n:03d}", f"C{n}", tags=spec["tags"],
                owner_seller_id=None if spec["owner"] is None else sellers[spec["owner"]].id,
                store_id=store.id if spec["branch"] else None, source=spec["source"], city=city, state=state,
                ddd=ddd, birthday=spec["birthday"], opted_out_at=NOW if spec["opted_out"] else None,
                marketing_opted_out_at=NOW if spec["marketing"] else None,
                created_at=NOW - timedelta(days=spec["created_days"], seconds=spec["created_seconds"]))
            last = NOW - timedelta(days=spec["last_days"], seconds=spec["last_seconds"])
            orders = spec["orders"]
            set_figures(session, who, orders=orders,
                        revenue=Decimal(spec["revenue_halves"]) / 2 if orders else Decimal(0),
                        last_purchase_at=last if orders else None,
                        first_purchase_at=last - timedelta(days=spec["first_extra_days"]) if orders else None,
                        churn_band=spec["band"])
            placed = None
            for i, (product, ago, live, seconds) in enumerate(spec["bought"]):
                placed = buy(session, who, f"o{n}-{i}", products_list[product], "10.00",
                             NOW - timedelta(days=ago, seconds=seconds),
                             status=OrderStatus.PAID if live else OrderStatus.CANCELLED)
            for product, ago, status, with_variant, seconds in spec["carts"]:
                leave_cart(session, who, products_list[product], NOW - timedelta(days=ago, seconds=seconds), status,
                           with_variant)
            if spec["recovery"] == "recovered":
                placed = placed or buy(session, who, f"r{n}", products_list[0], "10.00", NOW)
                attempt(session, who, NOW - timedelta(days=1), recovered_order=placed)
            elif spec["recovery"] in ("sent", "skipped"):
                from models import AttemptStatus
                attempt(session, who, NOW - timedelta(days=1),
                        status=AttemptStatus.SENT if spec["recovery"] == "sent" else AttemptStatus.SKIPPED)
        ids = {"sellers": [s.id for s in sellers], "store": store.id}
        facts = load_facts(session)
        for _ in range(12):
            condition = validate(data.draw(condition_strategy(ids), label="condition"))
            in_sql = matching_ids(session, condition, NOW, TZ)
            in_python = {i for i, f in facts.items() if matches(condition, f, NOW, TZ)}
            assert in_sql == in_python, condition
    finally:
        nested.rollback()
