"""The seller's app (mobile first): the prioritised queue, an opportunity, the portfolio, their own results.
A seller sees only their own opportunities and customers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from crm.access import Action, may_see_customer
from crm.optouts import OPT_OUT_NOTE, record_opt_out
from crm.opportunities import OpportunityError, contact, move, start_conversation
from crm.profile import history, recommended_products, suggested_message, whatsapp_link
from crm.results import report
from models import Customer, CustomerNote, Opportunity, OpportunityResult, OpportunityStatus, User, utcnow
from web.context import db_session, runtime
from web.auth import allowed
from web.formatting import LABELS
from web.period import period_from_args

bp = Blueprint("seller", __name__, url_prefix="/vendedor")

HELD = (OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS)
NOTE_LABELS = {"oportunidade": "Observação ao finalizar", OPT_OUT_NOTE: "Opt-out", "nota": "Anotação",
               "feedback": "Feedback", "reclamacao": "Reclamação", "visita": "Visita"}
PREVIOUS_NOTES = 10
NOTES_IN_HISTORY = 30


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    label: str
    text: str
    kind: str  # the history entry's kind, or note-<kind> for a shared note
    author: str | None = None


def customer_history(session, customer: Customer) -> list[HistoryLine]:
    """What a seller reads of a customer, newest first: the conversation, recovery messages and orders
    (crm.profile.history) and the shared notes: finishing notes of opportunities, opt-outs recorded by a
    person, and the notes typed in the Clientes module."""
    lines = [HistoryLine(e.at, LABELS.get(e.kind, e.kind), e.text, e.kind) for e in history(session, customer)]
    notes = session.scalars(select(CustomerNote).where(CustomerNote.customer_id == customer.id)
                            .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc()).limit(NOTES_IN_HISTORY))
    for note in notes:
        author = (note.author.name or note.author.email) if note.author is not None else None
        lines.append(HistoryLine(note.created_at, NOTE_LABELS.get(note.kind, "Anotação"), note.text,
                                 f"note-{note.kind}", author))
    lines.sort(key=lambda line: line.at, reverse=True)
    return lines


def previous_notes(session, item: Opportunity) -> list[Opportunity]:
    """The customer's earlier finished opportunities that have a finishing note, newest first."""
    return list(session.scalars(select(Opportunity).where(
        Opportunity.customer_id == item.customer_id, Opportunity.id != item.id,
        Opportunity.status == OpportunityStatus.FINISHED, Opportunity.result_note.is_not(None))
        .order_by(Opportunity.finished_at.desc(), Opportunity.id.desc()).limit(PREVIOUS_NOTES)))


def _own_opportunity(opportunity_id: int) -> Opportunity:
    opportunity = db_session().scalar(select(Opportunity).where(
        Opportunity.id == opportunity_id, Opportunity.seller_id == current_user.id))
    if opportunity is None:
        abort(404)
    return opportunity


@bp.get("/")
@allowed(Action.USE_SELLER_APP)
def queue():
    items = db_session().scalars(select(Opportunity).where(
        Opportunity.seller_id == current_user.id, Opportunity.status.in_(HELD))
        .order_by(Opportunity.priority.desc(), Opportunity.deadline, Opportunity.id)).all()
    return render_template("pages/seller/queue.html", items=items, now=utcnow())


@bp.get("/oportunidades/<id:opportunity_id>")
@allowed(Action.USE_SELLER_APP)
def opportunity(opportunity_id: int):
    session = db_session()
    item = _own_opportunity(opportunity_id)
    products = recommended_products(session, item.customer, item.recommended_skus)
    message = suggested_message(session, item, current_user, runtime().settings.store_name, products)
    return render_template("pages/seller/opportunity.html", item=item, products=products, message=message,
                           history=customer_history(session, item.customer), results=list(OpportunityResult),
                           previous=previous_notes(session, item))


