"""Per-customer buying figures (``CustomerMetrics``): live orders, revenue, first and last purchase and the churn
band, kept in one row per customer so the Clientes list (and segments) filter and sort a million customers
through indexes instead of aggregating every order on each page.

The rows are a cache of the orders (every customer has one from creation: models.crm), refreshed without a
query per customer:

* ``refresh_changed``: the customers whose orders changed since the last run (``orders.updated_at``, indexed),
  every few minutes, one query per ``BATCH`` customers, so a new order shows in the list within minutes. Cost
  grows with the orders that changed.
* ``refresh_all``: daily, one streamed pass over every live order in customer order: the churn index moves with
  time alone (a silent customer drifts towards "alto"); customers left with no live order are set to zeros.

A refresh is idempotent (the figures are recomputed from the orders, the row replaced), so duplicate or
overlapping runs are harmless; the watermark is kept in the database, not in Redis, so a Redis restart does not
lose it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm import churn
from models import Customer, CustomerMetrics, Order, OrderStatus, SystemFlag
from models.base import ZERO, utcnow

log = logging.getLogger(__name__)

BATCH = 2000
STREAM_ROWS = 10_000  # rows fetched at a time by the daily pass
WATERMARK_KEY = "crm.metrics.watermark"
NORMS_KEY = "crm.metrics.norms"  # the store's norms as of the last full refresh, for the runs in between
# Orders committed a little after the time they were stamped with (a long transaction) are still picked up.
OVERLAP = timedelta(minutes=10)
FIRST_LOOKBACK = timedelta(days=2)  # no watermark yet: the daily full refresh covers anything older
LIVE = (OrderStatus.CREATED, OrderStatus.PAID)


def _upsert(session: Session, table, rows: list[dict], key: str) -> None:
    """INSERT … ON CONFLICT DO UPDATE, which both backends run: two refreshes of one customer at once both
    succeed (the later write wins; each is computed from committed orders)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    # One statement with many parameter sets: SQLAlchemy batches them into multi-row VALUES and caches the
    # compiled form (a literal .values(rows) was compiled afresh for every batch).
    session.execute(statement.on_conflict_do_update(
        index_elements=[key], set_={c: statement.excluded[c] for c in rows[0] if c != key}), rows)


def _set_flag(session: Session, key: str, value: str) -> None:
    _upsert(session, SystemFlag.__table__, [{"key": key, "value": value, "updated_at": utcnow()}], "key")


def _flag(session: Session, key: str) -> str | None:
    return session.scalar(select(SystemFlag.value).where(SystemFlag.key == key))


def cached_norms(session: Session, now: datetime) -> churn.StoreNorms:
    """The norms the last full refresh computed (recomputed when there are none yet)."""
    stored = _flag(session, NORMS_KEY)
    if stored is None:
        return churn.store_norms(session, now)
    data = json.loads(stored)
    return churn.StoreNorms(median_interval_days=float(data["interval"]), median_ticket=Decimal(data["ticket"]),
                            customers=int(data["customers"]))


def _row(customer_id: int, purchases: list[churn.Purchase], now: datetime, norms: churn.StoreNorms) -> dict:
    """A customer's metrics row from all their live purchases (lifetime figures; churn looks at its own window)."""
    risk = churn.churn_of(purchases, now, norms, explain=False)
    moments = [p.at for p in purchases]
    return {"customer_id": customer_id, "orders": len(purchases),
            "revenue": sum((Decimal(str(p.total)) for p in purchases), ZERO),
            "first_purchase_at": min(moments, default=None), "last_purchase_at": max(moments, default=None),
            "churn_index": risk.index, "churn_band": risk.band, "refreshed_at": now}


def refresh(session: Session, customer_ids: list[int], now: datetime, norms: churn.StoreNorms | None = None) -> int:
    """Recompute the rows of these customers (any number; ``BATCH`` at a time, one query each). Flushes, does
    not commit. Ids of customers that no longer exist are skipped."""
    if norms is None:
        norms = cached_norms(session, now)
    done = 0
    for start in range(0, len(customer_ids), BATCH):
        batch = sorted(set(customer_ids[start:start + BATCH]))
        existing = list(session.scalars(select(Customer.id).where(Customer.id.in_(batch))))
        if not existing:
            continue
        found = {customer_id: [] for customer_id in existing}
        found.update(churn.grouped_purchases(session.execute(
            churn.purchase_rows(Order.customer_id.in_(existing)))))
        _upsert(session, CustomerMetrics.__table__, [_row(c, p, now, norms) for c, p in found.items()],
                "customer_id")
        done += len(existing)
    session.flush()
    return done


def refresh_all(db, now: datetime) -> int:
    """Every customer, the daily run: one pass over all live orders in customer order (streamed, so the cost is a
    sequential read of the orders, not one index probe per customer), written ``BATCH`` customers per
    transaction; then the customers the pass did not meet (no live order left) are set to zeros."""
    with db.transaction() as session:
        norms = churn.store_norms(session, now)
        _set_flag(session, NORMS_KEY, json.dumps({"interval": norms.median_interval_days,
                                                  "ticket": str(norms.median_ticket),
                                                  "customers": norms.customers}))
    done = 0
    pending: list[dict] = []

    def write() -> None:
        with db.transaction() as writer:
            _upsert(writer, CustomerMetrics.__table__, pending, "customer_id")
        pending.clear()

    with db.session() as reader:
        rows = reader.execute(churn.purchase_rows().execution_options(yield_per=STREAM_ROWS))
        for customer_id, purchases in churn.grouped_purchases(rows):
            pending.append(_row(customer_id, purchases, now, norms))
            done += 1
            if len(pending) >= BATCH:
                write()
        reader.commit()  # it wrote nothing; ending it by commit keeps a caller's enclosing transaction intact
    if pending:
        write()
    with db.transaction() as session:
        has_orders = select(Order.id).where(Order.customer_id == CustomerMetrics.customer_id,
                                            Order.status.in_(LIVE)).exists()
        cleared = session.execute(
            update(CustomerMetrics)
            .where(CustomerMetrics.refreshed_at < now, CustomerMetrics.orders > 0, ~has_orders)
            .values(orders=0, revenue=ZERO, first_purchase_at=None, last_purchase_at=None, churn_index=None,
                    churn_band="inativo", refreshed_at=now)).rowcount
    log.info("customer metrics refreshed for %d customers with orders (%d cleared)", done, cleared)
    return done + cleared


def refresh_changed(db, now: datetime) -> int:
    """The customers whose orders changed (created, paid, cancelled, edited) since the last run, minus an overlap.
    The watermark moves to ``now`` only once every one of them is refreshed."""
    with db.transaction() as session:
        stored = _flag(session, WATERMARK_KEY)
        since = (datetime.fromisoformat(stored) if stored else now - FIRST_LOOKBACK) - OVERLAP
        ids = list(session.scalars(select(Order.customer_id).where(Order.updated_at > since).distinct()))
        norms = cached_norms(session, now) if ids else None
    done = 0
    for start in range(0, len(ids), BATCH):
        with db.transaction() as session:
            done += refresh(session, ids[start:start + BATCH], now, norms)
    with db.transaction() as session:
        stored = _flag(session, WATERMARK_KEY)
        if stored is None or datetime.fromisoformat(stored) < now:
            _set_flag(session, WATERMARK_KEY, now.isoformat())
    return done
