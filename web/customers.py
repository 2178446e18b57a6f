"""The "Clientes" module (customer 360) for every signed-in role: the customers a user may see on the left, one
customer's sections on the right (Visão geral, Risco de perda, Contato, Produtos recomendados, Mais comprados).
Row scope comes from crm.access: a customer outside it is a 404, like one that does not exist."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from core.inputs import InputError, parse_choice, parse_id, parse_page
from crm import churn, customer360, recommendations
from crm.access import (
    Action, Kind, branch_of, customer_clause, kind_of, listed_customer_ids, may_see_customer, seller_clause,
)
from models import Customer, CustomerMetrics, Role, Store, User, utcnow
from web import charts
from web.auth import allowed
from web.context import db_session

bp = Blueprint("customers", __name__, url_prefix="/clientes")

PER_PAGE = 30
MAX_QUERY = 80
SORTS = {"nome": "nome", "ultima_compra": "ultima_compra", "receita": "receita", "risco": "risco"}
SORT_LABELS = {"nome": "Nome", "ultima_compra": "Última compra", "receita": "Receita", "risco": "Risco de perda"}
# Counting stops here: "mais de 1.000" is what a person needs, and counting further costs every page a scan of
# up to that many matches (bench/customer_list.py).
COUNT_CAP = 1_000
RISK_CHOICES = {band: band for band in churn.BANDS}
RISK_LABELS = {"baixo": "Baixo", "medio": "Médio", "alto": "Alto", "inativo": "Inativo (sem compras há 1 ano)"}
# Last purchase: within N days, or longer ago, or never.
LAST_PURCHASE_LABELS = {"30": "Nos últimos 30 dias", "90": "Nos últimos 90 dias", "180": "Nos últimos 180 dias",
                        "365": "No último ano", "mais_365": "Há mais de 1 ano", "nunca": "Nunca comprou"}
LAST_PURCHASE_CHOICES = {key: key for key in LAST_PURCHASE_LABELS}
PERIOD_CHOICES = {str(p): p for p in customer360.PERIODS}
NOTE_KIND_LABELS = {"nota": "Anotação", "feedback": "Feedback", "reclamacao": "Reclamação", "visita": "Visita",
                    "oportunidade": "Oportunidade", "optout": "Opt-out"}
NOTE_KINDS_OFFERED = ("nota", "feedback", "reclamacao", "visita")
NOTE_FIELDS = {"kind": "tipo", "text": "anotação"}
BAND_LABELS = {"baixo": "Baixo", "medio": "Médio", "alto": "Alto"}
FACTOR_LABELS = {"recency": "Última compra", "ticket": "Ticket médio", "frequency": "Frequência",
                 "growth": "Crescimento", "mix": "Mix de produtos"}
LIST_LABELS = {"popular": "Mais populares", "repurchase": "Maior índice de satisfação",
               "trending": "Novidades em destaque"}
GROUP_LABELS = {"name": "Produto", "category": "Categoria", "brand": "Marca", "color": "Cor", "size": "Tamanho"}


# --- the list ---------------------------------------------------------------------------------------------------

def _may_filter_by_seller(user: User) -> bool:
    return kind_of(user) is not Kind.SELLER


def _may_filter_by_store(user: User) -> bool:
    return kind_of(user) is not Kind.SELLER and branch_of(user) is None


def _list_args() -> dict:
    """The list's query values, checked: a value that cannot be used is a 400 naming the field (InputError)."""
    session = db_session()
    q = (request.args.get("q") or "").strip()[:MAX_QUERY]
    ordem = request.args.get("ordem") or "nome"
    parse_choice(ordem, "ordem", SORTS)
    page = parse_page(request.args.get("page"), "page")
    seller_id = store_id = None
    raw_seller = request.args.get("seller") or ""
    if raw_seller and _may_filter_by_seller(current_user):
        seller_id = parse_id(raw_seller, "seller")
        if session.scalar(select(User.id).where(User.id == seller_id, seller_clause(current_user))) is None:
            raise InputError("seller", "vendedor não encontrado")
    raw_store = request.args.get("store") or ""
    if raw_store and _may_filter_by_store(current_user):
        store_id = parse_id(raw_store, "store")
        if session.get(Store, store_id) is None:
            raise InputError("store", "loja não encontrada")
    risco = request.args.get("risco") or None
    if risco is not None:
        parse_choice(risco, "risco", RISK_CHOICES)
    ultima_compra = request.args.get("ultima_compra") or None
    if ultima_compra is not None:
        parse_choice(ultima_compra, "ultima_compra", LAST_PURCHASE_CHOICES)
    return {"q": q, "ordem": ordem, "page": page, "seller": seller_id, "store": store_id, "risco": risco,
            "ultima_compra": ultima_compra}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def customer_listing(session, user: User, *, q: str = "", seller: int | None = None, store: int | None = None,
                     risco: str | None = None, ultima_compra: str | None = None, ordem: str = "nome",
                     page: int = 1, per_page: int = PER_PAGE, now=None):
    """(rows of (Customer, CustomerMetrics), total up to COUNT_CAP + 1): the customers ``user`` may see, searched,
    filtered, sorted and cut to one page in SQL. Figures come from ``crm.metrics`` (refreshed within minutes of an
    order); every customer has a row from its creation (models.crm), so the join loses no one, and sorting by a
    figure walks that figure's index."""
    metrics = CustomerMetrics
    stmt = select(Customer).join(metrics, metrics.customer_id == Customer.id)
    ids = listed_customer_ids(session, user)
    # A seller's ids go on the figures' key: PostgreSQL then reads both rows by primary key (on customers.id it
    # would scan the figures of a whole band to join them).
    stmt = stmt.where(metrics.customer_id.in_(ids) if ids is not None else customer_clause(session, user))
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        conditions = [func.lower(Customer.name).like(pattern, escape="\\"),
                      func.lower(Customer.city).like(pattern, escape="\\"),
                      func.lower(Customer.email).like(pattern, escape="\\")]
        digits = "".join(ch for ch in q if ch.isascii() and ch.isdigit())
        if digits:
            conditions.append(Customer.phone.like(f"%{digits}%"))
        stmt = stmt.where(or_(*conditions))
    if seller is not None:
        stmt = stmt.where(Customer.owner_seller_id == seller)
    if store is not None:
        sellers = select(User.id).where(User.role == Role.SELLER, User.store_id == store)
        stmt = stmt.where(or_(Customer.store_id == store, Customer.owner_seller_id.in_(sellers)))
    if risco is not None:
        stmt = stmt.where(metrics.churn_band == risco)
    if ultima_compra == "nunca":
        stmt = stmt.where(metrics.last_purchase_at.is_(None))
    elif ultima_compra is not None:
        # Whole days: "in the last 30 days" includes all of the 30th day back.
        back = (now or utcnow()) - timedelta(days=365 if ultima_compra == "mais_365" else int(ultima_compra))
        limit = back.replace(hour=0, minute=0, second=0, microsecond=0)
        stmt = stmt.where(metrics.last_purchase_at < limit if ultima_compra == "mais_365"
                          else metrics.last_purchase_at >= limit)
    counted = stmt.with_only_columns(Customer.id).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted))
    stmt = stmt.add_columns(metrics)
    if ordem == "ultima_compra":
        stmt = stmt.order_by(metrics.last_purchase_at.desc().nulls_last(), metrics.customer_id.desc())
    elif ordem == "receita":
        stmt = stmt.order_by(metrics.revenue.desc(), metrics.customer_id.desc())
    elif ordem == "risco":
        stmt = stmt.order_by(metrics.churn_index.desc().nulls_last(), metrics.customer_id.desc())
    else:
        stmt = stmt.order_by(Customer.name.is_(None), func.lower(Customer.name), Customer.phone, Customer.id)
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return rows, int(total or 0)


