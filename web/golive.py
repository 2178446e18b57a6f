"""The console's "Configuração" page: what a merchant needs to go live, and proof that it works.

- WhatsApp: the provider (Twilio, the Meta Cloud API, or outbox mode, where nothing is sent), the business number,
  the exact webhook URLs to paste into Twilio or Meta, when the last inbound message, status callback and accepted
  send happened (Redis keys the channel writes, read as /healthz reads them), and a test message to the
  merchant's own phone, refused up front outside WhatsApp's 24-hour window instead of queueing a message the
  channel would block.
- Loja: the shop's webhook URLs, its signing secret (rotated here, shown once, the previous one accepted for 24 h:
  web.store_webhooks), the last event received and a sample event with how to sign it.
- Horário e fuso: the store's time zone, quiet hours and opening hours, with links to where they are edited.

Who: those who configure the brand (``Action.CONFIGURE_BRAND``: admins and brand-wide managers), like the rest
of the console's settings. Nothing secret is ever rendered except the new shop secret, once, to the person who
generated it; nothing secret is logged.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from babel.dates import format_datetime, format_timedelta
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from channel import activity
from channel.sender import queue_message
from channel.window import in_service_window
from core.phones import InvalidPhone, format_phone, mask_phone, normalize_phone
from core.secret_box import open_, seal
from crm import hours as opening_hours
from crm.access import Action
from models import Customer, Message, MessageStatus, StoreEvent, User, WebhookSecret, utcnow
from recovery.config import load_settings
from shops import activity as shop_activity
from web.auth import allowed
from web.context import db_session, runtime
from web.formatting import PLATFORM_LABELS
from web.store_webhooks import SIGNATURE_HEADER, STORE_SECRET, rotate_store_secret, store_secrets

bp = Blueprint("golive", __name__, url_prefix="/console/configuracao")

TEST_KIND = "setup_test"  # Message.kind of the test message
REVEAL_SECONDS = 600  # how long the new secret waits, sealed in Redis, for the redirect that shows it once
MAX_PHONE_INPUT = 40
TWILIO_SANDBOX = "+14155238886"
PROVIDER_LABELS = {"twilio": "Twilio", "meta": "Meta Cloud API (WhatsApp Business Platform)"}
OUTBOX_LABEL = "Modo de teste (outbox)"


# --- helpers -----------------------------------------------------------------------------------------------


def moment(when: datetime | str | None, now: datetime, tz) -> dict[str, str] | None:
    """``{"ago": "há 3 minutos", "exact": "02/03/2026 09:15"}`` in the store's time zone, or None."""
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            return None
    if when is None:
        return None
    delta = when - now
    ago = "agora mesmo" if abs(delta) < timedelta(seconds=45) else format_timedelta(
        delta, locale="pt_BR", add_direction=True, threshold=1.1)
    return {"ago": ago, "exact": format_datetime(when, "dd/MM/yyyy HH:mm", tzinfo=tz, locale="pt_BR"),
            "iso": when.isoformat()}


def _reveal_key(user_id: int) -> str:
    return runtime().keys("golive", "reveal", user_id)


def _stash_new_secret(user_id: int, secret: str) -> bool:
    """Keep the new secret, sealed, for the page the redirect lands on (shown once: read and deleted)."""
    rt = runtime()
    try:
        rt.redis.set(_reveal_key(user_id), seal(secret, rt.settings.secret_key), ex=REVEAL_SECONDS)
        return True
    except Exception:  # noqa: BLE001 - the page then shows it directly
        return False


def _take_new_secret(user_id: int) -> str | None:
    rt = runtime()
    try:
        pipe = rt.redis.pipeline(transaction=True)
        pipe.get(_reveal_key(user_id))
        pipe.delete(_reveal_key(user_id))
        sealed, _ = pipe.execute()
    except Exception:  # noqa: BLE001 - best effort: nothing to show
        return None
    if isinstance(sealed, bytes):
        sealed = sealed.decode("ascii", "replace")
    return open_(sealed, rt.settings.secret_key)


def sample_cart_event(shop_base_url: str, now: datetime, tz) -> dict:
    """An abandoned cart exactly as the contract takes it (recovery.events.validate_cart_event)."""
    return {
        "event": "cart.abandoned",
        "id": "c-123",
        "customer": {"phone": "+5511999990001", "name": "Ana"},
        "items": [{"sku": "TS-01", "name": "Camiseta", "quantity": 1, "unit_price": "79.90"}],
        "total": "79.90",
        "currency": "BRL",
        "checkout_url": f"{shop_base_url}/checkout/c-123",
        "updated_at": now.astimezone(tz).replace(microsecond=0).isoformat(),
    }


