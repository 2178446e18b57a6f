"""Counters in Redis shared by every web process: coupon checks per IP, and the sign-in throttle."""

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


# Login throttle. Counted BEFORE the password is checked, in one script, so parallel guesses cannot all slip in
# under the limit. Two scopes: (e-mail, client IP) and client IP. A scope over its limit is locked for a time that
# doubles with every lock in the last day (1 min, 2, 4 … up to 1 h), and its counter starts again.
# KEYS: for each scope: count, lock, level.  ARGV: window, base lock seconds, max lock seconds, limit per scope...
# Returns {allowed (1/0), seconds to wait}.
_LOGIN = """
local window = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local scopes = #KEYS / 3
for s = 0, scopes - 1 do
  local ttl = redis.call('TTL', KEYS[s * 3 + 2])
  if ttl > 0 then return {0, ttl} end
end
for s = 0, scopes - 1 do
  local count, lock, level = KEYS[s * 3 + 1], KEYS[s * 3 + 2], KEYS[s * 3 + 3]
  local n = redis.call('INCR', count)
  if n == 1 or redis.call('TTL', count) < 0 then redis.call('EXPIRE', count, window) end
  if n > tonumber(ARGV[4 + s]) then
    local times = redis.call('INCR', level)
    redis.call('EXPIRE', level, 86400)
    local seconds = math.floor(math.min(cap, base * 2 ^ (times - 1)))
    redis.call('SET', lock, '1', 'EX', seconds)
    redis.call('DEL', count)
    return {0, seconds}
  end
end
return {1, 0}
"""

# A successful login: the (e-mail, IP) scope's lock level starts afresh, but not its count: guesses sent in
# parallel with the right password are still counted against the same five (resetting the count on success let
# five more of them be checked); the count expires with its window. The IP scope gives back the attempt it
# counted, so an office behind one address is not locked by its own successful sign-ins.
_LOGIN_OK = """
redis.call('DEL', KEYS[3])
local n = tonumber(redis.call('GET', KEYS[4]) or '0')
if n > 0 then redis.call('DECR', KEYS[4]) end
return 1
"""


def login_attempt(client: redis.Redis, scopes: list[tuple[str, int]], *, window: int, base_lock: int,
                  max_lock: int) -> tuple[bool, int]:
    """Count one sign-in attempt in every scope (key prefix, limit). Returns (allowed, seconds to wait)."""
    keys = [f"{prefix}:{part}" for prefix, _ in scopes for part in ("count", "lock", "level")]
    allowed, wait = client.register_script(_LOGIN)(
        keys=keys, args=[window, base_lock, max_lock, *[limit for _, limit in scopes]])
    return bool(int(allowed)), int(wait)


def login_succeeded(client: redis.Redis, pair_prefix: str, ip_prefix: str) -> None:
    client.register_script(_LOGIN_OK)(keys=[f"{pair_prefix}:count", f"{pair_prefix}:lock", f"{pair_prefix}:level",
                                           f"{ip_prefix}:count"])
