"""The console's "Configuração" page (web.golive): who reaches it, the webhook URLs for each provider, the channel's
last activity read from Redis, the test message (inside and outside WhatsApp's 24-hour window), the shop secret's
rotation shown once, and core.secret_box underneath."""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import responses
from sqlalchemy import func, select

from core import secret_box
from core.runtime import Runtime, set_runtime
from core.security import hmac_sha256_hex
from models import Customer, Direction, Message, MessageStatus, StoreEvent, WebhookSecret, utcnow
from recovery.config import update_settings
from tests.channel_helpers import (  # noqa: F401  (engine_stub is a fixture)
    MESSAGES_URL, TWILIO_API, TWILIO_SID, TWILIO_TOKEN, add_twilio_ok, engine_stub, form_body, make_customer,
    new_sid, post_inbound, post_status, run_jobs,
)
from tests.conftest import delete_prefixed, make_settings
from tests.test_console_pages import PASSWORD, app, login, people, text  # noqa: F401  (fixtures)
from web.golive import TEST_KIND, moment

SETUP = "/console/configuracao"
ROTATE = "/console/configuracao/segredo-da-loja"
SEND_TEST = "/console/configuracao/mensagem-de-teste"
PHONE = "+5511999990001"
META_ENV = {"WHATSAPP_PROVIDER": "meta", "META_ACCESS_TOKEN": "EAAG-access-token-not-for-pages",
            "META_PHONE_NUMBER_ID": "106540352242922", "META_WABA_ID": "102290129340398",
            "META_APP_SECRET": "meta-app-secret-not-for-pages", "META_VERIFY_TOKEN": "verify-token-not-for-pages"}


def _runtime_with(instance_dir, database_url, redis_url, db, redis_client, **env):
    settings = make_settings(instance_dir, database_url, redis_url, **env)
    return Runtime(settings, database=db, redis_client=redis_client)


