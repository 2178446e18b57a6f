"""A person answers a shopper through the store's WhatsApp number: from the console's conversation (admins and
managers) and from the seller's opportunity. Thin: the rules (24-hour window, templates, opt-out, the bot's pause)
are in bot.human_replies; who may write to whom is crm.access.

The form (templates/pages/_reply_form.html) is included by both pages; ``reply_panel`` gives it what it needs. A
refused reply re-renders the same page with the error next to the field and status 400.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, flash, g, make_response, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from bot import human_replies
from bot.human_replies import ReplyError
from core.inputs import InputError, parse_id
from crm import access
from crm.access import Action
from crm.opportunities import OpportunityError, start_conversation
from models import Customer, Message, Opportunity, OpportunityStatus, utcnow
from web.auth import allowed
from web.context import db_session, runtime

bp = Blueprint("replies", __name__)

THREAD_ON_OPPORTUNITY = 12  # the latest messages shown above the seller's reply form


@bp.app_context_processor
def _reply_helpers():
    return {"reply_panel": reply_panel}


def reply_panel(customer: Customer, thread: bool = False) -> dict:
    """What the reply form shows for ``customer``: whether this user may write, free text or templates (and why),
    the bot's pause, a one-time key against double submits, and a refused reply's errors and values."""
    session = db_session()
    settings = runtime().settings
    now = utcnow()
    may_reply = access.may_reply_to(session, current_user, customer)
    panel = {
        "may_reply": may_reply,
        "options": human_replies.options(session, settings, customer, now) if may_reply else None,
        "paused_until": human_replies.paused_until(customer, settings)
        if human_replies.bot_paused(customer, settings, now) else None,
        "pause_minutes": settings.human_pause_minutes,
        "key": secrets.token_urlsafe(16),
        "errors": getattr(g, "reply_errors", {}),
        "form": getattr(g, "reply_form", {}),
        "value_field": human_replies.value_field,
        "messages": [],
    }
    if thread:
        latest = session.scalars(select(Message).where(Message.customer_id == customer.id)
                                 .order_by(Message.created_at.desc(), Message.id.desc())
                                 .limit(THREAD_ON_OPPORTUNITY)).all()
        panel["messages"] = list(reversed(latest))
    return panel


def _template_id() -> int | None:
    raw = (request.form.get("template_id") or "").strip()
    if not raw:
        return None
    try:
        return parse_id(raw, "template_id")
    except InputError:
        raise ReplyError("template_id", "modelo inválido") from None


def _send(customer: Customer):
    """Queue the reply; None when sent, else the ReplyError."""
    session = db_session()
    form = request.form
    values: dict[str, str] = {}
    try:
        template_id = _template_id()
        if template_id is not None:
            prefix = f"valor-{template_id}-"
            values = {key[len(prefix):]: value[:500] for key, value in form.items() if key.startswith(prefix)}
        human_replies.send_reply(session, runtime(), customer, current_user, text=(form.get("text") or "")[:5000],
                                 template_id=template_id, values=values, key=form.get("reply_key") or "",
                                 now=utcnow())
    except ReplyError as exc:
        session.rollback()
        return exc
    return None


def _refused(exc: ReplyError, page):
    g.reply_errors = {exc.field: exc.message}
    g.reply_form = {key: value[:5000] for key, value in request.form.items() if key != "csrf_token"}
    return make_response(page(), 400)


@bp.post("/console/conversas/<id:customer_id>/responder")
@allowed(Action.READ_CONVERSATIONS)
def console_reply(customer_id: int):
    if not access.may(current_user, Action.REPLY_TO_CUSTOMERS):
        abort(403)  # back office users follow conversations but do not answer them
    session = db_session()
    customer = session.get(Customer, customer_id)
    if customer is None or not access.may_reply_to(session, current_user, customer):
        abort(404)
    refused = _send(customer)
    if refused is not None:
        from web.console import conversation

        return _refused(refused, lambda: conversation(customer_id=customer_id))
    session.commit()
    flash("Mensagem enviada pelo número da loja. O robô fica em silêncio nesta conversa enquanto você atende.",
          "info")
    return redirect(url_for("console.conversation", customer_id=customer.id), 303)


@bp.post("/vendedor/oportunidades/<id:opportunity_id>/responder")
@allowed(Action.USE_SELLER_APP)
def seller_reply(opportunity_id: int):
    session = db_session()
    item = session.scalar(select(Opportunity).where(Opportunity.id == opportunity_id,
                                                    Opportunity.seller_id == current_user.id))
    if item is None or not access.may_reply_to(session, current_user, item.customer):
        abort(404)
    refused = _send(item.customer)
    if refused is not None:
        from web.seller import opportunity

        return _refused(refused, lambda: opportunity(opportunity_id=opportunity_id))
    if item.status is OpportunityStatus.ASSIGNED:
        try:
            start_conversation(session, item, current_user, utcnow())  # answering the shopper starts it
        except OpportunityError:
            pass
    session.commit()
    flash("Mensagem enviada pelo número da loja. O robô fica em silêncio nesta conversa enquanto você atende.",
          "info")
    return redirect(url_for("seller.opportunity", opportunity_id=item.id), 303)
