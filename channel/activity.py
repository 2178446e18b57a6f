"""When the channel last worked: the provider's last accepted send, the last inbound message and the last status
callback (either provider). Redis keys under the runtime's prefix, ISO instants; read by /healthz and the
go-live page so a merchant sees the connection work.

Best effort both ways: a Redis blip must not fail a send or a webhook whose work is done, and reading answers
None for anything missing or unreadable.
"""

from __future__ import annotations

import logging
from datetime import datetime

from core import heartbeat
from core.runtime import Runtime

log = logging.getLogger(__name__)

SEND = "last-send"
INBOUND = "last-inbound"
STATUS = "last-status"
_FIELDS = {"last_send": SEND, "last_inbound": INBOUND, "last_status": STATUS}


def note(runtime: Runtime, event: str, now: datetime) -> None:
    try:
        runtime.redis.set(runtime.keys(event), now.isoformat())
    except Exception:  # noqa: BLE001 - observability only
        log.warning("could not record the %s time", event)


def last_times(runtime: Runtime) -> dict[str, str | None]:
    """{"last_send", "last_inbound", "last_status"}: ISO instants (UTC) or None."""
    try:
        values = runtime.redis.mget([runtime.keys(key) for key in _FIELDS.values()])
    except Exception as exc:  # noqa: BLE001 - observability only
        log.warning("could not read the channel's last activity: %s", type(exc).__name__)
        values = [None] * len(_FIELDS)
    out: dict[str, str | None] = {}
    for name, raw in zip(_FIELDS, values):
        when = heartbeat.parse(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
        out[name] = None if when is None else when.isoformat()
    return out
