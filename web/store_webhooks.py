"""The shop's events: POST /webhooks/store/carts and /webhooks/store/orders.

Signed with ``X-Store-Signature`` = hex HMAC-SHA256 of the raw body with the shop's secret; the signature
is checked before the body is even parsed. 401 on a bad signature, 400 with field errors on a bad body,
200 ``{"status": "applied" | "duplicate"}`` otherwise.

The shop's secret is STORE_WEBHOOK_SECRET (or the generated development one) until the merchant rotates it on
the console's "Configuração" page (``rotate_store_secret``); from then on it is the rotated secret, kept
encrypted in ``webhook_secrets`` (core.secret_box). After a rotation the secret it replaced is still accepted
for ``PREVIOUS_SECRET_GRACE`` (24 h), so events the shop signs before the merchant pastes the new secret there
are not lost. One primary-key read per event.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, jsonify, request
from sqlalchemy.orm import Session

from core.secret_box import open_, seal
from core.security import hmac_sha256_hex, signatures_match
from core.settings import Settings
from models import WebhookSecret, utcnow
from recovery.events import (
    EventInvalid, apply_cart_event, apply_order_event, validate_cart_event, validate_order_event,
)
from web.context import db_session, runtime

bp = Blueprint("store_webhooks", __name__, url_prefix="/webhooks/store")
log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Store-Signature"
STORE_SECRET = "store"  # WebhookSecret.name of the shop's secret
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
SECRET_HINT_LENGTH = 4


@dataclass(frozen=True)
class StoreSecrets:
    """The secrets an event may be signed with right now: the current one first."""

    current: str
    previous: str | None
    rotated: bool  # False: STORE_WEBHOOK_SECRET (never rotated, or the rotated one cannot be read any more)
    unreadable: bool  # a rotated secret exists but SECRET_KEY changed since: it cannot be decrypted

    @property
    def accepted(self) -> list[str]:
        return [self.current] + ([self.previous] if self.previous else [])


def store_secrets(session: Session, settings: Settings, now: datetime) -> StoreSecrets:
    """One primary-key read: the rotated secret (and the one it replaced, within its grace period), or else the
    environment's STORE_WEBHOOK_SECRET."""
    row = session.get(WebhookSecret, STORE_SECRET)
    if row is None:
        return StoreSecrets(settings.store_webhook_secret, None, rotated=False, unreadable=False)
    previous = None
    if row.previous_encrypted and row.previous_valid_until is not None and now < row.previous_valid_until:
        previous = open_(row.previous_encrypted, settings.secret_key)
    current = open_(row.secret_encrypted, settings.secret_key)
    if current is None:
        # SECRET_KEY changed since the rotation: the rotated secret is lost. The environment's secret (known only
        # to the operator) is what held before any rotation; the page asks the merchant to generate a new one.
        log.warning("the rotated store webhook secret cannot be decrypted (SECRET_KEY changed?); "
                    "accepting STORE_WEBHOOK_SECRET until a new one is generated")
        return StoreSecrets(settings.store_webhook_secret, previous, rotated=False, unreadable=True)
    return StoreSecrets(current, previous, rotated=True, unreadable=False)


def rotate_store_secret(session: Session, settings: Settings, *, user_id: int | None, now: datetime) -> str:
    """A new random secret becomes the current one; the one it replaces (rotated or the environment's) is still
    accepted for 24 hours. Returns the new secret (shown to the merchant once; stored only encrypted). The
    caller commits."""
    new_secret = secrets.token_hex(32)
    row = session.get(WebhookSecret, STORE_SECRET, with_for_update=True)
    replaced = store_secrets(session, settings, now).current
    if row is None:
        row = WebhookSecret(name=STORE_SECRET)
        session.add(row)
    row.previous_encrypted = seal(replaced, settings.secret_key)
    row.previous_valid_until = now + PREVIOUS_SECRET_GRACE
    row.secret_encrypted = seal(new_secret, settings.secret_key)
    row.hint = new_secret[-SECRET_HINT_LENGTH:]
    row.rotated_at = now
    row.rotated_by_id = user_id
    session.flush()
    log.info("store webhook secret rotated by user %s", user_id)
    return new_secret


def _signature_ok(raw: bytes) -> bool:
    given = request.headers.get(SIGNATURE_HEADER)
    # compare_digest refuses non-ASCII text with a TypeError: such a header is simply wrong.
    if not given or not given.isascii():
        return False
    rt = runtime()
    accepted = store_secrets(db_session(), rt.settings, utcnow()).accepted
    # Every candidate is compared (no early exit), so the answer's timing does not tell which one matched.
    matches = [signatures_match(hmac_sha256_hex(secret, raw), given) for secret in accepted]
    return any(matches)


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
