"""Conditions to SQL, and the same conditions in plain Python.

``to_sql`` turns a condition (``segments.conditions``) into one SQLAlchemy boolean over ``Customer`` joined with
``CustomerMetrics`` (``customer_query`` builds that join); orders, carts and recovery attempts are EXISTS
subqueries correlated to the customer, so a segment is one statement however it is built, on SQLite and PostgreSQL.
Every leaf is two-valued (never SQL NULL: a missing value is guarded), so ``NOT`` of a condition is its complement —
what "left because the entry conditions no longer hold" needs.

``matches`` evaluates a condition over one customer's facts (``load_facts``) in Python. The two must agree; the
tests check it on random condition trees over random stores.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

from sqlalchemy import and_, extract, false, func, literal, or_, select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from models import (
    AttemptStatus, Cart, CartItem, CartStatus, Customer, CustomerMetrics, Order, OrderItem, OrderStatus, Product,
    RecoveryAttempt, Variant,
)
from segments.conditions import VARIANT_ATTRIBUTES, validate

DAY = timedelta(days=1)
LIVE = (OrderStatus.CREATED, OrderStatus.PAID)


def customer_query(*columns):
    """``SELECT columns FROM customers JOIN customer_metrics``: what ``to_sql``'s expression is written over."""
    return select(*(columns or (Customer.id,))).select_from(Customer).join(
        CustomerMetrics, CustomerMetrics.customer_id == Customer.id)


