"""The bot's "talk to a person" request, as an opportunity. The request's status mirrors the opportunity's,
and the recoverer pauses while a request is open or assigned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import HandoffRequest, HandoffStatus, Opportunity, OpportunityStatus

_MIRROR = {
    OpportunityStatus.BACKLOG: HandoffStatus.OPEN,
    OpportunityStatus.ASSIGNED: HandoffStatus.ASSIGNED,
    OpportunityStatus.IN_PROGRESS: HandoffStatus.ASSIGNED,
    OpportunityStatus.FINISHED: HandoffStatus.CLOSED,
}


def sync_handoff(session: Session, opportunity: Opportunity, now: datetime) -> None:
    if opportunity.handoff_id is None:
        return
    request = session.get(HandoffRequest, opportunity.handoff_id)
    status = _MIRROR[opportunity.status]
    if request is None or request.status is status:
        return
    request.status = status
    request.closed_at = now if status is HandoffStatus.CLOSED else None
    session.flush()
