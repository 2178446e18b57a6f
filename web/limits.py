"""Fixed-window counters in Redis, shared by every web process: coupon checks per IP, login failures."""

from __future__ import annotations

import redis

# INCR and EXPIRE in one script, so a crash between them never leaves a counter without expiry (which would
# block that client forever).
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return n
"""


def hit(client: redis.Redis, key: str, window_seconds: int) -> int:
    """Count one event in the current window; returns the count so far."""
    return int(client.register_script(_COUNT)(keys=[key], args=[window_seconds]))


def count(client: redis.Redis, key: str) -> int:
    return int(client.get(key) or 0)
