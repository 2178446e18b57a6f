"""Managers' pages: sellers (capacity, activation, deactivation with redistribution), users, opportunities
(list, create, CSV import), the brand's CRM rules, and results with the sellers' ranking.

Who and which rows: crm.access. A branch manager works on their own branch; admins and brand managers on every
branch and on the brand's rules. Backoffice users create and follow opportunities and read results (of their
branch, or all), but do not manage people."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from core.inputs import InputError, parse_id, parse_int
from core.phones import DDD_STATE
from core.queues import enqueue_after_commit
from core.templating import TemplateRenderError
from crm import access, hours as store_hours_rules, intake
from crm import jobs as crm_jobs
from crm.access import Action
from crm.assignment import NoCapacity, daily_cap, local_midnight, reassign
from crm.opportunities import (
    DEADLINE_LIMITS, DEADLINE_PRIORITIES, DEADLINE_TYPES, OPEN_STATUSES, OpportunityError, crm_settings, deadline_rules,
)
from crm.portfolio import EVEN, deactivate, set_active
from crm.portfolio import HELD as PORTFOLIO_HELD
from crm.profile import validate_suggestion
from crm.results import report
from crm.users import UserError, create_user, revoke_sessions
from models import (
    Customer, CustomerNote, Opportunity, OpportunityEvent, OpportunityStatus, OpportunityType, Role, Store, User, utcnow,
)
from web.context import db_session, runtime
from web.auth import allowed
from web.period import period_from_args
from web.seller import NOTE_LABELS

bp = Blueprint("manager", __name__, url_prefix="/gestao")


def _seller_in_scope(seller_id: int) -> User:
    seller = db_session().scalar(select(User).where(User.id == seller_id, access.seller_clause(current_user)))
    if seller is None:
        abort(404)
    return seller


@bp.get("/vendedores")
@allowed(Action.MANAGE_PEOPLE)
def sellers():
    session = db_session()
    rows = session.scalars(select(User).where(access.seller_clause(current_user))
                           .order_by(User.active.desc(), User.name)).all()
    ids = [s.id for s in rows]
    portfolio = dict(session.execute(select(Customer.owner_seller_id, func.count()).where(
        Customer.owner_seller_id.in_(ids)).group_by(Customer.owner_seller_id)).all())
    held = dict(session.execute(select(Opportunity.seller_id, func.count()).where(
        Opportunity.seller_id.in_(ids), Opportunity.status.in_(OPEN_STATUSES)).group_by(Opportunity.seller_id)).all())
    return render_template("pages/manager/sellers.html", sellers=rows, portfolio=portfolio, held=held,
                           daily_cap=daily_cap)


def _parse_capacity(form) -> tuple[dict, dict[str, str]]:
    values, errors = {}, {}
    for name, low, high in (("hours_per_day", "0", "24"), ("idle_share", "0", "1")):
        try:
            raw = form.get(name, "").strip().replace(",", ".")
            if not raw.isascii() or len(raw) > 8:
                raise InvalidOperation
            value = Decimal(raw)
            if not value.is_finite() or not Decimal(low) <= value <= Decimal(high):
                raise InvalidOperation
            values[name] = value.quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            errors[name] = f"use um número entre {low} e {high}"
    for name, low, high in (("avg_conversation_minutes", 1, 480), ("max_portfolio", 0, 100000)):
        try:
            values[name] = parse_int(form.get(name, ""), name, minimum=low, maximum=high)
        except InputError as exc:
            errors[name] = exc.message
    ddds = [d.strip() for d in form.get("region_ddds", "").replace(";", ",").split(",") if d.strip()]
    unknown = [d for d in ddds if d not in DDD_STATE]
    if unknown:
        errors["region_ddds"] = f"DDD inválido: {', '.join(unknown[:5])}"
    values["region_ddds"] = sorted(set(ddds))
    return values, errors


@bp.route("/vendedores/<id:seller_id>", methods=["GET", "POST"])
@allowed(Action.MANAGE_PEOPLE)
def seller(seller_id: int):
    session = db_session()
    target = _seller_in_scope(seller_id)
    errors = {}
    if request.method == "POST":
        values, errors = _parse_capacity(request.form)
        if not errors:
            for name, value in values.items():
                setattr(target, name, value)
            session.commit()
            flash("Vendedor atualizado.", "info")
            return redirect(url_for(".seller", seller_id=target.id)), 303
    colleagues = session.scalars(select(User).where(access.seller_clause(current_user), User.active.is_(True),
                                                    User.store_id == target.store_id, User.id != target.id)
                                 .order_by(User.name)).all()
    return render_template("pages/manager/seller.html", seller=target, errors=errors, form=request.form,
                           cap=daily_cap(target), colleagues=colleagues), 400 if errors else 200


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _deactivation_question(session, target: User, destination: str, receiver: User | None) -> dict:
    """The confirmation page of a deactivation: how many customers and open opportunities move, and where to."""
    customers = session.scalar(select(func.count()).select_from(Customer)
                               .where(Customer.owner_seller_id == target.id)) or 0
    opportunities = session.scalar(select(func.count()).select_from(Opportunity).where(
        Opportunity.seller_id == target.id, Opportunity.status.in_(PORTFOLIO_HELD))) or 0
    moving = customers + opportunities
    if destination == EVEN:
        names = session.scalars(select(User.name).where(
            User.role == Role.SELLER, User.active.is_(True), User.store_id == target.store_id,
            User.id != target.id).order_by(User.name)).all()
        where = ("entre os vendedores ativos da loja, de forma equilibrada (" + ", ".join(names) + ")" if names
                 else "entre os vendedores ativos da loja, mas não há nenhum outro: a inativação será recusada")
    elif receiver is not None:
        where = f"para {receiver.name}"
    else:
        where = "de volta à fila de atribuição, que os entrega a outros vendedores"
    if moving:
        verb = "será redistribuído" if moving == 1 and customers else (
            "será redistribuída" if moving == 1 else "serão redistribuídos")
        moved = (f"{_count(customers, 'cliente', 'clientes')} da carteira e "
                 f"{_count(opportunities, 'oportunidade aberta', 'oportunidades abertas')} {verb} {where}.")
    else:
        moved = f"{target.name} não tem clientes na carteira nem oportunidades abertas: nada será redistribuído."
    return {
        "title": f"Inativar {target.name}?",
        "consequences": [moved, f"{target.name} deixa de receber sugestões e perde o acesso agora: as sessões "
                                "abertas terminam. Dá para ativar de novo depois, mas a carteira não volta."],
        "action": url_for(".seller_status", seller_id=target.id),
        "fields": [("action", "deactivate"), ("to", destination)],
        "confirm_label": "Sim, inativar e redistribuir" if moving else "Sim, inativar",
        "cancel_url": url_for(".seller", seller_id=target.id),
    }


@bp.post("/vendedores/<id:seller_id>/status")
@allowed(Action.MANAGE_PEOPLE)
def seller_status(seller_id: int):
    session = db_session()
    target = _seller_in_scope(seller_id)
    action = request.form.get("action")
    destination = request.form.get("to", "none")
    try:
        if action == "activate":
            set_active(session, target, True)
            message = "Vendedor ativado."
        elif action == "deactivate":
            receiver = None
            if destination not in (EVEN, "none"):
                try:
                    receiver = _seller_in_scope(parse_id(destination, "to"))
                except InputError:
                    raise OpportunityError("to", "escolha quem recebe a carteira") from None
            if request.form.get("confirmar") != "1":
                # Asked once, with what will happen; the action runs only on the confirmation's own POST.
                return render_template("pages/confirm.html", **_deactivation_question(session, target, destination,
                                                                                      receiver))
            now = utcnow()
            moved = deactivate(session, target, now, actor=current_user,
                               to=None if destination == "none" else destination)
            revoke_sessions(session, target.id, now)  # an inactive seller's open sessions end now
            message = (f"Vendedor inativado: {moved.customers} clientes e {moved.opportunities} oportunidades "
                       "redistribuídos.")
        else:
            abort(400)
    except OpportunityError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for(".seller", seller_id=seller_id)), 303
    if action == "deactivate" and destination == "none":
        # Released work goes back to the queue: assign it now rather than at the next periodic pass.
        enqueue_after_commit(session, runtime(), "default", crm_jobs.assign_backlog)
    session.commit()
    flash(message, "info")
    return redirect(url_for(".sellers")), 303


@bp.route("/usuarios/novo", methods=["GET", "POST"])
@allowed(Action.MANAGE_PEOPLE)
def new_user():
    session = db_session()
    policy = access.user_policy(current_user)
    store_query = select(Store).order_by(Store.name)
    if policy.store_ids is not None:
        store_query = store_query.where(Store.id.in_(policy.store_ids))
    stores = session.scalars(store_query).all()
    errors = {}
    if request.method == "POST":
        try:
            role = Role(request.form.get("role", ""))
        except ValueError:
            role = None
        store_id = None
        raw_store = request.form.get("store_id", "").strip()
        if raw_store:
            try:
                store_id = parse_id(raw_store, "store_id")
            except InputError:
                errors["store_id"] = "loja inválida"
            else:
                if store_id not in {s.id for s in stores}:
                    errors["store_id"] = "loja inválida"
        elif len(stores) == 1 and not policy.brand_wide_allowed:
            store_id = stores[0].id  # a branch manager's users are in their branch
        if "store_id" not in errors:
            errors.update(policy.problems(role, store_id))
        if not errors:
            try:
                user = create_user(session, email=request.form.get("email", ""), role=role.value,
                                   password=request.form.get("password", ""), name=request.form.get("name") or None,
                                   store_id=store_id)
                user.seller_code = (request.form.get("seller_code") or "").strip()[:32] or None
                session.commit()
                flash("Usuário criado.", "info")
                return redirect(url_for(".sellers")), 303
            except UserError as exc:
                session.rollback()
                errors[exc.field] = exc.message
    return render_template("pages/manager/new_user.html", stores=stores, roles=list(policy.roles), errors=errors,
                           brand_wide_allowed=policy.brand_wide_allowed, form=request.form), 400 if errors else 200


@bp.route("/oportunidades", methods=["GET", "POST"])
@allowed(Action.WORK_OPPORTUNITIES)
def opportunities():
    session = db_session()
    row_errors = []
    if request.method == "POST":
        upload = request.files.get("arquivo")
        now = utcnow()
        try:
            if upload and upload.filename:
                specs = intake.parse_csv(upload.read(intake.MAX_ROWS * 400).decode("utf-8-sig", "replace"), now)
            else:
                specs = intake.parse_rows([{k: v for k, v in request.form.items() if k in intake.CSV_COLUMNS and v}],
                                          now)
            outcomes = intake.create_all(session, specs, current_user, now)
        except intake.IntakeInvalid as exc:
            session.rollback()
            row_errors = exc.errors
        else:
            for opportunity_id in intake.backlog_ids(outcomes):
                enqueue_after_commit(session, runtime(), "default", crm_jobs.assign_opportunity, opportunity_id)
            session.commit()
            created = sum(1 for _, c in outcomes if c.created)
            flash(f"{created} oportunidade(s) criada(s); {len(outcomes) - created} já existiam ou foram "
                  "ignoradas (quarentena, opt-out).", "info")
            return redirect(url_for(".opportunities")), 303
    status = request.args.get("status", "")
    kind = request.args.get("tipo", "")
    sellers = session.scalars(select(User).where(access.seller_clause(current_user)).order_by(User.name)).all()
    seller_arg = request.args.get("vendedor", "")
    query = (access.visible_opportunities(session, current_user)
             .order_by(Opportunity.priority.desc(), Opportunity.created_at.desc()).limit(200))
    if status in {s.value for s in OpportunityStatus}:
        query = query.where(Opportunity.status == OpportunityStatus(status))
    if kind in {t.value for t in OpportunityType}:
        query = query.where(Opportunity.type == OpportunityType(kind))
    if seller_arg == "nenhum":
        query = query.where(Opportunity.seller_id.is_(None))
    elif seller_arg in {str(s.id) for s in sellers}:
        query = query.where(Opportunity.seller_id == int(seller_arg))
    else:
        seller_arg = ""
    return render_template("pages/manager/opportunities.html", items=session.scalars(query).all(),
                           row_errors=row_errors, status=status, statuses=list(OpportunityStatus),
                           kind=kind, kinds=list(OpportunityType), sellers=sellers, seller_arg=seller_arg,
                           form=request.form), 400 if row_errors else 200


EVENT_LABELS = {"created": "Criada", "assigned": "Atribuída", "reassigned": "Reatribuída", "status": "Status alterado",
                "merged": "Nova origem somada", "contact": "Contato do vendedor"}


def _opportunity_in_scope(opportunity_id: int, *, lock: bool = False) -> Opportunity:
    query = access.visible_opportunities(db_session(), current_user).where(Opportunity.id == opportunity_id)
    found = db_session().scalar(query.with_for_update() if lock else query)
    if found is None:
        abort(404)
    return found


def _capacity(session, sellers: list[User]) -> dict[int, dict]:
    """Each seller's room for more work today, as the reassignment checks it (crm.assignment.reassign)."""
    ids = [s.id for s in sellers]
    if not ids:
        return {}
    day_start = local_midnight(utcnow(), runtime().settings.store_timezone)
    today = dict(session.execute(select(OpportunityEvent.to_seller_id, func.count()).where(
        OpportunityEvent.to_seller_id.in_(ids), OpportunityEvent.kind.in_(("assigned", "reassigned")),
        OpportunityEvent.at >= day_start).group_by(OpportunityEvent.to_seller_id)).all())
    portfolio = dict(session.execute(select(Customer.owner_seller_id, func.count()).where(
        Customer.owner_seller_id.in_(ids)).group_by(Customer.owner_seller_id)).all())
    return {s.id: {"today": today.get(s.id, 0), "cap": daily_cap(s), "portfolio": portfolio.get(s.id, 0),
                   "max": s.max_portfolio} for s in sellers}


