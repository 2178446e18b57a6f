"""A customer's "Produtos recomendados" and "Mais comprados" tabs.

Recommendations follow the three criteria of the module the product copies, each computed in the database (one
GROUP BY over order items joined to the catalog, ranked and limited there; never a loop over orders):

- **popular** ("Mais populares"): the products the largest number of *distinct* other customers bought in the
  last ``POPULAR_DAYS`` days; at least ``POPULAR_MIN_BUYERS`` of them.
- **repurchase** ("Maior índice de satisfação"): the products other customers buy again. Over the last
  ``REPURCHASE_DAYS`` days, the share of a product's buyers who bought it in two or more different orders; only
  products with at least ``REPURCHASE_MIN_BUYERS`` buyers (so one loyal customer cannot make a product
  "satisfying") and at least one who came back. Ranked by that share, then by how many came back.
- **trending** ("Novidades em destaque"): products launched (``Product.created_at``) in the last
  ``TRENDING_LAUNCH_DAYS`` days that at least ``TRENDING_MIN_BUYERS`` distinct other customers bought in the last
  ``TRENDING_SALES_DAYS`` days; ranked by units sold in that period. The products of the catalog's first load
  (created within ``INITIAL_CATALOG_GRACE`` of the oldest product) are not launches: on a shop that just
  installed the app every product would otherwise look new.

Rules shared by the three lists:

- Only live orders count (created or paid; never cancelled), placed no later than ``now``.
- An order item is the product of the variant whose SKU it carries, else of the product whose key it carries;
  an item whose SKU the catalog does not know is ignored.
- The numbers are about the *other* customers ("os demais clientes"): the customer's own orders never count.
- Only products that can be sold now: an active product with at least one active variant in stock (stock None =
  not tracked = available). The price shown is the lowest among those variants.
- What the customer already bought (any live order, any time) is left out of ``popular`` and ``trending``.
  ``repurchase`` keeps it when it qualifies on the other customers' numbers (offering it again is the point of
  that list) and says so in ``why``.
- One row per product in a list (a product may appear in more than one list); ties go to the name (byte order,
  the same on SQLite and PostgreSQL), then the id.

"Mais comprados" (``most_bought``) is the customer's own history grouped by product name, category, brand,
colour, size or any attribute of the catalog. It reads that one customer's order lines (aggregated per order and
SKU in SQL) and groups them in Python, which keeps the JSON attribute lookups identical on both backends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Float, and_, case, cast, func, or_, select, text
from sqlalchemy.orm import Session

from core.text import normalize
from models import Order, OrderItem, OrderStatus, Product, Variant

LIVE = (OrderStatus.CREATED, OrderStatus.PAID)
CENTS = Decimal("0.01")

POPULAR_DAYS = 90
POPULAR_MIN_BUYERS = 2
REPURCHASE_DAYS = 365
REPURCHASE_MIN_BUYERS = 3
REPURCHASE_MIN_REPEATERS = 1
TRENDING_LAUNCH_DAYS = 60
TRENDING_SALES_DAYS = 30
TRENDING_MIN_BUYERS = 2
INITIAL_CATALOG_GRACE = timedelta(days=1)

LISTS = ("popular", "repurchase", "trending")


@dataclass(frozen=True)
class Recommendation:
    product_id: int
    key: str
    name: str
    price: Decimal  # the lowest price among its in-stock active variants
    url: str | None
    image_url: str | None
    why: str  # for the seller, in Portuguese, with the number it is based on

    def as_json(self) -> dict:
        return {"product_id": self.product_id, "key": self.key, "name": self.name,
                "price": str(self.price.quantize(CENTS)), "url": self.url, "image_url": self.image_url,
                "why": self.why}


# --- the catalog side -----------------------------------------------------------------------------------------


def _item_lines(*conditions):
    """Live order items mapped to their product: order id, customer, quantity, product id, placed_at. The variant
    with the item's SKU wins; the product whose key is the SKU is the fallback; unknown SKUs drop out."""
    by_key = Product.__table__.alias("by_key")
    product_id = func.coalesce(Variant.product_id, by_key.c.id)
    return (select(OrderItem.order_id, Order.customer_id, OrderItem.quantity, product_id.label("product_id"),
                   Order.placed_at)
            .join(Order, Order.id == OrderItem.order_id)
            .outerjoin(Variant, Variant.sku == OrderItem.sku)
            .outerjoin(by_key, and_(by_key.c.key == OrderItem.sku, Variant.id.is_(None)))
            .where(Order.status.in_(LIVE), product_id.is_not(None), *conditions))