def _list_context() -> dict:
    session = db_session()
    args = _list_args()
    rows, total = customer_listing(session, current_user, per_page=PER_PAGE, **args)
    capped = total > COUNT_CAP
    pages = max(1, -(-min(total, COUNT_CAP) // PER_PAGE))
    if capped:  # beyond the count, a next page is offered while the current one is full
        pages = max(pages, args["page"] + (1 if len(rows) == PER_PAGE else 0))
    kept = {k: v for k, v in args.items() if v not in (None, "") and k != "page" and not (k == "ordem" and v == "nome")}
    sellers = (session.scalars(select(User).where(seller_clause(current_user)).order_by(User.name)).all()
               if _may_filter_by_seller(current_user) else [])
    stores = (session.scalars(select(Store).order_by(Store.name)).all()
              if _may_filter_by_store(current_user) else [])
    return {"rows": rows, "total": min(total, COUNT_CAP), "capped": capped, "page": args["page"], "pages": pages,
            "args": args, "kept": kept, "kept_query": urlencode(kept), "sellers": sellers, "stores": stores,
            "sort_labels": SORT_LABELS, "risk_labels": RISK_LABELS, "band_labels": BAND_LABELS, "last_purchase_labels": LAST_PURCHASE_LABELS}


def _page_url(page: int, kept: dict) -> str:
    return url_for("customers.index", **kept, page=page)


@bp.get("")
@allowed(Action.READ_CUSTOMERS)
def index():
    return render_template("pages/customers/index.html", detail=None, page_url=_page_url, **_list_context())


# --- one customer -----------------------------------------------------------------------------------------------

def _visible(customer_id: int) -> Customer:
    session = db_session()
    found = session.get(Customer, customer_id)
    if found is None or not may_see_customer(session, current_user, found):
        abort(404)
    return found


def _change(current: Decimal, before: Decimal) -> Decimal | None:
    """The change from ``before`` to ``current`` as a fraction (0.25 = +25%); None when there is no base."""
    if not before:
        return None
    return (Decimal(current) - Decimal(before)) / Decimal(before)


def _detail(found: Customer) -> dict:
    session = db_session()
    period = parse_choice(request.args.get("periodo") or str(customer360.DEFAULT_PERIOD), "periodo", PERIOD_CHOICES)
    group_by = (request.args.get("agrupar") or "name").strip()[:80]
    if not recommendations.valid_grouping(session, group_by):
        raise InputError("agrupar", "agrupe por produto, categoria, marca, cor, tamanho ou um atributo do catálogo")
    now = utcnow()
    data = customer360.sections(session, found, now, group_by=group_by, period_days=period)
    overview = data["overview"]
    values = []
    for key, label, money in (("revenue", "Receita", True), ("orders", "Pedidos", False),
                              ("average_ticket", "Ticket médio", True), ("items_per_order", "Itens por pedido", False),
                              ("distinct_products", "Produtos diferentes", False),
                              ("coupon_orders", "Pedidos com cupom", False)):
        current, before = Decimal(str(overview["period"][key])), Decimal(str(overview["previous_period"][key]))
        values.append({"label": label, "money": money, "current": current, "before": before,
                       "change": _change(current, before)})
    months = [(date(int(m["month"][:4]), int(m["month"][5:]), 1), Decimal(m["revenue"])) for m in overview["history"]]
    last = overview["last_purchase"]
    if last is not None:
        last = {**last, "total": Decimal(last["total"]),
                "items": [{**i, "unit_price": Decimal(i["unit_price"])} for i in last["items"]]}
    risk = data["churn"]
    groupings = [(key, label) for key, label in GROUP_LABELS.items()]
    groupings += [(f"attr:{key}", key) for key in recommendations.attribute_keys(session)]
    return {
        "customer": found, "period": period, "periods": customer360.PERIODS, "values": values,
        "lifetime": {**overview["lifetime"], "revenue": Decimal(overview["lifetime"]["revenue"])}, "chart": charts.monthly_chart(months), "last": last,
        "risk": risk, "band_labels": BAND_LABELS, "factor_labels": FACTOR_LABELS,
        "contact": data["contact"], "notes": data["notes"], "note_kinds": NOTE_KINDS_OFFERED,
        "note_labels": NOTE_KIND_LABELS,
        "recommended": {name: [{**r, "price": Decimal(r["price"])} for r in items]
                        for name, items in data["recommended"].items()},
        "list_labels": LIST_LABELS, "most_bought": [{**g, "spent": Decimal(g["spent"])} for g in data["most_bought"]],
        "group_by": group_by, "groupings": groupings,
    }


@bp.get("/<id:customer_id>")
@allowed(Action.READ_CUSTOMERS)
def detail(customer_id: int):
    found = _visible(customer_id)
    detail = _detail(found)
    return render_template("pages/customers/index.html", detail=detail, page_url=_page_url, **_list_context())


@bp.post("/<id:customer_id>/anotacoes")
@allowed(Action.READ_CUSTOMERS)
def add_note(customer_id: int):
    session = db_session()
    found = _visible(customer_id)
    author = session.get(User, current_user.id)
    try:
        customer360.add_note(session, found, author, request.form.get("kind") or "",
                             (request.form.get("text") or "")[:customer360.MAX_NOTE + 1], utcnow())
    except customer360.NoteInvalid as exc:
        session.rollback()
        raise InputError(NOTE_FIELDS.get(exc.field, exc.field), exc.message) from None
    session.commit()
    return redirect(url_for(".detail", customer_id=found.id) + "#contato", 303)
