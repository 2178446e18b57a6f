"""One Redis connection factory for web, worker, scheduler and CLI, and the key namespace."""

from __future__ import annotations

import redis

from core.embedded_redis import ensure_running
from core.settings import Settings


def connect(settings: Settings) -> redis.Redis:
    """A client for ``REDIS_URL``, or for the embedded server (started on first use).

    Responses are bytes (RQ needs that); the few callers that want text decode themselves.
    """
    options = dict(socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, **options)
    socket_path = ensure_running(settings.instance_path)
    return redis.Redis(unix_socket_path=str(socket_path), **options)


class Keys:
    """Every Redis key the project owns starts with the prefix, so deployments and tests can share a server."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def queue(self, name: str) -> str:
        # RQ queue names become key suffixes; RQ job ids may not contain ':'.
        return f"{self.prefix}-{name}"