def _sellable():
    """Products that can be sold now, with the lowest price among their active variants in stock."""
    return (select(Variant.product_id, func.min(Variant.price).label("price"))
            .join(Product, Product.id == Variant.product_id)
            .where(Product.active.is_(True), Variant.active.is_(True),
                   or_(Variant.stock.is_(None), Variant.stock > 0))
            .group_by(Variant.product_id)
            .subquery("sellable"))


def _bought_by(customer_id: int, now: datetime):
    lines = _item_lines(Order.customer_id == customer_id, Order.placed_at <= now).subquery("own")
    return select(lines.c.product_id).distinct()


def _name_order(session: Session):
    # Byte order on both backends (SQLite's default; PostgreSQL's "C"), whatever the database's locale.
    if session.get_bind().dialect.name == "postgresql":
        return Product.name.collate("C")
    return Product.name


def _others(customer_id: int, since: datetime, now: datetime) -> list:
    return [Order.customer_id != customer_id, Order.placed_at >= since, Order.placed_at <= now]


def _recommendation(row, why: str) -> Recommendation:
    return Recommendation(product_id=row.id, key=row.key, name=row.name, price=row.price, url=row.url,
                          image_url=row.image_url, why=why)


def _product_columns(sellable):
    return (Product.id, Product.key, Product.name, Product.url, Product.image_url, sellable.c.price)


# --- the three lists ------------------------------------------------------------------------------------------


def popular(session: Session, customer_id: int, now: datetime, *, limit: int = 5) -> list[Recommendation]:
    lines = _item_lines(*_others(customer_id, now - timedelta(days=POPULAR_DAYS), now)).subquery("lines")
    stats = (select(lines.c.product_id, func.count(func.distinct(lines.c.customer_id)).label("buyers"))
             .group_by(lines.c.product_id)
             .having(func.count(func.distinct(lines.c.customer_id)) >= POPULAR_MIN_BUYERS)
             .subquery("stats"))
    sellable = _sellable()
    rows = session.execute(
        select(*_product_columns(sellable), stats.c.buyers)
        .join(sellable, sellable.c.product_id == Product.id)
        .join(stats, stats.c.product_id == Product.id)
        .where(Product.id.not_in(_bought_by(customer_id, now)))
        .order_by(stats.c.buyers.desc(), _name_order(session), Product.id)
        .limit(limit))
    return [_recommendation(r, f"comprado por {_count(r.buyers, 'cliente', 'clientes')} "
                               f"nos últimos {POPULAR_DAYS} dias") for r in rows]


def repurchase(session: Session, customer_id: int, now: datetime, *, limit: int = 5) -> list[Recommendation]:
    lines = _item_lines(*_others(customer_id, now - timedelta(days=REPURCHASE_DAYS), now)).subquery("lines")
    per_buyer = (select(lines.c.product_id, lines.c.customer_id,
                        func.count(func.distinct(lines.c.order_id)).label("orders"))
                 .group_by(lines.c.product_id, lines.c.customer_id)
                 .subquery("per_buyer"))
    buyers = func.count()
    repeaters = func.sum(case((per_buyer.c.orders >= 2, 1), else_=0))
    stats = (select(per_buyer.c.product_id, buyers.label("buyers"), repeaters.label("repeaters"))
             .group_by(per_buyer.c.product_id)
             .having(and_(buyers >= REPURCHASE_MIN_BUYERS, repeaters >= REPURCHASE_MIN_REPEATERS))
             .subquery("stats"))
    sellable = _sellable()
    own = _bought_by(customer_id, now).subquery("own_products")
    share = cast(stats.c.repeaters, Float) / stats.c.buyers
    rows = session.execute(
        select(*_product_columns(sellable), stats.c.buyers, stats.c.repeaters,
               own.c.product_id.is_not(None).label("own"))
        .join(sellable, sellable.c.product_id == Product.id)
        .join(stats, stats.c.product_id == Product.id)
        .outerjoin(own, own.c.product_id == Product.id)
        .order_by(share.desc(), stats.c.repeaters.desc(), _name_order(session), Product.id)
        .limit(limit))
    out = []
    for r in rows:
        why = (f"{_percent(r.repeaters, r.buyers)} de quem comprou voltou a comprar "
               f"({r.repeaters} de {_count(r.buyers, 'cliente', 'clientes')})")
        out.append(_recommendation(r, why + ("; este cliente já comprou" if r.own else "")))
    return out


