"""Stores (branches), customers (shoppers) and users (admins, managers, sellers, backoffice)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Integer, Numeric, String, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.phones import location_of

from models.base import Base, JSONType, enum_column, utcnow


class Store(Base):
    """A branch of the brand. A deployment serves one brand with any number of branches."""

    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    city: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str | None] = mapped_column(String(2))
    ddd: Mapped[str | None] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Role(str, enum.Enum):
    ADMIN = "admin"
    MANAGER = "manager"
    SELLER = "seller"
    BACKOFFICE = "backoffice"


class User(Base):
    """A person who logs in. Sellers carry their assignment settings (region, capacity, work pattern)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    seller_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    region_ddds: Mapped[list[str]] = mapped_column(JSONType, default=list)
    max_portfolio: Mapped[int] = mapped_column(Integer, default=300)
    # The seed's "limitador de sugestões": daily cap derived from these three.
    hours_per_day: Mapped[Decimal] = mapped_column(Numeric(4, 2), default=Decimal("8.00"))
    idle_share: Mapped[Decimal] = mapped_column(Numeric(3, 2), default=Decimal("0.30"))
    avg_conversation_minutes: Mapped[int] = mapped_column(Integer, default=15)
    last_assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    store: Mapped[Store | None] = relationship()

    # The interface Flask-Login expects of a signed-in user; only active users are ever loaded.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return str(self.id)


class Customer(Base):
    """A shopper, identified by an E.164 phone number."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str | None] = mapped_column(String(120))
    # As the shop last sent it (orders and carts from Shopify, Nuvemshop, WooCommerce or the store API carry it);
    # searched in the Clientes list. Never used to send anything.
    email: Mapped[str | None] = mapped_column(String(254))
    ddd: Mapped[str | None] = mapped_column(String(2), index=True)
    city: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str | None] = mapped_column(String(2))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"), index=True)  # a branch's customers
    owner_seller_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    opted_out_at: Mapped[datetime | None]
    # The bot asked "do you want to stop receiving our messages?" and the shopper has not answered yet: no
    # automated message meanwhile (channel.consent reads the answer).
    opt_out_asked_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    # What the bot last found for them: {"query": "tenis corrida 40", "products": [ids], "at": ISO time}. The
    # seller's suggestion offers it when there is no cart (the conversation's own state expires in Redis).
    last_search: Mapped[dict | None] = mapped_column(JSONType)
    # Meta's WhatsApp id for this shopper exactly as Meta sent it (a Brazilian mobile may lack the ninth digit):
    # replies go to it. NULL until they write through Meta.
    wa_id: Mapped[str | None] = mapped_column(String(20))
    # The shopper asked WhatsApp to stop marketing messages from this business (Meta's user_preferences
    # webhook, or error 131050): no recovery or campaign message; replies in a chat still go.
    marketing_opted_out_at: Mapped[datetime | None]
    # When a person (seller, manager) last wrote to the shopper from the console or the seller app: the bot stays
    # silent until HUMAN_PAUSE_MINUTES pass without another human message (bot.human_replies).
    human_replied_at: Mapped[datetime | None]
    # Created by the development simulator (outbox mode): the only conversations the simulator may show.
    simulated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Segments' date conditions ("aniversariantes do mês"); set by the shop's events or the API when known.
    birthday: Mapped[date | None] = mapped_column(Date)
    # The campaign/referral that brought the customer (a UTM source or referral id), as the shop's events send it:
    # segments filter on it.
    source: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Indexed: segments.jobs.refresh_changed re-evaluates the customers changed since its last run.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)

    owner_seller: Mapped[User | None] = relationship(foreign_keys=[owner_seller_id])

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


class ApiToken(Base):
    """A bearer token for the JSON API. Only its SHA-256 is stored; the token is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class UserSession(Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored. Deleting or revoking the
    row ends the session wherever the cookie was copied to (logout, password change, deactivation)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    user: Mapped[User] = relationship()


def upsert_customer(session: Session, phone: str, name: str | None, email: str | None = None) -> Customer:
    """The customer with this phone, created with its DDD location if new (the shop's latest e-mail kept).
    Safe against a concurrent insert."""
    customer = session.scalar(select(Customer).where(Customer.phone == phone))
    if customer is not None:
        if name and not customer.name:
            customer.name = name
        if email and customer.email != email:
            customer.email = email
        return customer
    location = location_of(phone)
    customer = Customer(phone=phone, name=name, email=email, ddd=location.ddd, city=location.city,
                        state=location.state, tags=[])
    try:
        with session.begin_nested():
            session.add(customer)
    except IntegrityError:
        customer = session.scalar(select(Customer).where(Customer.phone == phone))
        if customer is None:
            raise
    return customer