def _python_snippet(url: str, event: dict) -> str:
    return (
        "import hashlib, hmac, json, urllib.request\n"
        "\n"
        'SEGREDO = "cole aqui o segredo da loja"\n'
        f"evento = {json.dumps(event, ensure_ascii=False)}\n"
        "\n"
        "corpo = json.dumps(evento).encode(\"utf-8\")  # assine exatamente os bytes que vai enviar\n"
        "assinatura = hmac.new(SEGREDO.encode(\"utf-8\"), corpo, hashlib.sha256).hexdigest()\n"
        f"pedido = urllib.request.Request(\"{url}\", data=corpo, method=\"POST\", headers={{\n"
        f"    \"Content-Type\": \"application/json\", \"{SIGNATURE_HEADER}\": assinatura}})\n"
        "print(urllib.request.urlopen(pedido).read().decode())  # {\"status\": \"applied\"}\n"
    )


def _curl_snippet(url: str, event: dict) -> str:
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return (
        "SEGREDO='cole aqui o segredo da loja'\n"
        f"CORPO='{body}'\n"
        "ASSINATURA=$(printf '%s' \"$CORPO\" | openssl dgst -sha256 -hmac \"$SEGREDO\" -r | cut -d' ' -f1)\n"
        f"curl -sS -X POST '{url}' -H 'Content-Type: application/json' \\\n"
        f"     -H \"{SIGNATURE_HEADER}: $ASSINATURA\" --data-binary \"$CORPO\"\n"
    )


def _simulator_available() -> bool:
    settings = runtime().settings
    return (not settings.is_production and settings.outbox_mode and not settings.twilio_auth_token
            and "simulator.page" in current_app.view_functions)


