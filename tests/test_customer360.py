"""Customer 360 (crm.customer360) through GET /api/customers/PHONE: Visão geral computed by hand, the churn and
recommendation sections in the contract's shape, shared notes (the note typed when finishing an opportunity lands
there), most bought by grouping, and the query parameters refused with the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm import customer360
from crm.opportunities import create, move
from models import (
    Customer, CustomerNote, Opportunity, OpportunityResult, OpportunityStatus, OpportunityType, Order, OrderItem,
    OrderStatus, Product, Variant,
)
from tests.crm_helpers import customer, make_seller, make_store
from tests.test_crm_api import _token

NOW = datetime(2031, 6, 15, 12, 0, tzinfo=timezone.utc)
PHONE = "+5511999990001"


def _order(session, who: Customer, external_id: str, days_ago: float, lines, status=OrderStatus.PAID,
           seller_code=None) -> Order:
    order = Order(external_id=external_id, customer_id=who.id, status=status, currency="BRL",
                  total=sum(Decimal(price) * quantity for _, _, quantity, price in lines),
                  placed_at=NOW - timedelta(days=days_ago), seller_code=seller_code)
    order.items = [OrderItem(sku=sku, name=name, quantity=quantity, unit_price=Decimal(price))
                   for sku, name, quantity, price in lines]
    session.add(order)
    return order


@pytest.fixture
def world(session):
    sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
    ana = make_seller(session, "Ana", sp, ddds=["11"], code="V-ANA")
    shoes = Product(key="tenis-corrida", name="Tênis Corrida", price=Decimal("299.90"), category="Calçados",
                    brand="Passo", attributes={}, active=True, created_at=NOW - timedelta(days=400))
    shoes.variants = [Variant(sku="TEN-40", size="40", color="Preto", options={}, price=Decimal("299.90"), stock=3,
                              active=True)]
    shirt = Product(key="camiseta", name="Camiseta Básica", price=Decimal("59.90"), category="Roupas",
                    brand="Fio", attributes={}, active=True, created_at=NOW - timedelta(days=400))
    shirt.variants = [Variant(sku="CAM-M", size="M", color="Branca", options={}, price=Decimal("59.90"), stock=10,
                              active=True)]
    session.add_all([shoes, shirt])
    who = customer(session, PHONE)
    who.name = "Beatriz Lima"
    # In the last 90 days: two orders, 1 pair of shoes + 2 shirts, then 1 shirt; one cancelled order (no sale).
    _order(session, who, "o-1", 10, [("TEN-40", "Tênis Corrida 40", 1, "299.90"), ("CAM-M", "Camiseta M", 2, "59.90")],
           seller_code="V-ANA")
    _order(session, who, "o-2", 60, [("CAM-M", "Camiseta M", 1, "59.90")])
    _order(session, who, "o-x", 5, [("TEN-40", "Tênis Corrida 40", 5, "299.90")], status=OrderStatus.CANCELLED)
    # The 90 days before: one order of 2 shirts.
    _order(session, who, "o-3", 120, [("CAM-M", "Camiseta M", 2, "59.90")])
    session.commit()
    return {"sp": sp, "ana": ana, "customer": who}


def test_overview_values_by_hand(session, world):
    body = customer360.overview(session, world["customer"], NOW)
    # 419.70 + 59.90 = 479.60 in 2 orders, 4 items; the cancelled order does not count.
    # Two products (TEN-40, CAM-M), no coupon.
    assert body["period"] == {"revenue": "479.60", "orders": 2, "average_ticket": "239.80", "items_per_order": "2.0",
                              "distinct_products": 2, "coupon_orders": 0}
    assert body["previous_period"] == {"revenue": "119.80", "orders": 1, "average_ticket": "119.80",
                                       "items_per_order": "2.0", "distinct_products": 1, "coupon_orders": 0}
    assert body["lifetime"]["revenue"] == "599.40" and body["lifetime"]["orders"] == 3
    # From 120 to 10 days ago, 3 purchases: every 55 days on average; the last one 10 days ago.
    assert body["lifetime"]["average_interval_days"] == 55.0 and body["lifetime"]["days_since_last_purchase"] == 10
    last = body["last_purchase"]
    assert last["id"] == "o-1" and last["total"] == "419.70" and last["seller"] == "Ana" and last["store"]
    assert [item["sku"] for item in last["items"]] == ["TEN-40", "CAM-M"]
    history = body["history"]
    assert len(history) == 12 and history[-1]["month"] == "2031-06"
    assert {h["month"]: (h["revenue"], h["orders"]) for h in history}["2031-06"] == ("419.70", 1)
    assert sum(h["orders"] for h in history) == 3


def test_the_api_answers_every_section_in_the_contracts_shape(client, session, world):
    admin = _token(session, "admin@loja.example", "admin")
    body = client.get(f"/api/customers/{PHONE}", headers=admin).json
    assert {"overview", "churn", "contact", "notes", "recommended", "most_bought"} <= set(body)
    assert body["phone"] == PHONE  # the fields the API already had stay
    churn = body["churn"]
    assert churn["band"] in ("baixo", "medio", "alto", "inativo")
    if churn["index"] is not None:
        assert 0 <= churn["index"] <= 1
        assert {f["name"] for f in churn["factors"]} == {"recency", "ticket", "frequency", "growth", "mix"}
        assert all(f["reason"] for f in churn["factors"])
    assert set(body["recommended"]) == {"popular", "repurchase", "trending"}
    assert body["contact"]["consent"]["opted_out"] is False and body["contact"]["name"] == "Beatriz Lima"
    assert body["most_bought"][0]["group"] == "Camiseta Básica" and body["most_bought"][0]["quantity"] == 5


def test_most_bought_by_category_and_bad_parameters_name_the_field(client, session, world):
    admin = _token(session, "admin@loja.example", "admin")
    by_category = client.get(f"/api/customers/{PHONE}?group_by=category", headers=admin).json["most_bought"]
    assert {row["group"]: row["quantity"] for row in by_category} == {"Roupas": 5, "Calçados": 1}
    bad = client.get(f"/api/customers/{PHONE}?group_by=signo", headers=admin)
    assert bad.status_code == 400 and "group_by" in bad.json["fields"]
    bad = client.get(f"/api/customers/{PHONE}?period_days=7", headers=admin)
    assert bad.status_code == 400 and "period_days" in bad.json["fields"]


def test_the_note_typed_when_finishing_an_opportunity_lands_on_the_customer(client, session, world):
    opportunity = create(session, world["customer"], type=OpportunityType.MANUAL, reason="manual",
                         now=NOW).opportunity
    opportunity.seller_id = world["ana"].id
    move(session, opportunity, OpportunityStatus.FINISHED, NOW, actor=world["ana"],
         result=OpportunityResult.POSITIVE, note="  Prefere ser chamada depois das 18h. ")
    session.commit()
    [note] = session.scalars(select(CustomerNote)).all()
    assert (note.kind, note.text, note.author_id, note.opportunity_id) == (
        "oportunidade", "Prefere ser chamada depois das 18h.", world["ana"].id, opportunity.id)
    admin = _token(session, "admin@loja.example", "admin")
    [shown] = client.get(f"/api/customers/{PHONE}", headers=admin).json["notes"]
    assert shown["text"] == "Prefere ser chamada depois das 18h." and shown["author"] == "Ana"


def test_finishing_without_a_note_adds_none(session, world):
    opportunity = create(session, world["customer"], type=OpportunityType.MANUAL, reason="manual",
                         now=NOW).opportunity
    move(session, opportunity, OpportunityStatus.FINISHED, NOW, result=OpportunityResult.NEUTRAL, note="   ")
    session.commit()
    assert session.scalars(select(CustomerNote)).all() == []
    assert session.get(Opportunity, opportunity.id).result_note is None


def test_notes_added_by_users_are_checked_and_newest_first(session, world):
    who, ana = world["customer"], world["ana"]
    customer360.add_note(session, who, ana, "visita", "Visitou a loja do Centro.", NOW - timedelta(days=1))
    customer360.add_note(session, who, ana, "reclamacao", "Entrega atrasou.", NOW)
    session.commit()
    assert [n.text for n in customer360.notes(session, who.id)] == ["Entrega atrasou.", "Visitou a loja do Centro."]
    for kind, text, field in (("signo", "x", "kind"), ("oportunidade", "x", "kind"), ("nota", "   ", "text"),
                              ("nota", "a" * 2001, "text")):
        with pytest.raises(customer360.NoteInvalid) as info:
            customer360.add_note(session, who, ana, kind, text, NOW)
        assert info.value.field == field


def test_an_opportunity_without_products_or_cart_offers_the_customer_360s_recommendations(session, world):
    from crm.profile import recommended_products

    cap = Product(key="bone", name="Boné Aba Reta", price=Decimal("49.90"), category="Acessórios", brand="Fio",
                  attributes={}, active=True, created_at=NOW - timedelta(days=400))
    cap.variants = [Variant(sku="BON-U", size="U", color="Preto", options={}, price=Decimal("49.90"), stock=5,
                            active=True)]
    session.add(cap)
    for n, phone in enumerate(("+5511999990002", "+5511999990003")):
        _order(session, customer(session, phone), f"b-{n}", 3 + n, [("BON-U", "Boné", 1, "49.90")])
    session.commit()
    offered = recommended_products(session, world["customer"], [], now=NOW)
    assert [p.key for p in offered] == ["bone"]  # bought by 2 other customers; her own products are not repeated
    assert recommended_products(session, world["customer"], ["TEN-40"], now=NOW)[0].key == "tenis-corrida"


def test_without_a_cart_the_last_recent_search_comes_before_the_360_lists(session, world):
    from crm.profile import recommended_products, suggestion_variables

    shirt = session.scalar(select(Product).where(Product.key == "camiseta"))
    who = world["customer"]
    who.last_search = {"query": "camiseta branca M", "products": [shirt.id, 987654],
                       "at": (NOW - timedelta(days=2)).isoformat()}
    session.flush()
    assert [p.key for p in recommended_products(session, who, [], now=NOW)] == ["camiseta"]  # unknown id dropped
    assert suggestion_variables(who, None, "Loja", [], NOW)["busca"] == "camiseta branca M"
    # An opportunity's own products still come first.
    assert recommended_products(session, who, ["TEN-40"], now=NOW)[0].key == "tenis-corrida"
    # A search over 30 days old, or a malformed one, is not offered: the 360 lists are, as with no search.
    who.last_search = None
    session.flush()
    without = [p.key for p in recommended_products(session, who, [], now=NOW)]
    for stale in ({"query": "camiseta", "products": [shirt.id], "at": (NOW - timedelta(days=31)).isoformat()},
                  {"query": "camiseta", "products": [shirt.id], "at": "ontem"}, {"products": "x"}):
        who.last_search = stale
        session.flush()
        assert [p.key for p in recommended_products(session, who, [], now=NOW)] == without
        assert suggestion_variables(who, None, "Loja", [], NOW)["busca"] == ""