def trending(session: Session, customer_id: int, now: datetime, *, limit: int = 5) -> list[Recommendation]:
    launched_since = now - timedelta(days=TRENDING_LAUNCH_DAYS)
    first_product = session.scalar(select(func.min(Product.created_at)))
    if first_product is None:
        return []
    launched_since = max(launched_since, first_product + INITIAL_CATALOG_GRACE)
    lines = _item_lines(*_others(customer_id, now - timedelta(days=TRENDING_SALES_DAYS), now)).subquery("lines")
    buyers = func.count(func.distinct(lines.c.customer_id))
    stats = (select(lines.c.product_id, buyers.label("buyers"), func.sum(lines.c.quantity).label("units"))
             .group_by(lines.c.product_id)
             .having(buyers >= TRENDING_MIN_BUYERS)
             .subquery("stats"))
    sellable = _sellable()
    rows = session.execute(
        select(*_product_columns(sellable), Product.created_at, stats.c.buyers, stats.c.units)
        .join(sellable, sellable.c.product_id == Product.id)
        .join(stats, stats.c.product_id == Product.id)
        .where(Product.created_at >= launched_since, Product.created_at <= now,
               Product.id.not_in(_bought_by(customer_id, now)))
        .order_by(stats.c.units.desc(), stats.c.buyers.desc(), Product.created_at.desc(), _name_order(session),
                  Product.id)
        .limit(limit))
    return [_recommendation(r, _launch_why((now - r.created_at).days, int(r.units))) for r in rows]


def recommendations(session: Session, customer_id: int, now: datetime, *, limit: int = 5
                    ) -> dict[str, list[Recommendation]]:
    """{"popular": [...], "repurchase": [...], "trending": [...]}, each at most ``limit`` long (see the module)."""
    return {"popular": popular(session, customer_id, now, limit=limit),
            "repurchase": repurchase(session, customer_id, now, limit=limit),
            "trending": trending(session, customer_id, now, limit=limit)}


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _percent(part: int, whole: int) -> str:
    return f"{(Decimal(100 * part) / Decimal(whole)).quantize(Decimal(1), rounding=ROUND_HALF_UP)}%"


def _launch_why(days: int, units: int) -> str:
    launched = {0: "lançado hoje", 1: "lançado ontem"}.get(days, f"lançado há {days} dias")
    sold = _count(units, "unidade", "unidades")
    if days <= TRENDING_SALES_DAYS:
        return f"{launched}, já vendeu {sold}"
    return f"{launched}, vendeu {sold} nos últimos {TRENDING_SALES_DAYS} dias"


# --- "Mais comprados" -----------------------------------------------------------------------------------------

GROUPINGS = ("name", "category", "brand", "color", "size")
ATTRIBUTE_PREFIX = "attr:"
MISSING = {"category": "Sem categoria", "brand": "Sem marca", "color": "Sem cor", "size": "Sem tamanho"}
MISSING_ATTRIBUTE = "Não informado"
MOST_BOUGHT_LIMIT = 20


def _attribute_key(group_by: str) -> str:
    """The attribute a grouping names, normalised ("attr:Material", "material", "MATERIAL" -> "material")."""
    return normalize(group_by.removeprefix(ATTRIBUTE_PREFIX))


def attribute_keys(session: Session) -> list[str]:
    """Every key of ``Product.attributes`` and ``Variant.options`` in the catalog, as the shop spells them, sorted:
    the groupings ``most_bought`` offers beyond ``GROUPINGS``."""
    if session.get_bind().dialect.name == "postgresql":
        sql = ("SELECT DISTINCT jsonb_object_keys(attributes) FROM products WHERE jsonb_typeof(attributes) = 'object'"
               " UNION SELECT DISTINCT jsonb_object_keys(options) FROM variants"
               " WHERE jsonb_typeof(options) = 'object'")
    else:
        sql = ("SELECT DISTINCT j.key FROM products, json_each(products.attributes) AS j"
               " WHERE json_type(products.attributes) = 'object'"
               " UNION SELECT DISTINCT j.key FROM variants, json_each(variants.options) AS j"
               " WHERE json_type(variants.options) = 'object'")
    return sorted({str(k) for k in session.scalars(text(sql)) if k is not None and str(k).strip()})


def valid_grouping(session: Session, group_by: str) -> bool:
    """True for ``GROUPINGS`` and for an attribute some product or variant has: its key bare ("material") or
    prefixed ("attr:material", which reaches an attribute named like a built-in grouping, e.g. "attr:color").
    Keys compare without case, accents or punctuation ("Gênero" = "genero")."""
    if not isinstance(group_by, str) or not group_by.strip():
        return False
    if group_by in GROUPINGS:
        return True
    wanted = _attribute_key(group_by)
    return bool(wanted) and any(normalize(k) == wanted for k in attribute_keys(session))


