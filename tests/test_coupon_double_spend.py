"""A single-use recovery code used by several orders at once: one order redeems it, the others are flagged, and
the checkout's validation says ``already_used`` from then on.

An outside test sent eight concurrent orders with one code: all were accepted without any signal.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.runtime import Runtime
from models import Coupon, CouponKind, CouponRule, Customer, Order, utcnow
from recovery import coupons, events
from recovery.stats import recovery_stats
from tests.test_store_events import order_payload

PHONE = "+5511999990001"
CODE = "VOLTA-ABCDEFGHJK"


def _coupon(session, *, expires_in=timedelta(hours=24)) -> Coupon:
    customer = Customer(phone=PHONE, name="Ana", ddd="11", tags=[])
    rule = CouponRule(name="10%", kind=CouponKind.PERCENT, value=Decimal("10"), min_order=Decimal("0"))
    session.add_all([customer, rule])
    session.flush()
    coupon = Coupon(code=CODE, rule_id=rule.id, customer_id=customer.id, issued_at=utcnow(),
                    expires_at=utcnow() + expires_in)
    session.add(coupon)
    session.commit()
    return coupon


def _order(session, runtime, number: int, *, phone=PHONE, kind="order.created", at=None):
    payload = order_payload(id=f"o-{number}", event=kind, phone=phone, coupon_code=CODE,
                            at=at or utcnow() - timedelta(minutes=1))
    events.apply_order_event(session, runtime, events.validate_order_event(payload), utcnow())


def _validate(client):
    return client.post("/api/coupons/validate", json={"code": CODE, "phone": PHONE, "cart_total": "100.00"}).get_json()


def test_the_second_order_with_a_redeemed_code_is_flagged_and_validation_says_already_used(
        client, runtime, session):
    coupon = _coupon(session)
    assert _validate(client)["valid"] is True
    _order(session, runtime, 1)
    _order(session, runtime, 1, kind="order.paid")  # the same order again: not a second use
    _order(session, runtime, 2)
    session.expire_all()
    orders = {o.external_id: o.coupon_problem for o in session.scalars(select(Order))}
    assert orders == {"o-1": None, "o-2": "already_used"}
    assert session.get(Coupon, coupon.id).redeemed_order_id == session.scalar(
        select(Order.id).where(Order.external_id == "o-1"))
    verdict = _validate(client)
    assert verdict["valid"] is False and verdict["reason"] == "already_used"
    day = utcnow().astimezone(runtime.settings.store_timezone).date()
    problems = recovery_stats(session, start=day, end=day, tz=runtime.settings.store_timezone)["coupon_problems"]
    assert problems["count"] == 1 and problems["by_problem"] == {"already_used": 1}
    assert problems["orders"][0]["order"] == "o-2"


def test_expired_and_other_shoppers_codes_are_flagged(runtime, session):
    _coupon(session, expires_in=timedelta(hours=-1))
    _order(session, runtime, 1)
    _order(session, runtime, 2, phone="+5521988887777")
    session.expire_all()
    assert {o.external_id: o.coupon_problem for o in session.scalars(select(Order))} == {
        "o-1": "expired", "o-2": "wrong_customer"}


def test_a_code_held_by_a_cancelled_order_can_be_used_by_the_next(runtime, session):
    coupon = _coupon(session)
    _order(session, runtime, 1)
    _order(session, runtime, 1, kind="order.cancelled")
    _order(session, runtime, 2)
    session.expire_all()
    assert session.get(Coupon, coupon.id).redeemed_order_id == session.scalar(
        select(Order.id).where(Order.external_id == "o-2"))
    assert session.scalar(select(Order.coupon_problem).where(Order.external_id == "o-2")) is None


@pytest.mark.slow
def test_eight_concurrent_orders_with_one_code_redeem_it_once(committed_db, settings, redis_client):
    runtime = Runtime(settings, database=committed_db, redis_client=redis_client)
    with committed_db.session() as session:
        _coupon(session)
    barrier = threading.Barrier(8)
    errors = []

    def place(number: int) -> None:
        try:
            barrier.wait(10)
            with committed_db.session() as session:
                _order(session, runtime, number)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=place, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with committed_db.session() as session:
        problems = sorted(str(p) for p in session.scalars(select(Order.coupon_problem)))
        coupon = session.scalar(select(Coupon).where(Coupon.code == CODE))
        assert problems == ["None"] + ["already_used"] * 7
        winner = session.scalar(select(Order).where(Order.coupon_problem.is_(None)))
        assert coupon.redeemed_order_id == winner.id
    assert coupons.ALREADY_USED == "already_used"
