"""Applying what a verified delivery carried: once per delivery id, then the event through ``recovery.events``.

Used by the webhook receiver (``web.shop_webhooks``) and by the demo's replay of recorded deliveries, so both go
through the same idempotency. A platform that names its deliveries (Shopify's ``X-Shopify-Webhook-Id``) resends
one with the same id until it gets a 2xx. (WooCommerce's ``X-WC-Webhook-Delivery-ID`` is not such a key: see
``shops.woocommerce``.) The id is kept as a
``StoreEvent`` row (event ``<platform>:<topic>``, external id the delivery id, at a fixed time so the id alone is
the key), inserted in the same transaction as the cart or order it carries: a redelivery finds it and does
nothing, and a delivery whose processing failed leaves no row, so its retry is processed. Underneath,
``recovery.events`` is idempotent per event (the same checkout version or order status sent under a new delivery
id changes nothing) and never moves a cart or order backwards.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.inputs import EARLIEST
from core.runtime import Runtime
from models import StoreEvent
from recovery.events import CartEvent, apply_cart_event, apply_order_event
from shops.base import Received, ShopEvent

log = logging.getLogger(__name__)

Outcome = Literal["applied", "duplicate", "ignored"]
MAX_EVENT_LABEL = 32  # StoreEvent.event


def apply_event(session: Session, runtime: Runtime, event: ShopEvent, now: datetime) -> Outcome:
    """One shop event, cart or order; commits."""
    if isinstance(event, CartEvent):
        return apply_cart_event(session, runtime, event, now)
    return apply_order_event(session, runtime, event, now)


def apply_received(session: Session, runtime: Runtime, platform: str, received: Received, now: datetime) -> Outcome:
    """Remember the delivery id (a redelivery is a duplicate) and apply its event; commits."""
    if received.delivery_id:
        try:
            with session.begin_nested():
                session.add(StoreEvent(event=f"{platform}:{received.kind}"[:MAX_EVENT_LABEL],
                                       external_id=received.delivery_id, occurred_at=EARLIEST, received_at=now))
        except IntegrityError:
            session.rollback()
            return "duplicate"
    if received.event is None:
        session.commit()  # the delivery id: a redelivery of an ignored event is ignored without a second look
        log.info("%s %s ignored: %s", platform, received.kind, received.why)
        return "ignored"
    outcome = apply_event(session, runtime, received.event, now)
    if received.then is not None:
        second = apply_event(session, runtime, received.then, now)
        outcome = "applied" if "applied" in (outcome, second) else outcome
    return outcome
