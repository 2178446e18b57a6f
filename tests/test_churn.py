"""The churn index ("Risco de perda"): each factor against hand-computed figures, the little-data fallback, inactive
customers, the reasons' numbers, and the loaders on a real database (cancelled orders ignored, the store's norms)."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings, strategies as st

from core.templating import brl
from crm.churn import (
    BANDS, FACTOR_NAMES, WEIGHTS, Purchase, StoreNorms, churn_of, customer_churn, irregularity_score,
    load_purchases, norms_of, recency_score, sparsity_score, store_norms,
)
from models import Customer, Order, OrderItem, OrderStatus, Product, Variant

NOW = datetime(2041, 3, 15, 12, 0, tzinfo=timezone.utc)  # far from every other test's orders (shared database)
NORMS = StoreNorms(median_interval_days=45.0, median_ticket=Decimal("150.00"), customers=10)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def bought(*ages: float, total: str = "100.00", products: tuple[str, ...] = ("camisetas",)) -> list[Purchase]:
    return [Purchase(at=ago(age), total=Decimal(total), products=frozenset(products)) for age in ages]


def factor(churn, name):
    return next(f for f in churn.factors if f.name == name)


def logistic(ratio: float) -> float:
    return 1 / (1 + math.exp(-3 * (ratio - 2)))


# --- recency -------------------------------------------------------------------------------------------------------


def test_recency_counts_the_silence_in_the_customers_own_intervals():
    churn = churn_of(bought(*(75 + 30 * i for i in range(8))), NOW, NORMS)
    recency = factor(churn, "recency")
    assert recency.reason == "compra a cada 30 dias e está há 75 sem comprar"
    assert recency.score == pytest.approx(1 / (1 + math.exp(-1.5)), abs=1e-4)  # 75/30 = 2.5 intervals → 0.8176
    assert recency.weight == 0.40
    assert churn.little_data is False


def test_recency_score_shape():
    assert recency_score(30, 30) == pytest.approx(0.0474, abs=1e-4)  # one interval: ~0
    assert recency_score(60, 30) == 0.5  # two
    assert recency_score(90, 30) == pytest.approx(0.9526, abs=1e-4)  # three: ~1
    assert recency_score(0, 30) < 0.01


def test_a_weekly_buyer_three_weeks_silent_is_at_risk_a_twice_a_year_buyer_after_60_days_is_not():
    weekly = factor(churn_of(bought(*(21 + 7 * i for i in range(40))), NOW, NORMS), "recency")
    rare = factor(churn_of(bought(60, 242, 424, 606), NOW, NORMS), "recency")
    assert weekly.reason == "compra a cada 7 dias e está há 21 sem comprar" and weekly.score > 0.9
    assert rare.reason == "compra a cada 182 dias e está há 60 sem comprar" and rare.score < 0.01


@pytest.mark.parametrize("ages", [(75,), (75, 85)])
def test_little_data_uses_the_stores_interval(ages):
    churn = churn_of(bought(*ages), NOW, NORMS)
    recency = factor(churn, "recency")
    assert churn.little_data is True
    # The customer's own gap (10 days in the second case) is not used: 75 / 45 intervals.
    assert recency.reason == "tem poucas compras; pelo intervalo típico da loja, de 45 dias, está há 75 sem comprar"
    assert recency.score == pytest.approx(1 / (1 + math.e), abs=1e-4)  # logistic(3·(75/45 − 2)) = 0.2689


def test_three_purchases_are_enough_for_the_customers_own_interval():
    churn = churn_of(bought(10, 20, 30), NOW, NORMS)
    assert churn.little_data is False
    assert factor(churn, "recency").reason == "compra a cada 10 dias e está há 10 sem comprar"


def test_a_split_order_is_one_purchase_for_the_rhythm():
    # Two orders an hour apart 20 days ago, and one 30 days before: one gap of 30 days, so little data.
    churn = churn_of(bought(20, 20 + 1 / 24, 50), NOW, NORMS)
    assert churn.little_data is True


def test_recency_reason_for_today_and_yesterday():
    assert factor(churn_of(bought(0, 10, 20), NOW, NORMS), "recency").reason == "compra a cada 10 dias e comprou hoje"
    assert factor(churn_of(bought(1, 2, 3), NOW, NORMS), "recency").reason == \
        "compra todo dia e está há 1 dia sem comprar"


# --- ticket --------------------------------------------------------------------------------------------------------


def test_ticket_falling_against_the_previous_twelve_months():
    purchases = bought(10, 100, 200, total="120.00") + bought(400, 500, total="200.00")
    ticket = factor(churn_of(purchases, NOW, NORMS), "ticket")
    assert ticket.reason == "ticket médio de R$\xa0120,00 nos últimos 12 meses, 40% abaixo dos 12 meses anteriores"
    assert ticket.score == pytest.approx(0.8)  # 40 / 50
    assert ticket.weight == 0.15


def test_ticket_rising_is_no_risk_and_uses_the_average_of_the_orders():
    purchases = bought(10, total="150.00") + bought(100, total="90.00") + bought(400, total="100.00")
    ticket = factor(churn_of(purchases, NOW, NORMS), "ticket")
    assert ticket.reason == "ticket médio de R$\xa0120,00 nos últimos 12 meses, 20% acima dos 12 meses anteriores"
    assert ticket.score == 0.0


def test_ticket_without_a_previous_period_compares_with_the_store_at_half_strength():
    ticket = factor(churn_of(bought(10, 40, total="120.00"), NOW, NORMS), "ticket")
    assert ticket.reason == "ticket médio de R$\xa0120,00 nos últimos 12 meses, 20% abaixo do ticket típico da loja"
    assert ticket.score == pytest.approx(0.2)  # 20 / 100
    empty_store = StoreNorms(30.0, Decimal("0.00"), 0)
    unknown = factor(churn_of(bought(10, total="120.00"), NOW, empty_store), "ticket")
    assert unknown.score == 0.5
    assert unknown.reason == "ticket médio de R$\xa0120,00 nos últimos 12 meses, sem período anterior para comparar"


# --- frequency -----------------------------------------------------------------------------------------------------


def test_frequency_of_a_regular_customer():
    # Gaps 28, 35, 28, 35, 35 → quartiles 28 and 35; 6 purchases in 12 months.
    ages = [5, 33, 68, 96, 131, 166]
    frequency = factor(churn_of(bought(*ages), NOW, NORMS), "frequency")
    assert frequency.reason == "compra com regularidade (a cada 28 a 35 dias); 6 compras nos últimos 12 meses"
    sparsity = 1 - math.log(6) / math.log(12)  # 0.2789
    irregularity = (7 / 63 - 0.1) / 0.5  # 0.0222
    assert frequency.score == pytest.approx((sparsity + irregularity) / 2, abs=1e-4)  # 0.1506
    assert frequency.weight == 0.05


def test_frequency_of_a_sparse_irregular_customer():
    # Gaps 150, 10, 365, 10 → sorted 10, 10, 150, 365: q1 10, q3 150 + 0.25·215 = 203.75 → 204; 2 in 12 months.
    frequency = factor(churn_of(bought(5, 15, 380, 390, 540), NOW, NORMS), "frequency")
    assert frequency.reason == ("compra de forma espaçada e irregular (a cada 10 a 204 dias); "
                                "2 compras nos últimos 12 meses")
    assert frequency.score == pytest.approx((1 - math.log(2) / math.log(12) + 1) / 2, abs=1e-4)  # 0.8605


def test_frequency_with_too_few_gaps_is_half_unknown():
    frequency = factor(churn_of(bought(30), NOW, NORMS), "frequency")
    assert frequency.reason == "1 compra nos últimos 12 meses; poucas compras para medir a regularidade"
    assert frequency.score == pytest.approx(0.75)  # (sparsity 1 + unknown 0.5) / 2


def test_frequency_components():
    assert sparsity_score(1) == 1.0 and sparsity_score(12) == 0.0 and sparsity_score(52) == 0.0
    assert irregularity_score(30, 30) == 0.0
    assert irregularity_score(10, 90) == 1.0  # dispersion 0.8


# --- growth --------------------------------------------------------------------------------------------------------


def test_growth_buying_less_than_the_six_months_before():
    purchases = bought(20, 100) + bought(190, 220, 250, 280, 310)
    growth = factor(churn_of(purchases, NOW, NORMS), "growth")
    assert growth.reason == "comprou 2 vezes nos últimos 6 meses, contra 5 nos 6 anteriores"
    assert growth.score == pytest.approx(3 / 9, abs=1e-4)
    assert growth.weight == 0.20


def test_growth_reasons_at_the_edges():
    stopped = factor(churn_of(bought(200, 250, 300), NOW, NORMS), "growth")
    assert stopped.reason == "não comprou nos últimos 6 meses, contra 3 vezes nos 6 anteriores"
    assert stopped.score == pytest.approx(3 / 5)
    new = factor(churn_of(bought(10), NOW, NORMS), "growth")
    assert new.reason == "comprou 1 vez nos últimos 6 meses, contra nenhuma nos 6 anteriores"
    assert new.score == 0.0


# --- mix -----------------------------------------------------------------------------------------------------------


def test_mix_of_a_one_product_customer():
    mix = factor(churn_of(bought(10, 40, 70), NOW, NORMS), "mix")
    assert mix.reason == "comprou 1 tipo de produto nos últimos 12 meses"
    assert mix.score == 0.5  # (1/1 + no narrowing) / 2
    assert mix.weight == 0.20


def test_mix_narrowing():
    purchases = (bought(10, 40, products=("camisetas",))
                 + bought(400, products=("camisetas", "calças")) + bought(450, products=("tênis", "bonés")))
    mix = factor(churn_of(purchases, NOW, NORMS), "mix")
    assert mix.reason == "comprou 1 tipo de produto nos últimos 12 meses, contra 4 nos 12 meses anteriores"
    assert mix.score == pytest.approx((1 + 3 / 4) / 2)
    wide = factor(churn_of(bought(10, products=("a", "b", "c", "d")), NOW, NORMS), "mix")
    assert wide.reason == "comprou 4 tipos de produto nos últimos 12 meses" and wide.score == pytest.approx(0.125)


def test_mix_without_known_items_is_unknown():
    mix = factor(churn_of(bought(10, products=()), NOW, NORMS), "mix")
    assert mix.score == 0.5 and mix.reason == "sem os itens dos pedidos dos últimos 12 meses"


# --- the index -----------------------------------------------------------------------------------------------------


def test_index_is_the_weighted_sum_and_names_its_band():
    churn = churn_of(bought(*(75 + 30 * i for i in range(8))), NOW, NORMS)
    assert [f.name for f in churn.factors] == list(FACTOR_NAMES)
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert churn.index == pytest.approx(sum(f.weight * f.score for f in churn.factors), abs=1e-3)
    # recency 0.8176 + ticket 0.33 (100 vs the store's 150: −33%, at half strength) + frequency 0.0816 (8 a year,
    # steady) + growth 0 (4 and 4) + mix 0.5 (one product type)
    frequency = (1 - math.log(8) / math.log(12) + 0) / 2
    assert churn.index == pytest.approx(0.40 * 0.8176 + 0.15 * 0.33 + 0.05 * frequency + 0.20 * 0.5, abs=1e-3)
    assert churn.band == "medio"  # 0.20 ≤ 0.481 < 0.50


@pytest.mark.parametrize(("ages", "band"), [
    ((3, 33, 63, 93, 123, 153, 183, 213), "baixo"),  # buying every month, bought 3 days ago
    ((150, 180, 210, 240, 270, 300, 400), "alto"),  # monthly buyer silent for five months
])
def test_bands(ages, band):
    churn = churn_of(bought(*ages), NOW, NORMS)
    assert churn.band == band and churn.band in BANDS


@pytest.mark.parametrize("purchases", [[], bought(366), bought(400, 500, 600)])
def test_inactive_customer_has_no_index(purchases):
    churn = churn_of(purchases, NOW, NORMS)
    assert churn.index is None and churn.band == "inativo" and churn.factors == [] and churn.little_data is False
    assert churn.as_json() == {"index": None, "band": "inativo", "little_data": False, "factors": []}


def test_a_purchase_364_days_ago_still_counts_as_active():
    assert churn_of(bought(364), NOW, NORMS).index is not None


def test_purchases_after_now_and_before_24_months_are_ignored():
    base = bought(75, 105, 135)
    assert churn_of(base + bought(-5) + bought(800), NOW, NORMS) == churn_of(base, NOW, NORMS)


def test_as_json_shape():
    churn = churn_of(bought(10, 40, 70), NOW, NORMS)
    data = json.loads(json.dumps(churn.as_json()))
    assert set(data) == {"index", "band", "little_data", "factors"}
    assert isinstance(data["index"], float) and data["band"] in BANDS and data["little_data"] is False
    assert [f["name"] for f in data["factors"]] == list(FACTOR_NAMES)
    for item in data["factors"]:
        assert set(item) == {"name", "score", "weight", "reason"}
        assert 0 <= item["score"] <= 1 and isinstance(item["reason"], str) and item["reason"]


# --- properties ----------------------------------------------------------------------------------------------------

ages_strategy = st.lists(st.floats(min_value=0, max_value=729.9, allow_nan=False), min_size=1, max_size=30)
totals_strategy = st.lists(st.decimals(min_value=Decimal("1.00"), max_value=Decimal("5000.00"), places=2),
                           min_size=1, max_size=30)
PRODUCTS = ["a", "b", "c", "d", "e"]


def _history(ages, totals, seed):
    rng = random.Random(seed)
    return [Purchase(at=ago(age), total=totals[i % len(totals)],
                     products=frozenset(rng.sample(PRODUCTS, rng.randint(0, 3)))) for i, age in enumerate(ages)]


@settings(max_examples=200, deadline=None)
@given(days=st.integers(min_value=0, max_value=2000), more=st.integers(min_value=0, max_value=2000),
       interval=st.integers(min_value=1, max_value=400))
def test_recency_score_never_falls_with_more_silence(days, more, interval):
    assert recency_score(days + more, interval) >= recency_score(days, interval)


@settings(max_examples=100, deadline=None)
@given(ages=st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), min_size=1, max_size=20),
       later=st.floats(min_value=0, max_value=60, allow_nan=False))
def test_recency_of_a_customer_never_falls_as_time_passes(ages, later):
    """Same purchases (all within the windows at both dates), a later `now`: the recency score cannot drop."""
    purchases = bought(*ages)
    before = factor(churn_of(purchases, NOW, NORMS), "recency").score
    after = factor(churn_of(purchases, NOW + timedelta(days=later), NORMS), "recency").score
    assert after >= before


def _ints(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


@settings(max_examples=200, deadline=None)
@given(ages=ages_strategy, totals=totals_strategy, seed=st.integers(0, 1000))
def test_every_number_in_a_reason_is_the_number_the_score_came_from(ages, totals, seed):
    purchases = _history(ages, totals, seed)
    churn = churn_of(purchases, NOW, NORMS)
    if churn.index is None:
        return
    by_name = {f.name: f for f in churn.factors}
    recent = [p for p in purchases if p.at > ago(365)]

    recency = by_name["recency"]
    numbers = _ints(recency.reason)
    if "comprou hoje" in recency.reason:
        numbers.append(0)
    if "todo dia" in recency.reason:
        numbers.insert(0, 1)
    interval, days = numbers
    assert days == int((NOW - max(p.at for p in purchases)).total_seconds() / 86400)
    assert recency.score == pytest.approx(recency_score(days, interval), abs=1e-4)
    if churn.little_data:
        assert interval == 45

    ticket = by_name["ticket"]
    average = (sum(p.total for p in recent) / len(recent)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert ticket.reason.startswith(f"ticket médio de {brl(average)} nos últimos 12 meses")
    tail = ticket.reason.split("meses, ", 1)[1]
    percent = re.match(r"(\d+)% (abaixo|acima)", tail)
    pct = (int(percent[1]) * (-1 if percent[2] == "abaixo" else 1)) if percent else 0
    if "anteriores" in tail:
        assert ticket.score == pytest.approx(min(1, max(0, -pct / 50)), abs=1e-4)
    else:
        assert "loja" in tail
        assert ticket.score == pytest.approx(min(1, max(0, -pct / 100)), abs=1e-4)

    frequency = by_name["frequency"]
    numbers = _ints(frequency.reason)
    assert numbers[-2] == len(recent)
    if "regularidade (" in frequency.reason or "forma" in frequency.reason:
        spread = numbers[:-2]
        q1, q3 = spread[0], spread[-1]
        assert frequency.score == pytest.approx((sparsity_score(len(recent)) + irregularity_score(q1, q3)) / 2,
                                                abs=1e-4)
    else:
        assert frequency.score == pytest.approx((sparsity_score(len(recent)) + 0.5) / 2, abs=1e-4)

    growth = by_name["growth"]
    last_half = sum(p.at > ago(183) for p in recent)
    numbers = _ints(growth.reason.replace("6 meses", "").replace("6 anteriores", ""))
    if growth.reason.startswith("não comprou"):
        numbers.insert(0, 0)
    if "nenhuma" in growth.reason:
        numbers.append(0)
    assert numbers == [last_half, len(recent) - last_half]
    assert growth.score == pytest.approx(max(0, numbers[1] - numbers[0]) / (sum(numbers) + 2), abs=1e-4)

    mix = by_name["mix"]
    kinds = set().union(*(p.products for p in recent))
    if kinds:
        earlier = set().union(*(p.products for p in purchases if p.at <= ago(365)))
        numbers = _ints(mix.reason.replace("12 meses", ""))
        assert numbers == ([len(kinds), len(earlier)] if earlier else [len(kinds)])
        narrowing = max(0, len(earlier) - len(kinds)) / len(earlier) if earlier else 0
        assert mix.score == pytest.approx((1 / len(kinds) + narrowing) / 2, abs=1e-4)

    assert churn.index == pytest.approx(sum(f.weight * f.score for f in churn.factors), abs=1e-3)


# --- the database side ---------------------------------------------------------------------------------------------


def _customer(session, phone: str) -> Customer:
    customer = Customer(phone=phone, name="Cliente", tags=[])
    session.add(customer)
    session.flush()
    return customer


_orders = iter(range(1, 10**9))


def _order(session, customer: Customer, age: float, total: str = "100.00", skus: tuple[str, ...] = ("SKU-X",),
           status: OrderStatus = OrderStatus.PAID) -> Order:
    order = Order(external_id=f"churn-{next(_orders)}", customer_id=customer.id, status=status,
                  total=Decimal(total), placed_at=ago(age))
    for sku in skus:
        order.items.append(OrderItem(sku=sku, name=sku, quantity=1, unit_price=Decimal(total)))
    session.add(order)
    session.flush()
    return order


def test_customer_churn_ignores_cancelled_orders(session):
    ana = _customer(session, "+5511990000001")
    for age in (75, 105, 135, 165):
        _order(session, ana, age)
    _order(session, ana, 5, status=OrderStatus.CANCELLED)
    _order(session, ana, 20, status=OrderStatus.CREATED)  # placed, not paid yet: counts
    churn = customer_churn(session, ana.id, NOW, NORMS)
    # Live: 20 (created), 75, 105, 135, 165 days ago → 145 days over 4 gaps = 36.25; the cancelled one 5 days ago
    # would make it 5 days of silence.
    assert factor(churn, "recency").reason == "compra a cada 36 dias e está há 20 sem comprar"
    assert factor(churn, "growth").reason == "comprou 5 vezes nos últimos 6 meses, contra nenhuma nos 6 anteriores"


def test_a_customer_with_only_cancelled_orders_is_inactive(session):
    bia = _customer(session, "+5511990000002")
    _order(session, bia, 10, status=OrderStatus.CANCELLED)
    assert customer_churn(session, bia.id, NOW, NORMS).band == "inativo"
    assert customer_churn(session, bia.id, NOW, NORMS).index is None


def test_the_mix_uses_the_catalogs_categories(session):
    session.add(Product(key="CAM-LISA", name="Camiseta Lisa", price=Decimal("50"), category="Camisetas",
                        attributes={}, variants=[Variant(sku="CAM-LISA-P", price=Decimal("50"), options={}),
                                                 Variant(sku="CAM-LISA-M", price=Decimal("50"), options={})]))
    session.add(Product(key="BONE", name="Boné", price=Decimal("40"), category=None, attributes={},
                        variants=[Variant(sku="BONE-U", price=Decimal("40"), options={})]))
    session.flush()
    caio = _customer(session, "+5511990000003")
    _order(session, caio, 10, skus=("CAM-LISA-P", "CAM-LISA-M"))
    _order(session, caio, 40, skus=("CAM-LISA-M", "BONE-U", "FORA-DO-CATALOGO"))
    purchases = load_purchases(session, caio.id, NOW)
    assert [p.products for p in purchases] == [frozenset({"Camisetas", "BONE", "FORA-DO-CATALOGO"}),
                                               frozenset({"Camisetas"})]
    assert [p.total for p in purchases] == [Decimal("100.00"), Decimal("100.00")]
    churn = customer_churn(session, caio.id, NOW, NORMS)
    assert factor(churn, "mix").reason == "comprou 3 tipos de produto nos últimos 12 meses"


def test_store_norms_by_hand(session):
    ana, bia, caio, duda = (_customer(session, f"+55119900001{i}") for i in range(4))
    for age in (5, 15, 35):  # gaps 10 and 20: mean 15
        _order(session, ana, age, total="80.00")
    _order(session, ana, 35 + 1 / 24, total="10.00")  # split order an hour earlier: no gap of its own
    _order(session, bia, 10, total="200.00")  # gap 30
    _order(session, bia, 40, total="100.00")
    _order(session, bia, 25, total="999.00", status=OrderStatus.CANCELLED)  # would split bia's gap
    _order(session, caio, 50, total="60.00")  # one purchase: no interval
    _order(session, caio, 800, total="60.00")  # older than 24 months
    for age in (100, 140, 200):  # gaps 40 and 60: mean 50
        _order(session, duda, age, total="120.00")
    _order(session, duda, 500, total="500.00")  # 24-month window, not the 12-month ticket: gap 300 → mean 133.3
    norms = store_norms(session, NOW)
    # Intervals 15, 30, 133.33 → median 30. Tickets of the last 12 months: 10, 60, 80×3, 100, 120×3, 200 → 10
    # values, middle two 80 and 100 → 90.
    assert norms.customers == 3
    assert norms.median_interval_days == pytest.approx(30.0, abs=1e-4)
    assert norms.median_ticket == Decimal("90.00")


def test_store_norms_of_an_empty_store(session):
    assert store_norms(session, NOW) == StoreNorms(median_interval_days=30.0, median_ticket=Decimal("0.00"),
                                                   customers=0)


def test_store_norms_in_sql_match_the_python_definition(session):
    rng = random.Random(7)
    histories = []
    for number in range(25):
        customer = _customer(session, f"+551198{number:07d}")
        purchases = []
        for _ in range(rng.randint(0, 8)):
            age = rng.uniform(0, 800)
            total = f"{rng.uniform(5, 500):.2f}"
            status = OrderStatus.CANCELLED if rng.random() < 0.15 else OrderStatus.PAID
            _order(session, customer, age, total=total, status=status)
            if status is not OrderStatus.CANCELLED:
                purchases.append(Purchase(at=ago(age), total=Decimal(total)))
        histories.append(purchases)
    sql, python = store_norms(session, NOW), norms_of(histories, NOW)
    assert sql.customers == python.customers > 0
    assert sql.median_interval_days == pytest.approx(python.median_interval_days, abs=1e-4)
    assert sql.median_ticket == python.median_ticket


def test_customer_churn_computes_the_norms_when_not_given(session):
    ana, bia = _customer(session, "+5511990000021"), _customer(session, "+5511990000022")
    for age in (10, 30, 50, 70):  # mean gap 20: the store's only interval
        _order(session, ana, age)
    _order(session, bia, 50)
    churn = customer_churn(session, bia.id, NOW)
    assert churn.little_data is True
    assert factor(churn, "recency").reason == \
        "tem poucas compras; pelo intervalo típico da loja, de 20 dias, está há 50 sem comprar"
