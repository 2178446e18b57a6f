"""Every WhatsApp message in and out, with its delivery status."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, enum_column, utcnow
from models.people import Customer


class Direction(str, enum.Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(str, enum.Enum):
    RECEIVED = "received"  # inbound
    PENDING = "pending"  # stored, provider not called yet
    OUTBOX = "outbox"  # outbox mode: kept for the simulator, never sent
    BLOCKED = "blocked"  # refused before sending (opt-out, 24 h window...); reason in error_reason
    UNKNOWN = "unknown"  # the worker died between the provider call and the commit
    ACCEPTED = "accepted"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"


# Delivery progress only moves forward; failed and undelivered are final.
STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.PENDING: 0,
    MessageStatus.UNKNOWN: 0,
    MessageStatus.ACCEPTED: 1,
    MessageStatus.QUEUED: 2,
    MessageStatus.SENDING: 3,
    MessageStatus.SENT: 4,
    MessageStatus.DELIVERED: 5,
    MessageStatus.READ: 6,
}
FINAL_STATUSES = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.BLOCKED, MessageStatus.OUTBOX})


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    # What produced it: shopper, bot, recovery, seller, system.
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="")
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    content_sid: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[dict | None] = mapped_column(JSONType)
    automated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Inbound only: the opt-out/opt-in this message applied ("opt_out", "opt_in"), kept for reprocessing.
    consent: Mapped[str | None] = mapped_column(String(8))
    # Inbound only: when the conversation engine handled it. Still empty some minutes later means its job was
    # lost (see bot.jobs.sweep_unprocessed_inbound).
    processed_at: Mapped[datetime | None]
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Guards against sending the same logical message twice (e.g. "recovery-attempt-42").
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus), index=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    error_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship()
