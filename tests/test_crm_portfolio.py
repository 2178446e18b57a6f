"""Deactivation with redistribution (named seller, balanced, released), the daily re-point, and results."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm.assignment import assign
from crm.opportunities import OpportunityError, contact, create, crm_settings, move
from crm.portfolio import EVEN, deactivate, repoint_owners
from crm.results import report
from models import Customer, OpportunityResult, OpportunityStatus, OpportunityType, OrderStatus
from tests.crm_helpers import NOON, TZ, customer, make_order, make_seller, make_store


@pytest.fixture
def store(session):
    return make_store(session, "SP", city="São Paulo", state="SP", ddd="11")


def _portfolio(session, seller, count, start=0):
    buyers = []
    for i in range(start, start + count):
        buyer = customer(session, f"+551199999{i:04d}")
        buyer.owner_seller_id = seller.id
        buyers.append(buyer)
    session.flush()
    return buyers


def _owned(session, seller):
    return session.scalar(select(func.count()).where(Customer.owner_seller_id == seller.id))


def test_deactivation_moves_portfolio_and_open_opportunities_to_a_named_seller(session, store):
    leaving = make_seller(session, "Sai", store, ddds=["11"])
    taking = make_seller(session, "Fica", store, ddds=["11"])
    buyers = _portfolio(session, leaving, 3)
    held = create(session, buyers[0], type=OpportunityType.MANUAL, reason="manual", now=NOON).opportunity
    assign(session, held, NOON, TZ)
    move(session, held, OpportunityStatus.IN_PROGRESS, NOON, actor=leaving)

    moved = deactivate(session, leaving, NOON, to=taking.id)
    assert (moved.customers, moved.opportunities, moved.targets) == (3, 1, {taking.id: 3})
    assert not leaving.active and _owned(session, leaving) == 0 and _owned(session, taking) == 3
    session.refresh(held)
    assert held.seller_id == taking.id and held.status is OpportunityStatus.ASSIGNED
    assert held.events[-1].kind == "reassigned" and held.events[-1].from_seller_id == leaving.id


def test_even_redistribution_is_balanced_and_repeatable(session, store):
    leaving = make_seller(session, "Sai", store, ddds=["11"])
    small = make_seller(session, "Pequena", store, ddds=["11"])
    big = make_seller(session, "Grande", store, ddds=["11"])
    other_store = make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21")
    elsewhere = make_seller(session, "Longe", other_store, ddds=["21"])
    _portfolio(session, big, 4, start=100)
    leaving_buyers = _portfolio(session, leaving, 10)

    moved = deactivate(session, leaving, NOON, to=EVEN)
    # Big already had 4: the 10 level both at 7, and nobody outside the store receives anything.
    assert moved.targets == {small.id: 7, big.id: 3}
    assert (_owned(session, small), _owned(session, big), _owned(session, elsewhere)) == (7, 7, 0)
    # Repeatable: the plan depends only on ids and current sizes (customers in id order, ties to lower id).
    owners = [session.get(Customer, b.id).owner_seller_id for b in leaving_buyers]
    s, b = small.id, big.id
    assert owners == [s, s, s, s, s, b, s, b, s, b]


def test_deactivation_without_target_releases_customers_and_returns_work_to_backlog(session, store):
    leaving = make_seller(session, "Sai", store, ddds=["11"])
    buyer = _portfolio(session, leaving, 1)[0]
    held = create(session, buyer, type=OpportunityType.MANUAL, reason="manual", now=NOON).opportunity
    assign(session, held, NOON, TZ)
    deactivate(session, leaving, NOON, to=None)
    session.refresh(held)
    session.refresh(buyer)
    assert held.status is OpportunityStatus.BACKLOG and held.seller_id is None and buyer.owner_seller_id is None


def test_deactivation_refuses_an_inactive_target_or_no_one_to_spread_to(session, store):
    leaving = make_seller(session, "Sai", store, ddds=["11"])
    gone = make_seller(session, "Foi", store, ddds=["11"], active=False)
    with pytest.raises(OpportunityError) as inactive:
        deactivate(session, leaving, NOON, to=gone.id)
    assert inactive.value.field == "to"
    with pytest.raises(OpportunityError):
        deactivate(session, leaving, NOON, to=EVEN)


def test_repoint_gives_each_customer_to_the_active_seller_who_sold_most(session, store):
    ana = make_seller(session, "Ana", store, ddds=["11"], code="V-ANA")
    bia = make_seller(session, "Bia", store, ddds=["11"], code="V-BIA")
    make_seller(session, "Gil", store, ddds=["11"], code="V-GIL", active=False)
    buyer, other = customer(session, "+5511999990001"), customer(session, "+5511999990002")
    buyer.owner_seller_id = ana.id
    for i in range(2):
        make_order(session, buyer, f"b-{i}", "50.00", NOON - timedelta(days=i + 1), seller_code="V-BIA")
    make_order(session, buyer, "a-1", "500.00", NOON, seller_code="V-ANA")
    for i in range(3):
        make_order(session, other, f"g-{i}", "10.00", NOON, seller_code="V-GIL")  # inactive: does not count
    make_order(session, other, "a-2", "10.00", NOON, seller_code="V-ANA")
    make_order(session, other, "b-x", "999.00", NOON, seller_code="V-BIA", status=OrderStatus.CANCELLED)
    assert repoint_owners(session) == 2
    session.refresh(buyer)
    session.refresh(other)
    assert buyer.owner_seller_id == bia.id  # two sales beat one bigger sale
    assert other.owner_seller_id == ana.id
    assert repoint_owners(session) == 0  # idempotent


def test_seller_contact_creates_a_tracked_contact_opportunity(session, store):
    seller = make_seller(session, "Ana", store, ddds=["11"])
    buyer = _portfolio(session, seller, 1)[0]
    opportunity = contact(session, seller, buyer, NOON)
    # Assigned, not yet a conversation: it starts when the seller opens WhatsApp (start_conversation).
    assert opportunity.type is OpportunityType.CONTACT and opportunity.status is OpportunityStatus.ASSIGNED
    assert opportunity.seller_id == seller.id and opportunity.started_at is None
    stranger = customer(session, "+5511999990099")
    with pytest.raises(OpportunityError):
        contact(session, seller, stranger, NOON)


def test_results_on_a_hand_computed_data_set(session, store):
    """Ana: 2 suggested, 2 started, 1 finished; sales: o-1 (contact 2 days before, 100.00), o-2 (her code,
    9 days after her contact, 40.00), o-3 9 days after Bia's contact (nobody's). Bia: 1 suggested, 1 started, 0 sales.
    Conversion Ana = 1 converted / 2 started = 0.5; Bia = 0."""
    crm_settings(session).attribution_days = 7
    ana = make_seller(session, "Ana", store, ddds=["11"], code="V-ANA")
    bia = make_seller(session, "Bia", store, ddds=["11"], code="V-BIA")
    start = NOON - timedelta(days=10)
    c1, c2, c3 = (customer(session, f"+551199999000{i}") for i in (1, 2, 3))
    for buyer, seller in ((c1, ana), (c2, ana), (c3, bia)):
        opportunity = create(session, buyer, type=OpportunityType.MANUAL, reason="manual", now=start).opportunity
        buyer.owner_seller_id = seller.id
        assign(session, opportunity, start, TZ)
        move(session, opportunity, OpportunityStatus.IN_PROGRESS, start + timedelta(hours=1), actor=seller)
        if buyer is c1:
            move(session, opportunity, OpportunityStatus.FINISHED, start + timedelta(hours=2), actor=seller,
                 result=OpportunityResult.POSITIVE)
    make_order(session, c1, "o-1", "100.00", start + timedelta(days=2), quantity=3)
    make_order(session, c2, "o-2", "40.00", start + timedelta(days=9), seller_code="V-ANA")  # code only
    make_order(session, c3, "o-3", "70.00", start + timedelta(days=9))  # Bia's contact was 9 days before
    make_order(session, c3, "o-4", "80.00", start + timedelta(days=1), status=OrderStatus.CANCELLED)

    result = report(session, start, NOON)
    lines = {line.name: line for line in result.sellers}
    a, b = lines["Ana"], lines["Bia"]
    assert (a.suggested, a.started, a.finished, a.sales, a.revenue) == (2, 2, 1, 2, Decimal("140.00"))
    assert a.conversion_rate == Decimal("0.5000")
    assert (b.suggested, b.started, b.finished, b.sales, b.revenue) == (1, 1, 0, 0, Decimal("0.00"))
    assert [line.name for line in result.sellers] == ["Ana", "Bia"] and a.rank == 1
    assert result.total.revenue == Decimal("140.00") and result.stores[0].sales == 2
    sales = result.sales_by_seller[ana.id]
    assert [(s.customer_id, s.items, s.total, s.contact_at is not None) for s in sales] == [
        (c1.id, 3, Decimal("100.00"), True), (c2.id, 1, Decimal("40.00"), False)]
