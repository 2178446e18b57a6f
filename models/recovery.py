"""The sales recoverer's data: settings, coupon rules and codes, recovery attempts, processed store events."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import ZERO, Base, JSONType, enum_column, utcnow
from models.messaging import Message
from models.people import Customer

# The message a store starts with, readable by a shopkeeper: {{ itens }} prints the ready list of the cart.
# Applied by the ORM (no server default): a deployment whose settings were never saved sends it; a saved row keeps
# the text it was saved with (LEGACY_DEFAULT_TEMPLATE below still renders the same).
DEFAULT_TEMPLATE = (
    "Oi, {{ nome }}! Vimos que você deixou alguns itens esperando na {{ loja }}.\n"
    "{% if itens %}\n"
    "{{ itens }}\n"
    "Total: {{ total }}\n"
    "{% endif %}\n"
    "{% if cupom %}\n"
    "Use o cupom *{{ cupom }}* e ganhe {{ desconto }}, válido até {{ validade_cupom }}: {{ link_cupom }}\n"
    "{% endif %}\n"
    "Para finalizar sua compra: {{ link_checkout }}"
)
# The default before the issue 20 console work, still stored by installs that saved their settings.
LEGACY_DEFAULT_TEMPLATE = (
    "Oi, {{ nome }}! Vimos que você deixou alguns itens esperando na {{ loja }}"
    "{% if itens %}: {% for item in itens %}{{ item.quantidade }}x {{ item.nome }}{% if not loop.last %}, {% endif %}"
    "{% endfor %}{% if outros_itens %} e mais {{ outros_itens }} {{ 'item' if outros_itens == 1 else 'itens' }}"
    "{% endif %} ({{ total }}){% endif %}.\n"
    "{% if cupom %}Use o cupom *{{ cupom }}* e ganhe {{ desconto }}, válido até {{ validade_cupom }}: {{ link_cupom }}\n"
    "{% endif %}Para finalizar sua compra: {{ link_checkout }}"
)


class FrequencyUnit(str, enum.Enum):
    HOURS = "hours"
    DAYS = "days"


class RecoverySettings(Base):
    """The merchant's recoverer configuration. One row (id=1) per deployment."""

    __tablename__ = "recovery_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    delay_minutes: Mapped[int] = mapped_column(Integer, default=10)
    coupon_rule_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_rules.id"))
    coupon_validity_hours: Mapped[int] = mapped_column(Integer, default=24)
    frequency_count: Mapped[int] = mapped_column(Integer, default=7)
    frequency_unit: Mapped[FrequencyUnit] = mapped_column(enum_column(FrequencyUnit), default=FrequencyUnit.DAYS)
    coupon_use_pause_days: Mapped[int] = mapped_column(Integer, default=30)
    template: Mapped[str] = mapped_column(Text, default=DEFAULT_TEMPLATE)
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="09:00")
    # Optional A/B test: variant B's template and coupon, sent to `variant_b_percent` % of shoppers.
    variant_b_template: Mapped[str | None] = mapped_column(Text)
    variant_b_coupon_rule_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_rules.id"))
    variant_b_percent: Mapped[int] = mapped_column(Integer, default=0)
    # The approved WhatsApp template each variant sends outside the 24-hour window, and which recovery value
    # fills each of its placeholders ({"1": "nome", "2": "link"}); recovery.whatsapp_templates validates them.
    whatsapp_template_id: Mapped[int | None] = mapped_column(ForeignKey("whatsapp_templates.id"))
    whatsapp_template_params: Mapped[dict] = mapped_column(JSONType, default=dict)
    variant_b_whatsapp_template_id: Mapped[int | None] = mapped_column(ForeignKey("whatsapp_templates.id"))
    variant_b_whatsapp_template_params: Mapped[dict] = mapped_column(JSONType, default=dict)
    attribution_days: Mapped[int] = mapped_column(Integer, default=7)
    max_age_hours: Mapped[int] = mapped_column(Integer, default=23)
    coupon_url_pattern: Mapped[str] = mapped_column(String(300), default="{shop}/cupom/{code}")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CouponKind(str, enum.Enum):
    PERCENT = "percent"
    FIXED = "fixed"
    FREE_SHIPPING = "free_shipping"


class CouponRule(Base):
    """How much a recovery coupon is worth. Judged as it stands at checkout, so later edits apply."""

    __tablename__ = "coupon_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[CouponKind] = mapped_column(enum_column(CouponKind))
    value: Mapped[Decimal] = mapped_column(default=ZERO)  # percent (0-100) or BRL amount
    min_order: Mapped[Decimal] = mapped_column(default=ZERO)
    recovery_only: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AttemptStatus(str, enum.Enum):
    CLAIMED = "claimed"  # taken from the tracker, not judged yet
    DEFERRED = "deferred"  # quiet hours or pacing: back in the tracker for later
    SENT = "sent"  # a message was queued for it (its delivery status is on the message)
    SKIPPED = "skipped"  # judged ineligible; reason in skip_reason
    FAILED = "failed"  # could not be built for this shopper (e.g. the template fails on their data); reason in skip_reason


class RecoveryAttempt(Base):
    """One abandonment of one shopper: (customer, interaction time) is unique, so it is judged and sent once."""

    __tablename__ = "recovery_attempts"
    __table_args__ = (UniqueConstraint("customer_id", "interaction_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    interaction_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[AttemptStatus] = mapped_column(enum_column(AttemptStatus), index=True)
    skip_reason: Mapped[str | None] = mapped_column(String(40), index=True)
    variant: Mapped[str] = mapped_column(String(1), default="A")
    coupon_rule_id: Mapped[int | None] = mapped_column(ForeignKey("coupon_rules.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    recovered_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    recovered_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship()
    message: Mapped[Message | None] = relationship()


def latest_unconverted_attempt(session, customer_id: int, since: datetime) -> RecoveryAttempt | None:
    """The shopper's last recovery message sent after ``since`` that has not led to a purchase: what a reply
    from them answers (the CRM's "recovery replied" source and the bot's recovery replies)."""
    return session.scalar(select(RecoveryAttempt).where(
        RecoveryAttempt.customer_id == customer_id, RecoveryAttempt.status == AttemptStatus.SENT,
        RecoveryAttempt.sent_at > since, RecoveryAttempt.recovered_order_id.is_(None))
        .order_by(RecoveryAttempt.sent_at.desc()).limit(1))


class Coupon(Base):
    """A unique, unguessable code issued with one recovery message, bound to one shopper."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("coupon_rules.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("recovery_attempts.id"), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    redeemed_at: Mapped[datetime | None]
    redeemed_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))

    rule: Mapped[CouponRule] = relationship()


class StoreEvent(Base):
    """A processed shop event, so a redelivered event does nothing.

    Unique on (event, id, event time): a redelivery is identical, while a cart updated many times under one id
    sends a new ``updated_at`` each time (for orders the time is ``created_at``).
    """

    __tablename__ = "store_events"
    __table_args__ = (UniqueConstraint("event", "external_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
