"""What a seller sees of a customer and an opportunity: contact, history, recommendations, suggested message.
Also the customer 360 view of the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.templating import TemplateRenderError, render_text, validate
from crm import recommendations
from crm.opportunities import PRIORITY_NAMES, crm_settings
from models import (
    Cart, CartStatus, Customer, Message, Opportunity, Order, Product, RecoveryAttempt, User, Variant, utcnow,
)

HISTORY_LIMIT = 50
RECOMMENDED_LIMIT = 5
SUGGESTION_VARIABLES = ("nome", "vendedor", "loja", "produtos", "codigo_vendedor", "busca")
LAST_SEARCH_DAYS = 30  # an older search says little about what they want now


def last_search(customer: Customer, now: datetime) -> dict | None:
    """{"query", "products" (ids), "at" (datetime)}: what the bot last found for the customer, if recent."""
    found = customer.last_search
    if not isinstance(found, dict) or not isinstance(found.get("query"), str):
        return None
    try:
        at = datetime.fromisoformat(str(found.get("at")))
    except ValueError:
        return None
    if at.tzinfo is None or now - at > timedelta(days=LAST_SEARCH_DAYS):
        return None
    ids = [i for i in found.get("products") or [] if isinstance(i, int)]
    return {"query": found["query"], "products": ids, "at": at}


def recommended_products(session: Session, customer: Customer, skus: list[str] | None = None,
                         now: datetime | None = None) -> list[Product]:
    """The opportunity's own products, else what the customer left in their latest cart, else what the bot
    last found for them (in the last 30 days), else the customer 360's recommendations (what they would buy
    again, then what other customers buy most, then what is new and selling), so a seller always has something
    to offer."""
    now = now or utcnow()
    if not skus:
        cart = session.scalar(select(Cart).where(Cart.customer_id == customer.id,
                                                 Cart.status != CartStatus.CONVERTED)
                              .order_by(Cart.updated_at.desc()).limit(1))
        skus = [item.sku for item in cart.items] if cart is not None else []
    searched = last_search(customer, now) if not skus else None
    if searched and searched["products"]:
        ids = searched["products"][:RECOMMENDED_LIMIT]
        found = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(ids), Product.active))}
        if found:
            return [found[i] for i in ids if i in found]
    if not skus:
        lists = recommendations.recommendations(session, customer.id, now, limit=RECOMMENDED_LIMIT)
        ids = list(dict.fromkeys(r.product_id for name in ("repurchase", "popular", "trending")
                                 for r in lists[name]))[:RECOMMENDED_LIMIT]
        found = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(ids)))} if ids else {}
        return [found[i] for i in ids if i in found]
    # A SKU names a variant (a cart line); a manager's list may also name a product by its key.
    found = {v.sku: v.product for v in session.scalars(
        select(Variant).join(Product).where(Variant.sku.in_(skus), Product.active))}
    for product in session.scalars(select(Product).where(Product.key.in_(skus), Product.active)):
        found.setdefault(product.key, product)
    products = [found[s] for s in dict.fromkeys(skus) if s in found]
    return list({p.id: p for p in products}.values())[:RECOMMENDED_LIMIT]


def suggestion_variables(customer: Customer, seller: User | None, store_name: str, products: list[Product],
                         now: datetime | None = None) -> dict:
    first_name = (customer.name or "").split(" ")[0] or "tudo bem"
    searched = last_search(customer, now or utcnow())
    return {
        "busca": searched["query"] if searched else "",
        "nome": first_name,
        "vendedor": seller.name if seller else "a equipe",
        "loja": store_name,
        "produtos": ", ".join(p.name for p in products),
        "codigo_vendedor": (seller.seller_code or "") if seller else "",
    }


SUGGESTION_SAMPLE = {"nome": "Ana", "vendedor": "Bruno", "loja": "Loja Demo", "produtos": "Tênis Corrida Preto",
                     "codigo_vendedor": "V001", "busca": "tênis de corrida 40"}
# What suggestion_variables gives for other opportunities: a saved message must work for each of them too.
SUGGESTION_VARIANTS: list[tuple[str, dict]] = [
    ("para uma oportunidade sem produtos", {"produtos": ""}),
    ("para um vendedor sem código", {"codigo_vendedor": ""}),
    ("sem produtos nem código de vendedor", {"produtos": "", "codigo_vendedor": ""}),
    ("para um cliente que não buscou nada", {"busca": ""}),
    ("para um cliente sem nome nem vendedor", {"nome": "tudo bem", "vendedor": "a equipe", "codigo_vendedor": ""}),
]


def validate_suggestion(template: str) -> str:
    """Refuse, at save time, a template that is not allowed or does not render for every kind of opportunity
    (same sandbox and checks as every merchant text). Returns the text for the sample."""
    shapes = [("", SUGGESTION_SAMPLE), *((label, {**SUGGESTION_SAMPLE, **changes})
                                         for label, changes in SUGGESTION_VARIANTS)]
    return validate(template, SUGGESTION_SAMPLE, [variables for _, variables in shapes],
                    [label for label, _ in shapes], empty_message="a mensagem ficou vazia")


def suggested_message(session: Session, opportunity: Opportunity, seller: User | None, store_name: str,
                      products: list[Product]) -> str:
    variables = suggestion_variables(opportunity.customer, seller, store_name, products)
    for source in (opportunity.message, crm_settings(session).suggested_message):
        if source:
            try:
                return render_text(source, variables)
            except TemplateRenderError:
                continue  # refused at save time; an old row that no longer renders falls back to the brand's
    return f"Oi, {variables['nome']}! Aqui é {variables['vendedor']}, da {store_name}."


def whatsapp_link(phone: str, text: str) -> str:
    """wa.me opens the seller's own WhatsApp with the message typed in, ready to edit and send."""
    return f"https://wa.me/{phone.lstrip('+')}?text={quote(text, safe='')}"


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # inbound, bot, recovery, seller, order
    text: str
    status: str | None = None


