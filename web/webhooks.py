"""Twilio webhooks: inbound messages and delivery status callbacks. Signed, or 403."""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Response, abort, jsonify, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.jobs import shopper_wrote
from channel.inbound import MESSAGE_SID, InboundError, receive_inbound
from channel.status import UNTRACKED_STATUSES, UnknownStatus, apply_status
from models import utcnow
from web.context import db_session, runtime

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


def twilio_signed(view):
    """403 unless X-Twilio-Signature matches PUBLIC_BASE_URL + path and the form, as Twilio computes it."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        settings = runtime().settings
        signature = request.headers.get("X-Twilio-Signature", "")
        url = settings.public_base_url + request.full_path.rstrip("?")
        if not signature or not RequestValidator(settings.webhook_auth_token).validate(url, request.form.to_dict(), signature):
            log.warning("rejected unsigned or forged webhook on %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _empty_twiml() -> Response:
    return Response(str(MessagingResponse()), mimetype="text/xml")


@bp.post("/whatsapp")
@twilio_signed
def whatsapp_inbound():
    session = db_session()
    try:
        outcome = receive_inbound(session, request.form, utcnow())
    except InboundError as exc:
        return jsonify(error="invalid field", field=exc.field, message=exc.message), 400
    shopper_wrote(session, runtime(), outcome)
    return _empty_twiml()


@bp.post("/whatsapp/status")
@twilio_signed
def whatsapp_status():
    sid = (request.form.get("MessageSid") or "").strip()
    if not sid:
        return jsonify(error="invalid field", field="MessageSid", message="missing"), 400
    if not MESSAGE_SID.match(sid):  # a sid we could have stored: two letters and 16-62 letters or digits
        return jsonify(error="invalid field", field="MessageSid", message="malformed"), 400
    error_code = (request.form.get("ErrorCode") or "").strip()
    if error_code and not (error_code.isascii() and error_code.isdigit() and len(error_code) <= 8):
        return jsonify(error="invalid field", field="ErrorCode", message="expected a number"), 400
    raw_status = (request.form.get("MessageStatus") or "").strip().lower()
    if raw_status in UNTRACKED_STATUSES:
        return "", 204
    try:
        apply_status(db_session(), runtime(), sid, raw_status, error_code or None)
    except UnknownStatus:
        return jsonify(error="invalid field", field="MessageStatus", message="unknown status"), 400
    return "", 204