@pytest.fixture
def other_runtime(instance_dir, database_url, redis_url, db, redis_client):
    """Build an app over the test's database with other settings (Meta, Twilio credentials); cleaned up after."""
    made = []

    def build(**env):
        from app import create_app

        rt = _runtime_with(instance_dir, database_url, redis_url, db, redis_client, **env)
        set_runtime(rt)
        made.append(rt)
        return rt, create_app({"RUNTIME": rt, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()

    yield build
    set_runtime(None)
    for rt in made:
        delete_prefixed(redis_client, rt.settings.redis_key_prefix)


def new_secret_on(page: str) -> str | None:
    found = re.search(r'<code class="secret" id="new-secret">([0-9a-f]+)</code>', page)
    return found.group(1) if found else None


# --- who ----------------------------------------------------------------------------------------------------


def test_admins_and_brand_managers_configure_everyone_else_is_refused(app, people):
    for who, expected in (("dona", 200), ("marca", 200), ("filial", 403), ("apoio", 403), ("ana", 403)):
        client = app.test_client()
        login(client, who)
        assert client.get(SETUP).status_code == expected, who
        assert client.post(ROTATE, data={"confirmar": "on"}).status_code in ((303,) if expected == 200 else (403,))
        assert client.post(SEND_TEST, data={"phone": PHONE}).status_code in ((400,) if expected == 200 else (403,))
    anonymous = app.test_client()
    for method, url in (("GET", SETUP), ("POST", ROTATE), ("POST", SEND_TEST)):
        response = anonymous.open(url, method=method)
        assert response.status_code == 302 and "/entrar" in response.location, url


def test_the_menu_links_the_page_only_for_those_who_configure(app, people):
    for who, shown in (("dona", True), ("marca", True), ("filial", False), ("apoio", False)):
        client = app.test_client()
        login(client, who)
        page = text(client.get("/console/"))
        assert (f'href="{SETUP}">Configuração</a>' in page) is shown, who
        if "console.whatsapp_templates" in app.view_functions:
            assert ('href="/console/whatsapp">WhatsApp</a>' in page) is shown, who
        else:
            assert ">WhatsApp</a>" not in page  # the templates page is not there yet: no broken link


def test_every_form_carries_a_csrf_token_and_a_post_without_one_is_refused(runtime, session, people):
    from tests.test_console_pages import _strict_client

    client = _strict_client(runtime)
    page = text(client.get(SETUP))
    forms = re.findall(r'<form method="post".*?</form>', page, re.S)
    assert len(forms) == 3  # sign out, the test message, the rotation
    for form in forms:
        assert re.search(r'name="csrf_token" value="[^"]{20,}"', form)
    for url in (ROTATE, SEND_TEST):
        response = client.post(url, data={"confirmar": "on", "phone": PHONE})
        assert response.status_code == 400 and "A página expirou" in text(response)
    assert session.get(WebhookSecret, "store") is None


# --- WhatsApp: provider, URLs, last activity -----------------------------------------------------------------


def test_outbox_mode_twilio_urls_and_honest_explanation(client, people, settings):
    login(client, "dona")
    page = text(client.get(SETUP))
    base = settings.public_base_url
    assert f"{base}/webhooks/whatsapp</code>" in page and f"{base}/webhooks/whatsapp/status</code>" in page
    assert "A message comes in" in page and "Status callback URL" in page
    assert "Modo de teste (outbox)" in page and "nada é enviado ao WhatsApp" in page
    assert 'href="/simulator"' in page  # the outbox's messages are read there
    assert "+1 415-523-8886" in page and "sandbox da Twilio" in page
    assert "/webhooks/meta" not in page
    assert f"{base}/webhooks/store/carts</code>" in page and f"{base}/webhooks/store/orders</code>" in page
    assert "PUBLIC_BASE_URL" in page and "com https" in page  # 127.0.0.1 cannot be reached by Twilio
    for secret in settings.secret_values():
        assert secret not in page


def test_meta_provider_shows_its_callback_verify_token_place_and_fields(other_runtime, people):
    rt, client = other_runtime(**META_ENV, PUBLIC_BASE_URL="https://whatsapp.loja.example")
    login(client, "dona")
    page = text(client.get(SETUP))
    assert "Meta Cloud API" in page and "Modo de teste" not in page
    assert "https://whatsapp.loja.example/webhooks/meta</code>" in page
    assert "META_VERIFY_TOKEN" in page and "<code>messages</code>" in page and "<code>user_preferences</code>" in page
    assert "106540352242922" in page and "102290129340398" in page  # ids, not secrets
    assert "/webhooks/whatsapp<" not in page
    assert "com https" not in page  # a public https address: no warning
    for secret in rt.settings.secret_values():
        assert secret not in page
    assert client.get("/healthz").get_json()["whatsapp"]["provider"] == "meta"


def test_meta_without_credentials_is_outbox_mode_and_says_what_to_set(other_runtime, people):
    _, client = other_runtime(WHATSAPP_PROVIDER="meta")
    login(client, "dona")
    page = text(client.get(SETUP))
    assert "Modo de teste (outbox)" in page and "ainda sem credenciais" in page
    assert "META_ACCESS_TOKEN, META_PHONE_NUMBER_ID" in page and "/webhooks/meta</code>" in page


def test_live_twilio_mode_has_no_outbox_note(other_runtime, people):
    _, client = other_runtime(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=TWILIO_API)
    login(client, "dona")
    page = text(client.get(SETUP))
    assert "<strong>Twilio</strong>" in page and "nada é enviado" not in page and 'href="/simulator"' not in page
    assert TWILIO_TOKEN not in page


def test_last_inbound_status_and_send_are_read_from_redis_in_the_store_time_zone(client, people, runtime):
    login(client, "dona")
    page = text(client.get(SETUP))
    for block in ("last-inbound", "last-status"):
        assert re.search(rf'id="{block}"><span class="muted">nada recebido ainda', page), block
    assert re.search(r'id="last-send"><span class="muted">nenhum envio ainda', page)

    now = utcnow()
    inbound, status = now - timedelta(minutes=3), now - timedelta(hours=2, minutes=5)
    sent = datetime(2026, 3, 2, 15, 30, tzinfo=timezone.utc)
    runtime.redis.set(runtime.keys("last-inbound"), inbound.isoformat())
    runtime.redis.set(runtime.keys("last-status"), status.isoformat())
    runtime.redis.set(runtime.keys("last-send"), sent.isoformat())
    page = text(client.get(SETUP))
    assert re.search(r'id="last-inbound"><time [^>]*>há 3 minutos</time>', page)
    assert re.search(r'id="last-status"><time [^>]*>há 2 horas</time>', page)
    assert "(02/03/2026 12:30)" in page  # 15:30 UTC is 12:30 in São Paulo


def test_a_signed_webhook_shows_on_the_page_and_opens_the_window_for_the_test(client, people, session, settings,
                                                                             engine_stub):
    login(client, "dona")
    _, inbound = post_inbound(client, settings, phone=PHONE, body="oi")
    assert inbound.status_code == 200
    page = text(client.get(SETUP))
    assert re.search(r'id="last-inbound"><time [^>]*>agora mesmo</time>', page)
    assert re.search(r'id="last-status"><span class="muted">nada recebido ainda', page)
    assert client.post(SEND_TEST, data={"phone": "11999990001"}).status_code == 303
    assert len(_test_messages(session)) == 1
    assert post_status(client, settings, new_sid(), "delivered").status_code == 204
    assert re.search(r'id="last-status"><time [^>]*>agora mesmo</time>', text(client.get(SETUP)))


def test_an_unreadable_redis_value_counts_as_nothing(client, people, runtime):
    runtime.redis.set(runtime.keys("last-inbound"), "ontem")
    login(client, "dona")
    assert re.search(r'id="last-inbound"><span class="muted">nada recebido ainda', text(client.get(SETUP)))


def test_moment_phrases():
    now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/Sao_Paulo")
    assert moment(now - timedelta(seconds=10), now, tz)["ago"] == "agora mesmo"
    assert moment(now - timedelta(minutes=3), now, tz)["ago"] == "há 3 minutos"
    assert moment((now - timedelta(days=3)).isoformat(), now, tz) == {
        "ago": "há 3 dias", "exact": "27/02/2026 09:00", "iso": (now - timedelta(days=3)).isoformat()}
    assert moment(None, now, tz) is None and moment("nada", now, tz) is None


# --- the test message ------------------------------------------------------------------------------------------


def _test_messages(session) -> list[Message]:
    session.expire_all()
    return list(session.scalars(select(Message).where(Message.kind == TEST_KIND)))


def test_test_message_inside_the_window_is_queued_and_lands_in_the_outbox(client, people, session, runtime):
    customer = make_customer(session, PHONE)
    login(client, "dona")
    response = client.post(SEND_TEST, data={"phone": "(11) 99999-0001"})
    assert response.status_code == 303
    [message] = _test_messages(session)
    assert response.location.endswith(f"{SETUP}?teste={message.id}#teste")
    assert message.customer_id == customer.id and message.status is MessageStatus.PENDING
    assert message.automated is False and "Mensagem de teste da Loja Demo" in message.body
    page = text(client.get(response.location))
    assert 'id="test-result"' in page and "+55 11 9****-0001" in page and "Na fila" in page
    assert "aparece no <a href=\"/simulator\">simulador</a>" in page

    run_jobs(runtime)
    [message] = _test_messages(session)
    assert message.status is MessageStatus.OUTBOX
    page = text(client.get(response.location))
    assert "Simulador (não enviada)" in page
    assert re.search(r'id="last-send"><time [^>]*>agora mesmo</time>', page)


def test_test_message_with_twilio_goes_to_the_provider(other_runtime, people, session):
    rt, client = other_runtime(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=TWILIO_API)
    make_customer(session, PHONE)
    login(client, "dona")
    with responses.RequestsMock() as rsps:
        add_twilio_ok(rsps)
        response = client.post(SEND_TEST, data={"phone": "+55 11 99999-0001"})
        assert response.status_code == 303
        run_jobs(rt)
        [call] = rsps.calls
        assert call.request.url == MESSAGES_URL
        sent = form_body(call)
        assert sent["To"] == f"whatsapp:{PHONE}" and "Mensagem de teste" in sent["Body"] and "ContentSid" not in sent
    [message] = _test_messages(session)
    assert message.status is MessageStatus.QUEUED and message.provider_sid
    page = text(client.get(response.location))
    assert "enviada ao Twilio" in page and "Confira o seu celular" in page


@pytest.mark.parametrize("last_inbound", [None, timedelta(hours=25)])
def test_outside_the_window_the_test_is_refused_with_the_reason_and_nothing_queued(client, people, session,
                                                                                   last_inbound):
    make_customer(session, PHONE, last_inbound_at=None if last_inbound is None else utcnow() - last_inbound)
    login(client, "dona")
    response = client.post(SEND_TEST, data={"phone": "11 99999-0001"})
    assert response.status_code == 400
    page = text(response)
    error = re.search(r'<div class="error" id="phone-error">([^<]+)</div>', page).group(1)
    assert "últimas 24 horas" in html.unescape(error) and "mande um oi" in error and "tente de novo" in error
    assert 'id="phone" name="phone" type="tel" value="11 99999-0001" aria-invalid="true"' in page
    assert _test_messages(session) == []


def test_an_unknown_phone_is_refused_without_creating_a_customer(client, people, session):
    login(client, "dona")
    response = client.post(SEND_TEST, data={"phone": "+55 21 98888-7777"})
    assert response.status_code == 400 and "últimas 24 horas" in text(response)
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


@pytest.mark.parametrize("raw, expected", [
    ("", "informe o número do seu celular, com DDD"),
    ("   ", "informe o número do seu celular, com DDD"),
    ("12345", "número inválido"),
    ("abc", "número inválido"),
    ("9" * 60, "número inválido"),
    ("+55 00 99999-0001", "número inválido"),  # no such area code
])
def test_an_invalid_phone_is_a_field_error_in_portuguese(client, people, session, raw, expected):
    login(client, "dona")
    response = client.post(SEND_TEST, data={"phone": raw})
    assert response.status_code == 400
    assert re.search(rf'<div class="error" id="phone-error">{expected}', text(response))
    assert _test_messages(session) == []


def test_a_confirmation_only_names_test_messages(client, people, session):
    customer = make_customer(session, PHONE)
    other = Message(customer_id=customer.id, direction=Direction.OUTBOUND, kind="bot", body="Oi", automated=False,
                    status=MessageStatus.OUTBOX)
    session.add(other)
    session.commit()
    login(client, "dona")
    for value in (str(other.id), "999999", "abc", "1" * 40, "-1", "²"):
        response = client.get(SETUP, query_string={"teste": value})
        assert response.status_code == 200 and 'id="test-result"' not in text(response), value


# --- the shop's secret ------------------------------------------------------------------------------------------


def test_rotation_needs_the_confirmation(client, people, session):
    login(client, "dona")
    response = client.post(ROTATE, data={})
    assert response.status_code == 400
    assert 'id="confirmar-error">marque a confirmação' in text(response)
    assert session.get(WebhookSecret, "store") is None


def test_rotation_shows_the_secret_once_then_only_its_hint(client, people, session, settings, caplog):
    login(client, "dona")
    with caplog.at_level(logging.DEBUG):
        response = client.post(ROTATE, data={"confirmar": "on"})
        assert response.status_code == 303 and response.location.endswith(f"{SETUP}#segredo")
        first = text(client.get(SETUP))
    secret = new_secret_on(first)
    assert secret is not None and len(secret) == 64 and secret != settings.store_webhook_secret
    assert "não aparece de novo" in first and "continua valendo por 24 horas" in first
    assert f"…{secret[-4:]}</code>" in first and "por Dona" in first and "ainda aceito até" in first

    again = text(client.get(SETUP))
    assert new_secret_on(again) is None and secret not in again
    assert f'id="secret-hint">…{secret[-4:]}</code>' in again

    row = session.get(WebhookSecret, "store")
    assert secret not in row.secret_encrypted and secret_box.open_(row.secret_encrypted, settings.secret_key) == secret
    assert secret_box.open_(row.previous_encrypted, settings.secret_key) == settings.store_webhook_secret
    assert row.hint == secret[-4:] and row.rotated_by_id == people["dona"].id
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert all(settings.store_webhook_secret not in record.getMessage() for record in caplog.records)


def test_the_secret_is_shown_only_to_who_generated_it(app, people):
    dona, marca = app.test_client(), app.test_client()
    login(dona, "dona")
    login(marca, "marca")
    assert dona.post(ROTATE, data={"confirmar": "on"}).status_code == 303
    assert new_secret_on(text(marca.get(SETUP))) is None
    assert new_secret_on(text(dona.get(SETUP))) is not None


def test_without_redis_the_rotation_answer_itself_shows_the_secret(client, people, runtime, monkeypatch):
    login(client, "dona")

    def down(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(runtime.redis, "set", down)
    response = client.post(ROTATE, data={"confirmar": "on"})
    assert response.status_code == 200 and new_secret_on(text(response)) is not None


def test_events_signed_with_the_new_and_the_previous_secret_are_accepted(client, people, session, settings):
    login(client, "dona")
    client.post(ROTATE, data={"confirmar": "on"})
    secret = new_secret_on(text(client.get(SETUP)))
    page = text(client.get(SETUP))
    sample = json.loads(html.unescape(re.search(r'<pre id="sample-payload">(.*?)</pre>', page, re.S).group(1)))
    body = json.dumps(sample).encode()  # as the page's Python snippet does
    for key, expected in ((secret, 200), (settings.store_webhook_secret, 200), ("forjado", 401)):
        response = client.post("/webhooks/store/carts", data=body, headers={
            "Content-Type": "application/json", "X-Store-Signature": hmac_sha256_hex(key, body)})
        assert response.status_code == expected, key
    assert session.scalar(select(func.count()).select_from(StoreEvent)) == 1  # the second was a duplicate
    page = text(client.get(SETUP))
    assert re.search(r'id="last-event"><code>cart.abandoned</code> \(c-123\), <time [^>]*>agora mesmo', page)


def test_the_curl_snippet_signs_exactly_like_the_webhook_checks(client, people):
    login(client, "dona")
    page = html.unescape(text(client.get(SETUP)))
    snippet = re.search(r'<pre id="curl-snippet">(.*?)</pre>', page, re.S).group(1)
    body = re.search(r"CORPO='([^']+)'", snippet).group(1)
    assert json.loads(body)["event"] == "cart.abandoned"
    assert "openssl dgst -sha256 -hmac \"$SEGREDO\" -r | cut -d' ' -f1" in snippet
    assert 'X-Store-Signature: $ASSINATURA' in snippet and '--data-binary "$CORPO"' in snippet
    if shutil.which("openssl") and shutil.which("sh"):
        script = snippet.split("\ncurl")[0].replace("cole aqui o segredo da loja", "segredo-de-teste")
        signed = subprocess.run(["sh", "-c", script + '\nprintf %s "$ASSINATURA"'], capture_output=True, text=True,
                                check=True).stdout
        assert signed == hmac_sha256_hex("segredo-de-teste", body.encode())


def test_a_changed_secret_key_loses_the_rotated_secret_and_says_so(client, people, session, settings):
    from web.store_webhooks import STORE_SECRET

    session.add(WebhookSecret(name=STORE_SECRET, secret_encrypted=secret_box.seal("antigo", "outra-chave"),
                              hint="tigo", rotated_at=utcnow()))
    session.commit()
    login(client, "dona")
    page = text(client.get(SETUP))
    assert "a SECRET_KEY do servidor mudou" in page and "…tigo" not in page


# --- horário e fuso ----------------------------------------------------------------------------------------------


def test_time_zone_quiet_hours_and_opening_hours_with_where_to_change_them(client, people, session):
    update_settings(session, {"quiet_start": "22:00", "quiet_end": "08:30"})
    session.commit()
    login(client, "dona")
    page = text(client.get(SETUP))
    assert "<code>America/Sao_Paulo</code>" in page and "STORE_TIMEZONE" in page
    assert "nenhuma mensagem automática das 22:00 às 08:30" in page and 'href="/console/recuperacao"' in page
    assert "segunda a sábado, das 9h às 21h" in page and 'href="/gestao/configuracoes#opening-hours"' in page
    update_settings(session, {"quiet_start": "22:00", "quiet_end": "22:00"})
    session.commit()
    assert re.search(r'id="quiet-hours">desligado', text(client.get(SETUP)))


# --- core.secret_box ----------------------------------------------------------------------------------------------


def test_secret_box_round_trip_and_a_changed_key():
    token = secret_box.seal("segredo ção", "chave-1")
    assert "segredo" not in token and token.isascii()
    assert secret_box.open_(token, "chave-1") == "segredo ção"
    assert secret_box.seal("segredo ção", "chave-1") != token  # random IV each time
    assert secret_box.open_(token, "chave-2") is None
    for junk in (None, "", "não é um token", "gAAAA" + "x" * 40):
        assert secret_box.open_(junk, "chave-1") is None
    with pytest.raises(ValueError):
        secret_box.seal("x", "")
