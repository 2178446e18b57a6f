"""When the scheduler was last alive and when the recovery tick last ran, kept in Redis for /healthz.

One hash, ``<prefix>:scheduler:heartbeat``, two fields holding ISO-8601 UTC timestamps:

- ``last_seen``: written by the scheduler loop on every poll, whether or not it holds the enqueue lock and
  whatever the workers do (the tick itself runs on a worker);
- ``last_tick``: written by a recovery tick when it completes, with the time the tick started.

The hash has no expiry: a missing field means "never written since Redis last lost its data".
"""

from __future__ import annotations

from datetime import datetime, timezone

import redis

from core.redis import Keys

FIELDS = ("last_tick", "last_seen")


def _key(keys: Keys) -> str:
    return keys("scheduler", "heartbeat")


def record(client: redis.Redis, keys: Keys, field: str, when: datetime | None = None) -> bool:
    """Write ``field`` (``last_seen`` or ``last_tick``) as ``when`` (default: now).

    Returns True when the field did not exist before: the first write ever, or the heartbeat was lost
    because Redis restarted empty or someone deleted our keys. The scheduler uses that as a cheap,
    every-poll signal that it must register its periodic jobs again.
    """
    if field not in FIELDS:
        raise ValueError(f"unknown heartbeat field {field!r}")
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return bool(client.hset(_key(keys), field, when.astimezone(timezone.utc).isoformat()))


def read(client: redis.Redis, keys: Keys) -> dict[str, str | None]:
    raw = client.hgetall(_key(keys))
    decoded = {_text(k): _text(v) for k, v in raw.items()}
    return {field: decoded.get(field) for field in FIELDS}


def parse(value: str | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime; None when missing or unreadable (treated as missing)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
