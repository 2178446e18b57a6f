"""An inbound WhatsApp message: validated, stored once, opt-out applied at once.

Provider-neutral: each provider's webhook parses its own format into an `InboundForm` (Twilio's form with
`parse_form` here, Meta's JSON with `channel.meta_inbound`), calls `receive_inbound`, hands the outcome to the
conversation layer (`bot.jobs.shopper_wrote`, which queues the engine's job and moves the recovery countdown)
and answers straight away, so a slow moment never exceeds the provider's budget (Twilio: 15 seconds).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from channel.consent import is_affirmative, is_negative, question_open, read_consent
from core.phones import InvalidPhone, mask_phone, normalize_phone
from models import Customer, Direction, Message, MessageStatus
from models.people import upsert_customer

log = logging.getLogger(__name__)

MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9A-Za-z]{16,62}$")
MAX_BODY = 4096  # WhatsApp's own limit; anything longer is not from WhatsApp
MAX_NAME = 120
MAX_WA_ID = 20  # Customer.wa_id


class InboundError(ValueError):
    """A malformed webhook form; ``field`` names the culprit for the 400 answer."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class InboundForm:
    """One inbound message, validated, whichever provider it came through."""

    sid: str  # the provider's message id (Twilio MessageSid, Meta wamid): unique, decides redeliveries
    phone: str  # E.164
    body: str
    media_count: int
    profile_name: str | None
    wa_id: str | None = None  # Meta's WhatsApp id exactly as Meta sent it (replies go there); None for Twilio


# What a message did to the shopper's consent, kept on the message (Message.consent) for the engine's reply:
# opt_out / opt_in applied; ask_out: unsure, the bot asks "do you want to stop?"; stay: they answered no.
ConsentEvent = Literal["opt_out", "opt_in", "ask_out", "stay"]


@dataclass(frozen=True)
class InboundOutcome:
    duplicate: bool
    message_id: int | None = None
    customer_id: int | None = None
    consent: ConsentEvent | None = None
    opted_out: bool = False
    at: datetime | None = None  # when it was received (a redelivery: None)


def parse_form(form: Mapping[str, str]) -> InboundForm:
    """Twilio's inbound webhook form. Raises InboundError naming the malformed field."""
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not MESSAGE_SID.match(sid):
        raise InboundError("MessageSid", "missing or malformed")
    try:
        phone = normalize_phone(form.get("From", ""))
    except InvalidPhone as exc:
        raise InboundError("From", str(exc)) from None
    raw_media = (form.get("NumMedia") or "0").strip()
    if not re.fullmatch(r"[0-9]{1,2}", raw_media) or int(raw_media) > 10:
        raise InboundError("NumMedia", "expected a number from 0 to 10")
    body = (form.get("Body") or "").replace("\x00", "")
    profile = (form.get("ProfileName") or "").replace("\x00", "").strip()[:MAX_NAME] or None
    return InboundForm(sid=sid, phone=phone, body=body[:MAX_BODY], media_count=int(raw_media), profile_name=profile)


def receive_inbound(session: Session, parsed: InboundForm, now: datetime) -> InboundOutcome:
    """Store the message once (the unique provider id decides) and apply an opt-out or opt-in immediately.
    Commits. The caller queues the processing (``bot.jobs.shopper_wrote``), for a redelivery too.

    The insert comes first and a redelivery is recognised by its conflict, so a new message (nearly all of
    them) costs no lookup; a redelivery is rare enough to pay for one."""
    customer = upsert_customer(session, parsed.phone, parsed.profile_name)
    message = Message(customer_id=customer.id, direction=Direction.INBOUND, kind="shopper", body=parsed.body,
                      media_count=parsed.media_count, provider_sid=parsed.sid, status=MessageStatus.RECEIVED,
                      created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        session.rollback()
        stored = session.execute(select(Message.id, Message.consent, Message.customer_id)
                                 .where(Message.provider_sid == parsed.sid)).first()
        if stored is None:
            raise  # not a redelivery: some other constraint
        # The provider redelivers when our first answer failed, possibly after the commit but before the job was
        # queued (a Redis blip), or a concurrent delivery of the same message won the insert: the caller queues
        # the stored message again (a fixed, unique job id: processed once).
        return InboundOutcome(duplicate=True, message_id=stored.id, customer_id=stored.customer_id,
                              consent=stored.consent)

    if customer.last_inbound_at is None or customer.last_inbound_at < now:
        customer.last_inbound_at = now
    if parsed.wa_id:
        wa_id = parsed.wa_id[:MAX_WA_ID]
        if customer.wa_id != wa_id:
            customer.wa_id = wa_id  # from the latest message: replies go to the id Meta uses now
    consent = _apply_consent(customer, parsed.body, now)
    message.consent = consent
    session.commit()
    log.info("inbound %s from %s stored as message %s%s", parsed.sid, mask_phone(parsed.phone), message.id,
             f" ({consent})" if consent else "")
    return InboundOutcome(duplicate=False, message_id=message.id, customer_id=customer.id, consent=consent,
                          opted_out=customer.opted_out, at=now)


def _apply_consent(customer: Customer, body: str, now: datetime) -> ConsentEvent | None:
    """Apply what this message says about consent, at once (before the webhook answers).

    A clear opt-out (channel.consent, generous with typos and phrasing) opts out. A message that might be one asks once
    ("do you want to stop receiving our messages? answer SIM"); until the shopper answers, no automated message
    goes out (recovery.eligibility). The very next message answers: a yes opts out, a no or anything else closes
    the question. An opted-out shopper comes back with VOLTAR; "SAIR" again changes nothing (the engine confirms).
    """
    reading = read_consent(body)
    if customer.opted_out_at is not None:
        if reading == "opt_in":
            customer.opted_out_at = None
            customer.opt_out_asked_at = None
            return "opt_in"
        return None
    asked = question_open(customer.opt_out_asked_at, now)
    if reading == "opt_out" or (asked and is_affirmative(body)):
        customer.opted_out_at = now
        customer.opt_out_asked_at = None
        return "opt_out"
    if asked:
        customer.opt_out_asked_at = None  # answered no, or moved on: asked once, not again
        return "stay" if is_negative(body) else None
    if reading == "unsure_opt_out":
        customer.opt_out_asked_at = now
        return "ask_out"
    return None
