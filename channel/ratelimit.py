"""Rate limits shared by every worker, kept in Redis (GCRA: smooth, no burst at window edges).

Two uses: the per-sender limit of the WhatsApp number (default 80 messages/s) and the pacing of automated,
business-initiated messages to one shopper (default at most one every 6 s).
"""

from __future__ import annotations

import redis

# Returns 0 when a slot was taken, otherwise the seconds to wait (as a string: Lua numbers are truncated).
# Time comes from the Redis server so every machine agrees on it.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowed_at = tat - burst * interval
if now < allowed_at then
  return tostring(allowed_at - now)
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""


# Give back one slot taken with _GCRA (the caller could not use it).
_REFUND = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat == 0 then return 0 end
local new_tat = tat - tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
end
return 1
"""


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(_GCRA)
        self._refund = client.register_script(_REFUND)

    def try_acquire(self, key: str, *, interval: float, burst: int = 0) -> float:
        """Take one slot of ``key`` (one per ``interval`` seconds, ``burst`` extra allowed at once).

        Returns 0.0 when taken, else how many seconds to wait before asking again.
        """
        if interval <= 0:
            return 0.0
        return float(self._script(keys=[key], args=[repr(interval), burst]))

    def refund(self, key: str, *, interval: float) -> None:
        """Return a slot taken by `try_acquire` that was not used after all."""
        if interval > 0:
            self._refund(keys=[key], args=[repr(interval)])
