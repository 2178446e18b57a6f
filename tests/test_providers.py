"""The recoverer's guarantees on both WhatsApp providers, end to end: a recovery tick, the RQ delivery job and the
provider's fake over real HTTP (tests.fake_twilio / tests.fake_meta). Each test runs once per provider."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from channel.ratelimit import RateLimiter
from channel.sender import deliver
from channel.status import apply_status
from channel.transport import make_transport
from core.runtime import Runtime
from models import Coupon, Customer, Message, MessageStatus, Order, OrderStatus, utcnow
from recovery.tick import run_tick
from recovery.tracker import note_interaction
from tests.channel_helpers import run_jobs
from tests.conftest import installed_runtime, make_settings
from tests.fake_meta import OUTSIDE_WINDOW, PROVIDERS, fake_provider, provider_overrides
from tests.recovery_helpers import approved_template, enable_recovery, map_template, recovery_messages, shopper, \
    with_cart

NO_QUIET_HOURS = {"quiet_start": "00:00", "quiet_end": "00:00"}
PHONE = "+5511999990001"
RECIPIENT = f"whatsapp:{PHONE}"


@dataclass
class Provider:
    name: str
    fake: object  # FakeTwilio or FakeMeta
    runtime: Runtime

    def sent_template(self, payload: dict) -> tuple[str, list[str]] | None:
        """(template id or name, values in order) when ``payload`` is a template message, else None."""
        if self.name == "twilio":
            if "ContentSid" not in payload:
                return None
            values = json.loads(payload["ContentVariables"])
            return payload["ContentSid"], [values[k] for k in sorted(values, key=int)]
        if payload["type"] != "template":
            return None
        [body] = [c for c in payload["template"]["components"] if c["type"] == "body"]
        return payload["template"]["name"], [p["text"] for p in body["parameters"]]

    def sent_text(self, payload: dict) -> str | None:
        if self.name == "twilio":
            return payload.get("Body")
        return payload["text"]["body"] if payload["type"] == "text" else None


@pytest.fixture(params=PROVIDERS)
def provider(request, instance_dir, database_url, redis_url, db, redis_client):
    with fake_provider(request.param) as fake:
        settings = make_settings(instance_dir, database_url, redis_url, **provider_overrides(request.param, fake),
                                 SEND_RATE_PER_SECOND="1000")
        assert settings.whatsapp_provider == request.param and not settings.outbox_mode
        with installed_runtime(settings, db, redis_client) as runtime:
            yield Provider(request.param, fake, runtime)


def _due_shopper(session, provider: Provider, *, wrote: bool, template: bool = True) -> tuple[Customer, object]:
    """A shopper with an abandoned cart, due for recovery now; ``wrote``: they wrote to us 20 minutes ago
    (inside the 24 h window), else only the shop's cart event is known. Returns the shopper and the mapped
    template of this provider (or None)."""
    now = utcnow()
    enable_recovery(session, **NO_QUIET_HOURS)
    mapped = None
    if template:
        mapped = approved_template(session, provider=provider.name)
        map_template(session, mapped)
    customer = shopper(session, phone=PHONE, last_inbound=now - timedelta(minutes=20) if wrote else None)
    with_cart(session, customer, at=now - timedelta(minutes=20))
    note_interaction(session, provider.runtime, customer.id, now - timedelta(minutes=15))
    return customer, mapped


def _tick(session, provider: Provider, minutes_later: float = 0):
    return run_tick(session, provider.runtime, utcnow() + timedelta(minutes=minutes_later))


def _deliver_again(session, provider: Provider, message_id: int) -> str:
    runtime = provider.runtime
    return deliver(session, runtime, make_transport(runtime.settings), RateLimiter(runtime.redis), message_id).outcome


def _reload(session, message_id: int) -> Message:
    session.expire_all()
    return session.get(Message, message_id)


def test_a_web_cart_abandoner_who_never_wrote_gets_exactly_one_template_message(session, provider):
    customer, template = _due_shopper(session, provider, wrote=False)
    assert _tick(session, provider).sent == 1
    assert _tick(session, provider, 1).claimed == 0  # a second tick (another scheduler) finds nobody due
    run_jobs(provider.runtime)
    run_jobs(provider.runtime)

    [message] = recovery_messages(session)
    assert _deliver_again(session, provider, message.id) == "skipped"  # a duplicated delivery job sends nothing
    assert provider.fake.per_recipient() == {RECIPIENT: 1}
    [payload] = provider.fake.accepted
    assert provider.sent_text(payload) is None, "free-form text outside the 24 h window"
    name, values = provider.sent_template(payload)
    assert name == (template.external_id if provider.name == "twilio" else template.name)
    coupon = session.scalar(select(Coupon).where(Coupon.customer_id == customer.id))
    assert values[0] == "Ana" and values[1].startswith("2x Camiseta Básica Branca") and values[2] == coupon.code
    assert values[4].startswith("https://")
    stored = _reload(session, message.id)
    assert stored.sent_as == "template" and stored.provider_sid
    assert stored.status in (MessageStatus.QUEUED, MessageStatus.ACCEPTED)
    assert stored.body.startswith("Oi, Ana! Seus itens na Loja Demo estão esperando")


def test_inside_the_window_the_free_form_message_goes_even_with_a_template_mapped(session, provider):
    _due_shopper(session, provider, wrote=True)
    assert _tick(session, provider).sent == 1
    run_jobs(provider.runtime)
    [message] = recovery_messages(session)
    [payload] = provider.fake.accepted
    assert provider.sent_template(payload) is None
    assert provider.sent_text(payload) == message.body and message.sent_as == "text"
    assert provider.fake.per_recipient() == {RECIPIENT: 1}


def test_the_provider_saying_outside_the_window_sends_the_template_in_the_same_delivery(session, provider):
    """Our clock says the shopper wrote 20 minutes ago; the provider says more than 24 h (Twilio 63016, Meta
    131047): the mapped template is the one message."""
    _, template = _due_shopper(session, provider, wrote=True)
    assert _tick(session, provider).sent == 1
    provider.fake.fail_next(1, *OUTSIDE_WINDOW[provider.name])
    run_jobs(provider.runtime)
    [message] = recovery_messages(session)
    assert provider.fake.requests == 2 and provider.fake.per_recipient() == {RECIPIENT: 1}
    [payload] = provider.fake.accepted
    name, values = provider.sent_template(payload)
    assert name == (template.external_id if provider.name == "twilio" else template.name) and values[0] == "Ana"
    assert provider.sent_text(payload) is None
    assert _reload(session, message.id).sent_as == "template"


def test_opting_out_after_the_message_was_queued_blocks_its_delivery(session, provider):
    customer, _ = _due_shopper(session, provider, wrote=True)
    assert _tick(session, provider).sent == 1
    customer.opted_out_at = utcnow()  # "PARAR" arrived before the delivery job ran
    session.commit()
    run_jobs(provider.runtime)
    [message] = recovery_messages(session)
    assert message.status is MessageStatus.BLOCKED and message.error_reason == "opted_out"
    assert provider.fake.requests == 0


def test_a_purchase_after_the_message_was_queued_blocks_its_delivery(session, provider):
    customer, _ = _due_shopper(session, provider, wrote=False)
    assert _tick(session, provider).sent == 1
    now = utcnow()
    session.add(Order(external_id="o-1", customer_id=customer.id, status=OrderStatus.PAID, total=Decimal("119.80"),
                      placed_at=now, received_at=now))
    session.commit()
    run_jobs(provider.runtime)
    [message] = recovery_messages(session)
    assert message.status is MessageStatus.BLOCKED and message.error_reason == "purchased"
    assert provider.fake.requests == 0


def test_status_updates_only_move_forward(session, provider):
    """Late, repeated and out-of-order callbacks (Twilio's status callback, Meta's ``statuses``) for the id the
    provider gave: the status never moves back, and a failure after delivery does not undo it."""
    _due_shopper(session, provider, wrote=False)
    assert _tick(session, provider).sent == 1
    run_jobs(provider.runtime)
    [message] = recovery_messages(session)
    sid = message.provider_sid
    assert sid and sid.startswith("SM" if provider.name == "twilio" else "wamid.")
    runtime = provider.runtime
    assert apply_status(session, runtime, sid, "delivered", None) == "updated"
    assert apply_status(session, runtime, sid, "read", None) == "updated"
    for late in ("sent", "delivered", "read", "failed"):
        assert apply_status(session, runtime, sid, late, "131026") == "ignored"
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.READ and stored.error_code is None
    assert stored.delivered_at is not None and stored.read_at is not None


# --- black box: the shop's signed event in, the provider's webhook back ----------------------------------


def _status_callback(client, provider: Provider, sid: str, state: str):
    """The provider telling us what happened to ``sid``, through its own signed webhook."""
    settings = provider.runtime.settings
    if provider.name == "twilio":
        from tests.channel_helpers import post_status

        return post_status(client, settings, sid, state)
    from tests.test_meta_webhook import entry, envelope, post_meta, status

    change = {"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "5511955550000", "phone_number_id": settings.meta_phone_number_id},
        "statuses": [status(sid, state, wa_id=PHONE.lstrip("+"))]}}
    return post_meta(client, settings, envelope(entry(change, waba_id=settings.meta_waba_id)))


def test_black_box_a_signed_web_cart_event_then_ticks_give_one_template_message(session, provider):
    """Issue 16's black-box case on each provider: the shop's signed cart.abandoned for a shopper who never
    wrote, the shop redelivering it, two ticks past the delay, every job run twice: one approved-template
    message reaches the fake provider over HTTP, and its delivery callback comes back through the webhook."""
    from app import create_app
    from tests.test_store_events import CARTS, cart_payload, sign

    enable_recovery(session, **NO_QUIET_HOURS)
    map_template(session, approved_template(session, provider=provider.name))
    client = create_app({"RUNTIME": provider.runtime, "TESTING": True}).test_client()
    raw = json.dumps(cart_payload(phone=PHONE, event="cart.abandoned", id="web-1", at=utcnow(),
                                  name="Ana Souza")).encode()
    for _ in range(2):  # the shop redelivers
        answer = client.post(CARTS, data=raw, content_type="application/json",
                             headers={"X-Store-Signature": sign(provider.runtime.settings, raw)})
        assert answer.status_code == 200
    for minutes in (11, 12):
        _tick(session, provider, minutes)
        run_jobs(provider.runtime)
        run_jobs(provider.runtime)

    assert provider.fake.per_recipient() == {RECIPIENT: 1}
    [payload] = provider.fake.accepted
    assert provider.sent_text(payload) is None
    _, values = provider.sent_template(payload)
    assert values[0] == "Ana" and values[1].startswith("2x Camiseta")
    [message] = recovery_messages(session)
    for state in ("delivered", "sent", "read", "delivered"):  # repeated and out of order
        assert _status_callback(client, provider, message.provider_sid, state).status_code in (200, 204)
    stored = _reload(session, message.id)
    assert stored.status is MessageStatus.READ and stored.sent_as == "template"
