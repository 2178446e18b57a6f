"""Shop platforms' webhooks: POST /webhooks/shopify (Nuvemshop and WooCommerce join here).

The signature is checked over the raw bytes before the body is parsed: 401 and nothing stored when it is
missing or wrong. Then 400 with field errors for a body that cannot be read, 200 otherwise:
``{"status": "applied" | "duplicate" | "ignored"}`` (ignored: a topic we do not use, a checkout without a phone
or already completed, an order without a phone).

Redeliveries: Shopify resends a webhook, with the same ``X-Shopify-Webhook-Id``, until it gets a 2xx. The id is
kept as a ``StoreEvent`` row (event ``shopify:<topic>``, external id the webhook id, at a fixed time so the id
alone is the key), inserted in the same transaction as the cart or order it carries: a redelivery finds it and
does nothing, and a delivery whose processing failed leaves no row, so its retry is processed. No migration and
no second store (a Redis key set before processing would drop the retry of a delivery that failed halfway).
Underneath, ``recovery.events`` is idempotent per event (the same checkout version or order status sent under a
new webhook id changes nothing) and never moves a cart or order backwards.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import IntegrityError

from core.inputs import EARLIEST, MAX_EXTERNAL_ID
from models import StoreEvent, utcnow
from recovery.events import EventInvalid, apply_cart_event, apply_order_event
from shops import shopify
from web.context import db_session, runtime

bp = Blueprint("shop_webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)

SHOPIFY_SIGNATURE = "X-Shopify-Hmac-Sha256"
SHOPIFY_TOPIC = "X-Shopify-Topic"
SHOPIFY_WEBHOOK_ID = "X-Shopify-Webhook-Id"


def _invalid(fields: dict[str, str]):
    return jsonify(error="invalid body", fields=fields), 400


@bp.post("/shopify")
def shopify_webhook():
    raw = request.get_data(cache=True)
    rt = runtime()
    if not shopify.verify(raw, request.headers.get(SHOPIFY_SIGNATURE), rt.settings.shopify_webhook_secret):
        log.warning("rejected unsigned or forged Shopify webhook")
        return jsonify(error="invalid signature", message=f"assinatura {SHOPIFY_SIGNATURE} ausente ou inválida"), 401
    topic = (request.headers.get(SHOPIFY_TOPIC) or "").strip()
    webhook_id = (request.headers.get(SHOPIFY_WEBHOOK_ID) or "").strip()
    if webhook_id and (len(webhook_id) > MAX_EXTERNAL_ID or not webhook_id.isascii() or not webhook_id.isprintable()):
        return _invalid({SHOPIFY_WEBHOOK_ID: f"no máximo {MAX_EXTERNAL_ID} caracteres ASCII"})
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):  # also bad UTF-8 and absurdly long integers
        return _invalid({"body": "JSON inválido"})
    if topic not in shopify.TOPICS:
        log.info("Shopify webhook %r ignored: topic not used", topic[:40])
        return jsonify(status="ignored"), 200

    session = db_session()
    now = utcnow()
    if webhook_id:
        try:
            with session.begin_nested():
                session.add(StoreEvent(event=f"shopify:{topic}", external_id=webhook_id, occurred_at=EARLIEST,
                                       received_at=now))
        except IntegrityError:
            session.rollback()
            return jsonify(status="duplicate"), 200
    try:
        if topic in shopify.CHECKOUT_TOPICS:
            event = shopify.checkout_to_cart_event(payload)
        else:
            event = shopify.order_to_order_event(payload, topic)
    except EventInvalid as exc:
        session.rollback()
        return _invalid(exc.fields)
    if event is None:
        session.commit()  # the webhook id: a redelivery of an ignored event is ignored without a second look
        log.info("Shopify %s ignored: no usable phone, or a completed checkout", topic)
        return jsonify(status="ignored"), 200
    if topic in shopify.CHECKOUT_TOPICS:
        result = apply_cart_event(session, rt, event, now)
    else:
        result = apply_order_event(session, rt, event, now)
    return jsonify(status=result), 200
