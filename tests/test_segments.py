"""Segments: a hand-made store where every condition field has known members; membership kept by the rules
(enter, leave by exit conditions or when the entry no longer holds), manual adds and remembered removals,
idempotent and concurrent recomputes, and the incremental paths after an order or a change to the customer."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm import metrics
from models import (
    Customer, CustomerMetrics, OrderStatus, Segment, SegmentCount, SegmentEvent, SegmentExclusion, SegmentMember,
)
from segments import jobs, membership
from segments.compile import matching_ids
from segments.conditions import ConditionInvalid
from tests.segment_helpers import (
    NOW, attempt, branch_and_sellers, buy, catalog, days, leave_cart, make_customer, set_figures,
)


def _world(session) -> dict:
    products = catalog(session)
    store, s1, s2 = branch_and_sellers(session)
    tenis, camiseta, bone = products["tenis-corrida"], products["camiseta-basica"], products["bone-aba"]
    ana = make_customer(session, "+5511990000001", "Ana", tags=["vip"], owner_seller_id=s1.id, store_id=store.id,
                        city="São Paulo", state="SP", ddd="11", birthday=date(1990, 12, 5), source="instagram",
                        created_at=NOW - days(400))
    bruno = make_customer(session, "+5521990000002", "Bruno", city="Rio de Janeiro", state="RJ", ddd="21",
                          opted_out_at=NOW - days(1))
    carla = make_customer(session, "+5519990000003", "Carla", tags=["vip", "atacado"], owner_seller_id=s2.id,
                          city="Campinas", state="SP", ddd="19", marketing_opted_out_at=NOW - days(3),
                          birthday=date(1985, 2, 10))
    diego = make_customer(session, "+5511990000004", "Diego", source="google", city="São Paulo", state="SP",
                          ddd="11", store_id=store.id, birthday=date(2000, 12, 20))
    buy(session, ana, "a1", tenis, "100.00", NOW - days(10))
    buy(session, ana, "a2", camiseta, "200.00", NOW - days(40))
    buy(session, ana, "a3", tenis, "300.00", NOW - days(70))
    buy(session, bruno, "b1", camiseta, "50.00", NOW - days(100))
    leave_cart(session, bruno, tenis, NOW - days(2))
    from models import CartStatus
    leave_cart(session, carla, bone, NOW - days(1), status=CartStatus.CONVERTED)
    attempt(session, carla, NOW - days(20))
    buy(session, diego, "d1", tenis, "1000.00", NOW - days(5), status=OrderStatus.CANCELLED)
    bought = buy(session, diego, "d2", bone, "80.00", NOW - days(200))
    attempt(session, diego, NOW - days(201), recovered_order=bought)
    people = {"ana": ana, "bruno": bruno, "carla": carla, "diego": diego}
    metrics.refresh(session, [p.id for p in people.values()], NOW)
    for who, band in (("ana", "baixo"), ("bruno", "alto"), ("carla", "inativo"), ("diego", "medio")):
        set_figures(session, people[who], churn_band=band)
    return {"people": people, "store": store, "s1": s1, "s2": s2, "products": products}


@pytest.fixture
def world(session):
    return _world(session)


def _names(world, ids) -> set[str]:
    by_id = {p.id: name for name, p in world["people"].items()}
    return {by_id[i] for i in ids if i in by_id}


def leaf(field, op, value=None):
    return {"field": field, "op": op} | ({} if value is None else {"value": value})


FIELD_CASES = [
    (leaf("tag", "contains", "vip"), {"ana", "carla"}),
    (leaf("tag", "contains", "atacado"), {"carla"}),
    (leaf("tag", "not_contains", "vip"), {"bruno", "diego"}),
    (leaf("tag", "is_not_set"), {"bruno", "diego"}),
    (leaf("tag", "is_set"), {"ana", "carla"}),
    (leaf("owner", "=", "S1"), {"ana"}),
    (leaf("owner", "!=", "S1"), {"bruno", "carla", "diego"}),
    (leaf("owner", "in", ["S1", "S2"]), {"ana", "carla"}),
    (leaf("owner", "is_not_set"), {"bruno", "diego"}),
    (leaf("branch", "=", "STORE"), {"ana", "diego"}),
    (leaf("days_since_last_purchase", ">=", 60), {"bruno", "diego"}),
    (leaf("days_since_last_purchase", "<", 30), {"ana"}),
    (leaf("days_since_last_purchase", "=", 10), {"ana"}),
    (leaf("days_since_last_purchase", "!=", 10), {"bruno", "carla", "diego"}),
    (leaf("days_since_last_purchase", "between", [90, 150]), {"bruno"}),
    (leaf("days_since_last_purchase", "is_not_set"), {"carla"}),
    (leaf("total_revenue", ">=", 100), {"ana"}),
    (leaf("total_revenue", "<", "60"), {"bruno", "carla"}),
    (leaf("total_revenue", "between", [50, 80]), {"bruno", "diego"}),
    (leaf("orders_count", "=", 0), {"carla"}),
    (leaf("orders_count", ">=", 2), {"ana"}),
    (leaf("average_ticket", ">", 100), {"ana"}),
    (leaf("average_ticket", "=", 200) if False else leaf("average_ticket", ">=", "200.00"), {"ana"}),
    (leaf("average_ticket", "between", [50, 80]), {"bruno", "diego"}),
    (leaf("average_ticket", "is_not_set"), {"carla"}),
    (leaf("bought", "contains", {"product": "tenis-corrida"}), {"ana"}),  # Diego's order was cancelled
    (leaf("bought", "contains", {"category": "Roupas"}), {"ana", "bruno"}),
    (leaf("bought", "contains", {"brand": "Veloz"}), {"ana", "diego"}),
    (leaf("bought", "contains", {"attribute": "material", "equals": "algodao"}), {"ana", "bruno", "diego"}),
    (leaf("bought", "contains", {"attribute": "cor", "equals": "Preto"}), {"ana", "diego"}),
    (leaf("bought", "contains", {"product": "tenis-corrida", "within_days": 30}), {"ana"}),
    (leaf("bought", "contains", {"product": "camiseta-basica", "within_days": 30}), set()),
    (leaf("bought", "not_contains", {"brand": "Veloz"}), {"bruno", "carla"}),
    (leaf("left_in_cart", "contains", {"product": "tenis-corrida"}), {"bruno"}),
    (leaf("left_in_cart", "contains", {"category": "Acessórios"}), set()),  # Carla's cart was converted
    (leaf("left_in_cart", "contains", {"attribute": "tamanho", "equals": "42", "within_days": 7}), {"bruno"}),
    (leaf("left_in_cart", "contains", {"product": "tenis-corrida", "within_days": 1}), set()),
    (leaf("first_purchase", "within_days", 80), {"ana"}),
    (leaf("first_purchase", "before", (NOW - days(150)).date().isoformat()), {"diego"}),
    (leaf("last_purchase", "between", [(NOW - days(110)).date().isoformat(), (NOW - days(90)).date().isoformat()]),
     {"bruno"}),
    (leaf("last_purchase", "after", (NOW - days(20)).date().isoformat()), {"ana"}),
    (leaf("first_purchase", "is_not_set"), {"carla"}),
    (leaf("customer_since", "before", (NOW - days(30)).date().isoformat()), {"ana"}),
    (leaf("birthday", "month", 12), {"ana", "diego"}),
    (leaf("birthday", "anniversary_within_days", 7), {"ana"}),
    (leaf("birthday", "anniversary_within_days", 20), {"ana", "diego"}),
    (leaf("birthday", "is_not_set"), {"bruno"}),
    (leaf("source", "=", "instagram"), {"ana"}),
    (leaf("utm_source", "in", ["google", "instagram"]), {"ana", "diego"}),
    (leaf("referral", "is_not_set"), {"bruno", "carla"}),
    (leaf("city", "=", "São Paulo"), {"ana", "diego"}),
    (leaf("state", "=", "SP"), {"ana", "carla", "diego"}),
    (leaf("ddd", "in", ["21", "19"]), {"bruno", "carla"}),
    (leaf("churn_band", "=", "alto"), {"bruno"}),
    (leaf("churn_band", "in", ["baixo", "medio"]), {"ana", "diego"}),
    (leaf("consent", "=", "opted_out"), {"bruno"}),
    (leaf("consent", "=", "marketing_opted_out"), {"carla"}),
    (leaf("consent", "=", "subscribed"), {"ana", "diego"}),
    (leaf("consent", "!=", "subscribed"), {"bruno", "carla"}),
    (leaf("recovery_outcome", "=", "recovered"), {"diego"}),
    (leaf("recovery_outcome", "=", "sent_not_recovered"), {"carla"}),
    (leaf("recovery_outcome", "=", "none"), {"ana", "bruno"}),
    ({"all": [leaf("tag", "contains", "vip"), leaf("orders_count", ">=", 1)]}, {"ana"}),
    ({"any": [leaf("consent", "=", "opted_out"), {"all": [leaf("state", "=", "SP"), leaf("tag", "is_not_set")]}]},
     {"bruno", "diego"}),
]


def _resolve(condition, world):
    """Replace the placeholders S1/S2/STORE with the ids of the world's sellers and branch."""
    ids = {"S1": world["s1"].id, "S2": world["s2"].id, "STORE": world["store"].id}
    if isinstance(condition, dict):
        return {k: _resolve(v, world) for k, v in condition.items()}
    if isinstance(condition, list):
        return [_resolve(v, world) for v in condition]
    return ids.get(condition, condition) if isinstance(condition, str) else condition


