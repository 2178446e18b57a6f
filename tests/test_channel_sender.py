"""channel.sender: queue_message + deliver against Twilio's Messages API (intercepted with `responses`)."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from datetime import timedelta

import pytest
import redis as redis_lib
import requests
import responses
import urllib3
from rq import Retry

from channel import sender
from channel.ratelimit import RateLimiter
from channel.sender import RETRY_INTERVALS, RetryableSendError, deliver, queue_message
from channel.transport import make_transport
from channel.twilio import TwilioTransport
from core.runtime import Runtime, set_runtime
from channel.templates import placeholders_in
from models import Message, MessageStatus, TemplateStatus, WhatsAppTemplate
from tests.channel_helpers import (  # noqa: F401 - fixtures
    MESSAGES_URL, PHONE, SENDER, TWILIO_API, TWILIO_SID, TWILIO_TOKEN, customer_by_phone, engine_stub,
    form_body, lose_queued_job, make_customer, new_sid, now_utc, outbound_messages, queued_jobs, run_jobs,
    scheduled_jobs, twilio_created, twilio_error, twilio_runtime,
)
from tests.conftest import delete_prefixed, make_settings


@pytest.fixture
def api():
    """Twilio's API; any request to a URL not registered by the test fails the send (ConnectionError)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def ok(api, sid=None, status="queued"):
    sid = sid or new_sid()
    api.add(responses.POST, MESSAGES_URL, json=twilio_created(sid, status), status=201)
    return sid


def fail(api, code, status=400, message="error"):
    api.add(responses.POST, MESSAGES_URL, json=twilio_error(code, message, status), status=status)


def send(session, rt, message_id, **kwargs):
    return deliver(session, rt, TwilioTransport(rt.settings), RateLimiter(rt.redis), message_id, **kwargs)


def queue(session, rt, customer, body="Oi! Posso ajudar?", *, automated=False, kind="bot", **kwargs):
    message = queue_message(session, rt, customer, kind=kind, body=body, automated=automated, now=now_utc(), **kwargs)
    session.commit()
    return message


def reload(session, message_id) -> Message:
    session.expire_all()
    return session.get(Message, message_id)


# --- the request Twilio receives ---------------------------------------------------------------------

def test_free_form_reply_is_posted_with_the_contract_fields(session, twilio_runtime, api):
    customer = make_customer(session)
    sid = ok(api)
    message = queue(session, twilio_runtime, customer, body="Temos sim! 👟 Tamanhos 38 a 44.")
    assert send(session, twilio_runtime, message.id).outcome == "sent"

    [call] = api.calls
    assert call.request.method == "POST" and call.request.url == MESSAGES_URL
    auth = base64.b64decode(call.request.headers["Authorization"].split()[1]).decode()
    assert auth == f"{TWILIO_SID}:{TWILIO_TOKEN}"
    form = form_body(call)
    assert form == {
        "To": "whatsapp:+5511999990001",
        "From": SENDER,
        "Body": "Temos sim! 👟 Tamanhos 38 a 44.",
        "StatusCallback": f"{twilio_runtime.settings.public_base_url}/webhooks/whatsapp/status",
    }
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.QUEUED
    assert stored.provider_sid == sid
    assert stored.sent_at is not None and stored.error_reason is None and stored.error_code is None


def test_long_multiline_body_is_sent_verbatim(session, twilio_runtime, api):
    customer = make_customer(session)
    ok(api)
    body = "Linha 1\nLinha 2 & <3 ção\n" + "x" * 1500
    message = queue(session, twilio_runtime, customer, body=body)
    send(session, twilio_runtime, message.id)
    assert form_body(api.calls[0])["Body"] == body


@pytest.mark.parametrize("provider_status, stored", [("accepted", MessageStatus.ACCEPTED), ("queued", MessageStatus.QUEUED),
                                                     ("sent", MessageStatus.SENT), ("delivered", MessageStatus.QUEUED),
                                                     ("weird", MessageStatus.QUEUED)])
def test_initial_provider_status_is_stored(session, twilio_runtime, api, provider_status, stored):
    customer = make_customer(session)
    ok(api, status=provider_status)
    message = queue(session, twilio_runtime, customer)
    send(session, twilio_runtime, message.id)
    assert reload(session, message.id).status is stored


