"""Segments at 1 M customers / 5 M orders on PostgreSQL: a full recompute of a segment (target <= 10 s) and the
incremental path after an event — one new order, that customer's figures refreshed, then every active segment
re-evaluated for them (target <= 50 ms for the segments' part).

Reuses the ``bench`` database of ``bench/customer_list.py`` when it already holds the data (its ``_populate``
writes it otherwise, and ``crm.metrics.refresh_all`` fills the figures), brings it to the latest migration, and
refuses to run while that benchmark is running (its measurements would suffer from the DDL and the load).

Scenarios, each a fresh segment (its members and events deleted first):

* ``inactive_60d``: days since the last purchase >= 60 and at least 2 purchases (the seed's "recompra") — first run
  (everyone enters), second run (nothing changes: the steady state the 15-minute job meets), and 30 days later
  (customers move in and out).
* ``bought_category_365d``: bought a product of one category in the last year (EXISTS over 5 M orders and their
  items) OR left it in a cart.
* ``vip_sp``: a tag, a state and revenue >= 1 000, combined with ANY/ALL.

``--quick``: 50 000 customers (only when the database is empty).
"""

from __future__ import annotations

import statistics
import subprocess
import time
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import delete, func, select, text

from bench.common import emit, log, percentile, postgres_bench_url, postgres_reachable
from bench import customer_list
from crm import metrics
from models import Database, Order, OrderItem, OrderStatus, Segment, migrate, utcnow
from segments import membership

TARGET_RECOMPUTE_S = 10.0
TARGET_EVENT_MS = 50.0
EVENT_RUNS = 30
PREFIX = "bench: "

SEGMENTS = {
    "inactive_60d": {"all": [{"field": "days_since_last_purchase", "op": ">=", "value": 60},
                             {"field": "orders_count", "op": ">=", "value": 2}]},
    "bought_category_365d": {"any": [
        {"field": "bought", "op": "contains", "value": {"category": "Categoria 3", "within_days": 365}},
        {"field": "left_in_cart", "op": "contains", "value": {"category": "Categoria 3"}}]},
    "vip_sp": {"any": [{"field": "tag", "op": "contains", "value": "vip"},
                       {"all": [{"field": "state", "op": "=", "value": "SP"},
                                {"field": "total_revenue", "op": ">=", "value": 1000}]}]},
}
# More active segments for the event path: every one is evaluated for the customer.
EXTRA = [
    {"field": "churn_band", "op": "in", "value": ["alto", "inativo"]},
    {"field": "average_ticket", "op": ">=", "value": 300},
    {"field": "consent", "op": "=", "value": "subscribed"},
    {"field": "bought", "op": "contains", "value": {"brand": "Marca 4", "within_days": 90}},
    {"field": "ddd", "op": "in", "value": ["11", "21"]},
    {"field": "first_purchase", "op": "within_days", "value": 30},
    {"field": "owner", "op": "is_set"},
]


