"""The churn index ("Risco de perda"): how likely an active customer is to stop buying, from the five buying
behaviours of the Clientes module — recency, ticket, frequency, growth and product mix — each a 0..1 risk with a
reason in Portuguese a seller can read, weighted into one index.

The core (``churn_of``) is plain Python over a list of purchases, so it is tested and benchmarked without a
database; ``customer_churn`` loads one customer's orders and ``store_norms`` the store's typical behaviour, used
for customers whose own history is too short.

Definitions (all windows end at ``now``; later purchases are ignored, so an index can be computed "as of" a date):

* a purchase is a live order (created or paid; cancelled ones never count) of the last 24 months (730 days);
  12 months are 365 days and 6 months 183 days;
* the *gaps* are the days between consecutive purchases; a gap shorter than 12 hours (a split order) is not one,
  and the *rhythm points* are the purchases left once those are merged (number of gaps + 1);
* **inactive** (index None, band ``inativo``, no factors): no purchase in the last 12 months, or never bought;
* **little data**: fewer than 3 rhythm points; the store's median interval stands in for the customer's own.

The factors (every number in a reason is the rounded number the score was computed from):

* ``recency``: ``r = days since the last purchase / interval``, both in whole days; the interval is the customer's
  mean gap (the store's median interval with little data). ``score = 1 / (1 + exp(-3 (r - 2)))``: ~0.05 after one
  usual interval, 0.5 after two, ~0.95 after three; strictly rising, so it still ranks customers inside their
  interval. The mean, not the median gap: for irregular buyers the median gap is well below the typical wait
  (0.69× the mean for memoryless buying), so a median flags them too early (tuning AUC 0.862 vs 0.873 for the raw
  ratio). A weekly buyer is at risk after three weeks; a twice-a-year buyer is not after 60 days.
* ``ticket``: ``pct`` = change of the average ticket of the last 12 months against the 12 before (rounded
  percent); ``score = clamp(-pct / 50)`` (a 50% drop is 1, a rise 0). With no purchase in the 12 months before,
  against the store's median ticket, at half strength: ``clamp(-pct / 100)`` — a customer who always bought cheap
  things is not leaving for that. No reference at all: 0.5.
* ``frequency``: half *sparsity*, half *irregularity*. Sparsity from ``n`` = purchases in the last 12 months:
  ``clamp(1 - ln n / ln 12)`` (once a year 1, monthly 0). Irregularity from the quartiles ``q1, q3`` of the gaps
  (whole days, at least 1): the quartile coefficient of dispersion ``d = (q3 - q1) / (q3 + q1)`` (a robust
  coefficient of variation: ~0.65 for memoryless buying, ~0.2 for a steady habit), ``clamp((d - 0.1) / 0.5)``;
  0.5 when fewer than 2 gaps.
* ``growth``: ``a`` purchases in the last 6 months, ``b`` in the 6 before; ``score = max(0, b - a) / (a + b + 2)``
  (the +2 keeps one missing purchase of a rare buyer from reading as a collapse).
* ``mix``: ``k`` distinct products (category when known) in the last 12 months, ``kp`` in the 12 before;
  ``score = (1 / k + narrowing) / 2`` with ``narrowing = max(0, kp - k) / kp`` (0 with no earlier period);
  0.5 when no item of the last 12 months is known.

``index = sum(weight * score)`` rounded to 3 places, weights in ``WEIGHTS``: recency 0.40, ticket 0.15, frequency
0.05, growth 0.20, mix 0.20. Chosen on the tuning seed of ``bench/churn_eval.py`` (a grid in steps of 0.05; the
figures it prints are for another seed): recency is the strongest single signal and dominates; growth, ticket
and mix each add the slowdown that precedes a departure (together +0.02 AUC over recency alone); the whole
grid's best was within 0.002 of these round numbers, and the even split 0.40/0.15/0.15/0.15/0.15 scored 0.890
against 0.895. Frequency keeps a small weight: on that history regularity says nothing about churn by itself, and
given recency an irregular customer's silence is *less* alarming, so more weight lowered the AUC.

Bands (machine names in ``BANDS``): ``baixo`` below 0.20, ``medio`` below 0.50, ``alto`` from 0.50, and
``inativo`` for the inactive. On the tuning history the churn rate is ≤ 0.18 in every 0.05-wide slice of the
index below 0.20, 0.3–0.6 between 0.20 and 0.50 and 0.7–0.86 above. The index ranks customers; it is not a
calibrated probability.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from core.templating import brl
from models import Order, OrderItem, OrderStatus, Product, Variant

HISTORY_DAYS = 730
YEAR_DAYS = 365
HALF_YEAR_DAYS = 183
MIN_GAP_DAYS = 0.5  # orders closer than this are one shopping trip (a split order), not a rhythm
LITTLE_DATA_POINTS = 3  # fewer rhythm points than this: the store's interval is used
DEFAULT_INTERVAL_DAYS = 30.0  # a store with no customer who bought twice yet
RECENCY_MIDPOINT = 2.0  # silence, in usual intervals, at which the recency score is 0.5
RECENCY_SLOPE = 3.0
UNKNOWN = 0.5  # a component with nothing to measure: neither reassuring nor alarming

WEIGHTS = {"recency": 0.40, "ticket": 0.15, "frequency": 0.05, "growth": 0.20, "mix": 0.20}
FACTOR_NAMES = tuple(WEIGHTS)
BANDS = ("baixo", "medio", "alto", "inativo")
BAND_LIMITS = ((0.20, "baixo"), (0.50, "medio"))  # below the limit → that band; else "alto"

CENTS = Decimal("0.01")


@dataclass(frozen=True)
class Purchase:
    """One live order (created or paid; cancelled ones never count)."""

    at: datetime  # aware UTC
    total: Decimal
    products: frozenset[str] = frozenset()  # categories when known, else product keys, else SKUs


@dataclass(frozen=True)
class Factor:
    name: str  # "recency" | "ticket" | "frequency" | "growth" | "mix"
    score: float  # 0..1, this behaviour's risk (1 = strongly points to churn)
    weight: float  # its weight in the index (the weights sum to 1)
    reason: str  # what the seller reads, in Portuguese


@dataclass(frozen=True)
class Churn:
    index: float | None  # 0..1; None for an inactive customer
    band: str  # one of BANDS
    factors: list[Factor]
    little_data: bool  # the customer's own history was too short: the store's typical interval was used

    def as_json(self) -> dict:
        return {"index": self.index, "band": self.band, "little_data": self.little_data,
                "factors": [{"name": f.name, "score": f.score, "weight": f.weight, "reason": f.reason}
                            for f in self.factors]}


@dataclass(frozen=True)
class StoreNorms:
    """The store's own typical behaviour, for customers with a short history."""

    median_interval_days: float  # median over customers (≥ 2 rhythm points) of each one's mean gap
    median_ticket: Decimal  # median live order total of the last 12 months
    customers: int  # customers the interval was measured on


