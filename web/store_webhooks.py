"""The shop's events: POST /webhooks/store/carts and /webhooks/store/orders.

Signed with ``X-Store-Signature`` = hex HMAC-SHA256 of the raw body with STORE_WEBHOOK_SECRET; the signature
is checked before the body is even parsed. 401 on a bad signature, 400 with field errors on a bad body,
200 ``{"status": "applied" | "duplicate"}`` otherwise.
"""

from __future__ import annotations

import functools
import json
import logging

from flask import Blueprint, jsonify, request

from core.security import hmac_sha256_hex, signatures_match
from models import utcnow
from recovery.events import (
    EventInvalid, apply_cart_event, apply_order_event, validate_cart_event, validate_order_event,
)
from web.context import db_session, runtime

bp = Blueprint("store_webhooks", __name__, url_prefix="/webhooks/store")
log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Store-Signature"


def _signature_ok(raw: bytes) -> bool:
    given = request.headers.get(SIGNATURE_HEADER)
    # compare_digest refuses non-ASCII text with a TypeError: such a header is simply wrong.
    if not given or not given.isascii():
        return False
    expected = hmac_sha256_hex(runtime().settings.store_webhook_secret, raw)
    return signatures_match(expected, given)


def store_signed(view):
    """401 unless the raw body carries the shop's HMAC; the view gets the parsed JSON value."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        raw = request.get_data(cache=True)
        if not _signature_ok(raw):
            log.warning("rejected unsigned or forged store event on %s", request.path)
            return jsonify(error="invalid signature",
                           message=f"assinatura {SIGNATURE_HEADER} ausente ou inválida"), 401
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):  # also bad UTF-8 and absurdly long integers
            return _invalid({"body": "JSON inválido"})
        return view(payload, *args, **kwargs)

    return wrapper


def _invalid(fields: dict[str, str]):
    return jsonify(error="invalid body", fields=fields), 400


@bp.post("/carts")
@store_signed
def store_carts(payload):
    try:
        event = validate_cart_event(payload)
    except EventInvalid as exc:
        return _invalid(exc.fields)
    result = apply_cart_event(db_session(), runtime(), event, utcnow())
    return jsonify(status=result), 200


@bp.post("/orders")
@store_signed
def store_orders(payload):
    try:
        event = validate_order_event(payload)
    except EventInvalid as exc:
        return _invalid(exc.fields)
    result = apply_order_event(db_session(), runtime(), event, utcnow())
    return jsonify(status=result), 200
