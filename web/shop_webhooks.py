"""Shop platforms' webhooks: POST /webhooks/shopify, /webhooks/nuvemshop, /webhooks/woocommerce.

One receiver for every connector (``shops.base``): the signature is checked over the raw bytes before the body
is parsed (401 and nothing stored when it is missing or wrong); then 400 with field errors for a body that
cannot be read, 503 when the platform's API (Nuvemshop sends only an id) cannot be read, 200 otherwise:
``{"status": "applied" | "duplicate" | "ignored"}`` (ignored: a topic we do not use, a checkout without a phone
or already completed, an order without a phone).

Redeliveries: a platform that names its deliveries (Shopify's ``X-Shopify-Webhook-Id``, WooCommerce's
``X-WC-Webhook-Delivery-ID``) resends one with the same id until it gets a 2xx. The id is kept as a
``StoreEvent`` row (event ``<platform>:<topic>``, external id the delivery id, at a fixed time so the id alone is
the key), inserted in the same transaction as the cart or order it carries: a redelivery finds it and does
nothing, and a delivery whose processing failed leaves no row, so its retry is processed. Underneath,
``recovery.events`` is idempotent per event (the same checkout version or order status sent under a new
delivery id changes nothing) and never moves a cart or order backwards.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import IntegrityError

from core.inputs import EARLIEST
from models import StoreEvent, utcnow
from recovery.events import CartEvent, EventInvalid, apply_cart_event, apply_order_event
from shops import nuvemshop, shopify, woocommerce
from shops.base import Connector, ShopUnavailable
from web.context import db_session, runtime

bp = Blueprint("shop_webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


def _receive(connector: Connector):
    raw = request.get_data(cache=True)
    rt = runtime()
    if not connector.verify(raw, request.headers, rt.settings):
        log.warning("rejected unsigned or forged %s webhook", connector.name)
        return jsonify(error="invalid signature",
                       message=f"assinatura {connector.signature_header} ausente ou inválida"), 401
    try:
        received = connector.receive(raw, request.headers, rt.settings)
    except EventInvalid as exc:
        return jsonify(error="invalid body", fields=exc.fields), 400
    except ShopUnavailable as exc:
        log.warning("%s webhook not processed, the platform will redeliver: %s", connector.name, exc)
        return jsonify(error="shop unavailable", message="não conseguimos consultar a loja; tente de novo"), 503, \
            {"Retry-After": "60"}
    if received.answer is not None:
        return jsonify(status=received.answer), 200

    session = db_session()
    now = utcnow()
    if received.delivery_id:
        try:
            with session.begin_nested():
                session.add(StoreEvent(event=f"{connector.name}:{received.kind}"[:32],
                                       external_id=received.delivery_id, occurred_at=EARLIEST, received_at=now))
        except IntegrityError:
            session.rollback()
            return jsonify(status="duplicate"), 200
    event = received.event
    if event is None:
        session.commit()  # the delivery id: a redelivery of an ignored event is ignored without a second look
        log.info("%s %s ignored: %s", connector.name, received.kind, received.why)
        return jsonify(status="ignored"), 200
    if isinstance(event, CartEvent):
        result = apply_cart_event(session, rt, event, now)
    else:
        result = apply_order_event(session, rt, event, now)
    return jsonify(status=result), 200


@bp.post("/shopify")
def shopify_webhook():
    return _receive(shopify.CONNECTOR)


@bp.post("/nuvemshop")
def nuvemshop_webhook():
    return _receive(nuvemshop.CONNECTOR)


@bp.post("/woocommerce")
def woocommerce_webhook():
    return _receive(woocommerce.CONNECTOR)