@bp.get("/oportunidades/<id:opportunity_id>")
@allowed(Action.WORK_OPPORTUNITIES)
def opportunity(opportunity_id: int):
    session = db_session()
    item = _opportunity_in_scope(opportunity_id)
    people_ids = {e.actor_id for e in item.events} | {e.from_seller_id for e in item.events} | {
        e.to_seller_id for e in item.events}
    people_ids.discard(None)
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids)))} if people_ids else {}
    notes = session.scalars(select(CustomerNote).where(CustomerNote.customer_id == item.customer_id)
                            .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc()).limit(50)).all()
    targets = []
    if item.is_open:
        targets = [s for s in session.scalars(select(User).where(
            access.seller_clause(current_user), User.active.is_(True)).order_by(User.name)) if s.id != item.seller_id]
    return render_template("pages/manager/opportunity.html", item=item, events=list(reversed(item.events)),
                           people=people, event_labels=EVENT_LABELS, notes=notes, note_labels=NOTE_LABELS,
                           targets=targets,
                           capacity=_capacity(session, targets),
                           may_open_customer=access.may_see_customer(session, current_user, item.customer))


@bp.post("/oportunidades/<id:opportunity_id>/reatribuir")
@allowed(Action.WORK_OPPORTUNITIES)
def reassign_opportunity(opportunity_id: int):
    """Give an open opportunity to another active seller of the manager's scope, within that seller's capacity;
    the event records who did it."""
    session = db_session()
    item = _opportunity_in_scope(opportunity_id, lock=True)
    try:
        target_id = parse_id(request.form.get("seller_id", ""), "seller_id")
    except InputError:
        target_id = None
    target = session.get(User, target_id) if target_id is not None else None
    try:
        if target is None or not access.may_hand_to(current_user, target):
            raise NoCapacity("escolha um vendedor ativo da sua loja")
        actor = session.get(User, current_user.id)
        reassign(session, item, target.id, utcnow(), runtime().settings.store_timezone, actor=actor)
    except (NoCapacity, OpportunityError) as exc:
        session.rollback()
        flash(f"Não foi possível reatribuir: {exc.message}.", "error")
        return redirect(url_for(".opportunity", opportunity_id=opportunity_id)), 303
    session.commit()
    flash(f"Oportunidade reatribuída para {target.name or target.email}.", "info")
    return redirect(url_for(".opportunity", opportunity_id=opportunity_id)), 303