INACTIVE = Churn(index=None, band="inativo", factors=[], little_data=False)


# --- the pure core ------------------------------------------------------------------------------------------------


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def _gaps(moments: list[datetime]) -> list[float]:
    """Days between consecutive purchases (sorted), split orders left out."""
    gaps = (_days(b - a) for a, b in zip(moments, moments[1:]))
    return [g for g in gaps if g >= MIN_GAP_DAYS]


def _whole_days(value: float) -> int:
    return max(1, int(Decimal(str(value)).quantize(Decimal(1), ROUND_HALF_UP)))


def _percent(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), ROUND_HALF_UP))


def _times(count: int) -> str:
    return "1 vez" if count == 1 else f"{count} vezes"


def _purchases(count: int) -> str:
    return "1 compra" if count == 1 else f"{count} compras"


def _kinds(count: int) -> str:
    return "1 tipo de produto" if count == 1 else f"{count} tipos de produto"


def recency_score(days: int, interval: int) -> float:
    """A logistic of the silence in usual intervals: ~0.05 at one, 0.5 at two, ~0.95 at three."""
    return 1 / (1 + math.exp(-RECENCY_SLOPE * (days / max(1, interval) - RECENCY_MIDPOINT)))


def recency_factor(days: int, interval: int, little_data: bool) -> Factor:
    score = recency_score(days, interval)
    if days == 0:
        silence = "comprou hoje"
    elif days == 1:
        silence = "está há 1 dia sem comprar"
    else:
        silence = f"está há {days} sem comprar"
    if little_data:
        reason = f"tem poucas compras; pelo intervalo típico da loja, de {interval} dias, {silence}"
    else:
        rhythm = "compra todo dia" if interval == 1 else f"compra a cada {interval} dias"
        reason = f"{rhythm} e {silence}"
    return Factor("recency", round(score, 4), WEIGHTS["recency"], reason)


