"""WhatsApp's 24-hour customer-service window: free-form messages only within 24 h of the shopper's last message."""

from __future__ import annotations

from datetime import datetime, timedelta

from models import Customer

SERVICE_WINDOW = timedelta(hours=24)


def in_service_window(customer: Customer, now: datetime) -> bool:
    """Free-form messages may be sent only within 24 h of the shopper's last message to us."""
    last = customer.last_inbound_at
    return last is not None and now - last < SERVICE_WINDOW
