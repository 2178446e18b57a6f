"""Assignment, deactivation and redistribution at the same time on several threads, each with its own
connection: nothing assigned to an inactive seller, nothing assigned twice, nothing lost, caps hold.
On PostgreSQL this exercises the row locks (FOR UPDATE / SKIP LOCKED); on SQLite the single writer."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from crm.assignment import assign_backlog, assign_by_id, daily_cap
from crm.opportunities import create
from crm.portfolio import EVEN, deactivate
from models import Customer, Opportunity, OpportunityEvent, OpportunityStatus, OpportunityType, User
from tests.crm_helpers import NOON, TZ, customer, make_seller, make_store

pytestmark = pytest.mark.slow


def _backlog(database, count: int, sellers: int, **seller_kwargs) -> tuple[list[int], list[int]]:
    with database.transaction() as session:
        store = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
        seller_ids = [make_seller(session, f"V{i}", store, ddds=["11"], **seller_kwargs).id for i in range(sellers)]
        ids = [create(session, customer(session, f"+55119{i:08d}"), type=OpportunityType.MANUAL, reason="manual",
                      now=NOON).opportunity.id for i in range(count)]
    return ids, seller_ids


def _run_threads(targets) -> None:
    errors = []

    def guarded(target):
        try:
            target()
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_parallel_assignment_while_a_seller_is_deactivated(committed_db):
    ids, seller_ids = _backlog(committed_db, 160, 5, hours="10", idle="1", minutes=1)
    leaving = seller_ids[2]
    halfway = threading.Event()

    def worker(chunk):
        def run():
            for n, opportunity_id in enumerate(chunk):
                assign_by_id(committed_db, opportunity_id, NOON, TZ, attempts=50)
                if n == len(chunk) // 3:
                    halfway.set()
        return run

    def deactivation():
        halfway.wait(timeout=60)
        with committed_db.transaction() as session:
            deactivate(session, session.get(User, leaving), NOON, to=EVEN)

    chunks = [ids[i::4] for i in range(4)]
    _run_threads([worker(c) for c in chunks] + [deactivation])
    assign_backlog(committed_db, NOON, TZ)  # whatever a busy moment left behind

    with committed_db.session() as session:
        rows = session.execute(select(Opportunity.id, Opportunity.status, Opportunity.seller_id,
                                      Opportunity.customer_id)).all()
        assert len(rows) == 160
        assert {r.status for r in rows} == {OpportunityStatus.ASSIGNED}  # nothing lost
        assert all(r.seller_id != leaving for r in rows)  # nothing left with the inactive seller
        assigned_events = session.execute(select(OpportunityEvent.opportunity_id, func.count()).where(
            OpportunityEvent.kind == "assigned").group_by(OpportunityEvent.opportunity_id)).all()
        assert all(count == 1 for _, count in assigned_events) and len(assigned_events) == 160  # never twice
        owners = dict(session.execute(select(Customer.id, Customer.owner_seller_id)).all())
        assert all(owners[r.customer_id] == r.seller_id for r in rows)  # portfolio and work agree
        assert leaving not in owners.values()


def test_daily_caps_hold_under_parallel_workers(committed_db):
    ids, seller_ids = _backlog(committed_db, 60, 4, hours="1", idle="0.5", minutes=3)  # cap 10 each
    with committed_db.session() as session:
        assert daily_cap(session.get(User, seller_ids[0])) == 10

    def worker(chunk):
        return lambda: [assign_by_id(committed_db, i, NOON, TZ, attempts=50) for i in chunk]

    _run_threads([worker(ids[i::3]) for i in range(3)])
    assign_backlog(committed_db, NOON, TZ)
    with committed_db.session() as session:
        per_seller = dict(session.execute(select(Opportunity.seller_id, func.count()).where(
            Opportunity.seller_id.is_not(None)).group_by(Opportunity.seller_id)).all())
        assert per_seller == {sid: 10 for sid in seller_ids}
        assert session.scalar(select(func.count()).where(Opportunity.status == OpportunityStatus.BACKLOG)) == 20