def _test_message(raw: str | None) -> dict | None:
    """The test message named by ``?teste=ID`` (only a test message), for the confirmation after the redirect."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > 2**31 - 1:
        return None
    message = db_session().get(Message, int(raw))
    if message is None or message.kind != TEST_KIND:
        return None
    return {"id": message.id, "status": message.status.value, "to": mask_phone(message.customer.phone),
            "customer_id": message.customer_id, "blocked": message.status is MessageStatus.BLOCKED,
            "reason": message.error_reason}


def _store_secret_state(now: datetime) -> dict:
    session = db_session()
    settings = runtime().settings
    row = session.get(WebhookSecret, STORE_SECRET)
    state = store_secrets(session, settings, now)
    by = session.get(User, row.rotated_by_id) if row is not None and row.rotated_by_id else None
    tz = settings.store_timezone
    return {
        "rotated": state.rotated,
        "unreadable": state.unreadable,
        "hint": row.hint if row is not None and state.rotated else None,
        "rotated_at": moment(row.rotated_at, now, tz) if row is not None else None,
        "rotated_by": by.name if by is not None else None,
        "previous_until": (moment(row.previous_valid_until, now, tz)
                           if row is not None and state.previous is not None else None),
    }


def _duration(value: timedelta) -> str:
    return format_timedelta(value, threshold=1.5, locale="pt_BR")


def _shop_platforms(now: datetime) -> dict:
    """The chosen platform, and per platform: the URL to paste, which settings are missing, the last event."""
    rt = runtime()
    settings = rt.settings
    tz = settings.store_timezone
    last = shop_activity.last_events(rt)
    rows = []
    for name in shop_activity.PLATFORMS:
        event = last[name]
        rows.append({
            "name": name, "label": PLATFORM_LABELS[name], "url": f"{settings.public_base_url}/webhooks/{name}",
            "missing": settings.missing_for(name),
            "last": {"kind": event["kind"], "when": moment(event["at"], now, tz)} if event else None,
        })
    session = db_session()
    lag = shop_activity.arrival_lag(session, now)
    recovery = load_settings(session)
    return {
        "chosen": settings.shop_platform, "chosen_label": PLATFORM_LABELS[settings.shop_platform], "rows": rows,
        "lag": ({"carts": lag.carts, "median": _duration(lag.median), "p90": _duration(lag.p90),
                 "late": lag.median > timedelta(minutes=recovery.delay_minutes),
                 "too_old": lag.p90 > timedelta(hours=recovery.max_age_hours)} if lag else None),
        "delay_minutes": recovery.delay_minutes,
        "max_age_hours": recovery.max_age_hours,
    }


def _context(now: datetime, *, errors: dict[str, str] | None = None, form=None, new_secret: str | None = None):
    rt = runtime()
    settings = rt.settings
    session = db_session()
    tz = settings.store_timezone
    base = settings.public_base_url
    times = activity.last_times(rt)
    last_event = session.scalars(select(StoreEvent).order_by(StoreEvent.received_at.desc(), StoreEvent.id.desc())
                                 .limit(1)).first()
    event = sample_cart_event(settings.shop_base_url, now, tz)
    carts_url, orders_url = f"{base}/webhooks/store/carts", f"{base}/webhooks/store/orders"
    recovery = load_settings(session)
    hours = opening_hours.store_hours(session)
    business = settings.twilio_whatsapp_from.removeprefix("whatsapp:")
    return {
        "provider": settings.whatsapp_provider,
        "provider_label": PROVIDER_LABELS[settings.whatsapp_provider],
        "outbox": settings.outbox_mode,
        "outbox_label": OUTBOX_LABEL,
        "production": settings.is_production,
        "business_number": format_phone(business),
        "sandbox": business == TWILIO_SANDBOX,
        "meta_phone_number_id": settings.meta_phone_number_id,
        "meta_waba_id": settings.meta_waba_id,
        "public_base_url": base,
        "public_reachable": base.startswith("https://") and not any(
            host in base for host in ("://127.", "://localhost", "://0.0.0.0", "://[::1]")),
        "urls": {
            "twilio_inbound": f"{base}/webhooks/whatsapp",
            "twilio_status": f"{base}/webhooks/whatsapp/status",
            "meta_callback": f"{base}/webhooks/meta",
            "store_carts": carts_url,
            "store_orders": orders_url,
        },
        "last_inbound": moment(times["last_inbound"], now, tz),
        "last_status": moment(times["last_status"], now, tz),
        "last_send": moment(times["last_send"], now, tz),
        "simulator": _simulator_available(),
        "test_message": _test_message(request.args.get("teste")),
        "errors": errors or {},
        "form": form if form is not None else {},
        "secret": _store_secret_state(now),
        "new_secret": new_secret,
        "last_event": ({"event": last_event.event, "external_id": last_event.external_id,
                        "when": moment(last_event.received_at, now, tz)} if last_event is not None else None),
        "sample_payload": json.dumps(event, ensure_ascii=False, indent=2),
        "python_snippet": _python_snippet(carts_url, event),
        "curl_snippet": _curl_snippet(carts_url, event),
        "signature_header": SIGNATURE_HEADER,
        "timezone": tz.key,
        "local_now": format_datetime(now, "dd/MM/yyyy HH:mm", tzinfo=tz, locale="pt_BR"),
        "quiet": (None if recovery.quiet_start == recovery.quiet_end
                  else {"start": recovery.quiet_start, "end": recovery.quiet_end}),
        "hours_text": opening_hours.describe(hours),
        "instance_path": str(settings.instance_path),
        "shop": _shop_platforms(now),
    }


# --- views -------------------------------------------------------------------------------------------------


@bp.get("")
@allowed(Action.CONFIGURE_BRAND)
def setup():
    new_secret = _take_new_secret(current_user.id)
    return render_template("pages/console/setup.html", **_context(utcnow(), new_secret=new_secret))


@bp.post("/segredo-da-loja")
@allowed(Action.CONFIGURE_BRAND)
def rotate_secret():
    now = utcnow()
    if request.form.get("confirmar") not in ("on", "1", "sim"):
        return render_template("pages/console/setup.html",
                               **_context(now, errors={"confirmar": "marque a confirmação para gerar um novo "
                                                                    "segredo"})), 400
    session = db_session()
    try:
        secret = rotate_store_secret(session, runtime().settings, user_id=current_user.id, now=now)
        session.commit()
    except IntegrityError:
        # Two first rotations at once: the other one inserted the row; rotate again over it (now locked).
        session.rollback()
        secret = rotate_store_secret(session, runtime().settings, user_id=current_user.id, now=now)
        session.commit()
    if not _stash_new_secret(current_user.id, secret):
        # Redis unavailable: this answer is the one chance to see it (a reload would generate another).
        return render_template("pages/console/setup.html", **_context(now, new_secret=secret))
    return redirect(url_for(".setup") + "#segredo", 303)


def _outside_window_explanation() -> str:
    settings = runtime().settings
    if settings.outbox_mode:
        where = "mande um oi com esse número pelo simulador"
    elif settings.whatsapp_provider == "meta":
        where = "mande um oi do seu celular para o número da loja"
    else:
        where = ("mande um oi do seu celular para o número da loja ("
                 + format_phone(settings.twilio_whatsapp_from.removeprefix("whatsapp:")) + ")")
    return ("o WhatsApp só permite uma mensagem livre para quem escreveu para a loja nas últimas 24 horas, e este "
            f"número não escreveu nesse período: {where} e tente de novo.")


@bp.post("/mensagem-de-teste")
@allowed(Action.CONFIGURE_BRAND)
def send_test():
    now = utcnow()
    raw = request.form.get("phone") or ""
    errors: dict[str, str] = {}
    phone = None
    if not raw.strip():
        errors["phone"] = "informe o número do seu celular, com DDD"
    elif len(raw) > MAX_PHONE_INPUT or "\x00" in raw:
        errors["phone"] = "número inválido: use DDD + número, por exemplo (11) 98765-4321"
    else:
        try:
            phone = normalize_phone(raw)
        except InvalidPhone:
            errors["phone"] = "número inválido: use DDD + número, por exemplo (11) 98765-4321"
    session = db_session()
    customer = None
    if phone is not None:
        customer = session.scalar(select(Customer).where(Customer.phone == phone))
        if customer is None or not in_service_window(customer, now):
            errors["phone"] = _outside_window_explanation()
    if errors:
        return render_template("pages/console/setup.html", **_context(now, errors=errors, form=request.form)), 400
    store_name = runtime().settings.store_name
    message = queue_message(session, runtime(), customer, kind=TEST_KIND,
                            body=f"Mensagem de teste da {store_name}: se você recebeu, o WhatsApp da loja está "
                                 "conectado. Não precisa responder.",
                            automated=False, now=now)
    session.commit()
    return redirect(url_for(".setup", teste=message.id) + "#teste", 303)
