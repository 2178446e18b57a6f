"""WhatsApp's 24-hour customer-service window and the approved templates that may be sent outside it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer, WhatsAppTemplate

SERVICE_WINDOW = timedelta(hours=24)


def in_service_window(customer: Customer, now: datetime) -> bool:
    """Free-form messages may be sent only within 24 h of the shopper's last message to us."""
    last = customer.last_inbound_at
    return last is not None and now - last < SERVICE_WINDOW


def template_for(session: Session, kind: str) -> WhatsAppTemplate | None:
    return session.scalar(select(WhatsAppTemplate).where(WhatsAppTemplate.kind == kind, WhatsAppTemplate.active))


def content_variables(template: WhatsAppTemplate, values: dict[str, object]) -> dict[str, str]:
    """{"1": ..., "2": ...} in the order the template declares; a missing value is an error, not a blank."""
    missing = [name for name in template.variables if values.get(name) is None or not str(values[name]).strip()]
    if missing:
        raise KeyError(f"template {template.kind!r} needs {', '.join(missing)}")
    return {str(i): str(values[name]) for i, name in enumerate(template.variables, start=1)}