def _average(totals: list[Decimal]) -> Decimal:
    return (sum(totals, Decimal(0)) / len(totals)).quantize(CENTS, ROUND_HALF_UP)


def ticket_factor(recent: list[Decimal], earlier: list[Decimal], store_ticket: Decimal, *,
                  money=brl) -> Factor:
    """``recent``/``earlier``: order totals of the last 12 months and of the 12 before; ``money`` formats the
    average in the reason."""
    average = _average(recent)
    opening = f"ticket médio de {money(average)} nos últimos 12 meses"
    reference = _average(earlier) if earlier else None
    if reference is not None and reference > 0:
        pct = _percent((average - reference) / reference)
        score = _clamp(-pct / 50)
        against = ("igual ao dos 12 meses anteriores" if pct == 0 else
                   f"{abs(pct)}% {'abaixo' if pct < 0 else 'acima'} dos 12 meses anteriores")
    elif store_ticket > 0:
        pct = _percent((average - store_ticket) / store_ticket)
        score = _clamp(-pct / 100)
        against = ("igual ao ticket típico da loja" if pct == 0 else
                   f"{abs(pct)}% {'abaixo' if pct < 0 else 'acima'} do ticket típico da loja")
    else:
        return Factor("ticket", UNKNOWN, WEIGHTS["ticket"], f"{opening}, sem período anterior para comparar")
    return Factor("ticket", round(score, 4), WEIGHTS["ticket"], f"{opening}, {against}")


def sparsity_score(purchases_in_year: int) -> float:
    return _clamp(1 - math.log(max(1, purchases_in_year)) / math.log(12))


def irregularity_score(q1: int, q3: int) -> float:
    dispersion = (q3 - q1) / (q3 + q1)
    return _clamp((dispersion - 0.1) / 0.5)


def frequency_factor(purchases_in_year: int, gaps: list[float]) -> Factor:
    sparsity = sparsity_score(purchases_in_year)
    count = f"{_purchases(purchases_in_year)} nos últimos 12 meses"
    if len(gaps) < 2:
        score = (sparsity + UNKNOWN) / 2
        return Factor("frequency", round(score, 4), WEIGHTS["frequency"],
                      f"{count}; poucas compras para medir a regularidade")
    q1, _, q3 = statistics.quantiles(gaps, n=4, method="inclusive")
    q1, q3 = _whole_days(q1), _whole_days(q3)
    irregularity = irregularity_score(q1, q3)
    score = (sparsity + irregularity) / 2
    spread = f"a cada {q1} dias" if q1 == q3 else f"a cada {q1} a {q3} dias"
    regular = irregularity <= 0.3
    sparse = sparsity >= 0.5
    if regular and not sparse:
        manner = "compra com regularidade"
    elif regular:
        manner = "compra de forma espaçada, mas regular"
    elif not sparse:
        manner = "compra de forma irregular"
    else:
        manner = "compra de forma espaçada e irregular"
    return Factor("frequency", round(score, 4), WEIGHTS["frequency"], f"{manner} ({spread}); {count}")


def growth_score(recent: int, earlier: int) -> float:
    return max(0, earlier - recent) / (recent + earlier + 2)


def growth_factor(recent: int, earlier: int) -> Factor:
    score = growth_score(recent, earlier)
    if recent == 0:
        reason = f"não comprou nos últimos 6 meses, contra {_times(earlier)} nos 6 anteriores"
    elif earlier == 0:
        reason = f"comprou {_times(recent)} nos últimos 6 meses, contra nenhuma nos 6 anteriores"
    else:
        reason = f"comprou {_times(recent)} nos últimos 6 meses, contra {earlier} nos 6 anteriores"
    return Factor("growth", round(score, 4), WEIGHTS["growth"], reason)


def mix_factor(recent: set[str], earlier: set[str] | None) -> Factor:
    """``earlier`` None: no purchase with known items in the 12 months before."""
    if not recent:
        return Factor("mix", UNKNOWN, WEIGHTS["mix"], "sem os itens dos pedidos dos últimos 12 meses")
    kinds = len(recent)
    reason = f"comprou {_kinds(kinds)} nos últimos 12 meses"
    narrowing = 0.0
    if earlier:
        narrowing = max(0, len(earlier) - kinds) / len(earlier)
        reason += f", contra {len(earlier)} nos 12 meses anteriores"
    score = (1 / kinds + narrowing) / 2
    return Factor("mix", round(score, 4), WEIGHTS["mix"], reason)


