"""Who may do what, and which rows they reach: the one place every page, API endpoint and CLI asks.

A user is one of six kinds (``kind_of``):

* ``admin``: everything, in every branch.
* ``brand_manager`` (a manager bound to no branch): runs the whole brand — the recoverer, coupons, the bot's texts,
  the CRM rules, the catalog — and the people and opportunities of every branch.
* ``branch_manager`` (a manager bound to one branch): that branch's sellers, opportunities, customers and results;
  reads the brand's dashboard and catalog; changes nothing that applies to the whole brand.
* ``brand_backoffice`` / ``branch_backoffice``: create and follow opportunities and read results and
  conversations, of every branch or of their own; they manage no people and no settings.
* ``seller``: their own queue, opportunities and customers.

Row scope (``customer_clause``, ``opportunity_clause``, ``seller_clause``) is a SQL condition, so lists, counts
and single-row lookups all use the same rule. A branch's customers are those the branch holds: tagged with the
branch, owned by one of its sellers, with an opportunity one of its sellers holds, or (nobody's yet) whose phone
area code (DDD) the branch serves. A row outside a user's scope is answered like a row that does not exist (404).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true, union
from sqlalchemy.orm import Session

from models import Customer, Opportunity, Role, Store, User


class Kind(str, enum.Enum):
    ADMIN = "admin"
    BRAND_MANAGER = "brand_manager"
    BRANCH_MANAGER = "branch_manager"
    BRAND_BACKOFFICE = "brand_backoffice"
    BRANCH_BACKOFFICE = "branch_backoffice"
    SELLER = "seller"


def kind_of(user: User) -> Kind:
    if user.role is Role.ADMIN:
        return Kind.ADMIN
    if user.role is Role.SELLER:
        return Kind.SELLER
    if user.role is Role.MANAGER:
        return Kind.BRAND_MANAGER if user.store_id is None else Kind.BRANCH_MANAGER
    return Kind.BRAND_BACKOFFICE if user.store_id is None else Kind.BRANCH_BACKOFFICE


class Action(str, enum.Enum):
    CONFIGURE_BRAND = "configure_brand"  # recoverer settings and message, coupons, bot texts and FAQ, CRM rules, catalog import
    READ_DASHBOARD = "read_dashboard"  # the recoverer's aggregate results (console dashboard, /api/recovery/stats)
    READ_CATALOG = "read_catalog"
    READ_CONVERSATIONS = "read_conversations"  # the console's conversations and opt-out list, scoped to customers
    MANAGE_PEOPLE = "manage_people"  # sellers (capacity, activation) and new users, scoped to the branch
    WORK_OPPORTUNITIES = "work_opportunities"  # the office's opportunity list, creation, reassignment
    READ_OPPORTUNITIES = "read_opportunities"  # the API's list and PATCH (sellers: their own)
    READ_CUSTOMERS = "read_customers"  # the customer 360 (scoped)
    READ_RESULTS = "read_results"  # opportunity results and seller ranking (scoped to the branch)
    USE_SELLER_APP = "use_seller_app"  # /vendedor/
    OWN_ACCOUNT = "own_account"  # change one's own password, sign out
    # Write to a shopper through the store's WhatsApp number (console conversation, seller's opportunity), scoped to
    # the customers the user may see. Back office users follow conversations but do not answer them.
    REPLY_TO_CUSTOMERS = "reply_to_customers"


_OFFICE = frozenset({Kind.ADMIN, Kind.BRAND_MANAGER, Kind.BRANCH_MANAGER, Kind.BRAND_BACKOFFICE, Kind.BRANCH_BACKOFFICE})
_EVERYONE = _OFFICE | {Kind.SELLER}

# The table the route × role test compares every endpoint against.
PERMISSIONS: dict[Action, frozenset[Kind]] = {
    Action.CONFIGURE_BRAND: frozenset({Kind.ADMIN, Kind.BRAND_MANAGER}),
    Action.READ_DASHBOARD: _OFFICE,
    Action.READ_CATALOG: _OFFICE,
    Action.READ_CONVERSATIONS: _OFFICE,
    Action.MANAGE_PEOPLE: frozenset({Kind.ADMIN, Kind.BRAND_MANAGER, Kind.BRANCH_MANAGER}),
    Action.WORK_OPPORTUNITIES: _OFFICE,
    Action.READ_OPPORTUNITIES: _EVERYONE,
    Action.READ_CUSTOMERS: _EVERYONE,
    Action.READ_RESULTS: _OFFICE,
    Action.USE_SELLER_APP: frozenset({Kind.SELLER}),
    Action.OWN_ACCOUNT: _EVERYONE,
    Action.REPLY_TO_CUSTOMERS: frozenset({Kind.ADMIN, Kind.BRAND_MANAGER, Kind.BRANCH_MANAGER, Kind.SELLER}),
}


def may(user: User | None, action: Action) -> bool:
    return user is not None and bool(getattr(user, "active", False)) and kind_of(user) in PERMISSIONS[action]


def branch_of(user: User) -> int | None:
    """The branch a user is confined to, or None for brand-wide users (admins, brand managers and backoffice).
    Sellers are confined further, to their own rows."""
    return None if kind_of(user) in (Kind.ADMIN, Kind.BRAND_MANAGER, Kind.BRAND_BACKOFFICE) else user.store_id


# --- row scope --------------------------------------------------------------------------------------------

def _branch_sellers(store_id: int):
    return select(User.id).where(User.role == Role.SELLER, User.store_id == store_id)


def branch_ddds(session: Session, store_id: int) -> set[str]:
    """The area codes a branch serves: its own, and those its sellers cover."""
    ddds = {session.scalar(select(Store.ddd).where(Store.id == store_id))} - {None}
    for region in session.scalars(select(User.region_ddds).where(User.role == Role.SELLER, User.store_id == store_id)):
        ddds.update(d for d in (region or []) if isinstance(d, str))
    return ddds


def customer_clause(session: Session, user: User) -> ColumnElement[bool]:
    """The customers ``user`` may see, as a condition on ``Customer``."""
    kind = kind_of(user)
    if kind is Kind.SELLER:
        holds = exists().where(Opportunity.customer_id == Customer.id, Opportunity.seller_id == user.id)
        return or_(Customer.owner_seller_id == user.id, holds)
    store_id = branch_of(user)
    if store_id is None:
        return true()
    sellers = _branch_sellers(store_id)
    held = exists().where(Opportunity.customer_id == Customer.id, Opportunity.seller_id.in_(sellers))
    clauses = [Customer.store_id == store_id, Customer.owner_seller_id.in_(sellers), held]
    ddds = branch_ddds(session, store_id)
    if ddds:
        clauses.append(and_(Customer.store_id.is_(None), Customer.owner_seller_id.is_(None), Customer.ddd.in_(ddds)))
    return or_(*clauses)


def opportunity_clause(session: Session, user: User) -> ColumnElement[bool]:
    """The opportunities ``user`` may see: a seller's own; in a branch, those its sellers hold and the unassigned
    ones of its customers."""
    kind = kind_of(user)
    if kind is Kind.SELLER:
        return Opportunity.seller_id == user.id
    store_id = branch_of(user)
    if store_id is None:
        return true()
    branch_customers = select(Customer.id).where(customer_clause(session, user))
    return or_(Opportunity.seller_id.in_(_branch_sellers(store_id)),
               and_(Opportunity.seller_id.is_(None), Opportunity.customer_id.in_(branch_customers)))


def seller_clause(user: User) -> ColumnElement[bool]:
    """The sellers ``user`` manages or may hand work to."""
    store_id = branch_of(user)
    if kind_of(user) is Kind.SELLER:
        return false()
    if store_id is None:
        return User.role == Role.SELLER
    return and_(User.role == Role.SELLER, User.store_id == store_id)


def visible_opportunities(session: Session, user: User):
    return select(Opportunity).where(opportunity_clause(session, user))


# A seller's customers are listed by id up to this many (a portfolio is a few hundred): PostgreSQL then reads
# them by primary key instead of testing the OR of owner and held opportunity on every customer.
MAX_LISTED_IDS = 10_000


def listed_customer_ids(session: Session, user: User) -> list[int] | None:
    """A seller's customers (``customer_clause``) as a list of ids, read through two indexes; None for the users
    whose scope stays a condition (branch and brand-wide users, whose customers are many) or a seller beyond
    ``MAX_LISTED_IDS``."""
    if kind_of(user) is not Kind.SELLER:
        return None
    ids = list(session.scalars(union(select(Customer.id).where(Customer.owner_seller_id == user.id),
                                     select(Opportunity.customer_id).where(Opportunity.seller_id == user.id))
                               .limit(MAX_LISTED_IDS + 1)))
    return ids if len(ids) <= MAX_LISTED_IDS else None


def visible_customers(session: Session, user: User):
    """The customers ``user`` may see, as a SELECT of Customer (the same rule as ``may_see_customer``): a seller's
    own portfolio and the customers they hold an opportunity for; a branch's customers; every customer for
    brand-wide users."""
    ids = listed_customer_ids(session, user)
    return select(Customer).where(Customer.id.in_(ids) if ids is not None else customer_clause(session, user))


def may_see_customer(session: Session, user: User, customer: Customer) -> bool:
    return bool(session.scalar(select(exists().where(Customer.id == customer.id, customer_clause(session, user)))))


def may_reply_to(session: Session, user: User, customer: Customer) -> bool:
    """May ``user`` write to ``customer`` through the store's number: a kind that replies, and a customer they see
    (a seller: their portfolio and the customers they hold an opportunity for)."""
    return may(user, Action.REPLY_TO_CUSTOMERS) and may_see_customer(session, user, customer)


def may_hand_to(user: User, seller: User) -> bool:
    """May ``user`` give work to ``seller`` (reassignment, redistribution on deactivation)?"""
    if kind_of(user) is Kind.SELLER or seller.role is not Role.SELLER:
        return False
    store_id = branch_of(user)
    return store_id is None or seller.store_id == store_id


# --- people -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UserPolicy:
    """What kind of user ``creator`` may create: which roles, in which branches, and whether a brand-wide user
    (no branch) is allowed."""

    roles: tuple[Role, ...]
    store_ids: frozenset[int] | None  # None: any branch
    brand_wide_allowed: bool

    def problems(self, role: Role | None, store_id: int | None) -> dict[str, str]:
        errors = {}
        if role not in self.roles:
            errors["role"] = "papel não permitido para você"
        if store_id is None:
            if not self.brand_wide_allowed:
                errors["store_id"] = "escolha a loja do novo usuário"
        elif self.store_ids is not None and store_id not in self.store_ids:
            errors["store_id"] = "loja inválida"
        return errors


def user_policy(creator: User) -> UserPolicy:
    kind = kind_of(creator)
    if kind is Kind.ADMIN:
        return UserPolicy(tuple(Role), None, True)
    if kind is Kind.BRAND_MANAGER:
        # A brand manager staffs every branch and may add brand-wide backoffice, but not other managers or admins.
        return UserPolicy((Role.SELLER, Role.BACKOFFICE), None, True)
    if kind is Kind.BRANCH_MANAGER:
        # A branch manager's users are confined to the branch: a user without one would see every branch.
        return UserPolicy((Role.SELLER, Role.BACKOFFICE), frozenset({creator.store_id}), False)
    return UserPolicy((), frozenset(), False)