@pytest.mark.parametrize("condition,expected", FIELD_CASES, ids=[str(i) for i in range(len(FIELD_CASES))])
def test_each_condition_field_finds_its_known_members(session, world, condition, expected):
    from segments.compile import load_facts, matches
    from segments.conditions import validate

    condition = validate(_resolve(condition, world))
    assert _names(world, matching_ids(session, condition, NOW)) == expected
    facts = load_facts(session)
    assert _names(world, {i for i, f in facts.items() if matches(condition, f, NOW)}) == expected


def _members(session, segment) -> dict[int, str]:
    session.expire_all()
    return dict(session.execute(select(SegmentMember.customer_id, SegmentMember.source)
                                .where(SegmentMember.segment_id == segment.id)).all())


def _events(session, segment) -> list[tuple[int, str]]:
    return list(session.execute(select(SegmentEvent.customer_id, SegmentEvent.kind)
                                .where(SegmentEvent.segment_id == segment.id).order_by(SegmentEvent.id)).all())


def test_a_recompute_puts_in_who_matches_and_twice_changes_nothing(session, world):
    p = world["people"]
    vip = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip"))
    assert membership.recompute(session, vip, NOW) == (2, 0)
    assert _members(session, vip) == {p["ana"].id: "rules", p["carla"].id: "rules"}
    assert sorted(_events(session, vip)) == sorted([(p["ana"].id, "entered"), (p["carla"].id, "entered")])
    assert membership.recompute(session, vip, NOW) == (0, 0)
    assert len(_events(session, vip)) == 2

    p["carla"].tags = ["atacado"]
    session.flush()
    assert membership.recompute(session, vip, NOW) == (0, 1)  # no exit conditions: leaves when entry fails
    assert _members(session, vip) == {p["ana"].id: "rules"}
    assert _events(session, vip)[-1] == (p["carla"].id, "left")
    assert membership.recompute(session, vip, NOW) == (0, 0) and len(_events(session, vip)) == 3