def day_start(day: date, tz: tzinfo) -> datetime:
    """Midnight of ``day`` in the store's time zone, as an aware instant."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)


def anniversary_codes(now: datetime, days: int, tz: tzinfo) -> list[int]:
    """month*100+day of every calendar day from today to ``days`` days ahead (a 29 February birthday counts on
    the 28th in a year without one)."""
    today = now.astimezone(tz).date()
    codes = set()
    for offset in range(days + 1):
        day = today + timedelta(days=offset)
        codes.add(day.month * 100 + day.day)
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            codes.add(229)
    return sorted(codes)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _present(column, expression):
    return and_(column.is_not(None), expression)


def _optional(column, op: str, value):
    """=, !=, in, not_in, is_set, is_not_set on a column that may be NULL (missing: only != / not_in hold)."""
    if op == "is_set":
        return column.is_not(None)
    if op == "is_not_set":
        return column.is_(None)
    if op == "=":
        return _present(column, column == value)
    if op == "!=":
        return or_(column.is_(None), column != value)
    if op == "in":
        return _present(column, column.in_(value))
    if op == "not_in":
        return or_(column.is_(None), column.not_in(value))
    raise AssertionError(op)


def _compare(column, op: str, value):
    if op == "between":
        return and_(column >= value[0], column <= value[1])
    return {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__, ">": column.__gt__,
            ">=": column.__ge__}[op](value)


def _days_since(op: str, value, now: datetime):
    last = CustomerMetrics.last_purchase_at
    if op in ("is_set", "is_not_set"):
        return _optional(last, op, None)

    def at_least(n: int):  # floor((now - last) / day) >= n
        return last <= now - n * DAY

    def below(n: int):
        return last > now - n * DAY

    if op == "!=":
        return or_(last.is_(None), below(value), at_least(value + 1))
    expression = {"=": lambda: and_(at_least(value), below(value + 1)), "<": lambda: below(value),
                  "<=": lambda: below(value + 1), ">": lambda: at_least(value + 1), ">=": lambda: at_least(value),
                  "between": lambda: and_(at_least(value[0]), below(value[1] + 1))}[op]()
    return _present(last, expression)


def _dates(column, op: str, value, now: datetime, tz: tzinfo):
    if op in ("is_set", "is_not_set"):
        return _optional(column, op, None)
    if op == "within_days":
        return _present(column, column >= now - value * DAY)
    if op == "before":
        return _present(column, column < day_start(date.fromisoformat(value), tz))
    if op == "after":
        return _present(column, column >= day_start(date.fromisoformat(value) + DAY, tz))
    low, high = (date.fromisoformat(v) for v in value)
    return _present(column, and_(column >= day_start(low, tz), column < day_start(high + DAY, tz)))


def _birthday(op: str, value, now: datetime, tz: tzinfo):
    column = Customer.birthday
    if op in ("is_set", "is_not_set"):
        return _optional(column, op, None)
    if op == "month":
        return _present(column, extract("month", column) == value)
    code = extract("month", column) * 100 + extract("day", column)
    return _present(column, code.in_(anniversary_codes(now, value, tz)))


def _tags(op: str, value, dialect: str):
    if dialect == "postgresql":
        tags = type_coerce(Customer.tags, JSONB)
        if op in ("is_set", "is_not_set"):
            filled = func.coalesce(func.jsonb_array_length(tags), 0) > 0
            return filled if op == "is_set" else ~filled
        has = func.coalesce(tags.contains([value]), false())
    else:
        if op in ("is_set", "is_not_set"):
            filled = func.coalesce(func.json_array_length(Customer.tags), 0) > 0
            return filled if op == "is_set" else ~filled
        each = func.json_each(Customer.tags).table_valued("value")
        has = select(literal(1)).select_from(each).where(each.c.value == value).exists()
    return has if op == "contains" else ~has


def _product_filter(value: dict, variant_column):
    if "product" in value:
        return Product.key == value["product"]
    if "category" in value:
        return Product.category == value["category"]
    if "brand" in value:
        return Product.brand == value["brand"]
    name = value["attribute"]
    if name.lower() in VARIANT_ATTRIBUTES:
        return variant_column(VARIANT_ATTRIBUTES[name.lower()]) == value["equals"]
    return Product.attributes[name].as_string() == value["equals"]


def _bought(value: dict, now: datetime):
    query = (select(literal(1)).select_from(Order).join(OrderItem, OrderItem.order_id == Order.id)
             .join(Variant, Variant.sku == OrderItem.sku).join(Product, Product.id == Variant.product_id)
             .where(Order.customer_id == Customer.id, Order.status.in_(LIVE),
                    _product_filter(value, lambda name: getattr(Variant, name))))
    if value.get("within_days") is not None:
        query = query.where(Order.placed_at >= now - value["within_days"] * DAY)
    return query.exists()


def _in_cart(value: dict, now: datetime):
    query = (select(literal(1)).select_from(Cart).join(CartItem, CartItem.cart_id == Cart.id)
             .join(Product, Product.id == CartItem.product_id)
             .where(Cart.customer_id == Customer.id, Cart.status != CartStatus.CONVERTED))
    if "attribute" in value and value["attribute"].lower() in VARIANT_ATTRIBUTES:
        query = query.join(Variant, Variant.id == CartItem.variant_id)
    query = query.where(_product_filter(value, lambda name: getattr(Variant, name)))
    if value.get("within_days") is not None:
        query = query.where(Cart.updated_at >= now - value["within_days"] * DAY)
    return query.exists()


def _consent(state: str):
    if state == "opted_out":
        return Customer.opted_out_at.is_not(None)
    if state == "marketing_opted_out":
        return Customer.marketing_opted_out_at.is_not(None)
    return and_(Customer.opted_out_at.is_(None), Customer.marketing_opted_out_at.is_(None))


def _outcome(state: str):
    recovered = select(literal(1)).where(RecoveryAttempt.customer_id == Customer.id,
                                         RecoveryAttempt.recovered_order_id.is_not(None)).exists()
    sent = select(literal(1)).where(RecoveryAttempt.customer_id == Customer.id,
                                    RecoveryAttempt.status == AttemptStatus.SENT).exists()
    if state == "recovered":
        return recovered
    if state == "sent_not_recovered":
        return and_(sent, ~recovered)
    return and_(~sent, ~recovered)


def _choice(op: str, value, one):
    if op == "=":
        return one(value)
    if op == "!=":
        return ~one(value)
    if op == "in":
        return or_(*(one(v) for v in value))
    return and_(*(~one(v) for v in value))


TEXT_COLUMNS = {"source": Customer.source, "city": Customer.city, "state": Customer.state, "ddd": Customer.ddd,
                "owner": Customer.owner_seller_id, "branch": Customer.store_id}
DATE_COLUMNS = {"first_purchase": CustomerMetrics.first_purchase_at, "last_purchase": CustomerMetrics.last_purchase_at,
                "customer_since": Customer.created_at}


def _leaf_sql(leaf: dict, now: datetime, dialect: str, tz: tzinfo):
    field, op, value = leaf["field"], leaf["op"], leaf.get("value")
    if field in TEXT_COLUMNS:
        return _optional(TEXT_COLUMNS[field], op, value)
    if field == "tag":
        return _tags(op, value, dialect)
    if field == "days_since_last_purchase":
        return _days_since(op, value, now)
    if field == "orders_count":
        return _compare(CustomerMetrics.orders, op, value)
    if field == "total_revenue":
        return _compare(CustomerMetrics.revenue, op, _money(value))
    if field == "average_ticket":
        has = CustomerMetrics.orders > 0
        if op in ("is_set", "is_not_set"):
            return has if op == "is_set" else ~has
        # revenue / orders compared without dividing: revenue against value × orders, exact in NUMERIC.
        revenue, orders = CustomerMetrics.revenue, CustomerMetrics.orders
        if op == "between":
            low, high = _money(value)
            return and_(has, revenue >= literal(low) * orders, revenue <= literal(high) * orders)
        return and_(has, _compare(revenue, op, literal(_money(value)) * orders))
    if field in DATE_COLUMNS:
        return _dates(DATE_COLUMNS[field], op, value, now, tz)
    if field == "birthday":
        return _birthday(op, value, now, tz)
    if field == "churn_band":
        return _choice(op, value, lambda v: CustomerMetrics.churn_band == v)
    if field == "consent":
        return _choice(op, value, _consent)
    if field == "recovery_outcome":
        return _choice(op, value, _outcome)
    if field in ("bought", "left_in_cart"):
        found = _bought(value, now) if field == "bought" else _in_cart(value, now)
        return found if op == "contains" else ~found
    raise AssertionError(field)


def _money(value):
    return [Decimal(v) for v in value] if isinstance(value, list) else Decimal(value)


def to_sql(condition: dict, now: datetime, dialect: str, tz: tzinfo = timezone.utc):
    """One boolean over ``customer_query()``'s row (validates first: a stored condition is re-checked)."""
    return _node_sql(validate(condition), now, dialect, tz)


