"""Who is in which segment, kept set-based.

* ``recompute``: one segment over every customer (or over a given set of ids), in a handful of statements whatever
  the number of customers: mark the rule members that must leave (``UPDATE … SET exit_run``), write their ``left``
  events (``INSERT … SELECT``), delete them; insert the customers who now enter (``INSERT … SELECT … ON CONFLICT
  DO NOTHING``, stamped with this run's ``entry_run``) and write their ``entered`` events from the rows this run
  inserted. Two recomputes of one segment at once are harmless: the unique key decides who inserts a member, the
  ``exit_run IS NULL`` re-check under the row lock decides who takes one out, and each writes events only for the
  rows it changed, so no event is written twice.
* ``refresh_customer``: every active segment for one customer (after an order, a cart, a tag…): one query evaluates
  all the segments' conditions for that customer; only the segments whose membership changes run ``recompute``
  restricted to that id.
* ``add_manually`` / ``remove_manually``: a person's changes. A manual member stays until a person takes them out
  (the conditions never remove them); a manual removal is remembered (``SegmentExclusion``) and the conditions do
  not put the customer back until someone adds them by hand or clears the exclusion.

Rules: a customer enters when the entry conditions hold and the exit conditions (if any) do not; a member the rules
added leaves when the exit conditions hold, or — without exit conditions — when the entry conditions no longer hold.
Nothing here commits: the caller's transaction does.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone, tzinfo

from sqlalchemy import BigInteger, Integer, String, delete, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models import Customer, Segment, SegmentCount, SegmentEvent, SegmentExclusion, SegmentMember
from models.base import UTCDateTime
from segments.compile import customer_query, to_sql
from segments.conditions import validate


def insert_for(session: Session, table):
    """INSERT with ON CONFLICT for the session's backend (both spell it the same)."""
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)


def _run_id() -> int:
    return secrets.randbits(62) + 1


def _expressions(session: Session, segment: Segment, now: datetime, tz: tzinfo):
    dialect = session.get_bind().dialect.name
    entry = to_sql(segment.entry_conditions, now, dialect, tz)
    exit_ = to_sql(segment.exit_conditions, now, dialect, tz) if segment.exit_conditions else None
    enters = entry if exit_ is None else entry & ~exit_
    leaves = ~entry if exit_ is None else exit_
    return enters, leaves


def recompute(session: Session, segment: Segment, now: datetime, *, customer_ids=None, cause: str = "regras",
              tz: tzinfo = timezone.utc) -> tuple[int, int]:
    """Bring the segment's rule membership up to date (for everyone, or for ``customer_ids`` only):
    ``(entered, left)``. An inactive segment changes nothing."""
    if not segment.active:
        return 0, 0
    enters, leaves = _expressions(session, segment, now, tz)
    ids = None if customer_ids is None else sorted(set(customer_ids))
    if ids == []:
        return 0, 0
    run = _run_id()
    members = SegmentMember.__table__
    mine = [members.c.segment_id == segment.id]
    if ids is not None:
        mine.append(members.c.customer_id.in_(ids))

    leaving = customer_query().where(leaves)
    if ids is not None:
        leaving = leaving.where(Customer.id.in_(ids))
    left = session.execute(
        update(members).where(*mine, members.c.source == "rules", members.c.exit_run.is_(None),
                              members.c.customer_id.in_(leaving))
        .values(exit_run=run).execution_options(synchronize_session=False)).rowcount
    if left:
        _events_from_members(session, segment.id, "left", cause, now, [*mine, members.c.exit_run == run])
        session.execute(delete(members).where(*mine, members.c.exit_run == run)
                        .execution_options(synchronize_session=False))

    # Current members are skipped by ON CONFLICT DO NOTHING (an index probe each), not by NOT EXISTS over
    # segment_members: a planner that thinks the table small anti-joins it by a sequential scan per customer, and
    # the table grows under the very statement — quadratic (eleven minutes for 600 000 customers).
    excluded = exists().where(SegmentExclusion.segment_id == segment.id, SegmentExclusion.customer_id == Customer.id)
    entering = customer_query(
        literal(segment.id, Integer), Customer.id, literal(now, UTCDateTime()), literal("rules", String),
        literal(run, BigInteger)).where(enters, ~excluded)
    if ids is not None:
        entering = entering.where(Customer.id.in_(ids))
    statement = insert_for(session, members).from_select(
        ["segment_id", "customer_id", "entered_at", "source", "entry_run"], entering)
    # preserve_rowcount: SQLAlchemy keeps an INSERT's rowcount only when asked (psycopg would say -1).
    entered = session.execute(statement.on_conflict_do_nothing(index_elements=["segment_id", "customer_id"])
                              .execution_options(preserve_rowcount=True)).rowcount
    if entered:
        _events_from_members(session, segment.id, "entered", cause, now, [*mine, members.c.entry_run == run])
    return entered, left


def _events_from_members(session: Session, segment_id: int, kind: str, cause: str, now: datetime, where) -> None:
    members = SegmentMember.__table__
    rows = select(literal(segment_id, Integer), members.c.customer_id, literal(kind, String),
                  literal(cause[:200], String), literal(now, UTCDateTime())).where(*where)
    session.execute(SegmentEvent.__table__.insert().from_select(
        ["segment_id", "customer_id", "kind", "cause", "at"], rows))


