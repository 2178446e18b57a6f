"""recovery.stats on a small hand-computed data set: totals, per day (store time), per variant, per coupon rule."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crm.users import create_user, issue_api_token
from models import (
    AttemptStatus, Coupon, CouponKind, CouponRule, Customer, Direction, Message, MessageStatus, Order, OrderStatus,
    RecoveryAttempt,
)
from recovery.stats import local_midnights, recovery_stats

SP = ZoneInfo("America/Sao_Paulo")
UTC = ZoneInfo("UTC")


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def data(session) -> dict:
    """Eleven attempts around 10-11 Nov 2026 (São Paulo is UTC-3 then):

    name  customer variant status     time (UTC)      local day  message       coupon           order
    a1    c1       A       sent       10th 15:00      10         delivered     R1, redeemed     o1 paid 100.00
    a2    c2       B       sent       10th 20:00      10         read          R2               o2 cancelled 50.50
    a3    c3       A       sent       11th 02:30      10 (!)     failed        -                -
    a4    c4       B       sent       11th 13:00      11         undelivered   R1               o3 created 80.25
    a5    c5       A       skipped    11th 14:00      11         opted_out
    a6    c1       A       skipped    10th 16:00      10         frequency
    a7    c2       A       skipped    11th 16:00      11         frequency
    a8    c3       A       deferred   11th 01:00      10         quiet_hours
    a9    c4       A       sent       12th 02:59      11         sent          -
    a10   c5       A       claimed    11th 17:00      11
    out1  c1       A       sent       12th 03:00      12 (outside)  delivered  R1, redeemed     o4 paid 999.00
    out2  c2       A       skipped    10th 02:59      9 (outside)   frequency
    """
    customers = [Customer(phone=f"+55119999900{i:02d}", name=f"C{i}", tags=[]) for i in range(1, 6)]
    r1 = CouponRule(name="Recuperador 10%", kind=CouponKind.PERCENT, value=Decimal("10"))
    r2 = CouponRule(name="R$ 20", kind=CouponKind.FIXED, value=Decimal("20"))
    session.add_all([*customers, r1, r2])
    session.flush()
    c = {i + 1: customer.id for i, customer in enumerate(customers)}

    def order(ext, cust, status, total):
        row = Order(external_id=ext, customer_id=c[cust], status=status, total=Decimal(total), placed_at=utc(11, 20))
        session.add(row)
        session.flush()
        return row.id

    o1 = order("o1", 1, OrderStatus.PAID, "100.00")
    o2 = order("o2", 2, OrderStatus.CANCELLED, "50.50")
    o3 = order("o3", 4, OrderStatus.CREATED, "80.25")
    o4 = order("o4", 1, OrderStatus.PAID, "999.00")

    def attempt(cust, at, status, *, variant="A", message=None, rule=None, reason=None, recovered=None,
                redeemed=False):
        message_id = None
        if message is not None:
            msg = Message(customer_id=c[cust], direction=Direction.OUTBOUND, kind="recovery", body="oi",
                          status=message, created_at=at)
            session.add(msg)
            session.flush()
            message_id = msg.id
        row = RecoveryAttempt(customer_id=c[cust], interaction_at=at - timedelta(minutes=10), due_at=at,
                              status=status, skip_reason=reason, variant=variant, message_id=message_id,
                              coupon_rule_id=rule.id if rule else None, created_at=at,
                              sent_at=at if status is AttemptStatus.SENT else None, recovered_order_id=recovered,
                              recovered_at=utc(11, 20) if recovered else None)
        session.add(row)
        session.flush()
        if rule is not None:
            session.add(Coupon(code=f"VOLTA-{row.id:010d}", rule_id=rule.id, customer_id=c[cust], attempt_id=row.id,
                               issued_at=at, expires_at=at + timedelta(hours=24),
                               redeemed_at=at + timedelta(hours=1) if redeemed else None,
                               redeemed_order_id=recovered if redeemed else None))
        return row

    S, K, D, CL = AttemptStatus.SENT, AttemptStatus.SKIPPED, AttemptStatus.DEFERRED, AttemptStatus.CLAIMED
    attempt(1, utc(10, 15), S, message=MessageStatus.DELIVERED, rule=r1, recovered=o1, redeemed=True)
    attempt(2, utc(10, 20), S, variant="B", message=MessageStatus.READ, rule=r2, recovered=o2)
    attempt(3, utc(11, 2, 30), S, message=MessageStatus.FAILED)
    attempt(4, utc(11, 13), S, variant="B", message=MessageStatus.UNDELIVERED, rule=r1, recovered=o3)
    attempt(5, utc(11, 14), K, reason="opted_out")
    attempt(1, utc(10, 16), K, reason="frequency")
    attempt(2, utc(11, 16), K, reason="frequency")
    attempt(3, utc(11, 1), D, reason="quiet_hours")
    attempt(4, utc(12, 2, 59), S, message=MessageStatus.SENT)
    attempt(5, utc(11, 17), CL)
    attempt(1, utc(12, 3), S, message=MessageStatus.DELIVERED, rule=r1, recovered=o4, redeemed=True)
    attempt(2, utc(10, 2, 59), K, reason="frequency")
    session.commit()
    return {"r1": r1.id, "r2": r2.id}


def metrics(**values) -> dict:
    base = {"attempts": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 0, "skipped": 0, "skipped_by_reason": {},
            "errors": 0, "errors_by_reason": {}, "deferred": 0, "recovered_orders": 0, "recovered_revenue": "0.00", "conversion_rate": 0.0,
            "coupons_issued": 0, "coupons_redeemed": 0}
    return {**base, **values}


DAY_10 = metrics(attempts=5, sent=3, delivered=2, read=1, failed=1, skipped=1, skipped_by_reason={"frequency": 1},
                 deferred=1, recovered_orders=1, recovered_revenue="100.00", conversion_rate=0.3333,
                 coupons_issued=2, coupons_redeemed=1)
DAY_11 = metrics(attempts=5, sent=2, failed=1, skipped=2, skipped_by_reason={"frequency": 1, "opted_out": 1},
                 recovered_orders=1, recovered_revenue="80.25", conversion_rate=0.5, coupons_issued=1)
TOTALS = metrics(attempts=10, sent=5, delivered=2, read=1, failed=2, skipped=3,
                 skipped_by_reason={"frequency": 2, "opted_out": 1}, deferred=1, recovered_orders=2,
                 recovered_revenue="180.25", conversion_rate=0.4, coupons_issued=3, coupons_redeemed=1)
VARIANT_A = metrics(attempts=8, sent=3, delivered=1, failed=1, skipped=3,
                    skipped_by_reason={"frequency": 2, "opted_out": 1}, deferred=1, recovered_orders=1,
                    recovered_revenue="100.00", conversion_rate=0.3333, coupons_issued=1, coupons_redeemed=1)
VARIANT_B = metrics(attempts=2, sent=2, delivered=1, read=1, failed=1, recovered_orders=1, recovered_revenue="80.25",
                    conversion_rate=0.5, coupons_issued=2)


def test_totals_days_variants_and_coupons(session, data):
    stats = recovery_stats(session, start=date(2026, 11, 10), end=date(2026, 11, 11), tz=SP)
    assert (stats["from"], stats["to"], stats["timezone"]) == ("2026-11-10", "2026-11-11", "America/Sao_Paulo")
    assert stats["totals"] == TOTALS
    assert stats["by_day"] == [{"date": "2026-11-10", **DAY_10}, {"date": "2026-11-11", **DAY_11}]
    assert stats["by_variant"] == {"A": VARIANT_A, "B": VARIANT_B}
    assert stats["coupons"] == [
        {"rule_id": data["r1"], "rule_name": "Recuperador 10%", "issued": 2, "redeemed": 1},
        {"rule_id": data["r2"], "rule_name": "R$ 20", "issued": 1, "redeemed": 0},
    ]


def test_an_attempt_at_0230_utc_belongs_to_the_previous_day_in_sao_paulo(session, data):
    day_10 = recovery_stats(session, start=date(2026, 11, 10), end=date(2026, 11, 10), tz=SP)
    assert day_10["totals"]["failed"] == 1  # a3, sent 11 Nov 02:30 UTC = 10 Nov 23:30 in São Paulo
    day_11 = recovery_stats(session, start=date(2026, 11, 11), end=date(2026, 11, 11), tz=SP)
    assert day_11["totals"]["sent"] == 2 and day_11["totals"]["failed"] == 1  # a4 and a9, not a3
    assert day_11["by_day"] == [{"date": "2026-11-11", **DAY_11}]


def test_the_same_rows_in_utc_days(session, data):
    stats = recovery_stats(session, start=date(2026, 11, 10), end=date(2026, 11, 11), tz=UTC)
    day_10, day_11 = stats["by_day"]
    # a3 and a8 move to the 11th; out2 (10th 02:59 UTC) comes in; a9 (12th) drops out.
    assert (day_10["attempts"], day_10["sent"], day_10["skipped_by_reason"]) == (4, 2, {"frequency": 2})
    assert (day_11["attempts"], day_11["sent"], day_11["deferred"]) == (6, 2, 1)


def test_an_empty_period_has_every_day_with_zeros(session, data):
    stats = recovery_stats(session, start=date(2026, 10, 1), end=date(2026, 10, 3), tz=SP)
    assert stats["totals"] == metrics()
    assert [d["date"] for d in stats["by_day"]] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert stats["by_variant"] == {"A": metrics(), "B": metrics()} and stats["coupons"] == []


def test_days_follow_dst_changes():
    ny = ZoneInfo("America/New_York")
    bounds = local_midnights(date(2026, 3, 7), date(2026, 3, 9), ny)  # DST starts 8 Mar 2026
    lengths = [(b - a).total_seconds() / 3600 for a, b in zip(bounds, bounds[1:])]
    assert lengths == [24, 23, 24]
    old_brazil = local_midnights(date(2018, 11, 3), date(2018, 11, 4), SP)  # DST began at midnight, 4 Nov 2018
    assert [(b - a).total_seconds() / 3600 for a, b in zip(old_brazil, old_brazil[1:])] == [24, 23]


def test_a_year_of_days_is_one_query_per_cohort(session, data):
    stats = recovery_stats(session, start=date(2026, 1, 1), end=date(2026, 12, 31), tz=SP)
    assert len(stats["by_day"]) == 365
    assert stats["totals"]["sent"] == 6  # everything, out1 included
    by_date = {d["date"]: d for d in stats["by_day"]}
    assert by_date["2026-11-10"] == {"date": "2026-11-10", **DAY_10}
    assert by_date["2026-11-12"]["recovered_revenue"] == "999.00"


def test_start_after_end_is_refused(session):
    with pytest.raises(ValueError):
        recovery_stats(session, start=date(2026, 11, 2), end=date(2026, 11, 1), tz=SP)


def test_the_api_returns_the_same_numbers(client, session, data):
    create_user(session, email="bo@loja.example", role="backoffice", password="uma-senha-bem-longa")
    token = issue_api_token(session, "bo@loja.example")
    session.commit()
    response = client.get("/api/recovery/stats", query_string={"from": "2026-11-10", "to": "2026-11-11"},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["totals"] == TOTALS and body["by_variant"]["B"] == VARIANT_B
    assert body["by_day"][0] == {"date": "2026-11-10", **DAY_10}