def test_delivery_job_is_queued_after_commit_with_a_retry_policy_and_sends(session, twilio_runtime, api, engine_stub):
    customer = make_customer(session)
    ok(api)
    reply = queue_message(session, twilio_runtime, customer, kind="bot", body="oi", automated=False, now=now_utc())
    assert queued_jobs(twilio_runtime) == []  # nothing before the commit
    session.commit()
    [job] = queued_jobs(twilio_runtime)
    assert job.func_name == "channel.jobs.deliver" and job.args == (reply.id,)
    assert job.origin.endswith("-high")  # live-chat replies jump the queue
    assert job.retries_left == len(RETRY_INTERVALS) and job.retry_intervals == RETRY_INTERVALS
    assert job.timeout == 60
    run_jobs(twilio_runtime)
    assert len(api.calls) == 1
    assert reload(session, reply.id).status is MessageStatus.QUEUED


def test_automated_message_goes_to_the_default_queue(session, twilio_runtime, api):
    customer = make_customer(session)
    queue(session, twilio_runtime, customer, automated=True, kind="recovery")
    [job] = queued_jobs(twilio_runtime)
    assert job.origin.endswith("-default")


def test_a_delivery_job_lost_after_rq_popped_it_is_requeued_by_the_stale_sweep_and_sent_once(
        session, twilio_runtime, api):
    from channel.jobs import sweep_stale_pending

    customer = make_customer(session)
    ok(api)
    reply = queue(session, twilio_runtime, customer)
    lose_queued_job(twilio_runtime, "channel.jobs.deliver")  # seen in the killed-worker fault test
    assert sweep_stale_pending() == 0  # pending for less than 15 minutes: maybe just slow, or between retries
    assert sweep_stale_pending(stale_after=timedelta(0)) == 1
    run_jobs(twilio_runtime)
    assert len(api.calls) == 1 and reload(session, reply.id).status is MessageStatus.QUEUED
    assert sweep_stale_pending(stale_after=timedelta(0)) == 0
    run_jobs(twilio_runtime)
    assert len(api.calls) == 1


def test_outbox_mode_never_calls_the_provider(session, runtime, api):
    customer = make_customer(session)
    message = queue(session, runtime, customer)
    result = deliver(session, runtime, make_transport(runtime.settings), RateLimiter(runtime.redis), message.id)
    assert result.outcome == "outbox"
    assert len(api.calls) == 0
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.OUTBOX and stored.sent_at is not None


# --- 24-hour window and templates --------------------------------------------------------------------

def test_free_form_outside_the_window_is_blocked_without_calling_twilio(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=now_utc() - timedelta(hours=25))
    message = queue(session, twilio_runtime, customer, body="Ainda quer o tênis?", automated=True, kind="recovery")
    assert message.status is MessageStatus.BLOCKED
    assert message.error_reason == "outside_24h_window_no_template"
    assert queued_jobs(twilio_runtime) == []
    assert send(session, twilio_runtime, message.id).outcome == "skipped"
    assert len(api.calls) == 0


def test_never_messaged_customer_is_outside_the_window(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=None)
    message = queue(session, twilio_runtime, customer)
    assert message.status is MessageStatus.BLOCKED and message.error_reason == "outside_24h_window_no_template"


def _template(session, keys=("1",), status=TemplateStatus.APPROVED, provider="twilio"):
    body = "Oi " + ", ".join(f"{{{{{k}}}}}" for k in keys) + "! Seu carrinho está esperando."
    template = WhatsAppTemplate(provider=provider, external_id="HX" + "a" * 32, name="carrinho_abandonado",
                                language="pt_BR", category="marketing", status=status, body=body,
                                placeholders=placeholders_in(None, body, [], provider=provider), buttons=[])
    session.add(template)
    session.commit()
    return template


def _mapped(template, *names):
    return {"template": template, "template_mapping": {str(i): name for i, name in enumerate(names, 1)}}