def _node_sql(node: dict, now: datetime, dialect: str, tz: tzinfo):
    if "all" in node:
        return and_(true(), *(_node_sql(child, now, dialect, tz) for child in node["all"]))
    if "any" in node:
        return or_(false(), *(_node_sql(child, now, dialect, tz) for child in node["any"]))
    return _leaf_sql(node, now, dialect, tz)


def matching_ids(session: Session, condition: dict, now: datetime, tz: tzinfo = timezone.utc,
                 customer_ids=None) -> set[int]:
    """The ids of the customers the condition holds for (all of them, or among ``customer_ids``)."""
    query = customer_query().where(to_sql(condition, now, session.get_bind().dialect.name, tz))
    if customer_ids is not None:
        query = query.where(Customer.id.in_(list(customer_ids)))
    return set(session.scalars(query))


# --- the same in Python ---------------------------------------------------------------------------------

def load_facts(session: Session, customer_ids=None) -> dict[int, dict]:
    """Each customer's facts as ``matches`` reads them (a handful of queries; for tests and previews of a few
    customers, not for whole stores)."""
    query = customer_query(Customer, CustomerMetrics)
    if customer_ids is not None:
        query = query.where(Customer.id.in_(list(customer_ids)))
    facts: dict[int, dict] = {}
    for customer, figures in session.execute(query):
        facts[customer.id] = {
            "tags": list(customer.tags or []), "owner": customer.owner_seller_id, "branch": customer.store_id,
            "source": customer.source, "city": customer.city, "state": customer.state, "ddd": customer.ddd,
            "birthday": customer.birthday, "customer_since": customer.created_at,
            "opted_out_at": customer.opted_out_at, "marketing_opted_out_at": customer.marketing_opted_out_at,
            "orders": figures.orders, "revenue": Decimal(figures.revenue), "churn_band": figures.churn_band,
            "first_purchase": figures.first_purchase_at, "last_purchase": figures.last_purchase_at,
            "purchases": [], "cart_items": [], "recovery_sent": False, "recovered": False}
    ids = list(facts)
    if not ids:
        return facts
    bought = (select(Order.customer_id, Order.placed_at, Product, Variant).select_from(Order)
              .join(OrderItem, OrderItem.order_id == Order.id).join(Variant, Variant.sku == OrderItem.sku)
              .join(Product, Product.id == Variant.product_id)
              .where(Order.customer_id.in_(ids), Order.status.in_(LIVE)))
    for customer_id, at, product, variant in session.execute(bought):
        facts[customer_id]["purchases"].append(_item(at, product, variant))
    in_carts = (select(Cart.customer_id, Cart.updated_at, Product, Variant).select_from(Cart)
                .join(CartItem, CartItem.cart_id == Cart.id).join(Product, Product.id == CartItem.product_id)
                .outerjoin(Variant, Variant.id == CartItem.variant_id)
                .where(Cart.customer_id.in_(ids), Cart.status != CartStatus.CONVERTED))
    for customer_id, at, product, variant in session.execute(in_carts):
        facts[customer_id]["cart_items"].append(_item(at, product, variant))
    attempts = select(RecoveryAttempt.customer_id, RecoveryAttempt.status, RecoveryAttempt.recovered_order_id).where(
        RecoveryAttempt.customer_id.in_(ids))
    for customer_id, status, recovered in session.execute(attempts):
        facts[customer_id]["recovery_sent"] |= status == AttemptStatus.SENT
        facts[customer_id]["recovered"] |= recovered is not None
    return facts


def _item(at: datetime, product: Product, variant: Variant | None) -> dict:
    return {"at": at, "product": product.key, "category": product.category, "brand": product.brand,
            "attributes": dict(product.attributes or {}), "size": variant.size if variant else None,
            "color": variant.color if variant else None}


