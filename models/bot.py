"""What the merchant configures for the bot, and what the bot records: FAQ, text overrides, handoff requests."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, enum_column, utcnow
from models.people import Customer


class FaqEntry(Base):
    """An answer the bot gives when a shopper asks about a topic (frete, pagamento, trocas, horário...)."""

    __tablename__ = "faq_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    # Words and phrases that point to this topic, matched accent- and typo-tolerantly.
    keywords: Mapped[list[str]] = mapped_column(JSONType, default=list)
    answer: Mapped[str] = mapped_column(Text)
    # Questions shoppers ask about the topic, in their words (one per line on the form): the intent model's
    # training examples.
    examples: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BotText(Base):
    """A merchant's override of one template under templates/messages/ (key = file name without .txt)."""

    __tablename__ = "bot_texts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class HandoffStatus(str, enum.Enum):
    OPEN = "open"  # waiting for a seller
    ASSIGNED = "assigned"  # a seller holds the customer
    CLOSED = "closed"


class HandoffRequest(Base):
    """A shopper asked for a person. While open or assigned, automated recovery is paused for them."""

    __tablename__ = "handoff_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(40), default="asked_for_person")
    status: Mapped[HandoffStatus] = mapped_column(enum_column(HandoffStatus), default=HandoffStatus.OPEN, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship()