def _json_value(mapping, wanted: str) -> str | None:
    if not isinstance(mapping, dict):
        return None
    for key, value in mapping.items():
        if normalize(str(key)) != wanted:
            continue
        if isinstance(value, bool):
            return "Sim" if value else "Não"
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v is not None and str(v).strip())
        if value is None or not str(value).strip():
            return None
        return " ".join(str(value).split())
    return None


def _label(group_by: str, item_name: str, product: Product | None, variant: Variant | None) -> str:
    if group_by == "name":
        name = " ".join(((product.name if product is not None else item_name) or "").split())
        return name or "Sem nome"
    if group_by in ("category", "brand"):
        value = getattr(product, group_by) if product is not None else None
    elif group_by in ("color", "size"):
        value = getattr(variant, group_by) if variant is not None else None
    else:
        wanted = _attribute_key(group_by)
        # The variant bought is the more specific answer ("Cor": "Preto"); the product's own attributes next.
        value = (_json_value(variant.options if variant is not None else None, wanted)
                 or _json_value(product.attributes if product is not None else None, wanted))
        return value or MISSING_ATTRIBUTE
    value = " ".join(value.split()) if value else None
    return value or MISSING[group_by]


def _catalog_for(session: Session, skus: set[str]) -> dict[str, tuple[Product | None, Variant | None]]:
    found: dict[str, tuple[Product | None, Variant | None]] = {}
    ordered = sorted(skus)
    for start in range(0, len(ordered), 500):  # bound-parameter limits
        chunk = ordered[start:start + 500]
        for variant in session.scalars(select(Variant).where(Variant.sku.in_(chunk))):
            found[variant.sku] = (variant.product, variant)
        for product in session.scalars(select(Product).where(Product.key.in_(chunk))):
            found.setdefault(product.key, (product, None))
    return found


def most_bought(session: Session, customer_id: int, *, group_by: str = "name", limit: int = MOST_BOUGHT_LIMIT,
                since: datetime | None = None) -> list[dict]:
    """The customer's purchases (live orders, ``placed_at >= since`` when given) grouped by ``group_by`` (see
    ``valid_grouping``): ``[{"group", "quantity", "orders", "spent", "last_bought_at"}]``, by quantity, then
    money spent, then the group's name. ``orders`` counts distinct orders (two sizes of one shoe in one order are
    one order). Items the catalog does not know keep their own name under "name" and have no category, brand,
    colour, size or attribute. Values that differ only in case or spacing are one group ("Preto" = "preto"),
    shown with the spelling bought most. Raises ValueError for an unknown grouping."""
    if not valid_grouping(session, group_by):
        raise ValueError(f"unknown grouping: {group_by!r}")
    conditions = [Order.customer_id == customer_id, Order.status.in_(LIVE)]
    if since is not None:
        conditions.append(Order.placed_at >= since)
    lines = session.execute(
        select(Order.id, Order.placed_at, OrderItem.sku, OrderItem.name, OrderItem.unit_price,
               func.sum(OrderItem.quantity).label("quantity"))
        .join(Order, Order.id == OrderItem.order_id)
        .where(*conditions)
        .group_by(Order.id, Order.placed_at, OrderItem.sku, OrderItem.name, OrderItem.unit_price)).all()
    catalog = _catalog_for(session, {line.sku for line in lines})

    groups: dict[str, dict] = {}
    spellings: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for line in lines:
        product, variant = catalog.get(line.sku, (None, None))
        label = _label(group_by, line.name, product, variant)
        key = label.casefold()
        group = groups.setdefault(key, {"quantity": 0, "orders": set(), "spent": Decimal("0.00"), "last": None})
        quantity = int(line.quantity or 0)
        group["quantity"] += quantity
        group["orders"].add(line.id)
        group["spent"] += Decimal(line.unit_price) * quantity
        group["last"] = line.placed_at if group["last"] is None else max(group["last"], line.placed_at)
        spellings[key][label] += quantity

    out = []
    for key, group in groups.items():
        label = min(spellings[key].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        out.append({"group": label, "quantity": group["quantity"], "orders": len(group["orders"]),
                    "spent": str(group["spent"].quantize(CENTS)), "last_bought_at": group["last"].isoformat()})
    out.sort(key=lambda g: (-g["quantity"], -Decimal(g["spent"]), g["group"].casefold(), g["group"]))
    return out[:limit]
