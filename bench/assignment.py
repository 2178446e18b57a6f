"""Opportunity assignment on PostgreSQL (database `bench`, never `test`): 100 k customers spread over 20 DDDs,
200 sellers in 20 branches (`--customers N --sellers M` to run smaller), K backlog opportunities. Two runs on the
same seed, opportunities assigned per second in each:
* `backlog`: one process draining the backlog with `crm.assignment.assign_backlog` (the periodic job's code);
* `parallel`: two processes assigning interleaved halves with `assign_many` (one transaction per opportunity),
  as parallel workers do (row locks, SKIP LOCKED).
Afterwards the backlog left and the largest portfolio are reported as a sanity check of the caps."""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text

from bench.common import emit, fresh_database, log, postgres_bench_url, postgres_reachable
from core.phones import DDD_STATE
from crm.assignment import assign_backlog, assign_many
from models import Customer, Database, Opportunity, OpportunityStatus, OpportunityType, Role, Store, User

TZ = ZoneInfo("America/Sao_Paulo")
DDDS = ["11", "21", "31", "41", "51", "61", "71", "81", "91", "19", "27", "47", "48", "62", "65", "67", "79",
        "84", "85", "98"]


def seed(database: Database, customers: int, sellers: int, opportunities: int) -> list[int]:
    now = datetime.now(timezone.utc)
    with database.engine.begin() as conn:
        conn.execute(insert(Store), [{"code": f"L{ddd}", "name": f"Loja {ddd}", "city": f"Cidade {ddd}",
                                      "state": DDD_STATE[ddd], "ddd": ddd, "active": True} for ddd in DDDS])
        store_of = dict(conn.execute(select(Store.ddd, Store.id)).all())
        conn.execute(insert(User), [{
            "email": f"vendedor{i}@bench.loja", "name": f"Vendedor {i}", "role": Role.SELLER,
            "store_id": store_of[DDDS[i % len(DDDS)]], "region_ddds": [DDDS[i % len(DDDS)]], "active": True,
            "max_portfolio": 5000, "hours_per_day": Decimal("10"), "idle_share": Decimal("1"),
            "avg_conversation_minutes": 1} for i in range(sellers)])
        for start in range(0, customers, 20_000):
            conn.execute(insert(Customer), [{
                "phone": f"+55{DDDS[i % len(DDDS)]}9{i:08d}", "name": f"Cliente {i}", "ddd": DDDS[i % len(DDDS)],
                "state": DDD_STATE[DDDS[i % len(DDDS)]], "tags": []}
                for i in range(start, min(customers, start + 20_000))])
        # Every n-th customer gets a backlog opportunity, so they spread over every DDD.
        step = max(1, customers // opportunities)
        chosen = conn.execute(select(Customer.id).order_by(Customer.id)).scalars().all()[::step][:opportunities]
        conn.execute(insert(Opportunity), [{
            "customer_id": cid, "type": OpportunityType.MANUAL, "reason": "manual", "status": OpportunityStatus.BACKLOG,
            "priority": 2, "created_at": now, "updated_at": now} for cid in chosen])
        conn.execute(text("analyze"))
        return list(conn.execute(select(Opportunity.id).order_by(Opportunity.id)).scalars())


def _assign_all(url: str, ids: list[int]) -> int:
    database = Database(url)
    now = datetime.now(timezone.utc)
    assigned = assign_many(database, ids, now, TZ)  # one transaction each, one read of the sellers per batch
    database.engine.dispose()
    return assigned


def _drain_backlog(url: str) -> int:
    """Run the periodic job's batch until it assigns nothing more."""
    database = Database(url)
    now = datetime.now(timezone.utc)
    assigned = 0
    while True:
        batch = assign_backlog(database, now, TZ, limit=500)
        assigned += batch["assigned"]
        if batch["assigned"] == 0:
            break
    database.engine.dispose()
    return assigned


def _reset(database: Database) -> None:
    with database.engine.begin() as conn:
        conn.execute(text("delete from opportunity_events"))
        conn.execute(text("update opportunities set status = 'backlog', seller_id = null"))
        conn.execute(text("update customers set owner_seller_id = null"))
        conn.execute(text("update users set last_assigned_at = null"))
        conn.execute(text("analyze"))


def run(quick: bool = False, customers: int | None = None, sellers: int | None = None) -> dict:
    customers = customers or (20_000 if quick else 100_000)
    sellers = sellers or 200
    # Enough opportunities to time, few enough to stay within a few minutes on two cores.
    count = max(1, min(1_000 if quick else 3_000, customers // 10))
    if not postgres_reachable():
        log("assignment: PostgreSQL is not reachable on 127.0.0.1:5432; skipped")
        return emit("assignment", {"skipped": "PostgreSQL not reachable"})
    url = postgres_bench_url()
    database = fresh_database(url)
    log(f"assignment: seeding {customers:,} customers, {sellers} sellers, {count:,} backlog opportunities")
    ids = seed(database, customers, sellers, count)
    runs = []
    for mode, processes in (("backlog", 1), ("parallel", 2)):
        _reset(database)
        started = time.perf_counter()
        if mode == "backlog":
            assigned = _drain_backlog(url)
        else:
            chunks = [ids[i::processes] for i in range(processes)]
            with multiprocessing.get_context("spawn").Pool(processes) as pool:
                assigned = sum(pool.starmap(_assign_all, [(url, chunk) for chunk in chunks]))
        seconds = time.perf_counter() - started
        with database.session() as session:
            still = session.scalar(select(func.count()).select_from(Opportunity)
                                   .where(Opportunity.status == OpportunityStatus.BACKLOG))
            worst = session.scalar(select(func.max(func.coalesce(select(func.count()).where(
                Customer.owner_seller_id == User.id).scalar_subquery(), 0))).where(User.role == Role.SELLER))
        runs.append({"mode": mode, "processes": processes, "assigned": assigned, "left_in_backlog": still,
                     "seconds": round(seconds, 2), "per_s": round(assigned / seconds, 1),
                     "largest_portfolio": worst})
        log(f"assignment: {mode}, {processes} process(es): {assigned:,} in {seconds:.1f} s = "
            f"{assigned / seconds:.0f}/s")
    database.engine.dispose()
    return emit("assignment", {"database": "postgresql", "customers": customers, "sellers": sellers,
                               "opportunities": count, "runs": runs})
