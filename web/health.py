"""GET /healthz: is the database reachable, is Redis reachable, is the scheduler beating and the recovery ticking.

Answer::

    {"status": "ok" | "degraded", "degraded": ["db", "redis", "scheduler", "recovery_tick"],   # what is wrong
     "db": "ok" | "down", "redis": "ok" | "down", "mode": "outbox" | "twilio" | "meta",
     "whatsapp": {"provider": "twilio" | "meta", "mode": "outbox" | "live",
                  "last_send": iso | null, "last_inbound": iso | null, "last_status": iso | null},
     "scheduler": {"last_seen": iso | null, "last_tick": iso | null, "ok": bool,
                   "stale_after_seconds": 15, "tick_ok": bool, "tick_stale_after_seconds": ...,
                   "last_seen_age_seconds": float | null, "last_tick_age_seconds": float | null}}

HTTP status:

- 503 when the database or Redis is unreachable, as before (``db`` / ``redis`` is ``"down"``);
- otherwise 200, even when the scheduler or the tick is degraded. Load balancers use /healthz to route traffic
  to web instances; a stalled scheduler is not the web instance's fault, and taking every web instance out of
  rotation because of it would also stop the WhatsApp webhooks and lose shoppers' messages. Monitoring alerts
  on ``status == "degraded"`` instead, or calls ``/healthz?strict=1``, which answers 503 whenever anything is
  degraded.

Thresholds (ages are measured against this process's clock, so they include any clock skew between the web
and scheduler machines, which the margins absorb):

- ``scheduler`` is degraded when ``last_seen`` is missing or older than ``SCHEDULER_STALE_AFTER_SECONDS`` =
  ``STALE_AFTER_PERIODS`` (2) x ``POLL_SECONDS`` (5 s) + ``SCHEDULER_MARGIN_SECONDS`` (5 s) = 15 s. The
  scheduler writes it at the start of every poll, lock or no lock, so this tolerates one late poll; a scheduler
  that died, or waits out a Redis outage, cannot write it and is reported.
- ``recovery_tick`` is degraded when ``last_tick`` is missing or older than ``tick_stale_after_seconds()`` =
  ``STALE_AFTER_PERIODS`` (2) x ``RECOVERY_TICK_SECONDS`` + the tick's RQ time limit
  (``core.schedule.tick_timeout``: max(60, 2 x tick)): 1200 s with the default 300 s tick, 80 s with a 10 s
  tick. A tick records the time it *started* when it *finishes*, so a healthy value can be one period plus the
  poll delay, the queue wait and the tick's own run time old; the bound tolerates a tick that runs up to its
  time limit, or one failed tick followed by a normal one. Missing means no tick completed since Redis last lost
  its data (a fresh deployment runs its first tick at once; the workers must be running too).

When Redis is down the heartbeat cannot be read: both are reported missing, hence degraded.

``whatsapp`` tells whether the channel works end to end, and degrades nothing (a quiet night has no messages):
``last_send`` is when the provider last accepted a message (or the outbox stored one), ``last_inbound`` when a
shopper's message last arrived through a webhook, ``last_status`` when a delivery status callback last arrived;
null when none since Redis last lost its data, or when Redis is down.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Blueprint, jsonify, request
from sqlalchemy import text

from channel import activity
from core import heartbeat
from core.runtime import Runtime
from core.schedule import POLL_SECONDS, tick_timeout
from web.context import runtime

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# How many periods a heartbeat may miss before it is stale, plus a margin for the work done in a period.
STALE_AFTER_PERIODS = 2
SCHEDULER_MARGIN_SECONDS = 5
SCHEDULER_STALE_AFTER_SECONDS = STALE_AFTER_PERIODS * POLL_SECONDS + SCHEDULER_MARGIN_SECONDS

_TRUE = {"1", "true", "yes", "on"}

def whatsapp_state(rt: Runtime, times: dict[str, str | None]) -> dict[str, object]:
    settings = rt.settings
    return {"provider": settings.whatsapp_provider, "mode": "outbox" if settings.outbox_mode else "live",
            **times}


def tick_stale_after_seconds(tick_seconds: int) -> int:
    """The recovery tick's threshold: it depends on ``RECOVERY_TICK_SECONDS``, the margin is the tick's time limit."""
    return STALE_AFTER_PERIODS * tick_seconds + tick_timeout(tick_seconds)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _age(value: str | None, now: datetime) -> float | None:
    when = heartbeat.parse(value)
    return None if when is None else round((now - when).total_seconds(), 1)


def scheduler_state(beat: dict[str, str | None], tick_seconds: int, now: datetime) -> dict[str, object]:
    """The ``scheduler`` part of the answer, from the heartbeat hash (``heartbeat.read``)."""
    seen_age, tick_age = _age(beat.get("last_seen"), now), _age(beat.get("last_tick"), now)
    tick_limit = tick_stale_after_seconds(tick_seconds)
    seen_ok = seen_age is not None and seen_age <= SCHEDULER_STALE_AFTER_SECONDS
    tick_ok = tick_age is not None and tick_age <= tick_limit
    return {
        "last_seen": beat.get("last_seen"),
        "last_tick": beat.get("last_tick"),
        "ok": seen_ok and tick_ok,
        "stale_after_seconds": SCHEDULER_STALE_AFTER_SECONDS,
        "last_seen_ok": seen_ok,
        "last_seen_age_seconds": seen_age,
        "tick_ok": tick_ok,
        "tick_stale_after_seconds": tick_limit,
        "last_tick_age_seconds": tick_age,
    }


@bp.get("/healthz")
def healthz():
    rt = runtime()
    body: dict[str, object] = {}
    degraded: list[str] = []
    try:
        with rt.db.session() as session:
            session.execute(text("SELECT 1"))
        body["db"] = "ok"
    except Exception as exc:  # any driver error means "down"; the detail goes to the log, not the client
        log.warning("healthz: database unreachable: %s", type(exc).__name__)
        body["db"] = "down"
        degraded.append("db")
    beat: dict[str, str | None] = {"last_tick": None, "last_seen": None}
    times: dict[str, str | None] = {"last_send": None, "last_inbound": None, "last_status": None}
    try:
        rt.redis.ping()
        beat = heartbeat.read(rt.redis, rt.keys)
        body["redis"] = "ok"
        times = activity.last_times(rt)
    except Exception as exc:
        log.warning("healthz: redis unreachable: %s", type(exc).__name__)
        body["redis"] = "down"
        degraded.append("redis")
    scheduler = scheduler_state(beat, rt.settings.recovery_tick_seconds, _now())
    body["scheduler"] = scheduler
    if not scheduler["last_seen_ok"]:
        degraded.append("scheduler")
    if not scheduler["tick_ok"]:
        degraded.append("recovery_tick")
    body["mode"] = "outbox" if rt.settings.outbox_mode else rt.settings.whatsapp_provider
    body["whatsapp"] = whatsapp_state(rt, times)
    body["status"] = "degraded" if degraded else "ok"
    body["degraded"] = degraded

    down = body["db"] != "ok" or body["redis"] != "ok"
    strict = request.args.get("strict", "").strip().lower() in _TRUE
    return jsonify(body), (503 if down or (strict and degraded) else 200)