def band_of(index: float) -> str:
    for limit, band in BAND_LIMITS:
        if index < limit:
            return band
    return "alto"


def churn_of(purchases: list[Purchase], now: datetime, norms: StoreNorms, *, explain: bool = True) -> Churn:
    """The churn index of one customer at ``now`` from their live purchases (any order; later ones ignored).
    ``explain=False`` (scoring in bulk, where only the index and band are kept) writes money in the reasons as
    plain numbers: formatting currency was a quarter of the cost."""
    history = sorted((p for p in purchases if now - timedelta(days=HISTORY_DAYS) < p.at <= now),
                     key=lambda p: p.at)
    year_ago = now - timedelta(days=YEAR_DAYS)
    half_year_ago = now - timedelta(days=HALF_YEAR_DAYS)
    recent = [p for p in history if p.at > year_ago]
    if not recent:
        return INACTIVE
    earlier = [p for p in history if p.at <= year_ago]
    gaps = _gaps([p.at for p in history])
    little_data = len(gaps) + 1 < LITTLE_DATA_POINTS

    days = int(_days(now - history[-1].at))
    interval = _whole_days(norms.median_interval_days if little_data else statistics.fmean(gaps))
    last_half = sum(1 for p in recent if p.at > half_year_ago)
    earlier_products = set().union(*(p.products for p in earlier)) if earlier else set()
    factors = [
        recency_factor(days, interval, little_data),
        ticket_factor([p.total for p in recent], [p.total for p in earlier], norms.median_ticket,
                      money=brl if explain else str),
        frequency_factor(len(recent), gaps),
        growth_factor(last_half, len(recent) - last_half),
        mix_factor(set().union(*(p.products for p in recent)), earlier_products or None),
    ]
    index = round(_clamp(sum(f.weight * f.score for f in factors)), 3)
    return Churn(index=index, band=band_of(index), factors=factors, little_data=little_data)


def _middle(values: list) -> float | Decimal | None:
    return statistics.median(values) if values else None


def norms_of(histories: Iterable[list[Purchase]], now: datetime) -> StoreNorms:
    """``store_norms`` computed in Python from every customer's purchases: the same definitions, for the benchmark
    (and the tests compare the two)."""
    since, year_ago = now - timedelta(days=HISTORY_DAYS), now - timedelta(days=YEAR_DAYS)
    intervals, totals = [], []
    for purchases in histories:
        kept = sorted(p.at for p in purchases if since < p.at <= now)
        gaps = _gaps(kept)
        if gaps:
            intervals.append(statistics.fmean(gaps))
        totals += [p.total for p in purchases if year_ago < p.at <= now]
    interval = _middle(intervals)
    ticket = _middle(totals)
    return StoreNorms(median_interval_days=float(interval) if interval is not None else DEFAULT_INTERVAL_DAYS,
                      median_ticket=Decimal(ticket).quantize(CENTS, ROUND_HALF_UP) if ticket is not None
                      else Decimal("0.00"),
                      customers=len(intervals))


# --- the database side --------------------------------------------------------------------------------------------


def _live(since: datetime, now: datetime):
    return and_(Order.status != OrderStatus.CANCELLED, Order.placed_at > since, Order.placed_at <= now)


def _days_between(session: Session, later, earlier):
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _median_rows(subquery, value):
    """Rows of ``subquery`` with the rank of ``value`` and the row count, and the condition that keeps the middle
    one or two (``n ≤ 2·rank ≤ n + 2``): their average is the median, in SQL both backends run."""
    ranked = select(value.label("value"), func.row_number().over(order_by=value).label("rn"),
                    func.count().over().label("n")).select_from(subquery).subquery()
    return ranked, and_(ranked.c.rn * 2 >= ranked.c.n, ranked.c.rn * 2 <= ranked.c.n + 2)


