"""End-to-end send throughput: messages stored and queued by the project's own sender, delivered by two RQ worker
processes (`python worker.py --burst`) to a local fake Twilio over real HTTP (`TWILIO_API_URL`).

Scenarios, each on a fresh database and Redis key prefix:
* `sender`: N chat replies through `channel.sender.queue_message` (the one outbound path), delivered by
  `channel.jobs.deliver`; once with SEND_RATE_PER_SECOND high (10 000) and once at 80, to show both the
  throughput and that the shared per-sender limit holds (the busiest one-second window is reported);
* `recovery`: N due shoppers through a scheduled tick (`run_tick` + `recovery.jobs.send_attempts`), which adds
  the send-time eligibility checks, attempt rows and templating to the same delivery path; limit high;
* `template`: N web-cart abandoners who never wrote (outside the 24-hour window), so every message is the mapped
  approved template; run on Twilio and on Meta's Cloud API (tests.fake_meta), limit high.

`sends_per_s` is the rate the provider saw (first to last accepted message); `wall_per_s` also counts the
workers' start-up, from their launch to the last message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import redis as redis_lib
from sqlalchemy import func, insert, select

from bench.common import bench_env, bench_redis, delete_prefixed, emit, fresh_database, log, make_runtime, \
    new_prefix, workspace
from core.settings import PROJECT_ROOT
from models import Cart, CartItem, CartStatus, Customer, Direction, Message, TemplateStatus, WhatsAppTemplate
from tests.fake_meta import fake_provider, provider_overrides

WORKERS = 2
HIGH_RATE = 10_000  # the largest SEND_RATE_PER_SECOND the settings accept
LIMITED_RATE = 80


def busiest_second(times: list[float]) -> int:
    """The most arrivals in any one-second window (sliding), to compare with the configured limit."""
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _seed_customers(database, count: int, now: datetime, *, wrote: bool = True) -> None:
    # ``wrote``: 20 minutes ago, inside the 24-hour window (free-form messages may go out); otherwise only the
    # shop's cart is known, and each gets a cart.
    with database.engine.begin() as conn:
        conn.execute(insert(Customer), [{"phone": f"+551198{i:07d}", "name": f"Cliente {i}", "tags": [],
                                         "last_inbound_at": now - timedelta(minutes=20) if wrote else None}
                                        for i in range(count)])
        if not wrote:
            ids = list(conn.scalars(select(Customer.id).order_by(Customer.id)))
            conn.execute(insert(Cart), [{"customer_id": cid, "source": "store", "external_id": f"web-{cid}",
                                         "status": CartStatus.ABANDONED, "currency": "BRL", "total": Decimal("119.80"),
                                         "checkout_url": f"https://loja.example/checkout/web-{cid}",
                                         "created_at": now - timedelta(minutes=20),
                                         "updated_at": now - timedelta(minutes=20)} for cid in ids])
            carts = dict(conn.execute(select(Cart.customer_id, Cart.id)).all())
            conn.execute(insert(CartItem), [{"cart_id": carts[cid], "sku": "TS-01", "name": "Camiseta Básica Branca",
                                             "quantity": 2, "unit_price": Decimal("59.90")} for cid in ids])


def _map_template(database, provider: str) -> None:
    from channel.templates import placeholders_in
    from recovery.config import update_settings

    body = "Oi, {{1}}! Seus itens estão esperando: {{2}}. Finalize aqui: {{3}}"
    with database.session() as session:
        template = WhatsAppTemplate(provider=provider, external_id="HX" + "b" * 32 if provider == "twilio" else "777",
                                    name="carrinho_bench", language="pt_BR", category="marketing",
                                    status=TemplateStatus.APPROVED, body=body, buttons=[],
                                    placeholders=placeholders_in(None, body, [], provider=provider))
        session.add(template)
        session.flush()
        update_settings(session, {"whatsapp_template_id": template.id,
                                  "whatsapp_template_params": {"1": "nome", "2": "itens", "3": "link"}})
        session.commit()


def _queue_replies(database, runtime, now: datetime) -> None:
    """One chat reply per customer through the sender; the delivery jobs are enqueued when the session commits."""
    from channel.sender import queue_message

    with database.session() as session:
        for customer in session.scalars(select(Customer).order_by(Customer.id)):
            queue_message(session, runtime, customer, kind="bot", body=f"Olá {customer.name}, seu pedido saiu!",
                          automated=False, now=now, idempotency_key=f"bench-{customer.id}")
        session.commit()


def _tick_due_shoppers(database, runtime, now: datetime, count: int) -> None:
    """Every customer due for a recovery message, claimed by one tick and handed to `send_attempts` jobs."""
    from recovery.config import update_settings
    from recovery.jobs import judging_dispatcher
    from recovery.tick import run_tick
    from recovery.tracker import Tracker

    with database.session() as session:
        # Quiet hours off, so the run does not depend on the time of day.
        update_settings(session, {"enabled": True, "delay_minutes": 10, "quiet_start": "00:00",
                                  "quiet_end": "00:00"})
        session.commit()
        tracker = Tracker(runtime)
        for customer_id in session.scalars(select(Customer.id)):
            tracker.note(customer_id, now - timedelta(minutes=15), now - timedelta(minutes=5))
        summary = run_tick(session, runtime, now, dispatch=judging_dispatcher(runtime))
    if summary.claimed != count:
        raise RuntimeError(f"the tick claimed {summary.claimed} of {count}")


def _start_workers(env: dict) -> list[subprocess.Popen]:
    # Own process group each, so a leftover worker (and anything it started) can be stopped as a whole.
    return [subprocess.Popen([sys.executable, "worker.py", "--burst"], cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(WORKERS)]


def _stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def one_run(path: str, count: int, rate: int, pg: bool, provider_name: str = "twilio") -> dict:
    with workspace(pg) as (folder, database_url), bench_redis() as redis_url, \
            fake_provider(provider_name) as provider:
        prefix = new_prefix()
        env = bench_env(folder, database_url, redis_url, prefix, **provider_overrides(provider_name, provider),
                        SEND_RATE_PER_SECOND=str(rate))
        client = redis_lib.Redis.from_url(redis_url)
        database = fresh_database(database_url)
        runtime = make_runtime(env, database, client)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        processes: list[subprocess.Popen] = []
        try:
            _seed_customers(database, count, now, wrote=path != "template")
            if path == "template":
                _map_template(database, provider_name)
            started = time.perf_counter()
            if path == "sender":
                _queue_replies(database, runtime, now)
            else:
                _tick_due_shoppers(database, runtime, now, count)
            queue_s = time.perf_counter() - started

            launched = time.monotonic()
            processes = _start_workers(env)
            # Burst workers leave when the queues are empty; the deadline only guards against a stuck run.
            deadline = launched + max(120.0, 3.0 * count / rate)
            while len(provider.accepted) < count and time.monotonic() < deadline:
                if all(process.poll() is not None for process in processes):
                    break
                time.sleep(0.05)
            times = sorted(provider.arrivals)
            # The last message's status is committed just after the provider answered: let the burst workers
            # finish before reading the statuses.
            for process in processes:
                try:
                    process.wait(max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    break
            with database.session() as session:
                statuses = dict(session.execute(select(Message.status, func.count()).where(
                    Message.direction == Direction.OUTBOUND).group_by(Message.status)).all())
        finally:
            _stop_workers(processes)
            delete_prefixed(client, prefix)
            database.engine.dispose()
    sent = len(times)
    if sent < 2:
        raise RuntimeError(f"{path} at {rate}/s: only {sent} of {count} messages reached the fake provider "
                           f"(message statuses: {statuses})")
    per_second = (sent - 1) / (times[-1] - times[0])
    result = {"path": path, "provider": provider_name, "limit_per_s": rate, "messages": count, "delivered": sent,
              "queue_s": round(queue_s, 2), "sends_per_s": round(per_second, 1),
              "wall_per_s": round(sent / (times[-1] - launched), 1), "busiest_second": busiest_second(times),
              "first_send_after_s": round(times[0] - launched, 2),
              "max_per_shopper": max(provider.per_recipient().values()),
              "statuses": {getattr(k, "value", str(k)): v for k, v in sorted(statuses.items(), key=str)}}
    log(f"sends: {path} ({provider_name}), limit {rate}/s: {sent}/{count} in {times[-1] - times[0]:.1f} s = {per_second:.0f}/s "
        f"(busiest second {result['busiest_second']}, first after {result['first_send_after_s']} s)")
    return result


def run(quick: bool = False, pg: bool = False) -> dict:
    count = 400 if quick else 2000
    runs = [one_run("sender", count, HIGH_RATE, pg),
            one_run("sender", count, LIMITED_RATE, pg),
            one_run("recovery", count, HIGH_RATE, pg),
            one_run("template", count, HIGH_RATE, pg, "twilio"),
            one_run("template", count, HIGH_RATE, pg, "meta")]
    return emit("sends", {"database": "postgresql" if pg else "sqlite", "workers": WORKERS, "runs": runs})
