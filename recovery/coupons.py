"""Recovery coupons: unique unguessable codes bound to one shopper, judged at checkout by the rule as it is now."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import ZERO, Coupon, CouponKind, CouponRule, Customer

# Crockford-style alphabet: no 0/O, 1/I/L confusion when a shopper types the code.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 31^10 ~ 8e14 codes; and a code is only valid with its shopper's phone
PREFIX = "VOLTA-"
CENT = Decimal("0.01")


def new_code() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def describe(rule: CouponRule) -> str:
    """'10% de desconto', 'R$ 20,00 de desconto', 'frete grátis' (+ minimum order)."""
    from core.templating import brl

    if rule.kind is CouponKind.PERCENT:
        value = rule.value.normalize()
        text = f"{value:f}".replace(".", ",") + "% de desconto"
    elif rule.kind is CouponKind.FIXED:
        text = f"{brl(rule.value)} de desconto"
    else:
        text = "frete grátis"
    if rule.min_order > ZERO:
        text += f" em compras a partir de {brl(rule.min_order)}"
    return text


def issue(session: Session, *, rule: CouponRule, customer_id: int, attempt_id: int, now: datetime,
          validity_hours: int) -> Coupon:
    """One coupon per attempt (unique attempt_id): a retried send reuses the first code."""
    existing = session.scalar(select(Coupon).where(Coupon.attempt_id == attempt_id))
    if existing is not None:
        return existing
    coupon = Coupon(code=new_code(), rule_id=rule.id, customer_id=customer_id, attempt_id=attempt_id,
                    issued_at=now, expires_at=now + timedelta(hours=validity_hours))
    session.add(coupon)
    session.flush()
    return coupon


@dataclass(frozen=True)
class Verdict:
    valid: bool
    discount: Decimal
    reason: str
    free_shipping: bool = False

    def as_json(self) -> dict:
        return {"valid": self.valid, "discount": f"{self.discount.quantize(CENT)}", "reason": self.reason,
                "free_shipping": self.free_shipping}


def judge(session: Session, *, code: str, phone: str, cart_total: Decimal, now: datetime) -> Verdict:
    """Is this code good for this shopper and cart right now? Uses the rule's current values."""
    coupon = session.scalar(select(Coupon).where(Coupon.code == code.strip().upper()))
    if coupon is None:
        return Verdict(False, ZERO, "cupom não encontrado")
    customer = session.get(Customer, coupon.customer_id)
    if customer is None or customer.phone != phone:
        return Verdict(False, ZERO, "cupom não encontrado")  # same answer: no hint that the code exists
    if coupon.redeemed_at is not None:
        return Verdict(False, ZERO, "cupom já utilizado")
    if coupon.expires_at <= now:
        return Verdict(False, ZERO, "cupom expirado")
    rule = coupon.rule
    if not rule.active:
        return Verdict(False, ZERO, "cupom desativado pela loja")
    if cart_total < rule.min_order:
        from core.templating import brl

        return Verdict(False, ZERO, f"pedido mínimo de {brl(rule.min_order)}")
    if rule.kind is CouponKind.PERCENT:
        discount = (cart_total * rule.value / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)
    elif rule.kind is CouponKind.FIXED:
        discount = min(rule.value, cart_total)
    else:
        return Verdict(True, ZERO, "frete grátis", free_shipping=True)
    return Verdict(True, discount, describe(rule))


def redeem(session: Session, *, code: str, customer_id: int, order_id: int, now: datetime) -> Coupon | None:
    """Mark the code used by this order, once. Another shopper's code, or a second order, redeems nothing."""
    coupon = session.scalar(select(Coupon).where(Coupon.code == code.strip().upper()))
    if coupon is None or coupon.customer_id != customer_id or coupon.redeemed_at is not None:
        return None
    coupon.redeemed_at = now
    coupon.redeemed_order_id = order_id
    return coupon


def purge_expired(session: Session, now: datetime, grace: timedelta = timedelta(days=7)) -> int:
    """Delete unused codes that expired more than ``grace`` ago (kept a week for late checkout disputes)."""
    result = session.execute(delete(Coupon).where(Coupon.redeemed_at.is_(None), Coupon.expires_at < now - grace))
    return result.rowcount or 0