def active_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).where(Segment.active.is_(True)).order_by(Segment.id)))


def refresh_customer(session: Session, customer_id: int, now: datetime, segments: list[Segment] | None = None, *,
                     cause: str = "atualização do cliente", tz: tzinfo = timezone.utc) -> dict[int, str]:
    """Every active segment (or ``segments``) for one customer: ``{segment_id: "entered" | "left"}`` for the
    memberships that changed. One query evaluates every segment; only changes are written."""
    segments = [s for s in (active_segments(session) if segments is None else segments) if s.active]
    if not segments:
        return {}
    columns = []
    for segment in segments:
        enters, leaves = _expressions(session, segment, now, tz)
        columns += [enters.label(f"e{segment.id}"), leaves.label(f"l{segment.id}")]
    row = session.execute(customer_query(*columns).where(Customer.id == customer_id)).first()
    if row is None:
        return {}
    ids = [s.id for s in segments]
    current = dict(session.execute(select(SegmentMember.segment_id, SegmentMember.source).where(
        SegmentMember.customer_id == customer_id, SegmentMember.segment_id.in_(ids))).all())
    excluded = set(session.scalars(select(SegmentExclusion.segment_id).where(
        SegmentExclusion.customer_id == customer_id, SegmentExclusion.segment_id.in_(ids))))
    changed: dict[int, str] = {}
    values = row._mapping
    for segment in segments:
        source = current.get(segment.id)
        should_enter = source is None and segment.id not in excluded and bool(values[f"e{segment.id}"])
        should_leave = source == "rules" and bool(values[f"l{segment.id}"])
        if should_enter or should_leave:
            entered, left = recompute(session, segment, now, customer_ids=[customer_id], cause=cause, tz=tz)
            if entered:
                changed[segment.id] = "entered"
            elif left:
                changed[segment.id] = "left"
    return changed


def add_manually(session: Session, segment: Segment, customer_id: int, user_id: int | None, now: datetime) -> bool:
    """A person puts the customer in the segment (clearing a remembered removal); they stay until a person takes
    them out. True if they were not a member before."""
    session.execute(delete(SegmentExclusion).where(SegmentExclusion.segment_id == segment.id,
                                                   SegmentExclusion.customer_id == customer_id))
    members = SegmentMember.__table__
    inserted = session.execute(insert_for(session, members).values(
        segment_id=segment.id, customer_id=customer_id, entered_at=now, source="manual")
        .on_conflict_do_nothing(index_elements=["segment_id", "customer_id"])
        .execution_options(preserve_rowcount=True)).rowcount
    if not inserted:
        session.execute(update(members).where(members.c.segment_id == segment.id,
                                              members.c.customer_id == customer_id).values(source="manual"))
    else:
        session.add(SegmentEvent(segment_id=segment.id, customer_id=customer_id, kind="added", cause="manual",
                                 actor_id=user_id, at=now))
    session.flush()
    return bool(inserted)


def remove_manually(session: Session, segment: Segment, customer_id: int, user_id: int | None,
                    now: datetime) -> bool:
    """A person takes the customer out; remembered, so the conditions do not put them back. True if they were a
    member."""
    removed = session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id,
                                                          SegmentMember.customer_id == customer_id)
                              .execution_options(synchronize_session=False)).rowcount
    session.execute(insert_for(session, SegmentExclusion.__table__).values(
        segment_id=segment.id, customer_id=customer_id, removed_by_id=user_id, at=now)
        .on_conflict_do_nothing(index_elements=["segment_id", "customer_id"]))
    if removed:
        session.add(SegmentEvent(segment_id=segment.id, customer_id=customer_id, kind="removed", cause="manual",
                                 actor_id=user_id, at=now))
    session.flush()
    return bool(removed)


def clear_exclusions(session: Session, segment: Segment, customer_ids=None) -> int:
    """Forget remembered removals (all of the segment's, or these customers'): the conditions may put them back at
    the next recompute."""
    statement = delete(SegmentExclusion).where(SegmentExclusion.segment_id == segment.id)
    if customer_ids is not None:
        statement = statement.where(SegmentExclusion.customer_id.in_(list(customer_ids)))
    return session.execute(statement.execution_options(synchronize_session=False)).rowcount


def record_count(session: Session, segment: Segment, now: datetime, tz: tzinfo = timezone.utc) -> int:
    """Today's member count for the segment's chart (the last one written in the day stands)."""
    count = session.scalar(select(func.count()).select_from(SegmentMember).where(
        SegmentMember.segment_id == segment.id))
    statement = insert_for(session, SegmentCount.__table__).values(
        segment_id=segment.id, day=now.astimezone(tz).date(), members=count)
    session.execute(statement.on_conflict_do_update(index_elements=["segment_id", "day"],
                                                    set_={"members": statement.excluded.members}))
    return count


def create_segment(session: Session, name: str, entry: dict, exit: dict | None = None,
                   created_by_id: int | None = None, active: bool = True) -> Segment:
    """A new segment with validated conditions (``ConditionInvalid`` otherwise); no members until recomputed."""
    segment = Segment(name=name.strip(), entry_conditions=validate(entry),
                      exit_conditions=validate(exit) if exit else None, created_by_id=created_by_id, active=active)
    session.add(segment)
    session.flush()
    return segment
