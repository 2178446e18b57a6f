"""Scheduled segment work, and the RQ jobs that run it (thin: runtime and clock around the core).

* ``recompute_all`` (every 15 minutes): every active segment over every customer, each in its own transaction,
  then today's member count. Time alone moves customers ("60 days since the last purchase"), and this run also
  catches any change the incremental path did not see.
* ``refresh_changed`` (every minute): the customers changed since a watermark kept in the database — the customer
  row (tags, owner, consent, birthday, source: ``customers.updated_at``), their orders (``orders.updated_at``; their
  figures are refreshed first through ``crm.metrics``) and their carts (``carts.updated_at``) — minus an overlap,
  re-evaluated for every active segment restricted to their ids, ``BATCH`` at a time. It catches every writer
  (store webhooks, the API, the console, the bot, the CLI) without a hook in each, and needs no Redis.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone, tzinfo

from sqlalchemy import select, union

from core.runtime import get_runtime
from crm import metrics
from models import Cart, Customer, Order, Segment, SystemFlag
from models.base import utcnow
from segments import membership

log = logging.getLogger(__name__)

BATCH = 2000
WATERMARK_KEY = "segments.watermark"
OVERLAP = timedelta(minutes=10)
FIRST_LOOKBACK = timedelta(hours=1)  # no watermark yet: the 15-minute full recompute covers anything older


def _watermark(session) -> str | None:
    return session.scalar(select(SystemFlag.value).where(SystemFlag.key == WATERMARK_KEY))


def _set_watermark(session, now: datetime) -> None:
    statement = membership.insert_for(session, SystemFlag.__table__).values(
        key=WATERMARK_KEY, value=now.isoformat(), updated_at=utcnow())
    session.execute(statement.on_conflict_do_update(index_elements=["key"], set_={
        "value": statement.excluded.value, "updated_at": statement.excluded.updated_at}))


def recompute_all_segments(db, now: datetime, tz: tzinfo = timezone.utc) -> dict[int, tuple[int, int]]:
    """Every active segment, fully: ``{segment_id: (entered, left)}``."""
    with db.session() as session:
        ids = list(session.scalars(select(Segment.id).where(Segment.active.is_(True)).order_by(Segment.id)))
        session.commit()
    done = {}
    for segment_id in ids:
        with db.transaction() as session:
            segment = session.get(Segment, segment_id)
            if segment is None or not segment.active:
                continue
            done[segment_id] = membership.recompute(session, segment, now, cause="regras", tz=tz)
            segment.last_recomputed_at = now
            membership.record_count(session, segment, now, tz)
    return done


def changed_customers(session, since: datetime) -> list[int]:
    query = union(select(Customer.id).where(Customer.updated_at > since),
                  select(Order.customer_id).where(Order.updated_at > since),
                  select(Cart.customer_id).where(Cart.updated_at > since))
    return sorted(session.scalars(query))


def refresh_changed_customers(db, now: datetime, tz: tzinfo = timezone.utc) -> int:
    """The customers changed since the last run, re-evaluated for every active segment; the watermark moves to
    ``now`` once all are done. Returns how many memberships changed."""
    with db.transaction() as session:
        stored = _watermark(session)
        since = (datetime.fromisoformat(stored) if stored else now - FIRST_LOOKBACK) - OVERLAP
        ids = changed_customers(session, since)
        ordered = set(session.scalars(select(Order.customer_id).where(Order.updated_at > since).distinct()))
    changed = 0
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        with db.transaction() as session:
            bought = [i for i in batch if i in ordered]
            if bought:
                metrics.refresh(session, bought, now)
            for segment in membership.active_segments(session):
                entered, left = membership.recompute(session, segment, now, customer_ids=batch,
                                                     cause="atualização do cliente", tz=tz)
                changed += entered + left
    with db.transaction() as session:
        stored = _watermark(session)
        if stored is None or datetime.fromisoformat(stored) < now:
            _set_watermark(session, now)
    return changed


# --- RQ jobs -----------------------------------------------------------------------------------------------

def recompute_all() -> int:
    """Periodic (15 min): every active segment fully (time-based conditions)."""
    runtime = get_runtime()
    done = recompute_all_segments(runtime.db, utcnow(), runtime.settings.store_timezone)
    log.info("segments recomputed: %s", done)
    return sum(entered + left for entered, left in done.values())


def refresh_changed() -> int:
    """Periodic (1 min): the customers changed since the last run."""
    runtime = get_runtime()
    return refresh_changed_customers(runtime.db, utcnow(), runtime.settings.store_timezone)
