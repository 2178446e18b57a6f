"""A shopper asked for a person. The opportunities feature turns the request into a seller assignment."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import sources
from models import Customer, HandoffRequest, HandoffStatus

ACTIVE = (HandoffStatus.OPEN, HandoffStatus.ASSIGNED)


def active_handoff(session: Session, customer_id: int) -> HandoffRequest | None:
    return session.scalar(select(HandoffRequest).where(HandoffRequest.customer_id == customer_id,
                                                       HandoffRequest.status.in_(ACTIVE)))


def request_handoff(session: Session, customer: Customer, *, reason: str, now: datetime, tz: ZoneInfo
                    ) -> tuple[HandoffRequest, bool]:
    """The customer's open request, or a new one, handed to a seller as a high-priority opportunity. While one
    is open, automated recovery is paused."""
    existing = active_handoff(session, customer.id)
    if existing is not None:
        return existing, False
    request = HandoffRequest(customer_id=customer.id, reason=reason, status=HandoffStatus.OPEN, created_at=now)
    session.add(request)
    session.flush()
    sources.from_handoff(session, customer, request, now, tz)
    return request, True
