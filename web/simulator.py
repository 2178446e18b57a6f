"""/simulator: chat as a shopper through the real, signed webhook path (development and outbox mode only).

The page builds the same form Twilio posts for an inbound WhatsApp message, has this blueprint sign it with
the webhook token (``POST /simulator/sign``), and posts it to ``/webhooks/whatsapp`` itself, so the message
takes exactly the production path. The bot's replies are read back from the database
(``GET /simulator/messages``). Every route answers 404 when APP_ENV=production.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, jsonify, render_template, request
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from core.phones import InvalidPhone, normalize_phone
from models import Customer, Message
from web import db_session, runtime

bp = Blueprint("simulator", __name__)

WEBHOOK_PATH = "/webhooks/whatsapp"
DEFAULT_PHONE = "+55 11 99999-0001"
DEFAULT_NAME = "Ana Teste"
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32  # outbox mode has no account; the webhook does not check it
MAX_MESSAGES = 200
MAX_PARAMS = 50
MAX_PARAM_LENGTH = 8192


@bp.before_request
def _not_in_production():
    if runtime().settings.is_production:
        abort(404)


def _field_error(field: str, message: str):
    return jsonify(error="invalid field", field=field, message=message), 400


@bp.get("/simulator")
def page():
    settings = runtime().settings
    return render_template(
        "pages/simulator.html",
        default_phone=DEFAULT_PHONE,
        default_name=DEFAULT_NAME,
        store_number=settings.twilio_whatsapp_from,
        account_sid=settings.twilio_account_sid or PLACEHOLDER_ACCOUNT_SID,
        outbox_mode=settings.outbox_mode,
        store_name=settings.store_name,
        webhook_path=WEBHOOK_PATH,
    )


@bp.post("/simulator/sign")
def sign():
    """Sign an inbound form the way Twilio does: ``{"params": {...}}`` -> ``{"url", "signature", "phone"}``."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("params"), dict):
        return _field_error("params", 'envie JSON no formato {"params": {...}}')
    params = payload["params"]
    if len(params) > MAX_PARAMS:
        return _field_error("params", "campos demais")
    for key, value in params.items():
        if not isinstance(value, str) or len(value) > MAX_PARAM_LENGTH:
            return _field_error("params", f"o campo {key} deve ser um texto de até {MAX_PARAM_LENGTH} caracteres")
    try:
        phone = normalize_phone(params.get("From", ""))
    except InvalidPhone as exc:
        return _field_error("phone", f"telefone inválido ({exc}); use o formato +55 11 99999-0001")

    settings = runtime().settings
    signature = RequestValidator(settings.webhook_auth_token).compute_signature(
        settings.public_base_url + WEBHOOK_PATH, params
    )
    return jsonify(url=WEBHOOK_PATH, signature=signature, phone=phone)


@bp.get("/simulator/messages")
def messages():
    """The conversation of one shopper, oldest first: ``?phone=+5511999990001&after=<message id>``."""
    try:
        phone = normalize_phone(request.args.get("phone", ""))
    except InvalidPhone as exc:
        return _field_error("phone", f"telefone inválido ({exc})")
    raw_after = (request.args.get("after") or "0").strip()
    if not re.fullmatch(r"\d{1,18}", raw_after):
        return _field_error("after", "deve ser o id (número inteiro) da última mensagem recebida")
    after = int(raw_after)

    session = db_session()
    customer_id = session.scalar(select(Customer.id).where(Customer.phone == phone))
    if customer_id is None:
        return jsonify(messages=[])
    rows = session.scalars(
        select(Message)
        .where(Message.customer_id == customer_id, Message.id > after)
        .order_by(Message.id)
        .limit(MAX_MESSAGES)
    )
    return jsonify(messages=[_message_json(m) for m in rows])


def _message_json(message: Message) -> dict:
    return {
        "id": message.id,
        "direction": message.direction.value,
        "body": message.body or "",
        "status": message.status.value,
        "kind": message.kind,
        "created_at": message.created_at.isoformat() if message.created_at else None,
        "error_reason": message.error_reason,
    }