def test_outside_the_window_the_approved_template_is_sent_without_body(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=now_utc() - timedelta(hours=25))
    template = _template(session)
    ok(api)
    message = queue(session, twilio_runtime, customer, body="Oi Ana, seu carrinho...", automated=True, kind="recovery",
                    **_mapped(template, "nome"), template_sources={"nome": "Ana", "ignored": "x"})
    assert message.status is MessageStatus.PENDING and message.sent_as == "template"
    assert message.body == "Oi Ana! Seu carrinho está esperando."  # what the shopper reads, in the history
    assert send(session, twilio_runtime, message.id).outcome == "sent"
    form = form_body(api.calls[0])
    assert "Body" not in form
    assert form["ContentSid"] == template.external_id
    assert json.loads(form["ContentVariables"]) == {"1": "Ana"}
    assert form["To"] == "whatsapp:" + PHONE and form["From"] == SENDER
    assert form["StatusCallback"].endswith("/webhooks/whatsapp/status")


def test_template_variables_follow_the_mapping_and_keep_accents(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=None)
    template = _template(session, keys=("1", "2", "3"))
    ok(api)
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery",
                    **_mapped(template, "nome", "cupom", "link"),
                    template_sources={"link": "https://loja.example/c?x=1&y=2", "nome": "João", "cupom": "VOLTA10"})
    send(session, twilio_runtime, message.id)
    variables = json.loads(form_body(api.calls[0])["ContentVariables"])
    assert variables == {"1": "João", "2": "VOLTA10", "3": "https://loja.example/c?x=1&y=2"}


def test_template_values_are_made_one_line_as_whatsapp_requires(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=None)
    template = _template(session)
    ok(api)
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery", **_mapped(template, "itens"),
                    template_sources={"itens": "1x Tênis\n\t2x Meia      Branca "})
    send(session, twilio_runtime, message.id)
    assert json.loads(form_body(api.calls[0])["ContentVariables"]) == {"1": "1x Tênis 2x Meia Branca"}


def test_template_with_a_missing_value_is_blocked(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=None)
    template = _template(session, keys=("1", "2"))
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery",
                    **_mapped(template, "nome", "cupom"), template_sources={"nome": "Ana"})
    assert message.status is MessageStatus.BLOCKED
    assert message.error_reason.startswith("template_variables_missing") and "{{2}}" in message.error_reason
    assert queued_jobs(twilio_runtime) == [] and len(api.calls) == 0


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t"])
def test_template_value_that_is_none_or_blank_blocks_instead_of_sending_it(session, twilio_runtime, api, value):
    customer = make_customer(session, last_inbound_at=None)
    template = _template(session, keys=("1", "2"))
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery",
                    **_mapped(template, "nome", "cupom"), template_sources={"nome": "Ana", "cupom": value})
    assert message.status is MessageStatus.BLOCKED
    assert message.error_reason.startswith("template_variables_missing")


def test_a_template_paused_after_it_was_queued_is_not_sent(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=None)
    template = _template(session)
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery", **_mapped(template, "nome"),
                    template_sources={"nome": "Ana"})
    template.status = TemplateStatus.PAUSED
    session.commit()
    assert send(session, twilio_runtime, message.id).outcome == "blocked"
    assert reload(session, message.id).error_reason == "template_not_approved" and len(api.calls) == 0


def test_a_template_of_another_provider_is_not_sent(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=None)
    template = _template(session, provider="meta")
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery", **_mapped(template, "nome"),
                    template_sources={"nome": "Ana"})
    assert send(session, twilio_runtime, message.id).outcome == "blocked"
    assert reload(session, message.id).error_reason == "template_not_approved" and len(api.calls) == 0


def test_inside_the_window_free_form_is_used_even_when_a_template_exists(session, twilio_runtime, api):
    customer = make_customer(session)
    template = _template(session)
    ok(api)
    message = queue(session, twilio_runtime, customer, body="Oi Ana!", automated=True, kind="recovery",
                    **_mapped(template, "nome"), template_sources={"nome": "Ana"})
    send(session, twilio_runtime, message.id)
    form = form_body(api.calls[0])
    assert form["Body"] == "Oi Ana!" and "ContentSid" not in form
    assert reload(session, message.id).sent_as == "text"


def test_window_that_closes_before_delivery_blocks_the_free_form_message(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=now_utc() - timedelta(hours=23, minutes=59))
    message = queue(session, twilio_runtime, customer)
    assert message.status is MessageStatus.PENDING
    result = send(session, twilio_runtime, message.id, now=now_utc() + timedelta(minutes=5))
    assert result.outcome == "blocked"
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.BLOCKED and stored.error_reason == "outside_24h_window_no_template"
    assert len(api.calls) == 0


