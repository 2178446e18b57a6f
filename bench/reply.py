"""Reply time of a product search against a greeting's, black-box: a signed inbound message posted to the webhook
of the app under gunicorn, one RQ worker process running the engine, and the time until the bot's reply is stored
(the engine's answer, before its delivery). With 20 000 products (about 90 000 variants) in the catalog.

Each round writes from a new phone number: "oi", then a search ("tem tenis preto 42?", typos, colours and sizes
varied). Reported: p50/p95 of both and the ratio of the medians (target: a search within 2x a greeting).
Outbox mode (no Twilio credentials), the embedded SQLite and Redis of `make run`; `--pg`: PostgreSQL's `bench`
database and a Redis server.
"""

from __future__ import annotations

import itertools
import random
import statistics
import subprocess
import sys
import time

import requests
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from bench.common import bench_env, bench_redis, delete_prefixed, emit, fresh_database, log, new_prefix, percentile, \
    postgres_reachable, workspace
from bench.search import queries
from bench.webhook import _serve, _stop, free_port
from catalog import index
from core.settings import PROJECT_ROOT, Settings
from models import Customer, Direction, Message, MessageStatus
from tests.search_catalog import insert_products, scaled_products

PRODUCTS = 20_000
QUICK_PRODUCTS = 2_000
ROUNDS = 60
QUICK_ROUNDS = 15
TARGET_RATIO = 2.0


def _load(database, products: int) -> int:
    specs = scaled_products(10 ** 9)
    variants = loaded = 0
    while loaded < products:
        chunk = list(itertools.islice(specs, min(1_000, products - loaded)))
        with database.transaction() as session:
            ids = insert_products(session.connection(), chunk, first_id=loaded + 1)
            index.refresh(session, ids)
        loaded += len(chunk)
        variants += sum(len(spec["variants"]) for spec in chunk)
    with database.engine.begin() as conn:  # fresh tables: give the planner statistics, as autovacuum would
        conn.execute(text("ANALYZE"))
    return variants


def _settle(database) -> None:
    """Wait until every reply has been delivered (to the outbox), so the next message's job does not queue behind
    the previous reply's delivery job: each measurement starts from an idle worker."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        with database.session() as session:
            if not session.scalar(select(func.count()).select_from(Message).where(
                    Message.status == MessageStatus.PENDING)):
                return
        time.sleep(0.005)
    raise RuntimeError("replies still pending after 60 s")


def _reply_seconds(base_url: str, token: str, database, phone: str, body: str, sid: int) -> float:
    """Seconds from posting ``body`` as ``phone`` to the bot's reply row being committed (from an idle worker)."""
    _settle(database)
    form = {"MessageSid": f"SM{sid:032x}", "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{phone}",
            "To": "whatsapp:+14155238886", "Body": body, "NumMedia": "0", "ProfileName": "Cliente"}
    url = base_url + "/webhooks/whatsapp"
    signature = RequestValidator(token).compute_signature(url, form)
    with database.session() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.phone == phone))
        before = session.scalar(select(func.count()).select_from(Message).where(
            Message.customer_id == customer_id, Message.direction == Direction.OUTBOUND)) if customer_id else 0
    started = time.perf_counter()
    response = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=30)
    response.raise_for_status()
    deadline = started + 60
    while time.perf_counter() < deadline:
        with database.session() as session:
            customer_id = session.scalar(select(Customer.id).where(Customer.phone == phone))
            count = session.scalar(select(func.count()).select_from(Message).where(
                Message.customer_id == customer_id, Message.direction == Direction.OUTBOUND))
        if count > before:
            return time.perf_counter() - started
        time.sleep(0.002)
    raise RuntimeError(f"no reply to {body!r} within 60 s")


def one_backend(pg: bool, products: int, rounds: int) -> dict:
    with workspace(pg) as (folder, database_url), bench_redis(embedded=not pg) as redis_url:
        database = fresh_database(database_url)
        log(f"reply/{'postgresql' if pg else 'sqlite'}: loading {products:,} products")
        variants = _load(database, products)
        prefix = new_prefix()
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = bench_env(folder, database_url, redis_url, prefix, PUBLIC_BASE_URL=base_url,
                        TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="")  # outbox mode: nothing leaves the machine
        token = Settings.from_env(env).webhook_auth_token
        server = _serve("app:create_app()", env, port, folder / "gunicorn.log")
        worker = subprocess.Popen([sys.executable, "worker.py"], cwd=PROJECT_ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(folder / "worker.log", "wb"))
        greeting, searching = [], []
        rng = random.Random(3)
        texts = [t for t in queries(400) if any(c.isdigit() for c in t) or " " in t]
        try:
            sid = itertools.count(1)
            for round_number in range(rounds + 3):  # three warm-up rounds, not timed
                phone = f"+55119{70000000 + round_number:08d}"
                hello = _reply_seconds(base_url, token, database, phone, "oi", next(sid))
                found = _reply_seconds(base_url, token, database, phone, rng.choice(texts), next(sid))
                if round_number >= 3:
                    greeting.append(hello * 1000)
                    searching.append(found * 1000)
        finally:
            worker.terminate()
            worker.wait(15)
            _stop(server)
            database.engine.dispose()
            import redis as redis_lib

            delete_prefixed(redis_lib.Redis.from_url(redis_url), prefix)
    greeting.sort()
    searching.sort()
    ratio = statistics.median(searching) / statistics.median(greeting)
    return {"database": "postgresql" if pg else "sqlite", "products": products, "variants": variants,
            "rounds": rounds, "greeting_p50_ms": round(percentile(greeting, 0.5), 1),
            "greeting_p95_ms": round(percentile(greeting, 0.95), 1),
            "search_p50_ms": round(percentile(searching, 0.5), 1), "search_p95_ms": round(percentile(searching, 0.95), 1),
            "ratio_of_medians": round(ratio, 2), "met": ratio <= TARGET_RATIO}


def run(quick: bool = False, pg: bool = False) -> dict:
    products, rounds = (QUICK_PRODUCTS, QUICK_ROUNDS) if quick else (PRODUCTS, ROUNDS)
    if pg and not postgres_reachable():
        log("reply: PostgreSQL is not reachable on 127.0.0.1:5432; skipped")
        return emit("reply", {"skipped": "PostgreSQL not reachable"})
    return emit("reply", {"target_ratio": TARGET_RATIO, **one_backend(pg, products, rounds)})
