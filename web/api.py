"""The recoverer's JSON API: settings, the WhatsApp templates they map, stats, and coupon validation for the
shop's checkout.

Errors are JSON: ``{"error": "...", "fields": {"name": "mensagem"}}`` for a bad body or bad parameters,
``{"error": "...", "message": "..."}`` for 401/403/429.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from core.inputs import MAX_COUPON_CODE, MAX_PHONE_TEXT, MONEY, InputError, parse_day
from core.phones import InvalidPhone, normalize_phone
from crm.access import Action
from models import WhatsAppTemplate, utcnow
from recovery.config import SettingsInvalid, as_dict, load_settings, update_settings
from recovery.coupons import judge
from recovery.stats import recovery_stats
from web import limits
from web.context import db_session, runtime
from web.api_auth import api_allowed

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_STATS_DAYS = 30
MAX_STATS_DAYS = 366

COUPON_RATE_LIMIT = 60  # requests per client IP
COUPON_RATE_WINDOW = 60  # seconds


def _bad(error: str, fields: dict[str, str]):
    return jsonify(error=error, fields=fields), 400


_NO_BODY = object()


def _json_body():
    """The request's JSON value whatever the Content-Type, or _NO_BODY when it does not parse (bad UTF-8,
    bad JSON, nesting too deep for the parser)."""
    try:
        return json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):
        return _NO_BODY


# --- settings ------------------------------------------------------------------------------------------

# The recoverer's settings apply to the whole brand: admins and brand managers only (the console's rule too).
@bp.get("/recovery/settings")
@api_allowed(Action.CONFIGURE_BRAND)
def get_settings():
    return jsonify(as_dict(load_settings(db_session())))


@bp.put("/recovery/settings")
@api_allowed(Action.CONFIGURE_BRAND)
def put_settings():
    changes = _json_body()
    if not isinstance(changes, dict):
        return _bad("invalid body", {"body": "envie um objeto JSON com os campos a alterar"})
    unstorable = _unstorable(changes)
    if unstorable:
        return _bad("invalid settings", unstorable)
    session = db_session()
    try:
        settings = update_settings(session, changes)
    except SettingsInvalid as exc:
        session.rollback()
        return _bad("invalid settings", exc.errors)
    session.commit()
    return jsonify(as_dict(settings))


INT32 = 2**31


def _unstorable(changes: dict) -> dict[str, str]:
    """Values no database column can hold, refused before they reach the driver (which would raise a 500):
    text with NUL or lone surrogates, integers beyond 32 bits (e.g. an id of 10**30)."""
    errors = {}
    for name, value in changes.items():
        if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
            errors[name] = "contém caracteres inválidos"
        elif isinstance(value, int) and not isinstance(value, bool) and not -INT32 <= value < INT32:
            errors[name] = "número fora do intervalo"
    return errors


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- WhatsApp templates -----------------------------------------------------------------------------

@bp.get("/whatsapp/templates")
@api_allowed(Action.CONFIGURE_BRAND)
def list_templates():
    """The synced templates (channel.template_sync), newest review state first per name."""
    session = db_session()
    rows = session.scalars(select(WhatsAppTemplate).order_by(WhatsAppTemplate.name, WhatsAppTemplate.language))
    return jsonify(provider=runtime().settings.whatsapp_provider, templates=[template_json(t) for t in rows])


def template_json(template: WhatsAppTemplate) -> dict:
    return {
        "id": template.id, "provider": template.provider, "external_id": template.external_id,
        "name": template.name, "language": template.language, "category": template.category,
        "status": template.status.value, "rejection_reason": template.rejection_reason,
        "header": template.header, "body": template.body, "footer": template.footer,
        "placeholders": [{"key": p["key"], "name": p["name"], "component": p["component"]}
                         for p in template.placeholders],
        "buttons": template.buttons, "synced_at": template.synced_at.isoformat(),
    }


# --- stats ---------------------------------------------------------------------------------------------

@bp.get("/recovery/stats")
@api_allowed(Action.READ_DASHBOARD)
def get_stats():
    tz = runtime().settings.store_timezone
    errors = {}
    bounds = {}
    for name in ("from", "to"):
        try:
            bounds[name] = parse_day(request.args.get(name), name)
        except InputError as exc:
            errors[name] = exc.message
    if errors:
        return _bad("invalid parameters", errors)
    start, end = bounds["from"], bounds["to"]
    # Defaults: `to` is today (store time), `from` is 30 days before `to` (both inclusive).
    if end is None:
        end = utcnow().astimezone(tz).date()
    if start is None:
        start = end - timedelta(days=DEFAULT_STATS_DAYS - 1)
    if start > end:
        return _bad("invalid parameters", {"from": "deve ser anterior ou igual a 'to'"})
    if (end - start).days + 1 > MAX_STATS_DAYS:
        return _bad("invalid parameters", {"to": f"o período pode ter no máximo {MAX_STATS_DAYS} dias"})
    return jsonify(recovery_stats(db_session(), start=start, end=end, tz=tz))


# --- coupon validation (called by the shop's checkout: no token, rate-limited per IP) ---------------------

def _over_rate_limit() -> bool:
    rt = runtime()
    key = rt.keys("rl", "coupon", request.remote_addr or "unknown")
    return limits.hit(rt.redis, key, COUPON_RATE_WINDOW) > COUPON_RATE_LIMIT


@bp.post("/coupons/validate")
def validate_coupon():
    if _over_rate_limit():
        response = jsonify(error="too many requests",
                           message="muitas consultas de cupom; tente novamente em um minuto")
        response.headers["Retry-After"] = str(COUPON_RATE_WINDOW)
        return response, 429
    body = _json_body()
    if not isinstance(body, dict):
        return _bad("invalid body", {"body": "envie um objeto JSON com code, phone e cart_total"})
    errors: dict[str, str] = {}

    code = body.get("code")
    if not isinstance(code, str):
        errors["code"] = "obrigatório (texto)"
    elif not code.strip():
        errors["code"] = "obrigatório"
    elif len(code.strip()) > MAX_COUPON_CODE or "\x00" in code or not code.isascii():
        errors["code"] = "código inválido"

    phone = body.get("phone")
    if not isinstance(phone, str) or not phone.strip():
        errors["phone"] = "obrigatório"
    else:
        try:
            if len(phone) > MAX_PHONE_TEXT:
                raise InvalidPhone("longo demais")
            phone = normalize_phone(phone)
        except InvalidPhone:
            errors["phone"] = "telefone inválido; use o formato internacional, por exemplo +5511999990001"

    raw_total = body.get("cart_total")
    if not isinstance(raw_total, str) or not MONEY.fullmatch(raw_total):
        errors["cart_total"] = 'use um texto decimal maior ou igual a zero, por exemplo "159.80"'

    if errors:
        return _bad("invalid body", errors)
    verdict = judge(db_session(), code=code, phone=phone, cart_total=Decimal(raw_total), now=utcnow())
    return jsonify(verdict.as_json())
