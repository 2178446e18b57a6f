"""The seller's app (mobile first): the prioritised queue, an opportunity, the portfolio, their own results.
A seller sees only their own opportunities and customers."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from core.inputs import supported_day
from crm.access import Action, may_see_customer
from crm.opportunities import OpportunityError, contact, move, start_conversation
from crm.profile import history, recommended_products, suggested_message, whatsapp_link
from crm.results import report
from models import Customer, Opportunity, OpportunityResult, OpportunityStatus, utcnow
from web.context import db_session, runtime
from web.auth import allowed

bp = Blueprint("seller", __name__, url_prefix="/vendedor")

HELD = (OpportunityStatus.ASSIGNED, OpportunityStatus.IN_PROGRESS)


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
                           history=history(session, item.customer), results=list(OpportunityResult))


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
    return render_template("pages/seller/customer.html", customer=found, history=history(session, found))


@bp.post("/clientes/<id:customer_id>/contato")
@allowed(Action.USE_SELLER_APP)
def start_contact(customer_id: int):
    session = db_session()
    found = session.get(Customer, customer_id)
    if found is None or not may_see_customer(session, current_user, found):
        abort(404)
    try:
        item = contact(session, current_user, found, utcnow())
    except OpportunityError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".portfolio")), 303
    session.commit()
    return redirect(url_for(".opportunity", opportunity_id=item.id)), 303


def requested_days(tz, default_days: int | None = None) -> tuple[date, date]:
    """The ``de``/``ate`` dates of the query string in the store's calendar. By default (or when they make no
    sense) this month so far, or the last ``default_days`` days."""
    today = utcnow().astimezone(tz).date()
    default_first = today - timedelta(days=default_days - 1) if default_days else today.replace(day=1)
    first = _day_arg("de") or default_first
    last = _day_arg("ate") or today
    if last < first or (last - first).days > 366:
        first, last = default_first, today
    return first, last


def _day_arg(name: str) -> date | None:
    """A ``AAAA-MM-DD`` query value; anything else (a typo, 10**25, year 9999) is ignored, the default applies."""
    raw = request.args.get(name, "")
    if len(raw) != 10 or not raw.isascii():
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        return None
    return day if supported_day(day) else None


def period_from_args(tz) -> tuple[datetime, datetime, str, str]:
    """``requested_days`` as UTC instants [start, end) plus the dates for the form."""
    first, last = requested_days(tz)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(timezone.utc)
    return start, end, first.isoformat(), last.isoformat()


@bp.get("/resultados")
@allowed(Action.USE_SELLER_APP)
def results():
    start, end, first, last = period_from_args(runtime().settings.store_timezone)
    result = report(db_session(), start, end, seller_id=current_user.id)
    line = result.sellers[0] if result.sellers else None
    return render_template("pages/seller/results.html", line=line, sales=result.sales_by_seller.get(current_user.id, []),
                           first=first, last=last)
