"""Helpers shared by the WhatsApp channel tests (tests/test_channel_*.py).

Signing Twilio webhooks, building a runtime with Twilio credentials whose HTTP calls the `responses`
library intercepts, running RQ jobs in-process, and a stand-in for the conversation engine.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping
from urllib.parse import parse_qs

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from tests.conftest import installed_runtime, make_settings
from core.queues import queues_for
from core.runtime import Runtime
from models import Customer, Direction, Message

INBOUND_PATH = "/webhooks/whatsapp"
STATUS_PATH = "/webhooks/whatsapp/status"

TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "x" * 32
TWILIO_API = "https://twilio.test"
MESSAGES_URL = f"{TWILIO_API}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
SENDER = "whatsapp:+14155238886"

PHONE = "+5511999990001"
PHONE_2 = "+5521988887777"


def new_sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --- Twilio webhook signing ------------------------------------------------------------------------

def signature(settings, path: str, form: Mapping[str, str], *, url: str | None = None,
              token: str | None = None) -> str:
    validator = RequestValidator(token if token is not None else settings.webhook_auth_token)
    return validator.compute_signature(url if url is not None else settings.public_base_url + path, dict(form))


def post_signed(client, settings, path: str, form: Mapping[str, str], **sign_kwargs):
    return client.post(path, data=dict(form), headers={"X-Twilio-Signature": signature(settings, path, form, **sign_kwargs)})


def inbound_form(*, sid: str | None = None, phone: str = PHONE, body: str = "Oi", **extra: str) -> dict[str, str]:
    form = {
        "MessageSid": sid or new_sid(),
        "SmsMessageSid": sid or "",
        "AccountSid": TWILIO_SID,
        "From": f"whatsapp:{phone}",
        "To": SENDER,
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Ana",
        "WaId": phone.lstrip("+"),
    }
    if not form["SmsMessageSid"]:
        form["SmsMessageSid"] = form["MessageSid"]
    form.update(extra)
    return form


def post_inbound(client, settings, **fields):
    form = inbound_form(**fields)
    return form, post_signed(client, settings, INBOUND_PATH, form)


def post_status(client, settings, sid: str, status: str, error_code: str | None = None, **extra):
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": TWILIO_SID, **extra}
    if error_code is not None:
        form["ErrorCode"] = error_code
    return post_signed(client, settings, STATUS_PATH, form)


# --- database shortcuts ----------------------------------------------------------------------------

def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def inbound_messages(session, sid: str) -> list[Message]:
    session.expire_all()
    return list(session.scalars(select(Message).where(Message.provider_sid == sid,
                                                      Message.direction == Direction.INBOUND)))


def outbound_messages(session, customer_id: int | None = None) -> list[Message]:
    session.expire_all()
    query = select(Message).where(Message.direction == Direction.OUTBOUND).order_by(Message.id)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    return list(session.scalars(query))


def customer_by_phone(session, phone: str) -> Customer | None:
    session.expire_all()
    return session.scalar(select(Customer).where(Customer.phone == phone))


def make_customer(session, phone: str = PHONE, *, name: str | None = "Ana",
                  last_inbound_at: datetime | None | str = "now", opted_out_at: datetime | None = None) -> Customer:
    """A committed customer; by default inside the 24 h window (last message just now)."""
    if last_inbound_at == "now":
        last_inbound_at = now_utc() - timedelta(minutes=1)
    customer = Customer(phone=phone, name=name, ddd=phone[3:5] if phone.startswith("+55") else None,
                        tags=[], last_inbound_at=last_inbound_at, opted_out_at=opted_out_at)
    session.add(customer)
    session.commit()
    return customer


# --- RQ ----------------------------------------------------------------------------------------------

def run_jobs(runtime: Runtime, *, with_scheduler: bool = False) -> None:
    SimpleWorker(queues_for(runtime), connection=runtime.redis).work(burst=True, with_scheduler=with_scheduler)


def queued_jobs(runtime: Runtime, func_name: str | None = None) -> list:
    jobs = [job for q in queues_for(runtime) for job in q.jobs]
    return [j for j in jobs if func_name is None or j.func_name == func_name]


def lose_queued_job(runtime: Runtime, func_name: str):
    """Pop the one queued ``func_name`` job as a worker on several queues does (BLPOP) and drop it, as that worker
    does when it is killed before registering the job as started: the job is then in no queue or registry."""
    [job] = queued_jobs(runtime, func_name)
    assert runtime.redis.lpop(Queue(job.origin, connection=runtime.redis).key) == job.id.encode()
    assert queued_jobs(runtime) == []
    return job


def scheduled_jobs(runtime: Runtime) -> list:
    out = []
    for q in queues_for(runtime):
        registry = q.scheduled_job_registry
        out.extend(q.fetch_job(job_id) for job_id in registry.get_job_ids())
    return [j for j in out if j is not None]


# --- HTTP (responses) --------------------------------------------------------------------------------

def form_body(call) -> dict[str, str]:
    body = call.request.body
    if isinstance(body, bytes):
        body = body.decode()
    return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(body or "", keep_blank_values=True).items()}


def twilio_created(sid: str | None = None, status: str = "queued") -> dict:
    return {"sid": sid or new_sid(), "status": status, "account_sid": TWILIO_SID, "to": "whatsapp:+5511999990001",
            "from": SENDER, "body": "", "num_segments": "1", "direction": "outbound-api"}


def add_twilio_ok(rsps, status: str = "queued") -> list[str]:
    """Twilio accepting every message with a fresh sid; returns the list the sids are appended to."""
    sids: list[str] = []

    def callback(request):
        sid = new_sid()
        sids.append(sid)
        return 201, {}, json.dumps(twilio_created(sid, status))

    rsps.add_callback("POST", MESSAGES_URL, callback=callback,
                      content_type="application/json")
    return sids


def twilio_error(code: int, message: str = "error", status: int = 400) -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}


# --- runtimes and engine stand-in -------------------------------------------------------------------

@pytest.fixture
def twilio_runtime(instance_dir, database_url, redis_url, db, redis_client):
    """A runtime with Twilio credentials (not outbox mode) whose API lives at https://twilio.test."""
    settings = make_settings(instance_dir, database_url, redis_url, TWILIO_ACCOUNT_SID=TWILIO_SID,
                             TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=TWILIO_API)
    with installed_runtime(settings, db, redis_client) as rt:
        yield rt


@pytest.fixture
def twilio_app(twilio_runtime):
    from app import create_app

    return create_app({"RUNTIME": twilio_runtime, "TESTING": True})


@pytest.fixture
def twilio_client(twilio_app):
    return twilio_app.test_client()


class EngineStub:
    """Replaces bot.engine.respond: records calls, answers with fixed replies."""

    def __init__(self, replies: Iterable[str] | Callable[..., list[str]] = ("Oi! Como posso ajudar?",)) -> None:
        self.replies = replies
        self.calls: list[dict] = []

    def respond(self, session, redis, keys, settings, customer, body, **kwargs):
        self.calls.append({"customer_id": customer.id, "body": body, **kwargs})
        if callable(self.replies):
            return list(self.replies(body, **kwargs))
        return list(self.replies)


@pytest.fixture
def engine_stub(monkeypatch):
    """bot.jobs with its conversation engine replaced by fixed replies (channel tests need no catalog)."""
    import bot.jobs

    stub = EngineStub()
    monkeypatch.setattr(bot.jobs, "engine", stub)
    yield stub