@bp.post("/oportunidades/<id:opportunity_id>/iniciar")
@allowed(Action.USE_SELLER_APP)
def start(opportunity_id: int):
    """Moves the opportunity to in progress and opens WhatsApp with the (possibly edited) message."""
    session = db_session()
    item = _own_opportunity(opportunity_id)
    text = (request.form.get("message") or "").strip()[:2000]
    try:
        start_conversation(session, item, current_user, utcnow())
    except OpportunityError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".opportunity", opportunity_id=item.id))
    session.commit()
    return redirect(whatsapp_link(item.customer.phone, text))


@bp.post("/oportunidades/<id:opportunity_id>/finalizar")
@allowed(Action.USE_SELLER_APP)
def finish(opportunity_id: int):
    session = db_session()
    item = _own_opportunity(opportunity_id)
    try:
        result = OpportunityResult(request.form.get("result", ""))
    except ValueError:
        flash("Escolha o resultado: positivo, neutro ou negativo.", "error")
        return redirect(url_for(".opportunity", opportunity_id=item.id)), 303
    try:
        move(session, item, OpportunityStatus.FINISHED, utcnow(), actor=current_user, result=result,
             note=(request.form.get("note") or "")[:2000])
    except OpportunityError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".opportunity", opportunity_id=item.id)), 303
    session.commit()
    flash("Oportunidade finalizada.", "info")
    return redirect(url_for(".queue")), 303


@bp.get("/carteira")
@allowed(Action.USE_SELLER_APP)
def portfolio():
    customers = db_session().scalars(select(Customer).where(Customer.owner_seller_id == current_user.id)
                                     .order_by(Customer.name, Customer.id).limit(500)).all()
    return render_template("pages/seller/portfolio.html", customers=customers)


@bp.get("/clientes/<id:customer_id>")
@allowed(Action.USE_SELLER_APP)
def customer(customer_id: int):
    session = db_session()
    found = session.get(Customer, customer_id)
    if found is None or not may_see_customer(session, current_user, found):
        abort(404)
    return render_template("pages/seller/customer.html", customer=found, history=customer_history(session, found))


@bp.post("/clientes/<id:customer_id>/contato")
@allowed(Action.USE_SELLER_APP)
def start_contact(customer_id: int):
    session = db_session()
    found = session.get(Customer, customer_id)
    if found is None or not may_see_customer(session, current_user, found):
        abort(404)
    try:
        item = contact(session, current_user, found, utcnow(), runtime().settings.store_timezone)
    except OpportunityError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".portfolio")), 303
    session.commit()
    # Still "assigned": it moves to "em conversa" when the seller opens WhatsApp from the opportunity page.
    return redirect(url_for(".opportunity", opportunity_id=item.id)), 303


@bp.post("/clientes/<id:customer_id>/opt-out")
@allowed(Action.READ_CUSTOMERS)
def opt_out(customer_id: int):
    """Record that the customer does not want to receive messages any more (a seller asked, as the seller guide
    says; or an office user in the Clientes module). Anyone who may see the customer may record it."""
    session = db_session()
    found = session.get(Customer, customer_id)
    if found is None or not may_see_customer(session, current_user, found):
        abort(404)
    actor = session.get(User, current_user.id)
    if record_opt_out(session, found, actor, utcnow(), request.form.get("detail") or ""):
        session.commit()
        flash("Opt-out registrado: o cliente não recebe mais mensagens automáticas nem novas oportunidades.", "info")
    else:
        flash("Este cliente já estava sem receber mensagens.", "info")
    if request.form.get("voltar") == "clientes":
        return redirect(url_for("customers.detail", customer_id=found.id) + "#contato"), 303
    return redirect(url_for(".customer", customer_id=found.id)), 303


@bp.get("/resultados")
@allowed(Action.USE_SELLER_APP)
def results():
    start, end, first, last = period_from_args(runtime().settings.store_timezone)
    result = report(db_session(), start, end, seller_id=current_user.id)
    line = result.sellers[0] if result.sellers else None
    return render_template("pages/seller/results.html", line=line, sales=result.sales_by_seller.get(current_user.id, []),
                           first=first, last=last)