@bp.route("/configuracoes", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def rules():
    session = db_session()
    settings = crm_settings(session)
    errors = {}
    if request.method == "POST":
        limits = {"quarantine_days": (0, 365), "recovery_followup_hours": (0, 720), "attribution_days": (1, 90)}
        # The opening hours, the response time and the deadlines by type and priority were added to the page
        # later: a form without them (an older page, a script) leaves them as they are. The deadlines replaced
        # the single default deadline, still accepted from such a form.
        if "default_deadline_hours" in request.form:
            limits["default_deadline_hours"] = (1, 720)
        if "handoff_response_minutes" in request.form:
            limits["handoff_response_minutes"] = store_hours_rules.RESPONSE_MINUTES
        values = {}
        for name, (low, high) in limits.items():
            try:
                values[name] = parse_int(request.form.get(name, ""), name, minimum=low, maximum=high)
            except InputError as exc:
                errors[name] = exc.message
        message = request.form.get("suggested_message", "").strip()
        try:
            validate_suggestion(message)
            values["suggested_message"] = message
        except TemplateRenderError as exc:
            errors["suggested_message"] = str(exc)
        if not message:
            errors["suggested_message"] = "informe a mensagem sugerida"
        if any(name.startswith("hours_") for name in request.form):
            try:
                values["opening_hours"] = store_hours_rules.parse_form(request.form)
            except store_hours_rules.HoursInvalid as exc:
                errors.update(exc.errors)
        if any(name.startswith("deadline_") for name in request.form):
            values["deadline_hours"], deadline_errors = _parse_deadlines(request.form)
            errors.update(deadline_errors)
        if not errors:
            for name, value in values.items():
                setattr(settings, name, value)
            session.commit()
            flash("Regras salvas.", "info")
            return redirect(url_for(".rules")), 303
    hours = store_hours_rules.store_hours(session)
    return render_template("pages/manager/rules.html", settings=settings, errors=errors, form=request.form,
                           hours=_hours_rows(hours, request.form), hours_text=store_hours_rules.describe(hours),
                           deadlines=_deadline_rows(settings, request.form)), \
        400 if errors else 200


DEADLINE_TYPE_LABELS = {"behavior": "Comportamento (carrinho, navegação, recuperação)", "segment": "Segmento (campanha)",
                        "manual": "Manual (gestão ou API)", "contact": "Contato do vendedor"}
DEADLINE_PRIORITY_LABELS = {"high": "Alta", "normal": "Normal", "low": "Baixa"}


def deadline_field(type_name: str, priority: str) -> str:
    return f"deadline_{type_name}_{priority}"


def _parse_deadlines(form) -> tuple[dict, dict[str, str]]:
    """Every type × priority, a whole number of opening hours; errors by field, in pt-BR."""
    low, high = DEADLINE_LIMITS
    values, errors = {}, {}
    for type_name in DEADLINE_TYPES:
        values[type_name] = {}
        for priority in DEADLINE_PRIORITIES:
            name = deadline_field(type_name, priority)
            try:
                values[type_name][priority] = parse_int(form.get(name, ""), name, minimum=low, maximum=high)
            except InputError:
                errors[name] = f"use um número inteiro de horas entre {low} e {high}"
    return values, errors


def _deadline_rows(settings, form) -> list[dict]:
    """One row per type for the form: what was posted, or else the rules in force."""
    rules = deadline_rules(settings)
    posted = any(name.startswith("deadline_") for name in form)
    return [{"label": DEADLINE_TYPE_LABELS[type_name], "cells": [
        {"name": deadline_field(type_name, priority), "label": DEADLINE_PRIORITY_LABELS[priority],
         "value": form.get(deadline_field(type_name, priority), "") if posted else rules[type_name][priority]}
        for priority in DEADLINE_PRIORITIES]} for type_name in DEADLINE_TYPES]


def _hours_rows(hours: store_hours_rules.OpeningHours, form) -> list[dict]:
    """One row per weekday for the form: what was posted, or else the saved hours (their first interval)."""
    rows = []
    for index, day in enumerate(store_hours_rules.DAYS):
        names = {part: store_hours_rules.form_field(day, part) for part in ("open", "opens", "closes")}
        saved = hours.to_json()[day]
        if any(name.startswith("hours_") for name in form):
            is_open = bool(form.get(names["open"]))
            opens, closes = form.get(names["opens"], ""), form.get(names["closes"], "")
        else:
            is_open = bool(saved)
            opens, closes = (saved[0] if saved else ("", ""))
        rows.append({"label": store_hours_rules.DAY_NAMES[index].capitalize(), "names": names, "open": is_open,
                     "opens": opens, "closes": closes, "more": len(saved) > 1})
    return rows


@bp.get("/resultados")
@allowed(Action.READ_RESULTS)
def results():
    start, end, first, last = period_from_args(runtime().settings.store_timezone)
    store_id = access.branch_of(current_user)
    result = report(db_session(), start, end, store_id=store_id)
    return render_template("pages/manager/results.html", result=result, first=first, last=last)