def store_norms(session: Session, now: datetime) -> StoreNorms:
    """The store's median interval and ticket, in two set-based queries over the last 24 months of orders (window
    functions that SQLite and PostgreSQL both run; no per-customer round trip)."""
    since, year_ago = now - timedelta(days=HISTORY_DAYS), now - timedelta(days=YEAR_DAYS)
    previous = func.lag(Order.placed_at).over(partition_by=Order.customer_id, order_by=(Order.placed_at, Order.id))
    steps = (select(Order.customer_id.label("customer_id"), Order.placed_at.label("at"), previous.label("before"))
             .where(_live(since, now)).subquery())
    gap = _days_between(session, steps.c.at, steps.c.before)
    gaps = (select(steps.c.customer_id, gap.label("gap"))
            .where(steps.c.before.is_not(None), gap >= MIN_GAP_DAYS).subquery())
    per_customer = (select(gaps.c.customer_id, func.avg(gaps.c.gap).label("interval"))
                    .group_by(gaps.c.customer_id).subquery())
    across, across_middle = _median_rows(per_customer, per_customer.c.interval)
    middle_intervals = session.execute(select(across.c.value, across.c.n).where(across_middle)).all()

    totals = select(Order.total.label("total")).where(_live(year_ago, now)).subquery()
    by_total, total_middle = _median_rows(totals, totals.c.total)
    middle_totals = session.scalars(select(by_total.c.value).where(total_middle)).all()
    # The middle one or two averaged here: SQLite hands money back as floats, and their mean must round as the
    # Decimal mean does.
    interval = statistics.mean(float(v) for v, _ in middle_intervals) if middle_intervals else None
    ticket = (sum((Decimal(str(v)) for v in middle_totals), Decimal(0)) / len(middle_totals)
              if middle_totals else None)
    return StoreNorms(
        median_interval_days=interval if interval is not None else DEFAULT_INTERVAL_DAYS,
        median_ticket=ticket.quantize(CENTS, ROUND_HALF_UP) if ticket is not None else Decimal("0.00"),
        customers=int(middle_intervals[0][1]) if middle_intervals else 0)


def purchase_rows(*conditions):
    """SELECT of the live orders matching ``conditions``, a row per item (one with NULLs for an order without
    items) with what it was: the product's category when the SKU is in the catalog and has one, else the
    product's key, else the SKU as the order named it. Ordered by customer, then time, so ``grouped_purchases``
    can read it as a stream."""
    return (select(Order.customer_id, Order.id, Order.placed_at, Order.total, OrderItem.sku, Product.key,
                   Product.category)
            .outerjoin(OrderItem, OrderItem.order_id == Order.id)
            .outerjoin(Variant, Variant.sku == OrderItem.sku)
            .outerjoin(Product, Product.id == Variant.product_id)
            .where(Order.status != OrderStatus.CANCELLED, *conditions)
            .order_by(Order.customer_id, Order.placed_at, Order.id))


def grouped_purchases(rows: Iterable) -> Iterator[tuple[int, list[Purchase]]]:
    """(customer id, their purchases) from ``purchase_rows``' rows, one customer at a time."""
    customer_id = order_id = None
    purchases: list[Purchase] = []
    products: set[str] = set()
    at = total = None

    def close() -> None:
        if order_id is not None:
            purchases.append(Purchase(at=at, total=total, products=frozenset(products)))

    for row_customer, row_order, placed_at, row_total, sku, key, category in rows:
        if row_order != order_id:
            close()
            if row_customer != customer_id:
                if customer_id is not None:
                    yield customer_id, purchases
                customer_id, purchases = row_customer, []
            order_id, at, total, products = row_order, placed_at, row_total, set()
        if sku is not None:
            products.add(category or key or sku)
    close()
    if customer_id is not None:
        yield customer_id, purchases


def purchases_of(session: Session, customer_ids: list[int], now: datetime) -> dict[int, list[Purchase]]:
    """Each customer's live orders of the last 24 months (``purchase_rows``), in one query whatever the number of
    customers. Customers without such orders map to an empty list."""
    found: dict[int, list[Purchase]] = {customer_id: [] for customer_id in customer_ids}
    rows = session.execute(purchase_rows(Order.customer_id.in_(customer_ids),
                                         _live(now - timedelta(days=HISTORY_DAYS), now)))
    found.update(grouped_purchases(rows))
    return found


def load_purchases(session: Session, customer_id: int, now: datetime) -> list[Purchase]:
    """One customer's ``purchases_of``."""
    return purchases_of(session, [customer_id], now)[customer_id]


def customer_churn(session: Session, customer_id: int, now: datetime, norms: StoreNorms | None = None) -> Churn:
    """The customer's churn index at ``now``; ``norms`` computed when not given (pass them when scoring many)."""
    if norms is None:
        norms = store_norms(session, now)
    return churn_of(load_purchases(session, customer_id, now), now, norms)
