"""The opportunities JSON API and the customer 360. Who sees which rows is crm.access's rule, the same as the
pages': a seller their own, a branch's users their branch's, brand-wide users everything."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from core.inputs import InputError, parse_id, parse_moment, parse_page
from core.phones import InvalidPhone, normalize_phone
from core.queues import enqueue_after_commit
from crm import customer360, intake, recommendations
from crm import jobs as crm_jobs
from crm.access import Action, may, may_hand_to, may_see_customer, visible_opportunities
from crm.assignment import NoCapacity, reassign
from crm.opportunities import PRIORITIES, OpportunityError, move
from crm.profile import customer_json, opportunity_json
from models import Customer, Opportunity, OpportunityResult, OpportunityStatus, OpportunityType, Role, User, utcnow
from web.context import db_session, runtime
from web.api import _bad, _json_body
from web.api_auth import api_allowed

bp = Blueprint("crm_api", __name__, url_prefix="/api")

PAGE_SIZE = 50
MAX_CSV_BYTES = 2_000_000


@bp.get("/opportunities")
@api_allowed(Action.READ_OPPORTUNITIES)
def list_opportunities():
    session = db_session()
    query = visible_opportunities(session, g.api_user)
    errors = {}
    status = request.args.get("status")
    if status:
        try:
            query = query.where(Opportunity.status == OpportunityStatus(status))
        except ValueError:
            errors["status"] = "use backlog, assigned, in_progress ou finished"
    kind = request.args.get("type")
    if kind:
        try:
            query = query.where(Opportunity.type == OpportunityType(kind))
        except ValueError:
            errors["type"] = "use behavior, segment, manual ou contact"
    if request.args.get("seller_id"):
        try:
            query = query.where(Opportunity.seller_id == parse_id(request.args["seller_id"], "seller_id"))
        except InputError as exc:
            errors[exc.field] = exc.message
    page = 1
    try:
        page = parse_page(request.args.get("page"))
    except InputError as exc:
        errors[exc.field] = exc.message
    if errors:
        return _bad("invalid parameters", errors)
    rows = session.scalars(query.order_by(Opportunity.priority.desc(), Opportunity.deadline, Opportunity.id)
                           .limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).all()
    return jsonify(items=[opportunity_json(o) for o in rows[:PAGE_SIZE]], page=page,
                   has_more=len(rows) > PAGE_SIZE)


@bp.post("/opportunities")
@api_allowed(Action.WORK_OPPORTUNITIES)
def create_opportunities():
    """One JSON object, a JSON list, or ``text/csv``. All or none; 201 with what was created, joined to an
    open opportunity of the same customer, or skipped (quarantine, opt-out)."""
    session = db_session()
    now = utcnow()
    try:
        if request.mimetype == "text/csv":
            raw = request.get_data(cache=False)
            if len(raw) > MAX_CSV_BYTES:
                return _bad("invalid body", {"body": "arquivo grande demais (máx. 2 MB)"})
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                return _bad("invalid body", {"body": "o CSV deve estar em UTF-8"})
            specs = intake.parse_csv(text, now)
        else:
            body = _json_body()
            if isinstance(body, dict):
                specs = intake.parse_rows([body], now)
            elif isinstance(body, list):
                specs = intake.parse_rows(body, now)
            else:
                return _bad("invalid body", {"body": "envie um objeto JSON, uma lista deles, ou text/csv"})
        outcomes = intake.create_all(session, specs, g.api_user, now)
    except intake.IntakeInvalid as exc:
        session.rollback()
        rows = [e.as_json() for e in exc.errors]
        return jsonify(error="invalid body", fields={f"{e['line']}.{e['field']}": e["message"] for e in rows},
                       rows=rows), 400
    for opportunity_id in intake.backlog_ids(outcomes):
        enqueue_after_commit(session, runtime(), "default", crm_jobs.assign_opportunity, opportunity_id)
    session.commit()
    return jsonify(
        created=[opportunity_json(c.opportunity) for _, c in outcomes if c.created],
        merged=[{"line": s.line, "id": c.opportunity.id} for s, c in outcomes if c.opportunity and not c.created],
        skipped=[{"line": s.line, "reason": c.skipped} for s, c in outcomes if c.opportunity is None],
    ), 201


def _patch_errors(body: dict, user: User) -> dict[str, str]:
    allowed = {"status", "result", "note", "seller_id", "priority", "deadline"} if may(
        user, Action.WORK_OPPORTUNITIES) else {"status", "result", "note"}
    return {str(k)[:40]: "campo desconhecido ou não permitido ao seu papel" for k in body if k not in allowed}


@bp.patch("/opportunities/<id:opportunity_id>")
@api_allowed(Action.READ_OPPORTUNITIES)
def patch_opportunity(opportunity_id: int):
    session = db_session()
    user = g.api_user
    opportunity = session.scalar(visible_opportunities(session, user).where(Opportunity.id == opportunity_id)
                                 .with_for_update())
    if opportunity is None:
        return jsonify(error="Not Found", message="oportunidade não encontrada"), 404
    body = _json_body()
    if not isinstance(body, dict) or not body:
        return _bad("invalid body", {"body": "envie um objeto JSON com os campos a alterar"})
    errors = _patch_errors(body, user)
    if errors:
        return _bad("invalid body", errors)
    now = utcnow()
    try:
        _apply_patch(session, opportunity, body, user, now)
    except OpportunityError as exc:
        session.rollback()
        return _bad("invalid change", {exc.field: exc.message})
    session.commit()
    return jsonify(opportunity_json(opportunity))


def _apply_patch(session, opportunity: Opportunity, body: dict, user: User, now: datetime) -> None:
    if "seller_id" in body:
        try:
            target_id = parse_id(body["seller_id"], "seller_id")
        except InputError:
            raise OpportunityError("seller_id", "deve ser o id de um vendedor") from None
        target = session.scalar(select(User).where(User.id == target_id, User.role == Role.SELLER,
                                                   User.active.is_(True)))
        if target is None or not may_hand_to(user, target):
            raise OpportunityError("seller_id", "vendedor ativo não encontrado")
        if target.id != opportunity.seller_id:
            # The same rule as the manager's page: within the target's daily cap and portfolio.
            try:
                reassign(session, opportunity, target.id, now, runtime().settings.store_timezone, actor=user)
            except NoCapacity as exc:
                raise OpportunityError("seller_id", exc.message) from None
    if "priority" in body:
        if not isinstance(body["priority"], str) or body["priority"] not in PRIORITIES:
            raise OpportunityError("priority", "use low, normal ou high")
        opportunity.priority = PRIORITIES[body["priority"]]
    if "deadline" in body:
        opportunity.deadline = _deadline(body["deadline"], now)
    if "status" in body:
        try:
            status = OpportunityStatus(body["status"])
        except (ValueError, TypeError):
            raise OpportunityError("status", "use backlog, assigned, in_progress ou finished") from None
        result = None
        if body.get("result") is not None:
            try:
                result = OpportunityResult(body["result"])
            except (ValueError, TypeError):
                raise OpportunityError("result", "use positive, neutral ou negative") from None
        note = body.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 2000 or "\x00" in note):
            raise OpportunityError("note", "texto de até 2000 caracteres")
        if status is OpportunityStatus.ASSIGNED:
            raise OpportunityError("status", "para atribuir, informe seller_id")
        move(session, opportunity, status, now, actor=user, result=result, note=note)
    elif "result" in body or "note" in body:
        raise OpportunityError("status", "resultado e nota acompanham status=finished")


def _deadline(value, now: datetime) -> datetime:
    try:
        moment = parse_moment(value, "deadline")
    except InputError as exc:
        raise OpportunityError("deadline", exc.message) from None
    if moment <= now:
        raise OpportunityError("deadline", "o prazo já passou")
    return moment


@bp.get("/customers/<path:phone>")
@api_allowed(Action.READ_CUSTOMERS)
def get_customer(phone: str):
    session = db_session()
    try:
        e164 = normalize_phone(phone[:40])
    except InvalidPhone:
        return _bad("invalid phone", {"phone": "número de telefone inválido"})
    customer = session.scalar(select(Customer).where(Customer.phone == e164))
    if customer is None or not may_see_customer(session, g.api_user, customer):
        return jsonify(error="Not Found", message="cliente não encontrado"), 404
    group_by = (request.args.get("group_by") or "name").strip()[:80]
    if not recommendations.valid_grouping(session, group_by):
        return _bad("invalid group_by", {"group_by": "agrupe por name, category, brand, color, size ou um atributo "
                                                    "dos produtos"})
    period = request.args.get("period_days") or str(customer360.DEFAULT_PERIOD)
    if period not in {str(p) for p in customer360.PERIODS}:
        return _bad("invalid period_days", {"period_days": "use 30, 90, 180 ou 365 dias"})
    body = customer_json(session, customer)
    body.update(customer360.sections(session, customer, utcnow(), group_by=group_by, period_days=int(period)))
    return jsonify(body)
