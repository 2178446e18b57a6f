"""What each shop platform last sent, and how late its carts arrive: what the go-live page shows a merchant.

- The last verified delivery per platform (webhook or Nuvemshop's checkout poll): a Redis key under the runtime's
  prefix holding ``{"at": ISO instant, "kind": topic}``. Best effort both ways, like ``channel.activity``: a Redis
  blip must not fail a webhook whose work is done.
- Arrival lag: for the carts received lately, how long after the shopper's last change (the cart's
  ``updated_at``) the event reached us, read from the ``StoreEvent`` rows the events already leave. Nuvemshop
  creates its abandoned checkouts hours late; a merchant whose delay is 30 minutes must know that.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import heartbeat
from core.runtime import Runtime
from core.settings import SHOP_PLATFORMS
from models import StoreEvent
from recovery.events import CART_EVENTS

log = logging.getLogger(__name__)

PLATFORMS = tuple(p for p in SHOP_PLATFORMS if p != "generic")
LAG_SAMPLE = 500  # the latest carts the figure is computed from: bounded work whatever the store's history


def _key(runtime: Runtime, platform: str) -> str:
    return runtime.keys(f"shop-last:{platform}")


def note(runtime: Runtime, platform: str, kind: str, now: datetime) -> None:
    try:
        runtime.redis.set(_key(runtime, platform), json.dumps({"at": now.isoformat(), "kind": kind[:60]}))
    except Exception:  # noqa: BLE001 - observability only
        log.warning("could not record the last %s event", platform)


def last_events(runtime: Runtime) -> dict[str, dict | None]:
    """{platform: {"at": datetime (UTC), "kind": str} or None} for every platform."""
    try:
        values = runtime.redis.mget([_key(runtime, p) for p in PLATFORMS])
    except Exception as exc:  # noqa: BLE001 - observability only
        log.warning("could not read the shops' last events: %s", type(exc).__name__)
        values = [None] * len(PLATFORMS)
    out: dict[str, dict | None] = {}
    for platform, raw in zip(PLATFORMS, values):
        out[platform] = None
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        when = heartbeat.parse(data.get("at")) if isinstance(data, dict) else None
        if when is not None:
            out[platform] = {"at": when, "kind": str(data.get("kind") or "")}
    return out


@dataclass(frozen=True)
class ArrivalLag:
    carts: int
    median: timedelta
    p90: timedelta


def arrival_lag(session: Session, now: datetime, *, days: int = 7) -> ArrivalLag | None:
    """How late the carts received in the last ``days`` arrived, after the shopper's last change; None without
    any. A cart updated many times counts each version once (its StoreEvent row)."""
    rows = session.execute(
        select(StoreEvent.received_at, StoreEvent.occurred_at)
        .where(StoreEvent.event.in_(CART_EVENTS), StoreEvent.received_at >= now - timedelta(days=days),
               StoreEvent.received_at <= now)
        .order_by(StoreEvent.received_at.desc()).limit(LAG_SAMPLE)).all()
    lags = sorted(max(0.0, (received - occurred).total_seconds()) for received, occurred in rows)
    if not lags:
        return None
    p90 = lags[min(len(lags) - 1, int(0.9 * len(lags)))]
    return ArrivalLag(carts=len(lags), median=timedelta(seconds=median(lags)), p90=timedelta(seconds=p90))
