"""Recovery coupons: unique unguessable codes bound to one shopper, judged at checkout by the rule as it is now."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.templating import brl
from models import ZERO, AttemptStatus, Coupon, CouponKind, CouponRule, Customer, Order, OrderStatus, RecoveryAttempt

# Crockford-style alphabet: no 0/O, 1/I/L confusion when a shopper types the code.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10  # 31^10 ~ 8e14 codes; and a code is only valid with its shopper's phone
PREFIX = "VOLTA-"
CENT = Decimal("0.01")


def new_code(prefix: str = PREFIX) -> str:
    """``prefix`` + 10 unambiguous characters; a platform whose codes are letters and digits only (Nuvemshop)
    gets a prefix without the hyphen."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def describe(rule: CouponRule) -> str:
    """'10% de desconto', 'R$ 20,00 de desconto', 'frete grátis' (+ minimum order)."""
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
          validity_hours: int, prefix: str = PREFIX) -> Coupon:
    """One coupon per attempt (unique attempt_id): a retried send reuses the first code."""
    existing = session.scalar(select(Coupon).where(Coupon.attempt_id == attempt_id))
    if existing is not None:
        return existing
    coupon = Coupon(code=new_code(prefix), rule_id=rule.id, customer_id=customer_id, attempt_id=attempt_id,
                    issued_at=now, expires_at=now + timedelta(hours=validity_hours))
    session.add(coupon)
    session.flush()
    return coupon


# Why a code is refused, for machines (``reason``); ``message`` says it to people, in pt-BR.
OK = "ok"
NOT_FOUND = "not_found"
ALREADY_USED = "already_used"
EXPIRED = "expired"
DISABLED = "disabled"
BELOW_MINIMUM = "below_minimum"


@dataclass(frozen=True)
class Verdict:
    valid: bool
    discount: Decimal
    reason: str
    message: str
    free_shipping: bool = False

    def as_json(self) -> dict:
        return {"valid": self.valid, "discount": f"{self.discount.quantize(CENT)}", "reason": self.reason,
                "message": self.message, "free_shipping": self.free_shipping}


def judge(session: Session, *, code: str, phone: str, cart_total: Decimal, now: datetime) -> Verdict:
    """Is this code good for this shopper and cart right now? Uses the rule's current values."""
    coupon = session.scalar(select(Coupon).where(Coupon.code == code.strip().upper()))
    if coupon is None:
        return Verdict(False, ZERO, NOT_FOUND, "cupom não encontrado")
    customer = session.get(Customer, coupon.customer_id)
    if customer is None or customer.phone != phone:
        return Verdict(False, ZERO, NOT_FOUND, "cupom não encontrado")  # same answer: no hint that the code exists
    if coupon.redeemed_at is not None:
        return Verdict(False, ZERO, ALREADY_USED, "cupom já utilizado")
    if coupon.expires_at <= now:
        return Verdict(False, ZERO, EXPIRED, "cupom expirado")
    rule = coupon.rule
    if not rule.active:
        return Verdict(False, ZERO, DISABLED, "cupom desativado pela loja")
    if cart_total < rule.min_order:
        return Verdict(False, ZERO, BELOW_MINIMUM, f"pedido mínimo de {brl(rule.min_order)}")
    if rule.kind is CouponKind.PERCENT:
        discount = (cart_total * rule.value / Decimal(100)).quantize(CENT, rounding=ROUND_HALF_UP)
    elif rule.kind is CouponKind.FIXED:
        discount = min(rule.value, cart_total)
    else:
        return Verdict(True, ZERO, OK, "frete grátis", free_shipping=True)
    return Verdict(True, discount, OK, describe(rule))


# Problems recorded on an order that used one of our codes when it should not have (Order.coupon_problem).
WRONG_CUSTOMER = "wrong_customer"


