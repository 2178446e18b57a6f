"""/simulator: chat as a shopper through the real, signed webhook path (outbox mode only).

The page builds the same form Twilio posts for an inbound WhatsApp message, has this blueprint sign it with
the webhook token (``POST /simulator/sign``), and posts it to ``/webhooks/whatsapp`` itself, so the message
takes exactly the production path. The bot's replies are read back from the database
(``GET /simulator/messages``).

It must never become a signing oracle or a window on real conversations: every route answers 404 unless the
app is in outbox mode (no Twilio credentials, so the only token it could sign with is the generated development
one) and not in production; it signs only for simulator shoppers (a phone that belongs to a real customer is
refused), and it shows only the conversations of the phones this browser simulated.
"""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, request, session as cookie
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from models.people import upsert_customer
from core.inputs import MAX_ID, InputError, parse_int
from core.phones import InvalidPhone, normalize_phone
from core.phones import format_phone
from models import Customer, Message, demo
from web.context import db_session, runtime

bp = Blueprint("simulator", __name__)

WEBHOOK_PATH = "/webhooks/whatsapp"
DEFAULT_PHONE = "+55 11 99999-0001"
DEFAULT_NAME = "Ana Teste"
PLACEHOLDER_ACCOUNT_SID = "AC" + "0" * 32  # outbox mode has no account; the webhook does not check it
MAX_MESSAGES = 200
MAX_PARAMS = 50
MAX_PARAM_LENGTH = 8192
OWN_PHONES = "simulator_phones"  # the phones this browser simulated, in Flask's signed session cookie
MAX_OWN_PHONES = 20


@bp.before_request
def _outbox_mode_only():
    settings = runtime().settings
    if settings.is_production or not settings.outbox_mode or settings.twilio_auth_token:
        abort(404)


def _own_phones() -> list[str]:
    phones = cookie.get(OWN_PHONES)
    return [p for p in phones if isinstance(p, str)] if isinstance(phones, list) else []


def _claim_phone(phone: str) -> bool:
    """Make ``phone`` a simulator shopper of this browser; False when it is a real customer's number."""
    session = db_session()
    customer = session.scalar(select(Customer).where(Customer.phone == phone))
    if customer is None:
        customer = upsert_customer(session, phone, None)
        customer.simulated = True
        session.commit()
    elif not customer.simulated:
        return False
    phones = [p for p in _own_phones() if p != phone] + [phone]
    cookie[OWN_PHONES] = phones[-MAX_OWN_PHONES:]
    return True


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
        demo_abandoner=_demo_abandoner(),
    )


def _demo_abandoner() -> str | None:
    """The demo's web-cart abandoner's number, when the demo data is loaded (shown as a hint)."""
    phone = demo.DEMO_ABANDONER[0]
    found = db_session().scalar(select(Customer.id).where(Customer.phone == phone, Customer.simulated.is_(True)))
    return format_phone(phone) if found else None


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
    if not _claim_phone(phone):
        return jsonify(error="forbidden", field="phone",
                       message="este número é de um cliente de verdade; use outro número no simulador"), 403

    settings = runtime().settings
    signature = RequestValidator(settings.webhook_auth_token).compute_signature(
        settings.public_base_url + WEBHOOK_PATH, params
    )
    return jsonify(url=WEBHOOK_PATH, signature=signature, phone=phone)


@bp.post("/simulator/claim")
def claim():
    """Simulate this shopper from now on (``{"phone": "+55 11 98888-1001"}``), so their conversation shows before
    they write: the demo's web-cart abandoner, whose first message is the recoverer's template."""
    payload = request.get_json(silent=True)
    raw = payload.get("phone") if isinstance(payload, dict) else None
    if not isinstance(raw, str) or len(raw) > 40:
        return _field_error("phone", 'envie JSON no formato {"phone": "+55 11 99999-0001"}')
    try:
        phone = normalize_phone(raw)
    except InvalidPhone as exc:
        return _field_error("phone", f"telefone inválido ({exc}); use o formato +55 11 99999-0001")
    if not _claim_phone(phone):
        return jsonify(error="forbidden", field="phone",
                       message="este número é de um cliente de verdade; use outro número no simulador"), 403
    return jsonify(phone=phone)


@bp.get("/simulator/messages")
def messages():
    """The conversation of one shopper, oldest first: ``?phone=+5511999990001&after=<message id>``."""
    try:
        phone = normalize_phone(request.args.get("phone", ""))
    except InvalidPhone as exc:
        return _field_error("phone", f"telefone inválido ({exc})")
    try:
        after = parse_int(request.args.get("after"), "after", minimum=0, maximum=MAX_ID, default=0)
    except InputError:
        return _field_error("after", "deve ser o id (número inteiro) da última mensagem recebida")

    session = db_session()
    customer_id = session.scalar(select(Customer.id).where(Customer.phone == phone, Customer.simulated.is_(True)))
    if customer_id is None or phone not in _own_phones():
        return jsonify(messages=[])  # only this browser's simulated shoppers: never someone else's conversation
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
