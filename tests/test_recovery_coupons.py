from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from core.schedule import periodic_jobs
from models import Coupon, CouponKind, CouponRule
from recovery import coupons
from recovery.jobs import purge_expired_coupons
from tests.recovery_helpers import AFTERNOON, shopper


def _rule(session, **kw):
    rule = CouponRule(name="r", kind=kw.pop("kind", CouponKind.PERCENT), value=kw.pop("value", Decimal("10")),
                      min_order=kw.pop("min_order", Decimal("0")))
    session.add(rule)
    session.flush()
    return rule


def test_codes_are_unique_unguessable_and_one_per_attempt(session):
    from models import AttemptStatus, RecoveryAttempt

    ana = shopper(session)
    rule = _rule(session)
    codes = set()
    for i in range(200):
        attempt = RecoveryAttempt(customer_id=ana.id, interaction_at=AFTERNOON + timedelta(minutes=i),
                                  due_at=AFTERNOON, status=AttemptStatus.CLAIMED)
        session.add(attempt)
        session.flush()
        first = coupons.issue(session, rule=rule, customer_id=ana.id, attempt_id=attempt.id, now=AFTERNOON,
                              validity_hours=24)
        again = coupons.issue(session, rule=rule, customer_id=ana.id, attempt_id=attempt.id, now=AFTERNOON,
                              validity_hours=24)
        assert again.id == first.id
        codes.add(first.code)
    assert len(codes) == 200
    assert all(len(code) == len("VOLTA-") + 10 for code in codes)


def test_describe_in_portuguese(session):
    assert coupons.describe(_rule(session, value=Decimal("12.5"))) == "12,5% de desconto"
    fixed = _rule(session, kind=CouponKind.FIXED, value=Decimal("20"), min_order=Decimal("150"))
    assert coupons.describe(fixed) == "R$\xa020,00 de desconto em compras a partir de R$\xa0150,00"
    assert coupons.describe(_rule(session, kind=CouponKind.FREE_SHIPPING)) == "frete grátis"


def test_purge_removes_only_old_unused_codes(runtime, session):
    ana = shopper(session)
    rule = _rule(session)
    now = AFTERNOON
    session.add_all([
        Coupon(code="VOLTA-OLDUNUSED1", rule_id=rule.id, customer_id=ana.id, expires_at=now - timedelta(days=8)),
        Coupon(code="VOLTA-OLDREDEEM1", rule_id=rule.id, customer_id=ana.id, expires_at=now - timedelta(days=8),
               redeemed_at=now - timedelta(days=9)),
        Coupon(code="VOLTA-RECENTEXP1", rule_id=rule.id, customer_id=ana.id, expires_at=now - timedelta(days=1)),
        Coupon(code="VOLTA-VALIDNOW01", rule_id=rule.id, customer_id=ana.id, expires_at=now + timedelta(hours=3)),
    ])
    session.commit()
    assert coupons.purge_expired(session, now) == 1
    session.commit()
    left = set(session.scalars(select(Coupon.code)))
    assert left == {"VOLTA-OLDREDEEM1", "VOLTA-RECENTEXP1", "VOLTA-VALIDNOW01"}


def test_periodic_jobs_include_the_tick_at_the_configured_period(runtime):
    jobs = {job.func: job for job in periodic_jobs(runtime)}
    assert jobs["recovery.jobs.tick"].interval == runtime.settings.recovery_tick_seconds == 300
    assert jobs["recovery.jobs.purge_expired_coupons"].interval == 3600
    assert purge_expired_coupons() == 0