def test_window_that_closes_before_delivery_sends_the_fallback_template(session, twilio_runtime, api):
    customer = make_customer(session, last_inbound_at=now_utc() - timedelta(hours=23, minutes=59))
    template = _template(session)
    ok(api)
    message = queue(session, twilio_runtime, customer, body="Oi Ana, texto livre", automated=True, kind="recovery",
                    **_mapped(template, "nome"), template_sources={"nome": "Ana"})
    assert message.sent_as == "text"
    assert send(session, twilio_runtime, message.id, now=now_utc() + timedelta(minutes=5)).outcome == "sent"
    form = form_body(api.calls[0])
    assert form["ContentSid"] == template.external_id and "Body" not in form
    stored = reload(session, message.id)
    assert stored.sent_as == "template" and stored.body == "Oi Ana! Seu carrinho está esperando."


# --- provider errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status, code", [(429, 20429), (500, 20500), (503, 20503)])
def test_throttling_and_server_errors_put_the_message_back_and_raise_for_retry(session, twilio_runtime, api, status, code):
    customer = make_customer(session)
    fail(api, code, status)
    message = queue(session, twilio_runtime, customer)
    with pytest.raises(RetryableSendError):
        send(session, twilio_runtime, message.id)
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.PENDING
    assert stored.provider_sid is None and stored.error_code == str(code)
    assert len(api.calls) == 1
    # The retry succeeds once Twilio recovers.
    api.replace(responses.POST, MESSAGES_URL, json=twilio_created(), status=201)
    assert send(session, twilio_runtime, message.id).outcome == "sent"
    assert reload(session, message.id).status is MessageStatus.QUEUED and len(api.calls) == 2


def test_non_json_gateway_error_is_retryable(session, twilio_runtime, api):
    customer = make_customer(session)
    api.add(responses.POST, MESSAGES_URL, body="<html>502 Bad Gateway</html>", status=502, content_type="text/html")
    message = queue(session, twilio_runtime, customer)
    with pytest.raises(RetryableSendError):
        send(session, twilio_runtime, message.id)
    assert reload(session, message.id).status is MessageStatus.PENDING


def test_refused_connection_is_retryable(session, twilio_runtime, api):
    customer = make_customer(session)
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, MESSAGES_URL, urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    api.add(responses.POST, MESSAGES_URL, body=refused)
    message = queue(session, twilio_runtime, customer)
    with pytest.raises(RetryableSendError):
        send(session, twilio_runtime, message.id)
    assert reload(session, message.id).status is MessageStatus.PENDING


