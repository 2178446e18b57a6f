"""Meta's WhatsApp Cloud API webhook, read: one POST body (already JSON-decoded) into the inbound messages,
delivery statuses and marketing preferences it carries.

Meta batches: ``entry[]`` (one per WhatsApp Business Account) of ``changes[]``, each a ``field`` and its
``value``. ``field == "messages"`` carries ``value.messages[]`` (what shoppers wrote; ``value.contacts[]``
gives their profile names) and/or ``value.statuses[]`` (what happened to ours); ``field ==
"user_preferences"`` carries ``value.user_preferences[]`` (a shopper stopping or resuming marketing messages).

Only a body that is not Meta's envelope at all is refused (`InboundError`, a 400). A malformed item inside a
good batch is skipped and logged (phones masked) and the rest is kept: Meta retries a batch it did not get a
200 for, for days, and one bad item must not hold back the others or come back forever.
`apply_marketing_preference` records a marketing stop or resume on the shopper.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from channel.inbound import MAX_BODY, MAX_NAME, InboundError, InboundForm
from channel.transport import OPTION_PREFIX
from core.phones import InvalidPhone, mask_phone, normalize_phone
from models import Customer
from models.people import upsert_customer

log = logging.getLogger(__name__)
T = TypeVar("T")

OBJECT = "whatsapp_business_account"
WAMID = re.compile(r"^wamid\.[A-Za-z0-9+/=_-]{8,120}$")
WA_ID = re.compile(r"^[0-9]{8,20}$")  # digits only, as Meta writes them (Customer.wa_id holds 20)
ERROR_CODE = re.compile(r"^[0-9]{1,8}$")

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
# Meta's statuses for our messages that this project tracks; others (deleted, warning, ...) are acknowledged
# and ignored.
TRACKED_STATUSES = frozenset({"sent", "delivered", "read", "failed"})
# Messages that are not something the shopper said to the bot: a reaction to a message, and Meta's system
# notices (the shopper changed number).
IGNORED_TYPES = frozenset({"reaction", "system"})


@dataclass(frozen=True)
class MetaStatus:
    sid: str  # our message's wamid
    status: str  # sent, delivered, read or failed
    error_code: str | None  # errors[0].code, digits
    recipient: str  # masked phone, for logs


@dataclass(frozen=True)
class MarketingPreference:
    phone: str  # E.164
    wa_id: str  # as Meta sent it
    stop: bool  # True: stop marketing messages; False: resume them


@dataclass
class MetaBatch:
    messages: list[InboundForm] = field(default_factory=list)  # in the order the shoppers wrote them
    statuses: list[MetaStatus] = field(default_factory=list)
    preferences: list[MarketingPreference] = field(default_factory=list)
    skipped: int = 0  # malformed items, logged and left out


class _Skip(ValueError):
    """One malformed item: left out, the rest of the batch kept."""


def parse_webhook(payload: object, *, phone_number_id: str | None = None) -> MetaBatch:
    """Everything usable in one webhook body. Raises InboundError when it is not Meta's envelope.

    With ``phone_number_id`` (META_PHONE_NUMBER_ID), changes addressed to another number of the business
    (``value.metadata.phone_number_id``) are left out: this bot answers only for its own number."""
    if not isinstance(payload, dict):
        raise InboundError("body", "expected a JSON object")
    if payload.get("object") != OBJECT:
        raise InboundError("object", f"expected {OBJECT!r}")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise InboundError("entry", "expected a list")

    batch = MetaBatch()
    timed: list[tuple[int, int, InboundForm]] = []
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            _skipped(batch, "entry", "no changes list")
            continue
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                _skipped(batch, "change", "no value object")
                continue
            value = change["value"]
            if value.get("messaging_product", "whatsapp") != "whatsapp":
                _skipped(batch, "change", "not a WhatsApp change")
                continue
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            if phone_number_id and metadata.get("phone_number_id") not in (None, phone_number_id):
                log.info("meta webhook: change for another phone number id %s ignored",
                         str(metadata.get("phone_number_id"))[:32])
                continue
            kind = change.get("field")
            if kind == "messages":
                read_message = functools.partial(_message, names=_profile_names(value.get("contacts")))
                for item in _items(value, "messages"):
                    timestamp, form = _parse(batch, "message", item, read_message) or (0, None)
                    if form is not None:
                        timed.append((timestamp, len(timed), form))
                for item in _items(value, "statuses"):
                    _append(batch.statuses, _parse(batch, "status", item, _status))
            elif kind == "user_preferences":
                for item in _items(value, "user_preferences"):
                    _append(batch.preferences, _parse(batch, "user preference", item, _preference))
            # Other fields (template reviews, account updates...) are not this webhook's business here.
    # Meta may batch several messages of one shopper: the conversation reads them in the order written.
    batch.messages = [form for _, _, form in sorted(timed, key=lambda t: (t[0], t[1]))]
    return batch


def _append(items: list, item) -> None:
    if item is not None:
        items.append(item)


def _items(value: dict, key: str) -> list:
    items = value.get(key)
    if items is None:
        return []
    return items if isinstance(items, list) else [items]  # a non-list is one malformed item


def _parse(batch: MetaBatch, what: str, item: object, parse: Callable[[dict], T]) -> T | None:
    """``parse(item)``, or None (counted and logged) when the item is malformed."""
    try:
        if not isinstance(item, dict):
            raise _Skip("not an object")
        return parse(item)
    except _Skip as exc:
        _skipped(batch, what, str(exc), item)
        return None


def _skipped(batch: MetaBatch, what: str, reason: str, item: object = None) -> None:
    batch.skipped += 1
    who = ""
    if isinstance(item, dict):
        raw = item.get("from") or item.get("recipient_id") or item.get("wa_id")
        if isinstance(raw, (str, int)) and str(raw).strip():
            who = f" ({mask_phone(str(raw))})"
    log.warning("meta webhook: skipped a malformed %s%s: %s", what, who, reason)


def _profile_names(contacts: object) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in contacts if isinstance(contacts, list) else []:
        if not isinstance(contact, dict):
            continue
        wa_id, profile = contact.get("wa_id"), contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(wa_id, str) and isinstance(name, str):
            cleaned = _clean(name).strip()[:MAX_NAME]
            if cleaned:
                names[wa_id] = cleaned
    return names


def _clean(text: str) -> str:
    return text.replace("\x00", "")


def _wamid(item: dict) -> str:
    sid = item.get("id")
    if not isinstance(sid, str) or not WAMID.match(sid):
        raise _Skip("missing or malformed message id")
    return sid


def _phone(raw: object) -> tuple[str, str]:
    """(E.164, wa_id as given). A Brazilian mobile without its ninth digit gets it back in the E.164 form."""
    if not isinstance(raw, str) or not WA_ID.match(raw):
        raise _Skip("missing or malformed WhatsApp id")
    try:
        return normalize_phone(raw), raw
    except InvalidPhone:
        raise _Skip("not a valid phone number") from None


def _timestamp(item: dict) -> int:
    raw = item.get("timestamp")
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0


def _message(item: dict, *, names: dict[str, str]) -> tuple[int, InboundForm | None]:
    sid = _wamid(item)
    phone, wa_id = _phone(item.get("from"))
    kind = item.get("type")
    if not isinstance(kind, str):
        raise _Skip("missing message type")
    if kind in IGNORED_TYPES:
        log.info("meta webhook: %s %s from %s ignored", kind, sid, mask_phone(phone))
        return _timestamp(item), None
    body, media = _content(kind, item)
    form = InboundForm(sid=sid, phone=phone, body=_clean(body)[:MAX_BODY], media_count=media,
                       profile_name=names.get(wa_id), wa_id=wa_id)
    return _timestamp(item), form


def _content(kind: str, item: dict) -> tuple[str, int]:
    """(body, media count) of one message. What the bot cannot read (media, a location, a contact card, a
    type Meta calls unsupported or one newer than this code) counts as one attachment: with no caption, the
    bot answers that it only reads text."""
    part = item.get(kind)
    if kind == "text":
        if not isinstance(part, dict) or not isinstance(part.get("body"), str):
            raise _Skip("text message without text.body")
        return part["body"], 0
    if kind == "button":  # a quick-reply button of a template
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            text = part.get("payload") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise _Skip("button message without button.text")
        return text, 0
    if kind == "interactive":
        reply_type = part.get("type") if isinstance(part, dict) else None
        if reply_type in ("button_reply", "list_reply"):
            reply = part.get(reply_type)
            if not isinstance(reply, dict):
                raise _Skip(f"interactive message without {reply_type}")
            reply_id, title = reply.get("id"), reply.get("title")
            if isinstance(reply_id, str) and reply_id.startswith(OPTION_PREFIX):
                return reply_id[len(OPTION_PREFIX):], 0  # one of our options: its id says which
            if isinstance(title, str):
                return title, 0
            if isinstance(reply_id, str):
                return reply_id, 0
            raise _Skip(f"{reply_type} without id or title")
        return "", 1  # a flow's answer (nfm_reply) and the like: not text the bot reads
    if kind in MEDIA_TYPES:
        caption = part.get("caption") if isinstance(part, dict) else None
        return (caption if isinstance(caption, str) else ""), 1
    return "", 1  # location, contacts, order, unsupported, unknown


def _status(item: dict) -> MetaStatus | None:
    sid = _wamid(item)
    status = item.get("status")
    if not isinstance(status, str):
        raise _Skip("missing status")
    status = status.strip().lower()
    recipient = item.get("recipient_id")
    masked = mask_phone(recipient) if isinstance(recipient, str) else "****"
    if status not in TRACKED_STATUSES:
        log.info("meta webhook: status %r of %s ignored", status[:20], sid)
        return None
    code = None
    errors = item.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        raw = errors[0].get("code")
        text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
        if ERROR_CODE.match(text):
            code = text
        elif text:
            log.warning("meta webhook: status of %s with a malformed error code ignored", sid)
    return MetaStatus(sid=sid, status=status, error_code=code, recipient=masked)


def _preference(item: dict) -> MarketingPreference | None:
    phone, wa_id = _phone(item.get("wa_id"))
    if item.get("category") != "marketing_messages":
        log.info("meta webhook: user preference of category %r ignored", str(item.get("category"))[:40])
        return None
    value = item.get("value")
    if value not in ("stop", "resume"):
        raise _Skip("value is neither stop nor resume")
    return MarketingPreference(phone=phone, wa_id=wa_id, stop=value == "stop")


def apply_marketing_preference(session: Session, preference: MarketingPreference, now: datetime) -> None:
    """Meta's user_preferences: a shopper stopped (or resumed) this business's marketing messages. A stop is
    kept even for a shopper not known yet (a cart may bring them later); the first stop's time is kept.

    Out of order (a stop retried after a later resume) the shopper stays stopped: the safe side of consent."""
    if preference.stop:
        customer = upsert_customer(session, preference.phone, None)
        if customer.marketing_opted_out_at is None:
            customer.marketing_opted_out_at = now
    else:
        customer = session.scalar(select(Customer).where(Customer.phone == preference.phone))
        if customer is None:
            return
        customer.marketing_opted_out_at = None
    if customer.wa_id is None:
        customer.wa_id = preference.wa_id
    session.commit()
    log.info("marketing messages %s by %s", "stopped" if preference.stop else "resumed",
             mask_phone(preference.phone))
