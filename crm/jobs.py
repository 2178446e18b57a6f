"""RQ jobs of the opportunities feature. Thin: the runtime and the clock around the core."""

from __future__ import annotations

from core.runtime import get_runtime
from crm import assignment, metrics, portfolio, sources
from models import utcnow


def assign_backlog() -> dict:
    """Periodic: retries everything still waiting for a seller (caps reset at the store's midnight)."""
    runtime = get_runtime()
    return assignment.assign_backlog(runtime.db, utcnow(), runtime.settings.store_timezone)


def assign_opportunity(opportunity_id: int) -> int | None:
    runtime = get_runtime()
    return assignment.assign_by_id(runtime.db, opportunity_id, utcnow(), runtime.settings.store_timezone)


def follow_up_recoveries() -> int:
    """Periodic: recovery messages that did not convert become opportunities, then get a seller."""
    runtime = get_runtime()
    with runtime.db.transaction() as session:
        created = sources.follow_up_unconverted(session, utcnow())
    if created:
        assign_backlog()
    return created


def repoint_owners() -> int:
    """Daily: each customer's owner becomes the active seller who sold most to them."""
    runtime = get_runtime()
    with runtime.db.transaction() as session:
        return portfolio.repoint_owners(session)


def refresh_changed_metrics() -> int:
    """Periodic: the Clientes list's figures for customers whose orders changed."""
    return metrics.refresh_changed(get_runtime().db, utcnow())


def refresh_all_metrics() -> int:
    """Daily: every customer's figures (the churn index moves with time alone)."""
    return metrics.refresh_all(get_runtime().db, utcnow())