def matches(condition: dict, facts: dict, now: datetime, tz: tzinfo = timezone.utc) -> bool:
    """Whether the (validated) condition holds for a customer's facts."""
    if "all" in condition:
        return all(matches(child, facts, now, tz) for child in condition["all"])
    if "any" in condition:
        return any(matches(child, facts, now, tz) for child in condition["any"])
    return _leaf_py(condition, facts, now, tz)


def _optional_py(actual, op: str, value) -> bool:
    if op == "is_set":
        return actual is not None
    if op == "is_not_set":
        return actual is None
    if op == "=":
        return actual is not None and actual == value
    if op == "!=":
        return actual is None or actual != value
    if op == "in":
        return actual is not None and actual in value
    return actual is None or actual not in value


def _compare_py(actual, op: str, value) -> bool:
    if op == "between":
        return value[0] <= actual <= value[1]
    return {"=": actual == value, "!=": actual != value, "<": actual < value, "<=": actual <= value,
            ">": actual > value, ">=": actual >= value}[op]


def _choice_py(op: str, value, holds) -> bool:
    if op == "=":
        return holds(value)
    if op == "!=":
        return not holds(value)
    if op == "in":
        return any(holds(v) for v in value)
    return not any(holds(v) for v in value)


def _item_matches(item: dict, value: dict, now: datetime) -> bool:
    if value.get("within_days") is not None and item["at"] < now - value["within_days"] * DAY:
        return False
    if "product" in value:
        return item["product"] == value["product"]
    if "category" in value:
        return item["category"] == value["category"]
    if "brand" in value:
        return item["brand"] == value["brand"]
    name = value["attribute"]
    if name.lower() in VARIANT_ATTRIBUTES:
        return item[VARIANT_ATTRIBUTES[name.lower()]] == value["equals"]
    return item["attributes"].get(name) == value["equals"]


def _leaf_py(leaf: dict, facts: dict, now: datetime, tz: tzinfo) -> bool:
    field, op, value = leaf["field"], leaf["op"], leaf.get("value")
    if field in TEXT_COLUMNS:
        return _optional_py(facts[field], op, value)
    if field == "tag":
        if op in ("is_set", "is_not_set"):
            return bool(facts["tags"]) == (op == "is_set")
        return (value in facts["tags"]) == (op == "contains")
    if field == "days_since_last_purchase":
        last = facts["last_purchase"]
        if op in ("is_set", "is_not_set") or last is None:
            return _optional_py(last, op, value) if op in ("is_set", "is_not_set", "!=") else False
        return _compare_py((now - last) // DAY, op, value)
    if field == "orders_count":
        return _compare_py(facts["orders"], op, value)
    if field == "total_revenue":
        return _compare_py(facts["revenue"], op, _money(value))
    if field == "average_ticket":
        orders = facts["orders"]
        if op in ("is_set", "is_not_set"):
            return (orders > 0) == (op == "is_set")
        if orders <= 0:
            return False
        revenue = facts["revenue"]
        if op == "between":
            low, high = _money(value)
            return low * orders <= revenue <= high * orders
        return _compare_py(revenue, op, _money(value) * orders)
    if field in DATE_COLUMNS:
        at = facts[field]
        if op in ("is_set", "is_not_set"):
            return _optional_py(at, op, None)
        if at is None:
            return False
        if op == "within_days":
            return at >= now - value * DAY
        if op == "before":
            return at < day_start(date.fromisoformat(value), tz)
        if op == "after":
            return at >= day_start(date.fromisoformat(value) + DAY, tz)
        low, high = (date.fromisoformat(v) for v in value)
        return day_start(low, tz) <= at < day_start(high + DAY, tz)
    if field == "birthday":
        birthday = facts["birthday"]
        if op in ("is_set", "is_not_set"):
            return _optional_py(birthday, op, None)
        if birthday is None:
            return False
        if op == "month":
            return birthday.month == value
        return birthday.month * 100 + birthday.day in anniversary_codes(now, value, tz)
    if field == "churn_band":
        return _choice_py(op, value, lambda v: facts["churn_band"] == v)
    if field == "consent":
        def state(v):
            if v == "opted_out":
                return facts["opted_out_at"] is not None
            if v == "marketing_opted_out":
                return facts["marketing_opted_out_at"] is not None
            return facts["opted_out_at"] is None and facts["marketing_opted_out_at"] is None
        return _choice_py(op, value, state)
    if field == "recovery_outcome":
        def outcome(v):
            if v == "recovered":
                return facts["recovered"]
            if v == "sent_not_recovered":
                return facts["recovery_sent"] and not facts["recovered"]
            return not facts["recovery_sent"] and not facts["recovered"]
        return _choice_py(op, value, outcome)
    if field in ("bought", "left_in_cart"):
        items = facts["purchases"] if field == "bought" else facts["cart_items"]
        found = any(_item_matches(item, value, now) for item in items)
        return found == (op == "contains")
    raise AssertionError(field)

