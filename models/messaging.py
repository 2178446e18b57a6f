"""Every WhatsApp message in and out, with its delivery status, and the approved templates sent outside the
24-hour window."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONType, enum_column, utcnow
from models.people import Customer, User


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


class TemplateStatus(str, enum.Enum):
    """The provider's review state. Only APPROVED templates are ever sent."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    PAUSED = "paused"  # Meta pauses a template shoppers keep blocking or reporting
    DISABLED = "disabled"
    UNSUBMITTED = "unsubmitted"  # Twilio: content created but never sent to WhatsApp for approval
    REMOVED = "removed"  # no longer listed by the provider (kept: sent messages refer to it)


class WhatsAppTemplate(Base):
    """A WhatsApp message template as the provider lists it (Twilio Content API or Meta), synced by
    ``channel.template_sync``. Outside the 24-hour customer-service window only an approved one may be sent.

    ``placeholders`` lists, in order, where values go: ``{"key", "component", "index", "example"}`` with
    ``key`` the name the mapping uses (``"1"``, ``"2"`` for the body; ``"header:1"``, ``"button:0:1"`` for
    Meta's header and URL buttons; Twilio numbers all its variables ``"1"``…``"n"`` across body and buttons).
    """

    __tablename__ = "whatsapp_templates"
    __table_args__ = (UniqueConstraint("provider", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))  # twilio, meta, demo
    # Twilio's ContentSid (HX…) or Meta's template id.
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16), default="pt_BR")
    category: Mapped[str | None] = mapped_column(String(32))  # marketing, utility, authentication
    status: Mapped[TemplateStatus] = mapped_column(enum_column(TemplateStatus), default=TemplateStatus.PENDING)
    rejection_reason: Mapped[str | None] = mapped_column(String(255))
    header: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    footer: Mapped[str | None] = mapped_column(Text)
    placeholders: Mapped[list[dict]] = mapped_column(JSONType, default=list)
    buttons: Mapped[list[dict]] = mapped_column(JSONType, default=list)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def approved(self) -> bool:
        return self.status is TemplateStatus.APPROVED

    @property
    def keys(self) -> list[str]:
        return [p["key"] for p in self.placeholders]


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    # What produced it: shopper, bot, recovery, seller, system.
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="")
    media_count: Mapped[int] = mapped_column(Integer, default=0)
    content_sid: Mapped[str | None] = mapped_column(String(64))  # Twilio's ContentSid of template_id
    # The approved template this message is (or, inside the window, would fall back to) and its values by
    # placeholder key; ``body`` then holds the template's text as the shopper reads it.
    template_id: Mapped[int | None] = mapped_column(ForeignKey("whatsapp_templates.id"))
    content_variables: Mapped[dict | None] = mapped_column(JSONType)
    # How it went (or goes) out: "text" (free-form, inside the window) or "template". NULL for inbound.
    sent_as: Mapped[str | None] = mapped_column(String(16))
    # Reply buttons or a list (channel.interactive), sent as such where the provider supports it; the body
    # is the text version.
    interactive: Mapped[dict | None] = mapped_column(JSONType)
    automated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Inbound only: the opt-out/opt-in this message applied ("opt_out", "opt_in"), kept for reprocessing.
    consent: Mapped[str | None] = mapped_column(String(8))
    # Inbound only: when the conversation engine handled it. Still empty some minutes later means its job was
    # lost (see bot.jobs.sweep_unprocessed_inbound).
    processed_at: Mapped[datetime | None]
    # Twilio's MessageSid or Meta's wamid (longer).
    provider_sid: Mapped[str | None] = mapped_column(String(128), unique=True)
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
    # The person (seller, manager, admin) who wrote an outbound message from the console or the seller app; NULL
    # for the bot, the recoverer and inbound messages.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    customer: Mapped[Customer] = relationship()
    template: Mapped[WhatsAppTemplate | None] = relationship()
    author: Mapped[User | None] = relationship()
