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
from crm.assignment import daily_cap
from crm.opportunities import OPEN_STATUSES, OpportunityError, crm_settings
from crm.portfolio import EVEN, deactivate, set_active
from crm.profile import validate_suggestion
from crm.results import report
from crm.users import UserError, create_user, revoke_sessions
from models import Customer, Opportunity, OpportunityStatus, Role, Store, User, utcnow
from web.context import db_session, runtime
from web.auth import allowed
from web.seller import period_from_args

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
            if destination not in (EVEN, "none"):
                try:
                    _seller_in_scope(parse_id(destination, "to"))
                except InputError:
                    raise OpportunityError("to", "escolha quem recebe a carteira") from None
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
    query = (access.visible_opportunities(session, current_user)
             .order_by(Opportunity.priority.desc(), Opportunity.created_at.desc()).limit(200))
    if status in {s.value for s in OpportunityStatus}:
        query = query.where(Opportunity.status == OpportunityStatus(status))
    return render_template("pages/manager/opportunities.html", items=session.scalars(query).all(),
                           row_errors=row_errors, status=status, statuses=list(OpportunityStatus),
                           form=request.form), 400 if row_errors else 200


@bp.route("/configuracoes", methods=["GET", "POST"])
@allowed(Action.CONFIGURE_BRAND)
def rules():
    session = db_session()
    settings = crm_settings(session)
    errors = {}
    if request.method == "POST":
        limits = {"quarantine_days": (0, 365), "recovery_followup_hours": (0, 720), "attribution_days": (1, 90),
                  "default_deadline_hours": (1, 720)}
        # The opening hours and the response time were added to the page later: a form without them (an older
        # page, a script) leaves them as they are.
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
        if not errors:
            for name, value in values.items():
                setattr(settings, name, value)
            session.commit()
            flash("Regras salvas.", "info")
            return redirect(url_for(".rules")), 303
    hours = store_hours_rules.store_hours(session)
    return render_template("pages/manager/rules.html", settings=settings, errors=errors, form=request.form,
                           hours=_hours_rows(hours, request.form), hours_text=store_hours_rules.describe(hours)), \
        400 if errors else 200


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
