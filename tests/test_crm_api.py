"""The opportunities API and the customer 360: roles, visibility, bulk creation all-or-none, transitions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm.assignment import assign
from crm.users import create_user, issue_api_token
from models import Customer, Opportunity, OpportunityStatus, OpportunityType, User, utcnow
from tests.crm_helpers import TZ, customer, make_seller, make_store

URL = "/api/opportunities"


def _token(session, email, role, store=None) -> dict:
    create_user(session, email=email, role=role, password="uma-senha-bem-longa",
                store_id=store.id if store else None)
    token = issue_api_token(session, email)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def shop(session):
    sp = make_store(session, "SP", city="São Paulo", state="SP", ddd="11")
    rj = make_store(session, "RJ", city="Rio de Janeiro", state="RJ", ddd="21")
    ana = make_seller(session, "Ana", sp, ddds=["11"], code="V-ANA")
    rui = make_seller(session, "Rui", rj, ddds=["21"], code="V-RUI")
    session.commit()
    return {"sp": sp, "rj": rj, "ana": ana, "rui": rui}


def _seller_token(session, seller: User) -> dict:
    from core.security import new_api_token
    from models import ApiToken

    token, digest = new_api_token()
    session.add(ApiToken(user_id=seller.id, token_hash=digest))
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def _held_by(session, seller, phone):
    made = customer(session, phone)
    from crm.opportunities import create

    opportunity = create(session, made, type=OpportunityType.MANUAL, reason="manual", now=utcnow()).opportunity
    assert assign(session, opportunity, utcnow(), TZ) == seller
    session.commit()
    return opportunity


@pytest.mark.parametrize("method,path", [("GET", URL), ("POST", URL), ("PATCH", f"{URL}/1"),
                                         ("GET", "/api/customers/+5511999990001")])
def test_every_endpoint_needs_a_token(client, method, path):
    assert client.open(path, method=method, json={}).status_code == 401


def test_a_seller_may_not_create_opportunities(client, session, shop):
    response = client.post(URL, json={"phone": "+5511999990001"}, headers=_seller_token(session, shop["ana"]))
    assert response.status_code == 403


def test_manager_creates_one_and_it_is_assigned_by_location(client, session, shop, runtime):
    headers = _token(session, "gerente@loja.example", "manager", shop["sp"])
    response = client.post(URL, json={"phone": "(11) 99999-0001", "name": "Carla", "message": "Oi {{ nome }}!",
                                      "priority": "high", "deadline": "2099-01-01T18:00:00-03:00"}, headers=headers)
    assert response.status_code == 201, response.json
    created = response.json["created"][0]
    assert created["status"] == "backlog" and created["priority"] == "high" and created["type"] == "manual"
    from tests.channel_helpers import run_jobs

    run_jobs(runtime)  # the assignment job queued after commit
    session.expire_all()
    opportunity = session.get(Opportunity, created["id"])
    assert opportunity.seller_id == shop["ana"].id and opportunity.status is OpportunityStatus.ASSIGNED


def test_bulk_csv_is_all_or_none_with_line_numbers(client, session, shop):
    headers = _token(session, "backoffice@loja.example", "backoffice")
    csv_text = ("phone,name,type,campaign,priority\n"
                "+5511999990001,Ana,segment,Natal VIP,high\n"
                "telefone-ruim,Bia,segment,,urgente\n"
                "+5521999990002,Caio,manual,,\n")
    response = client.post(URL, data=csv_text.encode(), headers={**headers, "Content-Type": "text/csv"})
    assert response.status_code == 400
    rows = {(r["line"], r["field"]) for r in response.json["rows"]}
    assert rows == {(3, "phone"), (3, "campaign"), (3, "priority")}
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 0
    assert session.scalar(select(func.count()).select_from(Customer)) == 0

    fixed = csv_text.replace("telefone-ruim,Bia,segment,,urgente", "+5531999990003,Bia,segment,Natal VIP,low")
    response = client.post(URL, data=fixed.encode(), headers={**headers, "Content-Type": "text/csv"})
    assert response.status_code == 201 and len(response.json["created"]) == 3
    assert {o["campaign"] for o in response.json["created"]} == {"Natal VIP", None}


@pytest.mark.parametrize("csv_text,line", [
    ("\r0", 1),  # found by schemathesis: a bare carriage return made the csv module raise (a 500)
    ("phone,name\n+5511999990001,\"Ana\n", 2),  # a quote never closed
    ("phone,name\n+5511999990001,Ana\n+5511999990002,\"Bia\"x\"\n", 3),  # text after a closing quote
])
def test_malformed_csv_is_a_400_with_the_line_and_creates_nothing(client, session, shop, csv_text, line):
    headers = _token(session, "backoffice@loja.example", "backoffice")
    response = client.post(URL, data=csv_text.encode(), headers={**headers, "Content-Type": "text/csv"})
    assert response.status_code == 400
    assert any(r["line"] == line for r in response.json["rows"]), response.json
    assert session.scalar(select(func.count()).select_from(Opportunity)) == 0


@pytest.mark.parametrize("body,field", [
    ({"phone": "+5511999990001", "type": "contact"}, "1.type"),
    ({"phone": "+5511999990001", "deadline": "2001-01-01T00:00:00-03:00"}, "1.deadline"),
    ({"phone": "+5511999990001", "deadline": "2099-01-01T00:00:00"}, "1.deadline"),
    ({"phone": "+5511999990001", "message": "{{ nome "}, "1.message"),
    ({"phone": "+5511999990001", "surprise": 1}, "1.surprise"),
    ({"name": "sem telefone"}, "1.phone"),
    ({"phone": "+5511999990001", "type": "behavior", "reason": "qualquer"}, "1.reason"),
])
def test_bad_bodies_are_400_with_the_field(client, session, shop, body, field):
    headers = _token(session, "admin@loja.example", "admin")
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 400 and field in response.json["fields"]


def test_sellers_see_and_change_only_their_own(client, session, shop):
    mine = _held_by(session, shop["ana"], "+5511999990001")
    theirs = _held_by(session, shop["rui"], "+5521999990001")
    ana = _seller_token(session, shop["ana"])
    listed = client.get(URL, headers=ana).json["items"]
    assert [o["id"] for o in listed] == [mine.id]
    assert client.patch(f"{URL}/{theirs.id}", json={"status": "in_progress"}, headers=ana).status_code == 404
    assert client.get("/api/customers/+5521999990001", headers=ana).status_code == 404
    assert client.get("/api/customers/+5511999990001", headers=ana).json["owner_seller_id"] == shop["ana"].id
    # A seller may not reassign.
    assert client.patch(f"{URL}/{mine.id}", json={"seller_id": shop["rui"].id}, headers=ana).status_code == 400

    started = client.patch(f"{URL}/{mine.id}", json={"status": "in_progress"}, headers=ana)
    assert started.status_code == 200 and started.json["started_at"]
    missing_result = client.patch(f"{URL}/{mine.id}", json={"status": "finished"}, headers=ana)
    assert missing_result.status_code == 400 and "result" in missing_result.json["fields"]
    done = client.patch(f"{URL}/{mine.id}", json={"status": "finished", "result": "positive", "note": "vendeu"},
                        headers=ana)
    assert done.status_code == 200 and done.json["result"] == "positive"
    again = client.patch(f"{URL}/{mine.id}", json={"status": "in_progress"}, headers=ana)
    assert again.status_code == 400


def test_store_manager_sees_their_store_and_reassigns_within_it(client, session, shop):
    in_sp = _held_by(session, shop["ana"], "+5511999990001")
    in_rj = _held_by(session, shop["rui"], "+5521999990001")
    manager = _token(session, "gerente.sp@loja.example", "manager", shop["sp"])
    assert [o["id"] for o in client.get(URL, headers=manager).json["items"]] == [in_sp.id]
    assert client.patch(f"{URL}/{in_rj.id}", json={"priority": "high"}, headers=manager).status_code == 404
    colleague = make_seller(session, "Lia", shop["sp"], ddds=["11"])
    session.commit()
    moved = client.patch(f"{URL}/{in_sp.id}", json={"seller_id": colleague.id}, headers=manager)
    assert moved.status_code == 200 and moved.json["seller_id"] == colleague.id
    refused = client.patch(f"{URL}/{in_sp.id}", json={"seller_id": shop["rui"].id}, headers=manager)
    assert refused.status_code == 400 and "seller_id" in refused.json["fields"]


def test_reassigning_through_the_api_respects_the_targets_capacity(client, session, shop):
    """The same rule as the manager's page (crm.assignment.reassign): a full portfolio refuses with the reason."""
    held = _held_by(session, shop["ana"], "+5511999990001")
    full = make_seller(session, "Bia", shop["sp"], ddds=["11"])
    full.max_portfolio = 0
    manager = _token(session, "gerente.sp@loja.example", "manager", shop["sp"])
    session.commit()
    refused = client.patch(f"{URL}/{held.id}", json={"seller_id": full.id}, headers=manager)
    assert refused.status_code == 400 and "carteira" in refused.json["fields"]["seller_id"]
    session.expire_all()
    assert session.get(type(held), held.id).seller_id == shop["ana"].id  # nothing changed


def test_customer_360_shows_opportunities_orders_and_history(client, session, shop):
    _held_by(session, shop["ana"], "+5511999990001")
    admin = _token(session, "admin@loja.example", "admin")
    body = client.get("/api/customers/5511999990001", headers=admin).json
    assert body["phone"] == "+5511999990001" and body["ddd"] == "11" and body["state"] == "SP"
    assert body["opportunities"][0]["status"] == "assigned" and body["orders"] == []
    assert client.get("/api/customers/nao-e-telefone", headers=admin).status_code == 400
    assert client.get("/api/customers/+5511999990999", headers=admin).status_code == 404


@pytest.mark.parametrize("query", ["status=perdido", "type=x", "seller_id=abc", "page=0"])
def test_bad_list_parameters_are_400(client, session, shop, query):
    admin = _token(session, "admin@loja.example", "admin")
    assert client.get(f"{URL}?{query}", headers=admin).status_code == 400
