"""When the scheduler was last alive and when the recovery tick last ran, kept in Redis for /healthz."""

from __future__ import annotations

from datetime import datetime, timezone

import redis

from core.redis import Keys


def _key(keys: Keys) -> str:
    return keys("scheduler", "heartbeat")


def record(client: redis.Redis, keys: Keys, field: str, when: datetime | None = None) -> None:
    """``field`` is ``last_seen`` (scheduler loop) or ``last_tick`` (a recovery tick finished)."""
    when = when or datetime.now(timezone.utc)
    client.hset(_key(keys), field, when.isoformat())


def read(client: redis.Redis, keys: Keys) -> dict[str, str | None]:
    raw = client.hgetall(_key(keys))
    decoded = {k.decode(): v.decode() for k, v in raw.items()}
    return {"last_tick": decoded.get("last_tick"), "last_seen": decoded.get("last_seen")}