def test_connect_timeout_is_retryable(session, twilio_runtime, api):
    customer = make_customer(session)
    api.add(responses.POST, MESSAGES_URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    message = queue(session, twilio_runtime, customer)
    with pytest.raises(RetryableSendError):
        send(session, twilio_runtime, message.id)
    assert reload(session, message.id).status is MessageStatus.PENDING


def test_retryable_error_in_the_job_schedules_an_rq_retry(session, twilio_runtime, api, engine_stub):
    customer = make_customer(session)
    fail(api, 20429, 429)
    message = queue(session, twilio_runtime, customer)
    [job] = queued_jobs(twilio_runtime)
    run_jobs(twilio_runtime)
    assert len(api.calls) == 1
    assert reload(session, message.id).status is MessageStatus.PENDING
    [retry] = scheduled_jobs(twilio_runtime)
    assert retry.id == job.id
    assert retry.retries_left == len(RETRY_INTERVALS) - 1


@pytest.mark.parametrize("code", [63016, 63024, 21211, 21614])
def test_permanent_errors_fail_the_message_once_without_retry(session, twilio_runtime, api, code):
    customer = make_customer(session)
    fail(api, code, 400, message="Permanent failure")
    message = queue(session, twilio_runtime, customer)
    assert send(session, twilio_runtime, message.id).outcome == "failed"
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.FAILED
    assert stored.error_code == str(code)
    assert stored.error_reason
    assert send(session, twilio_runtime, message.id).outcome == "skipped"
    assert len(api.calls) == 1
    assert customer_by_phone(session, PHONE).opted_out_at is None


def test_permanent_error_in_the_job_is_not_retried(session, twilio_runtime, api, engine_stub):
    customer = make_customer(session)
    fail(api, 63024, 400)
    message = queue(session, twilio_runtime, customer)
    run_jobs(twilio_runtime, with_scheduler=True)
    assert len(api.calls) == 1
    assert scheduled_jobs(twilio_runtime) == [] and queued_jobs(twilio_runtime) == []
    assert reload(session, message.id).status is MessageStatus.FAILED


def test_21610_marks_the_customer_opted_out(session, twilio_runtime, api):
    customer = make_customer(session)
    fail(api, 21610, 400, message="Attempt to send to unsubscribed recipient")
    message = queue(session, twilio_runtime, customer, automated=True, kind="recovery")
    assert send(session, twilio_runtime, message.id).outcome == "failed"
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.FAILED and stored.error_code == "21610"
    assert customer_by_phone(session, PHONE).opted_out_at is not None
    later = queue(session, twilio_runtime, customer_by_phone(session, PHONE), automated=True, kind="recovery")
    assert later.status is MessageStatus.BLOCKED and later.error_reason == "opted_out"
    assert len(api.calls) == 1


def test_read_timeout_leaves_the_message_unknown_and_never_resends(session, twilio_runtime, api):
    customer = make_customer(session)
    api.add(responses.POST, MESSAGES_URL, body=requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)"))
    message = queue(session, twilio_runtime, customer)
    assert send(session, twilio_runtime, message.id).outcome == "unknown"
    stored = reload(session, message.id)
    assert stored.status is MessageStatus.UNKNOWN and stored.provider_sid is None
    api.replace(responses.POST, MESSAGES_URL, json=twilio_created(), status=201)
    assert send(session, twilio_runtime, message.id).outcome == "skipped"
    assert len(api.calls) == 1
    assert reload(session, message.id).status is MessageStatus.UNKNOWN


def test_read_timeout_in_the_job_is_not_retried(session, twilio_runtime, api, engine_stub):
    customer = make_customer(session)
    api.add(responses.POST, MESSAGES_URL, body=requests.exceptions.ReadTimeout("Read timed out."))
    api.add(responses.POST, MESSAGES_URL, json=twilio_created(), status=201)
    message = queue(session, twilio_runtime, customer)
    run_jobs(twilio_runtime, with_scheduler=True)
    assert len(api.calls) == 1
    assert scheduled_jobs(twilio_runtime) == []
    assert reload(session, message.id).status is MessageStatus.UNKNOWN


@pytest.mark.parametrize("exc", [
    requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(0 bytes read)"),
    requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))),
    requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out. (read timeout=10)"),
])
def test_errors_after_the_request_was_written_are_never_retried(session, twilio_runtime, api, exc):
    customer = make_customer(session)
    api.add(responses.POST, MESSAGES_URL, body=exc)
    api.add(responses.POST, MESSAGES_URL, json=twilio_created(), status=201)
    message = queue(session, twilio_runtime, customer)
    assert send(session, twilio_runtime, message.id).outcome == "unknown"
    assert send(session, twilio_runtime, message.id).outcome == "skipped"
    assert len(api.calls) == 1
    assert reload(session, message.id).status is MessageStatus.UNKNOWN


def test_connection_aborted_after_sending_is_not_resent(session, twilio_runtime, api):
    """Regression: every ConnectionError but 'Read timed out' used to be retried (a possible duplicate)."""
    customer = make_customer(session)
    aborted = requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection without response")))
    api.add(responses.POST, MESSAGES_URL, body=aborted)
    api.add(responses.POST, MESSAGES_URL, json=twilio_created(), status=201)
    message = queue(session, twilio_runtime, customer)
    try:
        send(session, twilio_runtime, message.id)
    except RetryableSendError:
        send(session, twilio_runtime, message.id)  # what the job's Retry does 10 s later
    assert len(api.calls) == 1, "the message was posted to Twilio twice"
    assert reload(session, message.id).status is MessageStatus.UNKNOWN


def test_message_is_not_left_pending_after_the_last_retry(session, twilio_runtime, api, engine_stub):
    """Regression: after RQ's last retry the message stayed PENDING 'retrying' forever."""
    customer = make_customer(session)
    api.add(responses.POST, MESSAGES_URL, json=twilio_error(20500, "boom", 500), status=500)
    message = queue(session, twilio_runtime, customer)
    [job] = queued_jobs(twilio_runtime)
    job.retries_left = 0  # as on the last of its 5 retries
    job.save()
    run_jobs(twilio_runtime, with_scheduler=True)
    assert len(api.calls) == 1
    assert scheduled_jobs(twilio_runtime) == []  # RQ gave up
    stored = reload(session, message.id)
    assert stored.status is not MessageStatus.PENDING, f"stuck as {stored.status}: {stored.error_reason}"