def test_exit_conditions_decide_when_a_member_leaves(session, world):
    ana = world["people"]["ana"]
    big = membership.create_segment(session, "Grandes compradores", leaf("total_revenue", ">=", 500),
                                    exit=leaf("total_revenue", "<", 100))
    assert membership.recompute(session, big, NOW) == (1, 0)
    set_figures(session, ana, revenue=Decimal("300.00"))  # entry no longer holds, exit does not yet: stays
    assert membership.recompute(session, big, NOW) == (0, 0) and ana.id in _members(session, big)
    set_figures(session, ana, revenue=Decimal("50.00"))
    assert membership.recompute(session, big, NOW) == (0, 1) and _members(session, big) == {}


def test_a_customer_matching_entry_and_exit_does_not_enter(session, world):
    seg = membership.create_segment(session, "Inativos sem carrinho", leaf("days_since_last_purchase", ">=", 60),
                                    exit=leaf("left_in_cart", "contains", {"product": "tenis-corrida"}))
    membership.recompute(session, seg, NOW)
    assert _names(world, _members(session, seg)) == {"diego"}  # Bruno has the cart: the exit holds


def test_a_manual_removal_is_remembered_until_added_back_or_cleared(session, world):
    p, s1 = world["people"], world["s1"]
    vip = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip"))
    membership.recompute(session, vip, NOW)
    assert membership.remove_manually(session, vip, p["ana"].id, s1.id, NOW) is True
    assert session.get(SegmentExclusion, (vip.id, p["ana"].id)).removed_by_id == s1.id
    assert membership.recompute(session, vip, NOW) == (0, 0) and p["ana"].id not in _members(session, vip)
    assert membership.refresh_customer(session, p["ana"].id, NOW) == {}

    assert membership.add_manually(session, vip, p["ana"].id, s1.id, NOW) is True
    assert session.get(SegmentExclusion, (vip.id, p["ana"].id)) is None
    assert _members(session, vip)[p["ana"].id] == "manual"
    p["ana"].tags = []
    session.flush()
    assert membership.recompute(session, vip, NOW) == (0, 0)  # a manual member stays whatever the rules say
    assert _members(session, vip)[p["ana"].id] == "manual"

    p["ana"].tags = ["vip"]
    session.flush()
    membership.remove_manually(session, vip, p["ana"].id, s1.id, NOW)
    assert membership.clear_exclusions(session, vip) == 1
    assert membership.recompute(session, vip, NOW) == (1, 0)
    kinds = [kind for who, kind in _events(session, vip) if who == p["ana"].id]
    assert kinds == ["entered", "removed", "added", "removed", "entered"]
    added = session.scalar(select(SegmentEvent).where(SegmentEvent.kind == "added"))
    assert added.actor_id == s1.id and added.cause == "manual"


