"""WhatsApp webhooks, signed or 403: Twilio's inbound messages and status callbacks, and Meta's Cloud API
webhook (its verification handshake, then messages, statuses and marketing preferences in one POST)."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import re

from flask import Blueprint, Response, abort, jsonify, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot.jobs import shopper_wrote
from channel import activity
from channel.inbound import MESSAGE_SID, InboundError, parse_form, receive_inbound
from channel.meta_inbound import apply_marketing_preference, parse_webhook
from channel.status import UNTRACKED_STATUSES, UnknownStatus, apply_status
from core.security import hmac_sha256_hex, signatures_match
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
        parsed = parse_form(request.form)
    except InboundError as exc:
        return jsonify(error="invalid field", field=exc.field, message=exc.message), 400
    now = utcnow()
    outcome = receive_inbound(session, parsed, now)
    shopper_wrote(session, runtime(), outcome)
    activity.note(runtime(), activity.INBOUND, now)
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
        activity.note(runtime(), activity.STATUS, utcnow())
        return "", 204
    try:
        apply_status(db_session(), runtime(), sid, raw_status, error_code or None)
    except UnknownStatus:
        return jsonify(error="invalid field", field="MessageStatus", message="unknown status"), 400
    activity.note(runtime(), activity.STATUS, utcnow())
    return "", 204


# --- Meta WhatsApp Cloud API ---------------------------------------------------------------------------

META_SIGNATURE_HEADER = "X-Hub-Signature-256"
# Meta's challenge is a number: nothing else is echoed (no markup reflected from a query string).
CHALLENGE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings (any characters: compare_digest refuses non-ASCII text)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


@bp.get("/meta")
def meta_handshake():
    """Meta's verification when the webhook is configured: with hub.mode=subscribe and our verify token,
    the challenge is the whole answer; anything else (a missing or odd challenge too) is 403."""
    settings = runtime().settings
    mode = request.args.get("hub.mode", "")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if mode != "subscribe" or not token or not _same_secret(token, settings.meta_verify_token) \
            or not CHALLENGE.match(challenge):
        log.warning("rejected Meta webhook verification (wrong mode, verify token or challenge)")
        abort(403)
    return Response(challenge, mimetype="text/plain")


def _meta_signature_ok(raw: bytes) -> bool:
    """X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>. Only SHA-256: the
    legacy X-Hub-Signature (SHA-1) alone is refused."""
    given = request.headers.get(META_SIGNATURE_HEADER, "")
    if not given.isascii() or not given.startswith("sha256="):
        return False
    return signatures_match(hmac_sha256_hex(runtime().settings.meta_app_secret, raw), given.removeprefix("sha256="))


@bp.post("/meta")
def meta_events():
    """Meta's webhook: every inbound message stored once and handed to the bot, every status applied
    (forward only), every marketing stop or resume recorded.

    Meta retries any answer but 200, with backoff, for days: so a malformed item inside a good batch is
    skipped (logged) and the batch still gets its 200; only a body that is not Meta's envelope is a 400, and
    only our own failure (database, Redis) a 5xx, whose retry is harmless (message ids are unique, statuses
    only move forward, preferences are set, not toggled)."""
    raw = request.get_data(cache=True)
    if not _meta_signature_ok(raw):
        log.warning("rejected unsigned or forged webhook on %s", request.path)
        abort(403)
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # also bad UTF-8 and absurdly long integers
        return jsonify(error="invalid body", field="body", message="not JSON"), 400
    rt = runtime()
    try:
        batch = parse_webhook(payload, phone_number_id=rt.settings.meta_phone_number_id)
    except InboundError as exc:
        return jsonify(error="invalid body", field=exc.field, message=exc.message), 400
    session = db_session()
    for parsed in batch.messages:
        outcome = receive_inbound(session, parsed, utcnow())
        shopper_wrote(session, rt, outcome)
    if batch.messages:
        activity.note(rt, activity.INBOUND, utcnow())
    for status in batch.statuses:  # the parser keeps only statuses apply_status tracks
        apply_status(session, rt, status.sid, status.status, status.error_code)
    if batch.statuses:
        activity.note(rt, activity.STATUS, utcnow())
    for preference in batch.preferences:
        apply_marketing_preference(session, preference, utcnow())
    return jsonify(status="ok", messages=len(batch.messages), statuses=len(batch.statuses),
                   preferences=len(batch.preferences), skipped=batch.skipped), 200
