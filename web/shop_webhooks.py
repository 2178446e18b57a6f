"""Shop platforms' webhooks: POST /webhooks/shopify, /webhooks/nuvemshop, /webhooks/woocommerce.

One receiver for every connector (``shops.base``): the signature is checked over the raw bytes before the body
is parsed (401 and nothing stored when it is missing or wrong); then 400 with field errors for a body that
cannot be read, 503 when the platform's API (Nuvemshop sends only an id) cannot be read, 200 otherwise:
``{"status": "applied" | "duplicate" | "ignored"}`` (ignored: a topic we do not use, a checkout without a phone
or already completed, an order without a phone).

Redeliveries and idempotency: ``shops.delivery``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from models import utcnow
from recovery.events import EventInvalid
from shops import activity, nuvemshop, shopify, woocommerce
from shops.base import Connector, ShopUnavailable
from shops.delivery import apply_received
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
    now = utcnow()
    activity.note(rt, connector.name, received.kind, now)
    if received.answer is not None:
        return jsonify(status=received.answer), 200

    return jsonify(status=apply_received(db_session(), rt, connector.name, received, now)), 200


@bp.post("/shopify")
def shopify_webhook():
    return _receive(shopify.CONNECTOR)


@bp.post("/nuvemshop")
def nuvemshop_webhook():
    return _receive(nuvemshop.CONNECTOR)


@bp.post("/woocommerce")
def woocommerce_webhook():
    return _receive(woocommerce.CONNECTOR)