def history(session: Session, customer: Customer, limit: int = HISTORY_LIMIT) -> list[Entry]:
    """Newest first: the bot conversation and recovery messages, orders."""
    entries = [
        Entry(m.created_at, "inbound" if m.direction.value == "inbound" else m.kind, m.body or "", m.status.value)
        for m in session.scalars(select(Message).where(Message.customer_id == customer.id)
                                 .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    ]
    entries += [
        Entry(o.placed_at, "order", f"Pedido {o.external_id}: R$ {o.total}", o.status.value)
        for o in session.scalars(select(Order).where(Order.customer_id == customer.id)
                                 .order_by(Order.placed_at.desc()).limit(limit))
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


def opportunity_json(opportunity: Opportunity) -> dict:
    customer = opportunity.customer
    return {
        "id": opportunity.id, "type": opportunity.type.value, "reason": opportunity.reason,
        "status": opportunity.status.value, "priority": PRIORITY_NAMES.get(opportunity.priority, "normal"),
        "customer": {"id": customer.id, "phone": customer.phone, "name": customer.name},
        "seller_id": opportunity.seller_id,
        "seller_code": opportunity.seller.seller_code if opportunity.seller else None,
        "campaign": opportunity.campaign, "message": opportunity.message,
        "recommended_skus": opportunity.recommended_skus,
        "deadline": _iso(opportunity.deadline), "result": opportunity.result.value if opportunity.result else None,
        "result_note": opportunity.result_note, "created_at": _iso(opportunity.created_at),
        "assigned_at": _iso(opportunity.assigned_at), "started_at": _iso(opportunity.started_at),
        "finished_at": _iso(opportunity.finished_at),
    }


def customer_json(session: Session, customer: Customer) -> dict:
    """The customer 360: data, owner, opportunities, orders, recovery and the recent conversation."""
    opportunities = session.scalars(select(Opportunity).where(Opportunity.customer_id == customer.id)
                                    .order_by(Opportunity.created_at.desc()).limit(20))
    orders = session.scalars(select(Order).where(Order.customer_id == customer.id)
                             .order_by(Order.placed_at.desc()).limit(20))
    attempts = session.scalars(select(RecoveryAttempt).where(RecoveryAttempt.customer_id == customer.id)
                               .order_by(RecoveryAttempt.created_at.desc()).limit(20))
    return {
        "id": customer.id, "phone": customer.phone, "name": customer.name, "ddd": customer.ddd,
        "city": customer.city, "state": customer.state, "tags": customer.tags,
        "owner_seller_id": customer.owner_seller_id, "opted_out": customer.opted_out,
        "opted_out_at": _iso(customer.opted_out_at), "last_inbound_at": _iso(customer.last_inbound_at),
        "opportunities": [opportunity_json(o) for o in opportunities],
        "orders": [{"id": o.external_id, "status": o.status.value, "total": str(o.total),
                    "coupon_code": o.coupon_code, "seller_code": o.seller_code, "placed_at": _iso(o.placed_at)}
                   for o in orders],
        "recovery": [{"status": a.status.value, "reason": a.skip_reason, "sent_at": _iso(a.sent_at),
                      "recovered": a.recovered_order_id is not None} for a in attempts],
        "history": [{"at": _iso(e.at), "kind": e.kind, "text": e.text, "status": e.status}
                    for e in history(session, customer, 30)],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
