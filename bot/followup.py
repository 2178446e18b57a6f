"""A shopper answering a recovery message: which message, its cart and its coupon, so that "quero usar o
cupom", "sim" or "ainda tem o 42?" continue the purchase the message was about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Cart, CartStatus, Coupon, Customer, RecoveryAttempt
from models.recovery import latest_unconverted_attempt
from recovery import coupons

# As long as WhatsApp's customer-service window: a reply later than that is a new conversation.
ANSWER_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Followup:
    attempt: RecoveryAttempt
    cart: Cart | None  # the cart the message was about, when it still is open and holds items
    coupon: Coupon | None  # its coupon, while it can still be used

    @property
    def coupon_text(self) -> str | None:
        return coupons.describe(self.coupon.rule) if self.coupon is not None else None


def recent_followup(session: Session, customer: Customer, now: datetime) -> Followup | None:
    """The recovery message this shopper may be answering (sent in the last 24 h, not yet converted)."""
    attempt = latest_unconverted_attempt(session, customer.id, now - ANSWER_WINDOW)
    if attempt is None:
        return None
    coupon = session.scalar(select(Coupon).where(Coupon.attempt_id == attempt.id, Coupon.redeemed_at.is_(None),
                                                 Coupon.expires_at > now))
    # The cart the message linked to (recovery.send picks the customer's latest open or abandoned cart).
    cart = session.scalar(select(Cart).where(Cart.customer_id == customer.id,
                                             Cart.status.in_([CartStatus.OPEN, CartStatus.ABANDONED]))
                          .order_by(Cart.updated_at.desc()).limit(1))
    return Followup(attempt=attempt, cart=cart if cart is not None and cart.items else None, coupon=coupon)