def _other_benchmark_running() -> bool:
    found = subprocess.run(["pgrep", "-f", "bench customer_list"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def _prepare(database: Database, quick: bool) -> int:
    migrate.upgrade(database.engine)
    with database.session() as session:
        customers = session.scalar(text("SELECT count(*) FROM customers"))
        session.commit()
    if customers:
        log(f"reusing the bench database: {customers} customers")
        return customers
    size = customer_list.QUICK_CUSTOMERS if quick else customer_list.CUSTOMERS
    log(f"empty bench database: writing {size} customers (bench/customer_list.py's data)")
    with database.engine.begin() as conn:
        customer_list._populate(conn, size)
    customer_list._analyze(database)
    customer_list.refresh(database)
    return size


def _reset(database: Database) -> None:
    with database.transaction() as session:
        session.execute(delete(Segment).where(Segment.name.like(f"{PREFIX}%")))


def _timed(database: Database, segment_id: int, now) -> tuple[float, int, int]:
    started = time.perf_counter()
    with database.transaction() as session:
        entered, left = membership.recompute(session, session.get(Segment, segment_id), now)
    return time.perf_counter() - started, entered, left


def run(quick: bool = False) -> dict | None:
    if not postgres_reachable():
        log("segments: PostgreSQL is not reachable; skipped")
        return None
    if _other_benchmark_running():
        log("segments: bench/customer_list.py is running on the same database; not touching it")
        return None
    database = Database(postgres_bench_url())
    customers = _prepare(database, quick)
    _reset(database)
    now = utcnow()
    results: dict[str, dict] = {}
    ids: dict[str, int] = {}
    with database.transaction() as session:
        for name, condition in SEGMENTS.items():
            ids[name] = membership.create_segment(session, PREFIX + name, condition).id
        for n, condition in enumerate(EXTRA):
            membership.create_segment(session, f"{PREFIX}extra {n}", condition)
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE segment_members"))
    for name, segment_id in ids.items():
        first = _timed(database, segment_id, now)
        again = _timed(database, segment_id, now)
        results[name] = {"first_s": round(first[0], 2), "first_entered": first[1],
                         "again_s": round(again[0], 2), "again_changed": again[1] + again[2]}
        if name == "inactive_60d":
            later = _timed(database, segment_id, now + timedelta(days=30))
            results[name] |= {"30_days_later_s": round(later[0], 2), "30_days_later_entered": later[1],
                              "30_days_later_left": later[2]}
        log(f"{name}: {results[name]}")
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE segment_members"))
        conn.execute(text("ANALYZE segment_events"))

    # The event path: a customer in "inactive_60d" buys; their figures are refreshed, then every active segment.
    event_ms, metrics_ms, moved = [], [], 0
    with database.session() as session:
        candidates = list(session.execute(text(
            "SELECT customer_id FROM segment_members WHERE segment_id = :s ORDER BY customer_id LIMIT :n"),
            {"s": ids["inactive_60d"], "n": EVENT_RUNS + 1}).scalars())
        active = session.scalar(select(func.count()).select_from(Segment).where(Segment.active.is_(True)))
        session.commit()
    for n, customer_id in enumerate(candidates):
        with database.transaction() as session:
            order = Order(external_id=f"bench-seg-{now.timestamp():.0f}-{n}", customer_id=customer_id,
                          status=OrderStatus.PAID, total=Decimal("150.00"), placed_at=now)
            order.items = [OrderItem(sku="SKU-3", name="Produto 3", quantity=1, unit_price=Decimal("150.00"))]
            session.add(order)
        with database.transaction() as session:
            started = time.perf_counter()
            metrics.refresh(session, [customer_id], now)
            refreshed = time.perf_counter()
            changed = membership.refresh_customer(session, customer_id, now, cause="pedido")
            done = time.perf_counter()
        if n:  # the first is a warm-up
            metrics_ms.append((refreshed - started) * 1000)
            event_ms.append((done - refreshed) * 1000)
            moved += len(changed)
    event_ms.sort()
    metrics_ms.sort()
    with database.transaction() as session:
        session.execute(delete(Order).where(Order.external_id.like(f"bench-seg-{now.timestamp():.0f}-%")))
        metrics.refresh(session, candidates, now)  # their figures without the benchmark's orders again
    _reset(database)
    worst_recompute = max(max(r["first_s"], r["again_s"], r.get("30_days_later_s", 0)) for r in results.values())
    event_p95 = percentile(event_ms, 0.95)
    database.engine.dispose()
    return emit("segments", {
        "customers": customers, "active_segments": active, "recompute": results,
        "worst_recompute_s": worst_recompute, "target_recompute_s": TARGET_RECOMPUTE_S,
        "event_segments_p50_ms": round(statistics.median(event_ms), 2), "event_segments_p95_ms": round(event_p95, 2),
        "event_metrics_refresh_p50_ms": round(statistics.median(metrics_ms), 2),
        "event_metrics_refresh_p95_ms": round(percentile(metrics_ms, 0.95), 2),
        "event_memberships_changed": moved, "event_runs": len(event_ms), "target_event_ms": TARGET_EVENT_MS,
        "meets_target": worst_recompute <= TARGET_RECOMPUTE_S and event_p95 <= TARGET_EVENT_MS,
    })