def test_adding_by_hand_a_rule_member_makes_it_manual_without_a_second_event(session, world):
    ana = world["people"]["ana"]
    vip = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip"))
    membership.recompute(session, vip, NOW)
    assert membership.add_manually(session, vip, ana.id, None, NOW) is False
    assert _members(session, vip)[ana.id] == "manual"
    assert [k for who, k in _events(session, vip) if who == ana.id] == ["entered"]


def test_an_inactive_segment_is_left_alone(session, world):
    vip = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip"), active=False)
    assert membership.recompute(session, vip, NOW) == (0, 0)
    assert membership.refresh_customer(session, world["people"]["ana"].id, NOW) == {}


def test_invalid_conditions_are_refused_when_creating_a_segment(session):
    with pytest.raises(ConditionInvalid) as error:
        membership.create_segment(session, "Ruim", {"all": [leaf("orders_count", "contains", 3)]})
    assert error.value.path == "all[0].op" and "número de compras" in error.value.message


def test_a_new_order_moves_the_customer_in_and_out_incrementally(session, world):
    p, tenis = world["people"], world["products"]["tenis-corrida"]
    inactive = membership.create_segment(session, "Inativos há 60 dias", leaf("days_since_last_purchase", ">=", 60))
    runners = membership.create_segment(session, "Compraram tênis", leaf("bought", "contains",
                                                                           {"product": "tenis-corrida"}))
    membership.recompute(session, inactive, NOW)
    membership.recompute(session, runners, NOW)
    assert _names(world, _members(session, inactive)) == {"bruno", "diego"}
    assert _names(world, _members(session, runners)) == {"ana"}

    buy(session, p["bruno"], "b-new", tenis, "120.00", NOW - days(0.1))
    metrics.refresh(session, [p["bruno"].id], NOW)
    changed = membership.refresh_customer(session, p["bruno"].id, NOW, cause="pedido b-new")
    assert changed == {inactive.id: "left", runners.id: "entered"}
    assert _names(world, _members(session, inactive)) == {"diego"}
    assert _names(world, _members(session, runners)) == {"ana", "bruno"}
    last = session.scalars(select(SegmentEvent).order_by(SegmentEvent.id.desc()).limit(2)).all()
    assert {e.cause for e in last} == {"pedido b-new"}
    assert membership.refresh_customer(session, p["bruno"].id, NOW) == {}  # again: nothing to change
    # Only Bruno was looked at: Diego, who also changed nothing, kept his one event.
    assert [k for who, k in _events(session, inactive) if who == p["diego"].id] == ["entered"]


