"""Builders shared by the recoverer's tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from channel.templates import placeholders_in
from models import (
    Cart, CartItem, CartStatus, CouponKind, CouponRule, Customer, Message, MessageStatus, RecoveryAttempt,
    TemplateStatus, WhatsAppTemplate,
)
from recovery.config import update_settings

# A Tuesday at 15:00 in São Paulo (18:00 UTC): outside the default quiet hours.
AFTERNOON = datetime(2026, 11, 24, 18, 0, tzinfo=timezone.utc)


def enable_recovery(session, **overrides) -> CouponRule:
    rule = CouponRule(name="Recuperador 10%", kind=CouponKind.PERCENT, value=Decimal("10"), min_order=Decimal("0"))
    session.add(rule)
    session.flush()
    values = {"enabled": True, "delay_minutes": 10, "coupon_rule_id": rule.id, "coupon_validity_hours": 24,
              "frequency_count": 7, "frequency_unit": "days", **overrides}
    update_settings(session, values)
    session.commit()
    return rule


def shopper(session, phone="+5511999990001", name="Ana Souza", last_inbound: datetime | None = AFTERNOON) -> Customer:
    customer = Customer(phone=phone, name=name, ddd=phone[3:5], tags=[], last_inbound_at=last_inbound)
    session.add(customer)
    session.commit()
    return customer


def with_cart(session, customer, at=AFTERNOON) -> Cart:
    cart = Cart(customer_id=customer.id, source="store", external_id=f"c-{customer.id}", status=CartStatus.ABANDONED,
                checkout_url=f"https://loja.example/checkout/c-{customer.id}", updated_at=at, created_at=at)
    cart.items = [CartItem(sku="TS-01", name="Camiseta Básica Branca", quantity=2, unit_price=Decimal("59.90"))]
    cart.recompute_total()
    session.add(cart)
    session.commit()
    return cart


def recovery_messages(session, customer_id=None) -> list[Message]:
    query = select(Message).where(Message.kind == "recovery")
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    return list(session.scalars(query.order_by(Message.id)))


def sent_recovery_messages(session, customer_id=None) -> list[Message]:
    """Messages that went (or will go) out: not the ones blocked before sending."""
    return [m for m in recovery_messages(session, customer_id) if m.status is not MessageStatus.BLOCKED]


def attempts(session) -> list[RecoveryAttempt]:
    return list(session.scalars(select(RecoveryAttempt).order_by(RecoveryAttempt.id)))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


RECOVERY_TEMPLATE_BODY = ("Oi, {{1}}! Seus itens na Loja Demo estão esperando: {{2}}. Use o cupom {{3}} até {{4}}. "
                          "Finalize aqui: {{5}}")
RECOVERY_TEMPLATE_PARAMS = {"1": "nome", "2": "itens", "3": "cupom", "4": "validade", "5": "link"}


def approved_template(session, *, body: str = RECOVERY_TEMPLATE_BODY, provider: str = "twilio",
                      external_id: str | None = None, name: str = "carrinho_abandonado", header: str | None = None,
                      buttons: list[dict] | None = None, status=None) -> WhatsAppTemplate:
    """A synced, approved template (as channel.template_sync stores one)."""
    buttons = buttons or []
    template = WhatsAppTemplate(
        provider=provider, external_id=external_id or ("HX" + "1" * 32 if provider == "twilio" else "1234567890"),
        name=name, language="pt_BR", category="marketing", status=status or TemplateStatus.APPROVED, header=header,
        body=body, placeholders=placeholders_in(header, body, buttons, provider=provider), buttons=buttons)
    session.add(template)
    session.commit()
    return template


def map_template(session, template, params=None, *, variant: str = "A") -> None:
    prefix = "variant_b_" if variant == "B" else ""
    update_settings(session, {f"{prefix}whatsapp_template_id": template.id,
                              f"{prefix}whatsapp_template_params": params or RECOVERY_TEMPLATE_PARAMS})
    session.commit()
