"""crm.metrics: the per-customer figures the Clientes list filters and sorts by — what a refresh computes (the same
numbers as the 360 view), that the frequent run picks up exactly the customers whose orders changed, that runs can
repeat or overlap, and that the daily run reaches every customer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from crm import churn, metrics
from models import Customer, CustomerMetrics, Order, OrderItem, OrderStatus, SystemFlag, utcnow
from tests.crm_helpers import customer

NOW = utcnow()


def _order(session, who, external_id, days_ago, total, status=OrderStatus.PAID):
    order = Order(external_id=external_id, customer_id=who.id, status=status, currency="BRL", total=Decimal(total),
                  placed_at=NOW - timedelta(days=days_ago))
    order.items = [OrderItem(sku=f"SKU-{external_id}", name="Item", quantity=1, unit_price=Decimal(total))]
    session.add(order)
    session.flush()
    return order


def _row(session, who) -> CustomerMetrics | None:
    session.expire_all()
    return session.get(CustomerMetrics, who.id)


def test_a_refresh_counts_live_orders_and_agrees_with_the_churn_of_the_360_view(session):
    ana, bia, caio = (customer(session, f"+55119999900{i}", name) for i, name in enumerate(("Ana", "Bia", "Caio")))
    for days, total in ((5, "100.00"), (40, "50.50"), (75, "80.00"), (110, "20.00")):
        _order(session, ana, f"a-{days}", days, total)
    _order(session, ana, "a-x", 2, "999.00", status=OrderStatus.CANCELLED)  # no sale
    _order(session, bia, "b-1", 400, "70.00")  # over a year ago: inactive
    assert metrics.refresh(session, [ana.id, bia.id, caio.id, 987654], NOW) == 3  # an unknown id is skipped

    row = _row(session, ana)
    assert (row.orders, row.revenue) == (4, Decimal("250.50"))
    assert row.last_purchase_at == NOW - timedelta(days=5) and row.first_purchase_at == NOW - timedelta(days=110)
    expected = churn.customer_churn(session, ana.id, NOW)
    assert (row.churn_index, row.churn_band) == (expected.index, expected.band) and row.churn_band != "inativo"
    assert (_row(session, bia).orders, _row(session, bia).churn_band, _row(session, bia).churn_index) == \
        (1, "inativo", None)
    empty = _row(session, caio)
    assert (empty.orders, empty.revenue, empty.last_purchase_at, empty.churn_band) == (0, 0, None, "inativo")


def test_a_new_customer_has_a_row_of_zeros_at_once(session):
    ana = customer(session, "+5511999990001", "Ana")
    row = _row(session, ana)
    assert (row.orders, row.revenue, row.last_purchase_at, row.churn_index, row.churn_band) == \
        (0, 0, None, None, "inativo")


def test_a_cancellation_is_reflected_on_the_next_refresh(session):
    ana = customer(session, "+5511999990001", "Ana")
    order = _order(session, ana, "a-1", 3, "100.00")
    metrics.refresh(session, [ana.id], NOW)
    assert _row(session, ana).orders == 1
    order.status = OrderStatus.CANCELLED
    session.flush()
    metrics.refresh(session, [ana.id], NOW)  # replaces the row (an upsert), never a second one
    assert (_row(session, ana).orders, _row(session, ana).last_purchase_at) == (0, None)
    assert session.scalar(select(func.count()).select_from(CustomerMetrics)) == 1


def test_the_frequent_run_refreshes_only_customers_whose_orders_changed_and_keeps_its_watermark(db):
    with db.transaction() as session:
        ana, bia = customer(session, "+5511999990001", "Ana"), customer(session, "+5511999990002", "Bia")
        _order(session, ana, "a-1", 3, "100.00")
        ids = ana.id, bia.id
    with db.session() as session:
        created = session.get(CustomerMetrics, ids[1]).refreshed_at  # the row made with the customer
    now = utcnow()
    assert metrics.refresh_changed(db, now) == 1  # Ana's order; Bia has none
    with db.session() as session:
        assert session.get(CustomerMetrics, ids[1]).refreshed_at == created
        assert session.get(SystemFlag, metrics.WATERMARK_KEY).value == now.isoformat()
        first_refresh = session.get(CustomerMetrics, ids[0]).refreshed_at
    # The next run looks back over the overlap too (an order committed late), so Ana is refreshed once more...
    later = now + metrics.OVERLAP + timedelta(minutes=2)
    assert metrics.refresh_changed(db, later - timedelta(seconds=1)) == 1
    # ...and once the watermark is more than the overlap past her order, nothing is.
    assert metrics.refresh_changed(db, later) == 0
    with db.session() as session:
        second_refresh = session.get(CustomerMetrics, ids[0]).refreshed_at
        assert second_refresh == later - timedelta(seconds=1) != first_refresh
    with db.transaction() as session:
        _order(session, session.get(Customer, ids[1]), "b-1", 1, "40.00")
        session.get(Order, session.scalar(select(Order.id).where(Order.external_id == "b-1"))).updated_at = later
    assert metrics.refresh_changed(db, later + timedelta(seconds=1)) == 1
    with db.session() as session:
        assert session.get(CustomerMetrics, ids[1]).revenue == Decimal("40.00")
        assert session.get(CustomerMetrics, ids[0]).refreshed_at == second_refresh
    # A run with an older clock (a delayed duplicate tick) does not move the watermark back.
    metrics.refresh_changed(db, now)
    with db.session() as session:
        assert session.get(SystemFlag, metrics.WATERMARK_KEY).value == (later + timedelta(seconds=1)).isoformat()


def test_the_daily_run_reaches_every_customer_in_batches_and_stores_the_norms(db, monkeypatch):
    monkeypatch.setattr(metrics, "BATCH", 3)
    with db.transaction() as session:
        people = [customer(session, f"+551198888{i:04d}", f"Cliente {i}") for i in range(8)]
        for i, who in enumerate(people[:5]):
            _order(session, who, f"o-{i}-1", 10 + i, "50.00")
            _order(session, who, f"o-{i}-2", 40 + i, "60.00")
    assert metrics.refresh_all(db, NOW) == 5  # the five with orders; the others keep their row of zeros
    with db.session() as session:
        rows = {r.customer_id: r for r in session.scalars(select(CustomerMetrics))}
        assert set(rows) == {p.id for p in people}
        assert sum(r.orders for r in rows.values()) == 10
        for who in people[:5]:
            assert (rows[who.id].churn_index, rows[who.id].churn_band) == \
                (churn.customer_churn(session, who.id, NOW).index, churn.customer_churn(session, who.id, NOW).band)
        norms = metrics.cached_norms(session, NOW)
        assert norms == churn.store_norms(session, NOW)
    # A cancellation the frequent run never saw: the daily pass no longer meets that customer and clears them.
    with db.transaction() as session:
        for order in session.scalars(select(Order).where(Order.customer_id == people[0].id)):
            order.status = OrderStatus.CANCELLED
    later = NOW + timedelta(minutes=1)
    assert metrics.refresh_all(db, later) == 5  # four refreshed, one cleared
    with db.session() as session:
        cleared = session.get(CustomerMetrics, people[0].id)
        assert (cleared.orders, cleared.last_purchase_at, cleared.churn_band) == (0, None, "inativo")
        assert session.scalar(select(func.count()).select_from(CustomerMetrics)) == 8


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=st.lists(st.tuples(st.integers(0, 700), st.decimals("0.01", "5000.00", places=2),
                                 st.sampled_from(list(OrderStatus))), max_size=12))
def test_the_figures_are_the_orders_whatever_the_history(session, orders):
    who = customer(session, f"+55119{len(orders):02d}{abs(hash(tuple(orders))) % 10**6:06d}", "Alguém")
    for n, (days, total, status) in enumerate(orders):
        _order(session, who, f"h-{who.id}-{n}", days, total, status)
    metrics.refresh(session, [who.id], NOW)
    row = _row(session, who)
    live = [(days, total) for days, total, status in orders if status is not OrderStatus.CANCELLED]
    assert row.orders == len(live)
    assert row.revenue == sum((t for _, t in live), Decimal("0"))
    assert row.last_purchase_at == (NOW - timedelta(days=min(d for d, _ in live)) if live else None)
    assert row.churn_band == churn.customer_churn(session, who.id, NOW).band


@pytest.mark.parametrize("missing", [True, False])
def test_cached_norms_fall_back_to_computing_them(session, missing):
    ana = customer(session, "+5511999990001", "Ana")
    for days in (10, 40, 70):
        _order(session, ana, f"a-{days}", days, "90.00")
    if not missing:
        session.add(SystemFlag(key=metrics.NORMS_KEY, value='{"interval": 12.5, "ticket": "33.10", "customers": 7}'))
        session.flush()
        assert metrics.cached_norms(session, NOW) == churn.StoreNorms(12.5, Decimal("33.10"), 7)
    else:
        assert metrics.cached_norms(session, NOW) == churn.store_norms(session, NOW)