# --- at most once ------------------------------------------------------------------------------------

def test_deliver_twice_posts_once(session, twilio_runtime, api):
    customer = make_customer(session)
    ok(api)
    message = queue(session, twilio_runtime, customer)
    assert send(session, twilio_runtime, message.id).outcome == "sent"
    assert send(session, twilio_runtime, message.id).outcome == "skipped"
    assert len(api.calls) == 1


def test_delivery_job_enqueued_twice_posts_once(session, twilio_runtime, api, engine_stub):
    from core.queues import queue as rq_queue

    customer = make_customer(session)
    ok(api)
    message = queue(session, twilio_runtime, customer)
    rq_queue(twilio_runtime, "high").enqueue("channel.jobs.deliver", message.id)  # an RQ redelivery
    run_jobs(twilio_runtime)
    assert len(api.calls) == 1


def test_deliver_of_a_missing_message_is_skipped(session, twilio_runtime, api):
    assert send(session, twilio_runtime, 987654).outcome == "skipped"
    assert len(api.calls) == 0


def test_same_idempotency_key_gives_one_message(session, twilio_runtime, api):
    customer = make_customer(session)
    first = queue(session, twilio_runtime, customer, automated=True, kind="recovery", idempotency_key="recovery-42")
    second = queue(session, twilio_runtime, customer, body="outra coisa", automated=True, kind="recovery",
                   idempotency_key="recovery-42")
    assert second.id == first.id
    assert len(outbound_messages(session, customer.id)) == 1
    assert len(queued_jobs(twilio_runtime)) == 1


def test_same_idempotency_key_in_one_transaction_gives_one_message(session, twilio_runtime):
    customer = make_customer(session)
    a = queue_message(session, twilio_runtime, customer, kind="recovery", body="a", automated=True, now=now_utc(),
                      idempotency_key="recovery-7")
    b = queue_message(session, twilio_runtime, customer, kind="recovery", body="b", automated=True, now=now_utc(),
                      idempotency_key="recovery-7")
    session.commit()
    assert a.id == b.id
    assert len(outbound_messages(session, customer.id)) == 1
    assert len(queued_jobs(twilio_runtime)) == 1


def test_rolled_back_message_is_never_enqueued(session, twilio_runtime):
    """Regression: the after_commit listener outlived a rollback and fired on the session's next commit."""
    from models import Store

    customer = make_customer(session)
    queue_message(session, twilio_runtime, customer, kind="bot", body="x", automated=False, now=now_utc())
    session.rollback()
    assert queued_jobs(twilio_runtime) == []
    session.add(Store(code="LJ1", name="Loja 1"))  # the same session goes on with other work
    session.commit()
    assert queued_jobs(twilio_runtime) == []


@pytest.fixture
def committed_twilio_runtime(instance_dir, database_url, redis_url, committed_db):
    settings = make_settings(instance_dir, database_url, redis_url, TWILIO_ACCOUNT_SID=TWILIO_SID,
                             TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=TWILIO_API)
    client = redis_lib.Redis.from_url(redis_url)
    rt = Runtime(settings, database=committed_db, redis_client=client)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    delete_prefixed(client, settings.redis_key_prefix)


def test_concurrent_deliveries_of_one_message_post_once(committed_twilio_runtime, api):
    rt = committed_twilio_runtime
    with rt.db.session() as s:
        customer = make_customer(s)
        message = queue(s, rt, customer)
    ok(api)
    barrier = threading.Barrier(5)
    outcomes = []

    def worker():
        with rt.db.session() as s:
            barrier.wait()
            outcomes.append(send(s, rt, message.id).outcome)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["sent"] + ["skipped"] * 4
    assert len(api.calls) == 1


def test_retry_policy_object_is_rq_retry():
    policy = sender.retry_policy()
    assert isinstance(policy, Retry) and policy.max == len(RETRY_INTERVALS) and policy.intervals == RETRY_INTERVALS
