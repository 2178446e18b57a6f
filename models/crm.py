"""Opportunities: a customer handed to a human seller for a commercial contact, and its append-only history."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Float, ForeignKey, event, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import ZERO, Base, JSONType, enum_column, utcnow
from models.people import Customer, User

DEFAULT_SUGGESTED_MESSAGE = (
    "Oi, {{ nome }}! Aqui é {{ vendedor }}, da {{ loja }}. "
    "{% if produtos %}Vi que você se interessou por {{ produtos }}. {% endif %}"
    "Posso te ajudar a escolher? Se preferir não receber mensagens minhas, é só me avisar."
)


class OpportunityType(str, enum.Enum):
    BEHAVIOR = "behavior"  # something the shopper did: abandoned cart, asked for a person, ignored recovery...
    SEGMENT = "segment"  # a campaign over a list of customers
    MANUAL = "manual"  # created by a manager or backoffice user, or through the API
    CONTACT = "contact"  # a seller reached out to a portfolio customer without an opportunity


class OpportunityStatus(str, enum.Enum):
    BACKLOG = "backlog"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    FINISHED = "finished"


OPEN_STATUSES = (OpportunityStatus.BACKLOG, OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS)


class OpportunityResult(str, enum.Enum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class CrmSettings(Base):
    """The brand's rules for opportunities. One row, id=1."""

    __tablename__ = "crm_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Quarantine: a customer contacted in the last N days gets no new automatic suggestion.
    quarantine_days: Mapped[int] = mapped_column(Integer, default=7)
    # A recovery message not converted after N hours becomes an opportunity; 0 turns that source off.
    recovery_followup_hours: Mapped[int] = mapped_column(Integer, default=24)
    # An order within N days after a seller's contact is attributed to that seller.
    attribution_days: Mapped[int] = mapped_column(Integer, default=7)
    default_deadline_hours: Mapped[int] = mapped_column(Integer, default=48)
    suggested_message: Mapped[str] = mapped_column(Text, default=DEFAULT_SUGGESTED_MESSAGE)
    # When a person answers shoppers (crm.hours: {"mon": [["09:00", "21:00"]], ...}); None: the default hours.
    opening_hours: Mapped[dict | None] = mapped_column(JSONType)
    # A handoff's opportunity is due this many minutes of opening hours after the shopper asked (5..1440).
    handoff_response_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default=text("30"))
    # Deadlines by opportunity type and priority, in hours of opening time (crm.opportunities.deadline_rules:
    # {"behavior": {"high": 4, "normal": 24, "low": 48}, ...}); None or a missing cell: the default rules.
    deadline_hours: Mapped[dict | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Opportunity(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        # At most one open opportunity per customer: a second source joins the open one instead.
        Index("uq_opportunities_open_customer", "customer_id", unique=True,
              sqlite_where=text("status != 'finished'"), postgresql_where=text("status != 'finished'")),
        Index("ix_opportunities_queue", "status", "priority", "created_at"),
        Index("ix_opportunities_seller_status", "seller_id", "status"),
        # "the customers a seller (or a branch's sellers) holds an opportunity for": the Clientes list's scope.
        Index("ix_opportunities_customer_seller", "customer_id", "seller_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    type: Mapped[OpportunityType] = mapped_column(enum_column(OpportunityType))
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[OpportunityStatus] = mapped_column(enum_column(OpportunityStatus), default=OpportunityStatus.BACKLOG)
    priority: Mapped[int] = mapped_column(Integer, default=2)  # 1 low, 2 normal, 3 high
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    campaign: Mapped[str | None] = mapped_column(String(120))
    message: Mapped[str | None] = mapped_column(Text)  # a manager's message; overrides the brand's suggestion
    recommended_skus: Mapped[list[str]] = mapped_column(JSONType, default=list)
    deadline: Mapped[datetime | None]
    result: Mapped[OpportunityResult | None] = mapped_column(enum_column(OpportunityResult))
    result_note: Mapped[str | None] = mapped_column(Text)
    # Where it came from (e.g. "handoff-12", "recovery-34"): a source fires at most once.
    source_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_requests.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship()
    seller: Mapped[User | None] = relationship(foreign_keys=[seller_id])
    events: Mapped[list["OpportunityEvent"]] = relationship(
        back_populates="opportunity", order_by="OpportunityEvent.id", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status is not OpportunityStatus.FINISHED


class OpportunityEvent(Base):
    """Append-only: every creation, assignment, status change and hand-over. Reports are computed from it."""

    __tablename__ = "opportunity_events"
    __table_args__ = (
        Index("ix_opportunity_events_seller_kind_at", "to_seller_id", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    kind: Mapped[str] = mapped_column(String(16))  # created, assigned, reassigned, status
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    from_seller_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_seller_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    detail: Mapped[str | None] = mapped_column(String(200))

    opportunity: Mapped[Opportunity] = relationship(back_populates="events")


class CustomerNote(Base):
    """A note on a customer, shared with everyone who can see them: one any user added (a feedback, a complaint,
    a visit, more contact data), or the note a seller typed when finishing an opportunity."""

    __tablename__ = "customer_notes"
    __table_args__ = (Index("ix_customer_notes_customer_created", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # NOTE_KINDS
    text: Mapped[str] = mapped_column(Text)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id", ondelete="SET NULL"),
                                                       unique=True)  # the finishing note of this opportunity
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship()


class CustomerMetrics(Base):
    """One customer's buying figures, kept by ``crm.metrics`` so the Clientes list filters and sorts 1 M customers
    by last purchase, revenue and churn risk through indexes (and segments read the same numbers). A cache of the
    orders: refreshed for customers whose orders changed within minutes, and for everyone daily (churn moves with
    time); no row yet means never refreshed, read as "no purchase"."""

    __tablename__ = "customer_metrics"
    # Each sort of the list walks one index backwards (…DESC, customer_id DESC): revenue here; last purchase and
    # risk, which are NULL for some customers, in hand-made indexes (models.migrate.UNMAPPED_INDEXES) because
    # PostgreSQL needs NULLS FIRST for a backward walk to give DESC NULLS LAST.
    __table_args__ = (Index("ix_customer_metrics_revenue", "revenue", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)  # live orders (created or paid), lifetime
    revenue: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=ZERO)  # their totals, lifetime
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    churn_index: Mapped[float | None] = mapped_column(Float)  # crm.churn; None for inactive customers
    churn_band: Mapped[str] = mapped_column(String(8), default="inativo")  # crm.churn.BANDS
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)


@event.listens_for(Customer, "after_insert")
def _metrics_row_for_a_new_customer(mapper, connection, target: Customer) -> None:
    """Every customer has a metrics row from the moment it exists (in the same transaction), so the list can
    join the figures instead of outer-joining them; ``crm.metrics`` fills them in."""
    connection.execute(CustomerMetrics.__table__.insert().values(
        customer_id=target.id, orders=0, revenue=ZERO, churn_band="inativo", refreshed_at=utcnow()))


# What a note is, as the Contato tab files it (the labels a seller reads are in web.formatting).
NOTE_KINDS = ("nota", "feedback", "reclamacao", "visita", "oportunidade")
