"""A person answers a shopper through the store's WhatsApp number, and the bot steps aside meanwhile.

Sellers (from their opportunity) and managers or admins (from the console's conversation) write to the shopper
through the one outbound path (``channel.sender.queue_message``): free-form text inside WhatsApp's 24-hour window
(measured from ``Customer.last_inbound_at``), only an approved template outside it. Each message records its author.

While a person holds the conversation the bot is paused: ``Customer.human_replied_at`` is the last human message,
and the bot answers again once ``Settings.human_pause_minutes`` (``HUMAN_PAUSE_MINUTES``, default 30) pass without
another one. Consent confirmations (SAIR / VOLTAR and the "do you want to stop?" question) are still sent while
paused: they are the channel's, not the conversation's.

Opt-out: it stops automated and marketing messages. A person may still answer a shopper who opted out *if the
shopper wrote again after opting out* and the window is open (a direct answer to their own message); never to a
shopper whose last message was the opt-out itself, and never with a template (a business-initiated message).
A shopper who stopped marketing messages on WhatsApp gets no marketing-category template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from channel import templates as wa_templates
from channel.sender import queue_message
from channel.window import SERVICE_WINDOW, in_service_window
from core.runtime import Runtime
from core.settings import Settings
from models import Customer, Message, TemplateStatus, User, WhatsAppTemplate

MAX_TEXT = 1600  # Twilio's limit for one WhatsApp message (Meta allows 4096)
KIND = "seller"  # Message.kind of a message a person wrote
_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")


class ReplyError(ValueError):
    """A reply that cannot go: ``field`` names the form field, ``message`` says why (pt-BR)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --- the bot's pause ---------------------------------------------------------------------------------------

def pause_length(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.human_pause_minutes)


def paused_until(customer: Customer, settings: Settings) -> datetime | None:
    if customer.human_replied_at is None:
        return None
    return customer.human_replied_at + pause_length(settings)


def bot_paused(customer: Customer, settings: Settings, now: datetime) -> bool:
    """Does a person hold this conversation now (the bot must not answer the shopper)?"""
    until = paused_until(customer, settings)
    return until is not None and now < until


# --- what a person may send now ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ReplyOptions:
    """What the reply form offers for one shopper now: free text, templates only, or nothing, and why."""

    free_text: bool
    templates: list[WhatsAppTemplate] = field(default_factory=list)
    reason: str | None = None  # pt-BR: why free text is not possible (or nothing at all)
    window_closes_at: datetime | None = None

    @property
    def can_send(self) -> bool:
        return self.free_text or bool(self.templates)


def _opted_out_without_writing_since(customer: Customer) -> bool:
    return customer.opted_out and (customer.last_inbound_at is None
                                   or customer.last_inbound_at <= customer.opted_out_at)


def sendable_templates(session: Session, settings: Settings, customer: Customer) -> list[WhatsAppTemplate]:
    rows = session.scalars(select(WhatsAppTemplate).where(WhatsAppTemplate.status == TemplateStatus.APPROVED)
                           .order_by(WhatsAppTemplate.name, WhatsAppTemplate.id).limit(50)).all()
    marketing_out = customer.marketing_opted_out_at is not None
    return [t for t in rows if wa_templates.sendable(t, settings)
            and not (marketing_out and (t.category or "").lower() == "marketing")]


def options(session: Session, settings: Settings, customer: Customer, now: datetime) -> ReplyOptions:
    if _opted_out_without_writing_since(customer):
        return ReplyOptions(False, reason="O cliente pediu para sair e não escreveu depois disso: a loja não "
                                          "pode mandar mensagens para ele até que ele volte a escrever.")
    if in_service_window(customer, now):
        return ReplyOptions(True, window_closes_at=customer.last_inbound_at + SERVICE_WINDOW)
    if customer.last_inbound_at is None:
        reason = ("O cliente ainda não escreveu para a loja: o WhatsApp só entrega modelos aprovados para quem "
                  "não escreveu nas últimas 24 horas.")
    else:
        reason = ("A última mensagem do cliente foi há mais de 24 horas: fora dessa janela o WhatsApp só entrega "
                  "modelos aprovados.")
    if customer.opted_out:
        return ReplyOptions(False, reason=reason + " Como o cliente pediu para sair, nenhum modelo é enviado.")
    found = sendable_templates(session, settings, customer)
    if not found:
        reason += (" Não há modelos aprovados disponíveis para este cliente: sincronize os modelos em Console → "
                   "WhatsApp ou espere o cliente escrever.")
    else:
        reason += " Escolha um modelo abaixo."
    return ReplyOptions(False, templates=found, reason=reason)


# --- sending -----------------------------------------------------------------------------------------------

def value_field(template: WhatsAppTemplate, key: str) -> str:
    """The form field of one placeholder of one template."""
    return f"valor-{template.id}-{key}"


def send_reply(session: Session, runtime: Runtime, customer: Customer, author: User, *, text: str,
               template_id: int | None, values: dict[str, str], key: str, now: datetime) -> Message:
    """Queue one message a person wrote (the caller commits). Inside the window ``text`` goes as typed; outside it
    the approved template ``template_id`` filled with ``values`` (by placeholder key). Raises ReplyError naming the
    field. ``key`` (the form's one-time token) makes a double submit one message. Pauses the bot."""
    if not _KEY.fullmatch(key or ""):
        raise ReplyError("reply_key", "formulário inválido: recarregue a página e envie de novo")
    available = options(session, runtime.settings, customer, now)
    idempotency_key = f"human-{author.id}-{key}"
    if available.free_text:
        body = (text or "").replace("\r\n", "\n").strip()
        if not body:
            raise ReplyError("text", "escreva a mensagem")
        if len(body) > MAX_TEXT:
            raise ReplyError("text", f"no máximo {MAX_TEXT} caracteres")
        message = queue_message(session, runtime, customer, kind=KIND, body=body, automated=False, now=now,
                                idempotency_key=idempotency_key)
    else:
        if not available.templates:
            raise ReplyError("template_id", available.reason or "não é possível enviar agora")
        template = next((t for t in available.templates if t.id == template_id), None)
        if template is None:
            raise ReplyError("template_id", "fora da janela de 24 horas: escolha um dos modelos aprovados")
        for placeholder in template.placeholders:
            if not wa_templates.clean_value(values.get(placeholder["key"])):
                raise ReplyError(value_field(template, placeholder["key"]),
                                 f"preencha o marcador {{{{{placeholder['name']}}}}}")
        mapping = {p["key"]: p["key"] for p in template.placeholders}
        message = queue_message(session, runtime, customer, kind=KIND, body="", automated=False, now=now,
                                idempotency_key=idempotency_key, template=template, template_mapping=mapping,
                                template_sources=dict(values))
    if message.author_id is None and message.kind == KIND:
        message.author_id = author.id
    customer.human_replied_at = now
    session.flush()
    return message
