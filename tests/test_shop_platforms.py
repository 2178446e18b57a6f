"""What every shop platform shares: the settings each needs, the go-live page's platform card (URLs to paste, what
is missing, the last event per platform, how late carts arrive), shops.base's signatures and field names, and
the demo's replay of each platform's recording (`flask --app app demo replay PLATFORM`) end to end."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import responses
from sqlalchemy import select

from core.settings import Settings, SettingsError
from models import (
    Cart, CartStatus, Customer, Message, Order, OrderStatus, RecoveryAttempt, StoreEvent, SystemFlag, demo, utcnow,
)
from models.demo import DEMO_FLAG
from recovery.tick import run_tick
from shops import activity, replay
from shops.base import hmac_sha256_matches, platform_fields
from tests.test_console_pages import app, login, people, text  # noqa: F401  (fixtures)
from tests.test_golive import SETUP, other_runtime  # noqa: F401  (fixture)

# --- settings ------------------------------------------------------------------------------------------------

PRODUCTION = {"APP_ENV": "production", "DATABASE_URL": "postgresql+psycopg://u@h/db", "REDIS_URL": "redis://h:6379/0",
              "SECRET_KEY": "k" * 40, "STORE_WEBHOOK_SECRET": "s" * 40, "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
              "TWILIO_AUTH_TOKEN": "t" * 32}


@pytest.mark.parametrize("platform, needs", [
    ("shopify", ("SHOPIFY_SHOP_DOMAIN", "SHOPIFY_WEBHOOK_SECRET")),
    ("nuvemshop", ("NUVEMSHOP_STORE_ID", "NUVEMSHOP_ACCESS_TOKEN", "NUVEMSHOP_APP_SECRET")),
    ("woocommerce", ("WOOCOMMERCE_STORE_URL", "WOOCOMMERCE_WEBHOOK_SECRET")),
])
def test_production_refuses_to_start_without_the_platforms_settings(tmp_path, platform, needs):
    complete = {"SHOPIFY_SHOP_DOMAIN": "loja.myshopify.com", "SHOPIFY_WEBHOOK_SECRET": "x" * 32,
                "NUVEMSHOP_STORE_ID": "1679854", "NUVEMSHOP_ACCESS_TOKEN": "tok", "NUVEMSHOP_APP_SECRET": "sec",
                "WOOCOMMERCE_STORE_URL": "https://loja.example", "WOOCOMMERCE_WEBHOOK_SECRET": "wsec"}
    env = {**PRODUCTION, "SHOP_PLATFORM": platform, **{k: complete[k] for k in needs}}
    assert Settings.from_env(env, instance_path=tmp_path).shop_platform == platform
    for missing in needs:
        with pytest.raises(SettingsError, match=missing):
            Settings.from_env({k: v for k, v in env.items() if k != missing}, instance_path=tmp_path)


@pytest.mark.parametrize("name, value", [("NUVEMSHOP_STORE_ID", "loja-1"), ("NUVEMSHOP_STORE_ID", "12 34"),
                                         ("NUVEMSHOP_API_URL", "api.nuvemshop.com.br"),
                                         ("WOOCOMMERCE_STORE_URL", "loja.example"), ("SHOP_PLATFORM", "vtex")])
def test_malformed_platform_settings_are_refused_with_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value}, instance_path=tmp_path)


def test_platform_secrets_are_never_logged(tmp_path):
    settings = Settings.from_env({"NUVEMSHOP_ACCESS_TOKEN": "nuvem-token-1", "NUVEMSHOP_APP_SECRET": "nuvem-secret-2",
                                  "WOOCOMMERCE_WEBHOOK_SECRET": "woo-secret-3"}, instance_path=tmp_path)
    assert {"nuvem-token-1", "nuvem-secret-2", "woo-secret-3"} <= set(settings.secret_values())
    assert "nuvem-token-1" not in repr(settings) and "woo-secret-3" not in repr(settings)
    assert settings.nuvemshop_api_url == "https://api.nuvemshop.com.br/v1"


# --- shops.base -------------------------------------------------------------------------------------------------


def test_hmac_in_both_encodings_and_nothing_without_a_secret():
    raw = b'{"store_id":1679854,"event":"order/paid","id":1}'
    digest = hmac.new(b"segredo", raw, hashlib.sha256).digest()
    assert hmac_sha256_matches(raw, digest.hex(), "segredo", encoding="hex")
    assert hmac_sha256_matches(raw, digest.hex().upper(), "segredo", encoding="hex")
    assert hmac_sha256_matches(raw, base64.b64encode(digest).decode(), "segredo", encoding="base64")
    assert not hmac_sha256_matches(raw, digest.hex(), "segredo", encoding="base64")
    assert not hmac_sha256_matches(raw + b" ", digest.hex(), "segredo", encoding="hex")
    assert not hmac_sha256_matches(raw, digest.hex(), None, encoding="hex")
    assert not hmac_sha256_matches(raw, "assinatura-çã", "segredo", encoding="hex")


def test_field_errors_are_renamed_as_the_platform_names_them():
    renamed = platform_fields({"items[1].unit_price": "obrigatório", "total": "obrigatório", "event": "x"},
                              {"total": "total_price"}, "line_items", {"unit_price": "price"})
    assert renamed == {"line_items[1].price": "obrigatório", "total_price": "obrigatório", "event": "x"}


# --- activity ---------------------------------------------------------------------------------------------------


def test_arrival_lag_is_measured_from_the_carts_last_change(session):
    now = utcnow()
    for minutes_late in (10, 20, 30, 40, 600):
        session.add(StoreEvent(event="cart.abandoned", external_id=f"lag-{minutes_late}",
                               occurred_at=now - timedelta(minutes=minutes_late + 5),
                               received_at=now - timedelta(minutes=5)))
    session.add(StoreEvent(event="order.paid", external_id="not-a-cart", occurred_at=now - timedelta(days=1),
                           received_at=now))
    session.add(StoreEvent(event="cart.updated", external_id="too-old", occurred_at=now - timedelta(days=20),
                           received_at=now - timedelta(days=9)))
    session.commit()
    lag = activity.arrival_lag(session, now)
    assert lag.carts == 5
    assert lag.median == timedelta(minutes=30)
    assert lag.p90 == timedelta(minutes=600)
    assert activity.arrival_lag(session, now - timedelta(days=30)) is None


def test_last_events_survive_garbage_in_redis(runtime):
    now = utcnow()
    activity.note(runtime, "shopify", "orders/paid", now)
    runtime.redis.set(runtime.keys("shop-last:woocommerce"), "não é json")
    last = activity.last_events(runtime)
    assert last["shopify"]["kind"] == "orders/paid" and abs(last["shopify"]["at"] - now) < timedelta(seconds=1)
    assert last["woocommerce"] is None and last["nuvemshop"] is None


# --- the go-live page -------------------------------------------------------------------------------------------


def test_the_page_shows_each_platforms_url_what_is_missing_and_the_last_event(other_runtime, people, session):
    rt, client = other_runtime(SHOP_PLATFORM="woocommerce", PUBLIC_BASE_URL="https://wa.loja.example",
                               WOOCOMMERCE_STORE_URL="https://loja.example", WOOCOMMERCE_WEBHOOK_SECRET="woo-secret")
    login(client, "dona")
    page = text(client.get(SETUP))
    assert re.search(r'id="chosen-platform"><strong>WooCommerce</strong>', page)
    for name in ("shopify", "nuvemshop", "woocommerce"):
        assert f"https://wa.loja.example/webhooks/{name}</code>" in page
    woo = re.search(r'<tr id="platform-woocommerce" class="chosen">(.*?)</tr>', page, re.S).group(1)
    assert "completa" in woo and "nada recebido ainda" in woo and "em uso" in woo
    shopify_row = re.search(r'<tr id="platform-shopify">(.*?)</tr>', page, re.S).group(1)
    assert "<code>SHOPIFY_SHOP_DOMAIN</code>, <code>SHOPIFY_WEBHOOK_SECRET</code>" in shopify_row
    assert "Pedido atualizado" in page and "pendente de pagamento" in page  # what to configure in WooCommerce
    assert "woo-secret" not in page

    ping = client.post("/webhooks/woocommerce", data=b"webhook_id=7",
                       content_type="application/x-www-form-urlencoded")
    assert ping.status_code == 200
    woo = re.search(r'<tr id="platform-woocommerce" class="chosen">(.*?)</tr>', text(client.get(SETUP)), re.S).group(1)
    assert "<code>ping</code>" in woo and "agora mesmo" in woo


def test_the_page_says_how_late_carts_arrive_when_later_than_the_delay(other_runtime, people, session):
    rt, client = other_runtime(SHOP_PLATFORM="nuvemshop")
    now = utcnow()
    for n in range(3):
        session.add(StoreEvent(event="cart.abandoned", external_id=f"late-{n}",
                               occurred_at=now - timedelta(hours=3), received_at=now - timedelta(minutes=n)))
    session.commit()
    login(client, "dona")
    page = text(client.get(SETUP))
    lag = re.search(r'<p id="arrival-lag" class="note">(.*?)</p>', page, re.S).group(1)
    assert "3 horas" in lag and "3 carrinhos" in lag and "mais que o prazo da recuperação (10 minutos)" in lag
    assert "consultados na API a cada 5 minutos" in page


# --- the demo's replay --------------------------------------------------------------------------------------------


def test_timestamps_are_shifted_in_their_own_style():
    delta = timedelta(hours=1, minutes=30)
    shifted = replay.shifted({"a": "2026-11-30T14:20:00-03:00", "b": ["2026-11-30T17:40:00+0000"],
                              "c": "2026-11-30T17:54:40", "d": "não é data", "e": 5}, delta)
    assert shifted == {"a": "2026-11-30T15:50:00-03:00", "b": ["2026-11-30T19:10:00+00:00"],
                       "c": "2026-11-30T19:24:40", "d": "não é data", "e": 5}


def test_every_recording_keeps_its_platforms_shape():
    for platform in replay.PLATFORMS:
        recording = replay.load(platform)
        assert recording["platform"] == platform and recording["steps"]
        datetime.fromisoformat(recording["recorded_at"])
    shopify_step = replay.load("shopify")["steps"][0]
    assert shopify_step["headers"]["X-Shopify-Topic"] == "checkouts/create"
    assert "abandoned_checkout_url" in shopify_step["body"]
    woo_step = replay.load("woocommerce")["steps"][0]
    assert {"X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID"} <= set(woo_step["headers"])
    assert "payment_url" in woo_step["body"]
    nuvem = replay.load("nuvemshop")["steps"]
    assert set(nuvem[1]["webhook"]) == {"store_id", "event", "id"}


def test_replay_is_refused_outside_the_demo_store(session, runtime):
    with pytest.raises(replay.ReplayRefused, match="demo seed"):
        replay.replay(session, runtime, "shopify", utcnow())
    with pytest.raises(replay.ReplayRefused, match="desconhecida"):
        replay.load("vtex")


ABANDONER = {"shopify": "+5511988882001", "woocommerce": "+5531988883001", "nuvemshop": "+5527988884001"}
BUYER = {"shopify": "+5521988882002", "woocommerce": "+5531988883002", "nuvemshop": "+5527988884002"}
LINK = {"shopify": "https://loja-demo.myshopify.com/69420/checkouts/c1a7e3b9d2/recover?key=demo5510001",
        "woocommerce": "https://loja-demo.com.br/checkout/order-pay/5101/?pay_for_order=true&key=wc_order_demo5101",
        "nuvemshop": "https://lojademo.lojavirtualnuvem.com.br/checkout/v3/order/proxy/411335234/"}


@pytest.fixture
def demo_store(session):
    demo.seed(session)
    session.commit()
    assert session.get(SystemFlag, DEMO_FLAG) is not None


@pytest.fixture
def platform_runtime(instance_dir, database_url, redis_url, db, redis_client):
    from tests.conftest import installed_runtime, make_settings

    def build(platform, **env):
        settings = make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM=platform, **env)
        return installed_runtime(settings, db, redis_client)
    return build


@pytest.mark.parametrize("platform", replay.PLATFORMS)
def test_replay_then_tick_recovers_only_the_shopper_who_did_not_buy(session, platform_runtime, demo_store, platform):
    # The demo switched to the platform with one variable: SHOP_PLATFORM (outbox mode, no platform keys).
    with platform_runtime(platform) as runtime:
        _replay_and_tick(session, runtime, platform)


def _afternoon() -> datetime:
    """The latest 15:00 in São Paulo (18:00 UTC) that has passed: the demo keeps quiet hours from 21:00 to 09:00,
    and a recovery message due then is deferred, so a test run at night must not tick at night."""
    now = utcnow()
    moment = now.replace(hour=18, minute=0, second=0, microsecond=0)
    return moment if moment <= now else moment - timedelta(days=1)


def _replay_and_tick(session, runtime, platform):
    moment = _afternoon()
    steps = replay.replay(session, runtime, platform, moment)
    assert "applied" in {step.outcome for step in steps}
    session.expire_all()
    abandoner = session.scalar(select(Customer).where(Customer.phone == ABANDONER[platform]))
    buyer = session.scalar(select(Customer).where(Customer.phone == BUYER[platform]))
    assert abandoner.simulated and buyer.simulated  # the simulator shows their conversations
    assert buyer.email and buyer.email.endswith("@example.com")  # the platform's e-mail, searchable in Clientes
    assert session.scalar(select(Order).where(Order.customer_id == buyer.id)).status is OrderStatus.PAID
    cart = session.scalar(select(Cart).where(Cart.customer_id == abandoner.id))
    assert cart.status in (CartStatus.OPEN, CartStatus.ABANDONED) and cart.checkout_url.startswith(LINK[platform])

    run_tick(session, runtime, now=moment)
    session.expire_all()
    assert {a.customer_id for a in session.scalars(select(RecoveryAttempt))} == {abandoner.id}
    messages = session.scalars(select(Message).where(Message.customer_id == abandoner.id)).all()
    assert len(messages) == 1
    sent = messages[0].body + json.dumps(messages[0].content_variables or {})
    assert LINK[platform] in sent and "VOLTA" in sent  # the demo's coupon rule: a code in the message
    assert not session.scalars(select(Message).where(Message.customer_id == buyer.id)).all()


def test_a_redelivery_in_the_recording_is_a_duplicate_and_a_second_replay_changes_nothing(session, runtime,
                                                                                           demo_store):
    first = replay.replay(session, runtime, "shopify", utcnow())
    assert first[-1].outcome == "duplicate" and first[-2].outcome == "applied"  # orders/paid delivered twice
    again = replay.replay(session, runtime, "shopify", utcnow())
    assert {step.outcome for step in again} == {"duplicate"}


def test_the_cli_replays_and_prints_masked_phones(app, session, demo_store):  # noqa: F811
    result = app.test_cli_runner().invoke(args=["demo", "replay", "woocommerce"])
    assert result.exit_code == 0, result.output
    assert "events replayed" in result.output
    assert "+5531988883001" not in result.output and "3001" in result.output
    bad = app.test_cli_runner().invoke(args=["demo", "replay", "vtex"])
    assert bad.exit_code != 0 and "vtex" in bad.output


def test_all_timestamps_moved_so_the_abandoned_cart_is_due_now(session, runtime, demo_store):
    now = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
    replay.replay(session, runtime, "shopify", now)
    session.expire_all()
    cart = session.scalar(select(Cart).join(Customer).where(Customer.phone == ABANDONER["shopify"]))
    updated = cart.updated_at if cart.updated_at.tzinfo else cart.updated_at.replace(tzinfo=timezone.utc)
    assert now - timedelta(hours=1) < updated < now  # recorded 25 minutes before the recording's time


# --- the recoverer's coupons on a platform ------------------------------------------------------------------------

SHOP_DOMAIN = "loja-teste.myshopify.com"
GRAPHQL = f"https://{SHOP_DOMAIN}/admin/api/2025-01/graphql.json"
CREATED = {"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/9"},
                                                "userErrors": []}}}


@pytest.fixture
def shopify_runtime(instance_dir, database_url, redis_url, db, redis_client):
    from tests.conftest import installed_runtime, make_settings

    def build(**env):
        settings = make_settings(instance_dir, database_url, redis_url, SHOP_PLATFORM="shopify",
                                 SHOPIFY_SHOP_DOMAIN=SHOP_DOMAIN, SHOPIFY_WEBHOOK_SECRET="s" * 32, **env)
        return installed_runtime(settings, db, redis_client)
    return build


def _abandon(session, runtime, now):
    from recovery.tracker import note_interaction
    from tests.recovery_helpers import enable_recovery, shopper

    enable_recovery(session, delay_minutes=10, quiet_start="00:00", quiet_end="00:00")
    customer = shopper(session, last_inbound=now - timedelta(minutes=20))  # inside the 24 h window: free text
    cart = Cart(customer_id=customer.id, source="store", external_id="c-1", status=CartStatus.OPEN,
                checkout_url=f"https://{SHOP_DOMAIN}/1/checkouts/abc/recover?key=k", created_at=now, updated_at=now)
    session.add(cart)
    session.commit()
    note_interaction(session, runtime, customer.id, now - timedelta(minutes=15))
    return customer


def _coupons(session):
    from models import Coupon
    session.expire_all()
    return session.scalars(select(Coupon)).all()


@responses.activate
def test_a_platform_outage_defers_only_that_shopper_and_the_retry_sends_once(shopify_runtime, session):
    with shopify_runtime(SHOPIFY_ADMIN_TOKEN="shpat_x") as runtime:
        now = utcnow()
        customer = _abandon(session, runtime, now)
        responses.post(GRAPHQL, status=503)
        run_tick(session, runtime, now=now)
        session.expire_all()
        [attempt] = session.scalars(select(RecoveryAttempt)).all()
        assert attempt.status.value == "deferred" and attempt.skip_reason == "coupon_platform_unavailable"
        assert not session.scalars(select(Message).where(Message.customer_id == customer.id)).all()
        [coupon] = _coupons(session)  # kept: the retry publishes the same code

        responses.replace(responses.POST, GRAPHQL, json=CREATED)
        run_tick(session, runtime, now=now + timedelta(minutes=11))
        run_tick(session, runtime, now=now + timedelta(minutes=12))  # a duplicate tick changes nothing
        session.expire_all()
        [message] = session.scalars(select(Message).where(Message.customer_id == customer.id)).all()
        assert [c.code for c in _coupons(session)] == [coupon.code] and coupon.code in message.body
        assert coupon.code.startswith("VOLTA-")
        bodies = [json.loads(call.request.body)["variables"]["basicCodeDiscount"]["code"] for call in responses.calls]
        assert bodies == [coupon.code, coupon.code]  # the same code, published again after the outage


@responses.activate
def test_a_refused_coupon_fails_the_attempt_with_the_reason_and_sends_nothing(shopify_runtime, session):
    with shopify_runtime(SHOPIFY_ADMIN_TOKEN="shpat_revoked") as runtime:
        now = utcnow()
        customer = _abandon(session, runtime, now)
        responses.post(GRAPHQL, status=401, json={"errors": "[API] Invalid API key or access token"})
        run_tick(session, runtime, now=now)
        session.expire_all()
        [attempt] = session.scalars(select(RecoveryAttempt)).all()
        assert attempt.status.value == "failed" and attempt.skip_reason == "coupon_platform_refused"
        assert not session.scalars(select(Message).where(Message.customer_id == customer.id)).all()


def test_without_the_platforms_key_the_message_goes_without_a_coupon_and_the_console_says_why(
        shopify_runtime, session, people):
    from app import create_app
    from tests.channel_helpers import TWILIO_API, TWILIO_SID, TWILIO_TOKEN

    with shopify_runtime(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
                         TWILIO_API_URL=TWILIO_API) as runtime:
        assert not runtime.settings.outbox_mode
        now = utcnow()
        customer = _abandon(session, runtime, now)
        run_tick(session, runtime, now=now)
        session.expire_all()
        [message] = session.scalars(select(Message).where(Message.customer_id == customer.id)).all()
        assert not _coupons(session) and "VOLTA" not in message.body
        client = create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
        login(client, "dona")
        for page in ("/console/cupons", "/console/recuperacao"):
            notice = re.search(r'<p class="flash error" role="alert" id="platform-coupons">(.*?)</p>',
                               text(client.get(page)), re.S)
            assert notice and "<code>SHOPIFY_ADMIN_TOKEN</code>" in notice.group(1) and "sem cupom" in notice.group(1)


def test_in_outbox_mode_the_demo_keeps_its_coupon_unpublished_and_the_console_says_so(shopify_runtime, session,
                                                                                      people):
    from app import create_app

    with shopify_runtime() as runtime:
        assert runtime.settings.outbox_mode
        now = utcnow()
        customer = _abandon(session, runtime, now)
        run_tick(session, runtime, now=now)  # nothing is asked of Shopify: no key, no publisher
        session.expire_all()
        [message] = session.scalars(select(Message).where(Message.customer_id == customer.id)).all()
        [coupon] = _coupons(session)
        assert coupon.code in message.body
        client = create_app({"RUNTIME": runtime, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
        login(client, "dona")
        notice = re.search(r'<p class="note" id="platform-coupons">(.*?)</p>', text(client.get("/console/cupons")),
                           re.S).group(1)
        assert "Modo de teste" in notice and "<code>SHOPIFY_ADMIN_TOKEN</code>" in notice
