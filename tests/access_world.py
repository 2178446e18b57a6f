"""A small brand with two branches and a user of every kind, for the access tests (in-process and black-box).

São Paulo (DDD 11) and Rio (DDD 21); each branch has a manager, a seller, a customer the seller owns with an open
opportunity and a conversation, and a customer nobody owns with a backlog opportunity. Brand-wide: an admin, a
brand manager and a brand back office; São Paulo also has its own back office.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from core.security import hash_password
from crm.assignment import assign
from crm.opportunities import create
from crm.users import issue_api_token
from models import (
    CouponKind, CouponRule, Direction, FaqEntry, Message, MessageStatus, OpportunityType, Role, Store, User, utcnow,
)
from tests.crm_helpers import TZ, customer, make_store

PASSWORD = "uma-senha-bem-longa"

# kind -> (e-mail, role, branch code or None)
PEOPLE = {
    "admin": ("admin@acesso.loja", Role.ADMIN, None),
    "brand_manager": ("marca@acesso.loja", Role.MANAGER, None),
    "branch_manager": ("gerente.sp@acesso.loja", Role.MANAGER, "SP"),
    "other_branch_manager": ("gerente.rj@acesso.loja", Role.MANAGER, "RJ"),
    "brand_backoffice": ("apoio@acesso.loja", Role.BACKOFFICE, None),
    "branch_backoffice": ("apoio.sp@acesso.loja", Role.BACKOFFICE, "SP"),
    "seller": ("vend.sp@acesso.loja", Role.SELLER, "SP"),
    "other_seller": ("vend.rj@acesso.loja", Role.SELLER, "RJ"),
}


@dataclass
class World:
    stores: dict[str, Store]
    users: dict[str, User]
    customers: dict[str, object]
    opportunities: dict[str, object]
    rule: CouponRule
    faq: FaqEntry
    tokens: dict[str, str] = field(default_factory=dict)


def build_world(session: Session, *, with_tokens: bool = True) -> World:
    stores = {"SP": make_store(session, "SP", city="São Paulo", state="SP", ddd="11"),
              "RJ": make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21")}
    password_hash = hash_password(PASSWORD)
    users = {}
    for kind, (email, role, branch) in PEOPLE.items():
        store = stores[branch] if branch else None
        users[kind] = User(email=email, name=kind.replace("_", " ").title(), role=role, password_hash=password_hash,
                           store_id=store.id if store else None, active=True,
                           region_ddds=[store.ddd] if role is Role.SELLER and store else [],
                           seller_code={"seller": "V-SP", "other_seller": "V-RJ"}.get(kind))
        session.add(users[kind])
    session.flush()
    now = utcnow()
    customers = {
        "own": customer(session, "+5511999990001", "Ana Paulista"),  # SP, the SP seller's
        "other": customer(session, "+5521988887777", "Bia Carioca"),  # RJ, the RJ seller's
        "own_backlog": customer(session, "+5511977776666", "Caio Paulista"),  # SP by DDD, nobody's yet
        "other_backlog": customer(session, "+5521966665555", "Duda Carioca"),  # RJ by DDD, nobody's yet
    }
    opportunities = {}
    for key, who in (("own", "own"), ("other", "other"), ("own_backlog", "own_backlog"),
                     ("other_backlog", "other_backlog")):
        made = create(session, customers[who], type=OpportunityType.MANUAL, reason="manual", now=now)
        opportunities[key] = made.opportunity
    session.flush()
    assert assign(session, opportunities["own"], now, TZ).id == users["seller"].id
    assert assign(session, opportunities["other"], now, TZ).id == users["other_seller"].id
    for key in ("own", "other"):
        c = customers[key]
        session.add(Message(customer_id=c.id, direction=Direction.INBOUND, kind="shopper", body=f"oi, sou {c.name}",
                            status=MessageStatus.RECEIVED, created_at=now - timedelta(minutes=5)))
    rule = CouponRule(name="Volta 10%", kind=CouponKind.PERCENT, value=Decimal("10"), min_order=Decimal("0"))
    faq = FaqEntry(topic="frete", title="Frete", keywords=["frete"], answer="Frete grátis acima de R$ 299.")
    session.add_all([rule, faq])
    session.flush()
    world = World(stores, users, customers, opportunities, rule, faq)
    if with_tokens:
        world.tokens = {kind: issue_api_token(session, email) for kind, (email, _, _) in PEOPLE.items()}
    session.commit()
    return world
