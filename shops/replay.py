"""The demo's replay of a shop platform's recorded events (``flask --app app demo replay shopify``).

Each recording (``shops/recordings/<platform>.json``) is a short, real-shaped sequence of that platform's
deliveries: a shopper who abandons, one who buys, a redelivery. Replaying moves every timestamp in it by the time
since it was recorded, so the abandoned cart is due at the recoverer's next tick, and sends each delivery through
the connector's own mapping and ``shops.delivery`` (the webhook's idempotency), skipping only the signature: the
recording is a local file, not a request. Nuvemshop's deliveries carry only an order id, so its recording holds
the order the API would answer and the checkouts its polling would read.

Demo only: refused on a database without the demo data, so it never writes made-up shoppers into a real store.
The shoppers it creates are marked simulated, so the simulator shows their conversations.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.runtime import Runtime
from models import Customer, SystemFlag
from models.demo import DEMO_FLAG
from shops import nuvemshop, shopify, woocommerce
from shops.base import Received
from shops.delivery import apply_event, apply_received

RECORDINGS = Path(__file__).with_name("recordings")
PLATFORMS = ("shopify", "nuvemshop", "woocommerce")
CONNECTORS = {"shopify": shopify.CONNECTOR, "woocommerce": woocommerce.CONNECTOR}
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class ReplayRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class Step:
    kind: str
    outcome: str  # applied | duplicate | ignored
    phone: str | None


def load(platform: str) -> dict:
    if platform not in PLATFORMS:
        raise ReplayRefused(f"plataforma desconhecida: {platform!r} (use {', '.join(PLATFORMS)})")
    return json.loads((RECORDINGS / f"{platform}.json").read_text(encoding="utf-8"))


def shifted(value: Any, delta: timedelta) -> Any:
    """``value`` with every ISO timestamp string moved by ``delta``, each written back in its own style
    (with or without an offset, as the platform wrote it)."""
    if isinstance(value, dict):
        return {k: shifted(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shifted(v, delta) for v in value]
    if isinstance(value, str) and _STAMP.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return (moment + delta).isoformat(timespec="seconds")
    return value


def _headers(platform: str, recorded: dict[str, str], runtime: Runtime) -> dict[str, str]:
    """The recorded headers, naming this store where the connector checks which shop sent them."""
    headers = dict(recorded)
    settings = runtime.settings
    if platform == "shopify" and settings.shopify_shop_domain:
        headers["X-Shopify-Shop-Domain"] = settings.shopify_shop_domain
    if platform == "woocommerce" and settings.woocommerce_store_url:
        headers["X-WC-Webhook-Source"] = settings.woocommerce_store_url + "/"
    return headers


def _steps(platform: str, recording: dict, runtime: Runtime):
    """(kind, Received) for each delivery of the recording, mapped by the platform's connector."""
    settings = runtime.settings
    for step in recording["steps"]:
        if platform == "nuvemshop":
            if "poll" in step:
                for checkout in step["poll"]:
                    yield "checkout", Received(kind="checkout", event=nuvemshop.checkout_to_cart_event(checkout))
            else:
                event = nuvemshop.order_to_order_event(step["order"])
                yield step["webhook"]["event"], Received(kind=step["webhook"]["event"], event=event)
            continue
        raw = json.dumps(step["body"], ensure_ascii=False).encode()
        received = CONNECTORS[platform].receive(raw, _headers(platform, step["headers"], runtime), settings)
        yield received.kind, received


def replay(session: Session, runtime: Runtime, platform: str, now: datetime) -> list[Step]:
    """Replay ``platform``'s recording into the demo store; one Step per delivery (or polled checkout)."""
    if session.get(SystemFlag, DEMO_FLAG) is None:
        raise ReplayRefused("o replay só roda na loja de demonstração (rode antes: flask --app app demo seed)")
    recording = load(platform)
    delta = now - datetime.fromisoformat(recording["recorded_at"])
    recording = shifted(recording, delta)
    steps: list[Step] = []
    for kind, received in _steps(platform, recording, runtime):
        event = received.event
        if platform == "nuvemshop" and event is not None:
            outcome = apply_event(session, runtime, event, now)
        else:
            outcome = apply_received(session, runtime, platform, received, now)
        phone = event.customer.phone if event is not None else None
        if phone is not None:
            customer = session.scalar(select(Customer).where(Customer.phone == phone))
            if customer is not None and not customer.simulated:
                customer.simulated = True
                session.commit()
        steps.append(Step(kind=kind, outcome=outcome, phone=phone))
    return steps
