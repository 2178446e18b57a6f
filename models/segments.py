"""Dynamic customer segments: a segment's conditions, who is in it, who was taken out by hand, its event feed and
its daily member count. ``segments.membership`` keeps these rows; nothing else writes them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, utcnow
from models.people import Customer, User

MEMBER_SOURCES = ("rules", "manual")
EVENT_KINDS = ("entered", "left", "added", "removed")


class Segment(Base):
    """A named set of customers defined by conditions (``segments.conditions``). A customer enters when the entry
    conditions hold (and the exit conditions, if any, do not); a member added by the rules leaves when the exit
    conditions hold, or, when there are none, as soon as the entry conditions no longer hold."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    entry_conditions: Mapped[dict] = mapped_column(JSONType)
    exit_conditions: Mapped[dict | None] = mapped_column(JSONType)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_recomputed_at: Mapped[datetime | None]

    created_by: Mapped[User | None] = relationship()


class SegmentMember(Base):
    """A customer in a segment. ``source``: ``rules`` (the conditions put them in; the conditions take them out) or
    ``manual`` (a person added them; only a person takes them out). ``entry_run``/``exit_run`` mark the rows one
    recompute inserted or is taking out, so its events are written by INSERT … SELECT exactly once even when two
    recomputes run at once."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_customer", "customer_id"),)

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(8), default="rules")  # MEMBER_SOURCES
    entry_run: Mapped[int | None] = mapped_column(BigInteger)
    exit_run: Mapped[int | None] = mapped_column(BigInteger)

    customer: Mapped[Customer] = relationship()


class SegmentExclusion(Base):
    """A customer a person took out of a segment: the conditions do not put them back until someone adds them by
    hand (which deletes this row) or clears the exclusion."""

    __tablename__ = "segment_exclusions"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentEvent(Base):
    """Append-only feed of a segment: ``entered``/``left`` (the conditions), ``added``/``removed`` (a person,
    ``actor_id``); ``cause`` says what moved them ("regras", "pedido", "manual"…)."""

    __tablename__ = "segment_events"
    __table_args__ = (
        Index("ix_segment_events_segment_id", "segment_id", "id"),
        Index("ix_segment_events_customer", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # EVENT_KINDS
    cause: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SegmentCount(Base):
    """How many members a segment had on a day (the last count written that day): the segment's small chart.
    Written by each scheduled recompute, so the chart never aggregates the event feed."""

    __tablename__ = "segment_counts"

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    members: Mapped[int] = mapped_column(Integer)
