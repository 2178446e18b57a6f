"""The recoverer's numbers for a period of the store's calendar: totals, per day, per A/B variant, per coupon rule.

Two cohorts, each read through an indexed time column and aggregated with GROUP BY in the database:

* attempts, skipped (by reason) and deferred count the attempts *created* in the period (``created_at``);
* sent, delivered, read, failed, recovered orders and revenue, conversion and coupons count the messages
  *sent* in the period (``sent_at``): an order is credited to the day its recovery message went out, so the
  conversion rate of a day is recovered / sent of that same day.

Days are the store's local days. Date functions differ between SQLite and PostgreSQL, so the local-day
number is computed portably: the UTC instants of each local midnight are computed in Python and the database
places every row with a balanced CASE over them (about log2(days) comparisons per row). DST changes are
handled because each midnight is converted on its own.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, literal_column, select
from sqlalchemy.orm import Session

from models import (
    AttemptStatus, Cart, Coupon, CouponRule, Direction, Message, MessageStatus, Order, OrderStatus, RecoveryAttempt,
)
from models.base import UTCDateTime

CENT = Decimal("0.01")
RATE = Decimal("0.0001")
VARIANTS = ("A", "B")
DELIVERED = {MessageStatus.DELIVERED, MessageStatus.READ}
READ = {MessageStatus.READ}
FAILED = {MessageStatus.FAILED, MessageStatus.UNDELIVERED}


def local_midnights(start: date, end: date, tz: ZoneInfo) -> list[datetime]:
    """UTC instants of the local midnights from ``start`` to the day after ``end`` (len = days + 1)."""
    days = (end - start).days + 1
    return [datetime.combine(start + timedelta(days=i), time(0), tzinfo=tz).astimezone(timezone.utc)
            for i in range(days + 1)]


def _day_number(column, bounds: list[datetime]):
    """SQL: the index i with bounds[i] <= column < bounds[i + 1], for rows already inside the period."""

    def build(low: int, high: int):
        if low == high:
            return literal_column(str(low))
        middle = (low + high + 1) // 2
        return case((column < literal(bounds[middle], UTCDateTime()), build(low, middle - 1)),
                    else_=build(middle, high))

    return build(0, len(bounds) - 2)


def _empty() -> dict[str, Any]:
    return {
        "attempts": 0, "sent": 0, "delivered": 0, "read": 0, "failed": 0, "skipped": 0, "skipped_by_reason": {},
        "errors": 0, "errors_by_reason": {}, "deferred": 0, "recovered_orders": 0, "recovered_revenue": Decimal("0"), "conversion_rate": 0.0,
        "coupons_issued": 0, "coupons_redeemed": 0,
    }


def _finish(metrics: dict[str, Any]) -> dict[str, Any]:
    sent = metrics["sent"]
    rate = (Decimal(metrics["recovered_orders"]) / Decimal(sent)).quantize(RATE, ROUND_HALF_UP) if sent else Decimal(0)
    metrics["conversion_rate"] = float(rate)
    metrics["recovered_revenue"] = f"{Decimal(metrics['recovered_revenue']).quantize(CENT, ROUND_HALF_UP)}"
    metrics["skipped_by_reason"] = dict(sorted(metrics["skipped_by_reason"].items()))
    metrics["errors_by_reason"] = dict(sorted(metrics["errors_by_reason"].items()))
    return metrics


def recovery_stats(session: Session, *, start: date, end: date, tz: ZoneInfo) -> dict[str, Any]:
    """Numbers for the local days ``start``..``end`` (inclusive). Money as strings with 2 decimals."""
    if start > end:
        raise ValueError("start must not be after end")
    bounds = local_midnights(start, end, tz)
    low, high = bounds[0], bounds[-1]
    days = [start + timedelta(days=i) for i in range(len(bounds) - 1)]

    totals = _empty()
    by_day = [_empty() for _ in days]
    by_variant = {v: _empty() for v in VARIANTS}
    coupons: dict[int, dict[str, Any]] = {}

    def buckets(day: int, variant: str):
        yield totals
        yield by_day[day]
        yield by_variant.setdefault(variant or "A", _empty())

    # 1. Attempts created in the period: how many, skipped by reason, deferred.
    A = RecoveryAttempt
    created = (
        select(_day_number(A.created_at, bounds).label("day_no"), A.variant.label("variant"), A.status.label("status"),
               A.skip_reason.label("reason"))
        .where(A.created_at >= low, A.created_at < high)
        .subquery()
    )
    rows = session.execute(
        select(created.c.day_no, created.c.variant, created.c.status, created.c.reason, func.count())
        .group_by(created.c.day_no, created.c.variant, created.c.status, created.c.reason))
    for day, variant, status, reason, count in rows:
        for m in buckets(int(day), variant):
            m["attempts"] += count
            if status is AttemptStatus.SKIPPED:
                m["skipped"] += count
                key = reason or "unknown"
                m["skipped_by_reason"][key] = m["skipped_by_reason"].get(key, 0) + count
            elif status is AttemptStatus.FAILED:
                # Could not be built for this shopper (e.g. the template fails on their data): not a refusal.
                m["errors"] += count
                key = reason or "unknown"
                m["errors_by_reason"][key] = m["errors_by_reason"].get(key, 0) + count
            elif status is AttemptStatus.DEFERRED:
                m["deferred"] += count

    # 2. Messages sent in the period: delivery, coupons issued/redeemed.
    sent = (
        select(_day_number(A.sent_at, bounds).label("day_no"), A.variant.label("variant"),
               Message.status.label("message_status"), A.coupon_rule_id.label("rule_id"),
               case((Coupon.redeemed_at.is_not(None), 1), else_=0).label("redeemed"))
        .select_from(A)
        .outerjoin(Message, Message.id == A.message_id)
        .outerjoin(Coupon, Coupon.attempt_id == A.id)
        .where(A.status == AttemptStatus.SENT, A.sent_at >= low, A.sent_at < high)
        .subquery()
    )
    rows = session.execute(
        select(sent.c.day_no, sent.c.variant, sent.c.message_status, sent.c.rule_id, sent.c.redeemed, func.count())
        .group_by(sent.c.day_no, sent.c.variant, sent.c.message_status, sent.c.rule_id, sent.c.redeemed))
    for day, variant, message_status, rule_id, redeemed, count in rows:
        redeemed_count = count if redeemed else 0
        for m in buckets(int(day), variant):
            m["sent"] += count
            if message_status in DELIVERED:
                m["delivered"] += count
            if message_status in READ:
                m["read"] += count
            if message_status in FAILED:
                m["failed"] += count
            if rule_id is not None:
                m["coupons_issued"] += count
                m["coupons_redeemed"] += redeemed_count
        if rule_id is not None:
            rule = coupons.setdefault(int(rule_id), {"rule_id": int(rule_id), "issued": 0, "redeemed": 0})
            rule["issued"] += count
            rule["redeemed"] += redeemed_count

    # 3. Orders credited to messages sent in the period (cancelled orders do not count).
    recovered = (
        select(_day_number(A.sent_at, bounds).label("day_no"), A.variant.label("variant"), Order.total.label("total"))
        .select_from(A)
        .join(Order, and_(Order.id == A.recovered_order_id, Order.status != OrderStatus.CANCELLED))
        .where(A.status == AttemptStatus.SENT, A.sent_at >= low, A.sent_at < high)
        .subquery()
    )
    rows = session.execute(
        select(recovered.c.day_no, recovered.c.variant, func.count(), func.sum(recovered.c.total))
        .group_by(recovered.c.day_no, recovered.c.variant))
    for day, variant, count, revenue in rows:
        amount = Decimal(str(revenue or 0))
        for m in buckets(int(day), variant):
            m["recovered_orders"] += count
            m["recovered_revenue"] += amount

    if coupons:
        names = dict(session.execute(select(CouponRule.id, CouponRule.name).where(CouponRule.id.in_(list(coupons)))).all())
        for rule_id, entry in coupons.items():
            entry["rule_name"] = names.get(rule_id)

    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "timezone": tz.key,
        "coupon_problems": coupon_problems(session, low, high),
        "paths": delivery_paths(session, low, high),
        "deferred": deferred_attempts(session, low, high),
        "totals": _finish(totals),
        "by_day": [{"date": d.isoformat(), **_finish(m)} for d, m in zip(days, by_day)],
        "by_variant": {v: _finish(m) for v, m in by_variant.items()},
        "coupons": [
            {"rule_id": e["rule_id"], "rule_name": e.get("rule_name"), "issued": e["issued"], "redeemed": e["redeemed"]}
            for _, e in sorted(coupons.items())
        ],
    }


# Meta's per-user cap on marketing templates: the message is refused, recorded and not retried.
MARKETING_LIMIT_CODE = "131049"


def delivery_paths(session: Session, low: datetime, high: datetime) -> dict[str, Any]:
    """How the recovery messages sent in [low, high) went out (same cohort as ``sent``): as free-form ``text``
    inside the 24-hour window or as an approved ``template`` outside it (messages stored before templates existed
    have no path recorded and were all text); ``marketing_limit``: refused by Meta's per-user marketing cap
    (error 131049); ``blocked``: stopped before leaving, by the sender's reason (``blocked_by_reason``). Blocked
    messages count in neither path."""
    A = RecoveryAttempt
    blocked = Message.status == MessageStatus.BLOCKED
    rows = (
        select(Message.sent_as.label("sent_as"),
               case((blocked, Message.error_reason), else_=None).label("blocked_reason"),
               case((blocked, 1), else_=0).label("is_blocked"),
               case((Message.error_code == MARKETING_LIMIT_CODE, 1), else_=0).label("limited"))
        .select_from(A).join(Message, Message.id == A.message_id)
        .where(A.status == AttemptStatus.SENT, A.sent_at >= low, A.sent_at < high)
        .subquery()
    )
    rows = session.execute(
        select(rows.c.sent_as, rows.c.blocked_reason, rows.c.is_blocked, rows.c.limited, func.count())
        .group_by(rows.c.sent_as, rows.c.blocked_reason, rows.c.is_blocked, rows.c.limited))
    out: dict[str, Any] = {"text": 0, "template": 0, "marketing_limit": 0, "blocked": 0, "blocked_by_reason": {}}
    for sent_as, reason, is_blocked, limited, count in rows:
        if is_blocked:
            out["blocked"] += count
            key = (reason or "unknown").split(":", 1)[0].strip() or "unknown"
            out["blocked_by_reason"][key] = out["blocked_by_reason"].get(key, 0) + count
            continue
        out["template" if sent_as == "template" else "text"] += count
        if limited:
            out["marketing_limit"] += count
    out["blocked_by_reason"] = dict(sorted(out["blocked_by_reason"].items()))
    return out


def deferred_attempts(session: Session, low: datetime, high: datetime) -> dict[str, Any]:
    """The attempts created in [low, high) that are waiting now (same cohort as ``attempts``): put off by quiet
    hours, or until the shop's platform can create the coupon, and back in the tracker for ``due_at``.
    ``next_at``: the earliest of those times (None when nothing waits). An attempt deferred and later sent counts
    as sent, not here."""
    A = RecoveryAttempt
    waiting = (A.status == AttemptStatus.DEFERRED, A.created_at >= low, A.created_at < high)
    rows = session.execute(select(A.skip_reason, func.count(), func.min(A.due_at)).where(*waiting)
                           .group_by(A.skip_reason)).all()
    by_reason = {(reason or "unknown"): count for reason, count, _ in rows}
    times = [moment for _, _, moment in rows if moment is not None]
    next_at = min(times) if times else None
    if next_at is not None and next_at.tzinfo is None:
        next_at = next_at.replace(tzinfo=timezone.utc)
    return {"count": sum(by_reason.values()), "by_reason": dict(sorted(by_reason.items())),
            "next_at": next_at.isoformat() if next_at is not None else None}


COUPON_PROBLEM_LIST = 20


def coupon_problems(session: Session, low: datetime, high: datetime) -> dict[str, Any]:
    """Orders placed in [low, high) that used one of our codes when they should not have: a code already redeemed
    by another order (double spend), expired, disabled, or another shopper's. The shop accepted them; these are
    the ones to look at."""
    flagged = (Order.coupon_problem.is_not(None), Order.placed_at >= low, Order.placed_at < high)
    by_problem = dict(session.execute(select(Order.coupon_problem, func.count()).where(*flagged)
                                      .group_by(Order.coupon_problem)).all())
    latest = session.scalars(select(Order).where(*flagged).order_by(Order.placed_at.desc(), Order.id.desc())
                             .limit(COUPON_PROBLEM_LIST))
    return {
        "count": sum(by_problem.values()),
        "by_problem": dict(sorted(by_problem.items())),
        "orders": [{"order": o.external_id, "coupon_code": o.coupon_code, "problem": o.coupon_problem,
                    "total": f"{o.total.quantize(CENT)}", "placed_at": o.placed_at.isoformat()} for o in latest],
    }


def tracked_shoppers(session: Session, *, start: date, end: date, tz: ZoneInfo) -> int:
    """Shoppers the recoverer followed in the period: they wrote to the bot or a cart of theirs changed."""
    bounds = local_midnights(start, end, tz)
    low, high = bounds[0], bounds[-1]
    wrote = select(Message.customer_id.label("customer_id")).where(
        Message.direction == Direction.INBOUND, Message.created_at >= low, Message.created_at < high)
    carted = select(Cart.customer_id.label("customer_id")).where(Cart.updated_at >= low, Cart.updated_at < high)
    either = wrote.union(carted).subquery()
    return session.scalar(select(func.count()).select_from(either)) or 0


FUNNEL_STEPS = ("tracked", "due", "deferred", "sent", "delivered", "read", "recovered")
# The step each one is a share of. "deferred" branches off "due" (waiting, not lost), so "sent" is a share of
# "due" too, not of the deferred ones.
FUNNEL_BASE = {"due": "tracked", "deferred": "due", "sent": "due", "delivered": "sent", "read": "delivered",
               "recovered": "sent"}


def funnel(session: Session, stats: dict[str, Any], *, start: date, end: date, tz: ZoneInfo) -> list[tuple[str, int]]:
    """The recovery funnel of a period: followed, came due (an attempt was made), waiting (deferred by quiet
    hours or the shop's platform, to be sent later), sent, delivered, read, bought. Each step's share is of
    ``FUNNEL_BASE[step]``."""
    totals = stats["totals"]
    counts = {
        "tracked": tracked_shoppers(session, start=start, end=end, tz=tz),
        "due": totals["attempts"], "deferred": stats["deferred"]["count"], "sent": totals["sent"],
        "delivered": totals["delivered"], "read": totals["read"], "recovered": totals["recovered_orders"],
    }
    return [(step, counts[step]) for step in FUNNEL_STEPS]