def test_the_scheduled_refresh_picks_up_changed_customers_and_orders(db):
    with db.transaction() as session:
        world = _world(session)
        vip = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip"))
        buyers = membership.create_segment(session, "Três compras", leaf("orders_count", ">=", 3))
        membership.recompute(session, vip, NOW)
        membership.recompute(session, buyers, NOW)
        ids = {name: p.id for name, p in world["people"].items()}
        tenis_id = world["products"]["tenis-corrida"].id
    from models import Product, utcnow
    with db.transaction() as session:
        session.get(Customer, ids["bruno"]).tags = ["vip"]  # updated_at moves to the real clock
        bruno = session.get(Customer, ids["bruno"])
        tenis = session.get(Product, tenis_id)
        for n in range(2):
            buy(session, bruno, f"b-extra-{n}", tenis, "10.00", NOW)
    assert jobs.refresh_changed_customers(db, utcnow()) >= 2
    with db.session() as session:
        assert ids["bruno"] in _members(session, vip) and ids["bruno"] in _members(session, buyers)
        assert session.get(CustomerMetrics, ids["bruno"]).orders == 3  # its figures were refreshed first
        session.commit()
    assert jobs.refresh_changed_customers(db, utcnow()) == 0  # again: looked at again, nothing moves


def test_recompute_all_writes_the_daily_count(db):
    with db.transaction() as session:
        _world(session)
        vip = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip"))
        membership.create_segment(session, "Parado", leaf("tag", "contains", "x"), active=False)
        vip_id = vip.id
    done = jobs.recompute_all_segments(db, NOW)
    assert done == {vip_id: (2, 0)}
    assert jobs.recompute_all_segments(db, NOW) == {vip_id: (0, 0)}
    with db.session() as session:
        counts = session.execute(select(SegmentCount.day, SegmentCount.members)).all()
        assert counts == [(NOW.date(), 2)]
        assert session.get(Segment, vip_id).last_recomputed_at == NOW
        session.commit()


def test_two_recomputes_at_once_insert_each_member_and_event_once(committed_db):
    with committed_db.transaction() as session:
        for i in range(200):
            session.add(Customer(phone=f"+55119800{i:05d}", name=f"C{i}", tags=["vip"] if i % 2 else []))
        session.flush()
        segment_id = membership.create_segment(session, "VIP", leaf("tag", "contains", "vip")).id
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()  # outside the transaction: SQLite's BEGIN IMMEDIATE queues the second writer
            with committed_db.transaction() as session:
                results.append(membership.recompute(session, session.get(Segment, segment_id), NOW))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sum(entered for entered, _ in results) == 100  # however the two interleaved
    with committed_db.session() as session:
        assert session.scalar(select(func.count()).select_from(SegmentMember)) == 100
        assert session.scalar(select(func.count()).select_from(SegmentEvent)) == 100
        session.commit()