def redeem(session: Session, *, code: str, customer_id: int, order_id: int, now: datetime) -> str | None:
    """Mark the code used by this order, once, and say what was wrong, if anything: None (redeemed now, or
    already by this very order), ``already_used`` (another order won it), ``expired``, ``disabled``,
    ``wrong_customer`` (another shopper's code). A code we never issued (the shop's own) is no problem of ours.

    The redemption is one conditional UPDATE: of concurrent orders carrying the same code exactly one wins,
    whatever the isolation level; the others are flagged."""
    coupon = session.scalar(select(Coupon).where(Coupon.code == code.strip().upper()))
    if coupon is None:
        return None
    if coupon.redeemed_order_id == order_id:
        return None  # the same order again (created, then paid)
    if coupon.customer_id != customer_id:
        return WRONG_CUSTOMER
    # Free, or held by an order that was cancelled since (the shopper may use the code for the order they place
    # instead).
    cancelled = select(Order.id).where(Order.status == OrderStatus.CANCELLED)
    free = or_(Coupon.redeemed_at.is_(None), Coupon.redeemed_order_id.in_(cancelled))
    won = session.execute(
        update(Coupon).where(Coupon.id == coupon.id, free)
        .values(redeemed_at=now, redeemed_order_id=order_id).execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        session.refresh(coupon)
        return None if coupon.redeemed_order_id == order_id else ALREADY_USED
    session.refresh(coupon)
    if coupon.expires_at <= now:
        return EXPIRED  # redeemed (the shop accepted it), but late
    if not coupon.rule.active:
        return DISABLED
    return None


def purge_expired(session: Session, now: datetime, grace: timedelta = timedelta(days=7)) -> int:
    """Delete unused codes that expired more than ``grace`` ago (kept a week for late checkout disputes)."""
    result = session.execute(delete(Coupon).where(Coupon.redeemed_at.is_(None), Coupon.expires_at < now - grace))
    return result.rowcount or 0


class RuleInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


KIND_LABELS = {CouponKind.PERCENT: "Percentual", CouponKind.FIXED: "Valor fixo (R$)",
               CouponKind.FREE_SHIPPING: "Frete grátis"}
MAX_FIXED = Decimal("100000")


_MONEY_TEXT = re.compile(r"[0-9]{1,9}(?:[.,][0-9]{1,2})?")


def _money(raw: str | Decimal | int | None) -> Decimal:
    """'10', '10,5', '1.234,56' or a Decimal: pt-BR decimal comma accepted. Anything else (exponents like 1e309,
    other digits, more than nine integer digits) is a ValueError the caller reports on the field."""
    if isinstance(raw, (Decimal, int)):
        return Decimal(raw)
    text = (raw or "").strip().replace("R$", "").strip()
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    if not _MONEY_TEXT.fullmatch(text):
        raise ValueError(text)
    return Decimal(text)


def save_rule(session: Session, rule: CouponRule | None, *, name: str, kind: str, value: str | Decimal,
              min_order: str | Decimal = "0", recovery_only: bool = True) -> CouponRule:
    """Create or update a coupon rule; every problem reported per field, nothing written then. Later edits apply
    to codes already issued (judged at checkout by the rule as it stands)."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "informe um nome"
    elif len(name) > 120:
        errors["name"] = "no máximo 120 caracteres"
    try:
        coupon_kind = CouponKind(kind)
    except ValueError:
        coupon_kind = None
        errors["kind"] = "escolha percentual, valor fixo ou frete grátis"
    amount = ZERO
    if coupon_kind is not CouponKind.FREE_SHIPPING:
        try:
            amount = _money(value)
        except (InvalidOperation, ValueError):
            errors["value"] = "informe um número, por exemplo 10 ou 15,50"
        else:
            if coupon_kind is CouponKind.PERCENT and not Decimal("0") < amount <= Decimal("100"):
                errors["value"] = "o percentual deve estar entre 0 e 100"
            elif coupon_kind is CouponKind.FIXED and not ZERO < amount <= MAX_FIXED:
                errors["value"] = "o valor deve ser maior que zero e até R$ 100.000,00"
            elif amount != amount.quantize(CENT):
                errors["value"] = "no máximo duas casas decimais"
    try:
        minimum = _money(min_order or "0")
        if not ZERO <= minimum <= MAX_FIXED or minimum != minimum.quantize(CENT):
            raise ValueError
    except (InvalidOperation, ValueError):
        errors["min_order"] = "informe um valor entre 0 e 100.000,00, com até duas casas decimais"
        minimum = ZERO
    if errors:
        raise RuleInvalid(errors)
    if rule is None:
        rule = CouponRule(name=name, kind=coupon_kind)
        session.add(rule)
    rule.name, rule.kind, rule.value, rule.min_order = name, coupon_kind, amount, minimum
    rule.recovery_only = recovery_only
    session.flush()
    return rule


def set_rule_active(session: Session, rule: CouponRule, active: bool) -> None:
    """A disabled rule issues no new codes and its issued codes stop validating; the recoverer's settings that
    point at it fall back to sending without a coupon (recovery.send checks ``rule.active``)."""
    rule.active = active
    session.flush()


def usage_by_rule(session: Session) -> dict[int, tuple[int, int]]:
    """rule id -> (codes issued, codes redeemed), all time. Issued counts come from the attempts, which are kept
    when unused expired codes are purged."""
    issued = dict(session.execute(
        select(RecoveryAttempt.coupon_rule_id, func.count()).where(
            RecoveryAttempt.coupon_rule_id.is_not(None), RecoveryAttempt.status == AttemptStatus.SENT)
        .group_by(RecoveryAttempt.coupon_rule_id)).all())
    redeemed = dict(session.execute(
        select(Coupon.rule_id, func.count()).where(Coupon.redeemed_at.is_not(None)).group_by(Coupon.rule_id)).all())
    return {rule_id: (issued.get(rule_id, 0), redeemed.get(rule_id, 0)) for rule_id in set(issued) | set(redeemed)}
