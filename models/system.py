"""Small key/value facts about the installation itself (e.g. that it holds demo data)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class SystemFlag(Base):
    __tablename__ = "system_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookSecret(Base):
    """A webhook signing secret the merchant rotates from the console (the shop's), kept encrypted with a key
    derived from SECRET_KEY (core.secret_box). After a rotation the previous secret is still accepted for a
    while, so events the shop signed before the merchant pasted the new one are not lost."""

    __tablename__ = "webhook_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_valid_until: Mapped[datetime | None]
    hint: Mapped[str] = mapped_column(String(8))  # the last characters, to tell secrets apart on the page
    rotated_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
