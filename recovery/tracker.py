"""The recovery tracker: who is due for a recovery message, and when, in one Redis sorted set.

* ``due``  (sorted set): member = customer id, score = due time in epoch milliseconds.
* ``last`` (hash): customer id -> the interaction time (epoch ms) the due time was computed from; with the
  customer it names the abandonment, the unique key of a recovery attempt.
* ``claimed`` / ``claimed-last``: entries a tick has taken but not yet recorded in the database. If the tick
  dies, `reclaim_stale` returns them, and the attempt's unique key stops a second message.

Every operation is one Lua script, so concurrent ticks, workers and webhooks never see half an update, and a
tick costs O(log n + due): it reads only the due range, never the whole set.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from core.runtime import Runtime
from recovery.config import delay_minutes

_NOTE = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""

# KEYS: due, last, claimed, claimed-last. ARGV: now_ms, limit. Returns [id1, interaction1, due1, id2, ...].
# The claim is stamped with the server's clock, not the tick's `now` (which may be a catch-up time).
_CLAIM = """
local t = redis.call('TIME')
local claimed_at = t[1] * 1000 + math.floor(t[2] / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  local last = redis.call('HGET', KEYS[2], id) or '0'
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZADD', KEYS[3], claimed_at, id)
  redis.call('HSET', KEYS[4], id, last .. ':' .. ids[i + 1])
  out[#out + 1] = id
  out[#out + 1] = last
  out[#out + 1] = ids[i + 1]
end
return out
"""

# Shared by the two scripts below: move one claim back to the due set unless a newer interaction was noted.
_RESTORE = """
local function restore(id)
  local packed = redis.call('HGET', KEYS[4], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  if packed and not redis.call('HGET', KEYS[2], id) then
    local sep = string.find(packed, ':')
    redis.call('HSET', KEYS[2], id, string.sub(packed, 1, sep - 1))
    redis.call('ZADD', KEYS[1], string.sub(packed, sep + 1), id)
  end
end
"""

# Put back claims older than ARGV[1] ms (their tick died).
_RECLAIM = _RESTORE + """
local t = redis.call('TIME')
local cutoff = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do restore(id) end
return #ids
"""

# Put back the claims named in ARGV (their tick failed and said so).
_UNCLAIM = _RESTORE + """
for _, id in ipairs(ARGV) do restore(id) end
return #ARGV
"""

_FORGET = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def truncate_ms(moment: datetime) -> datetime:
    """The precision the tracker keeps; attempts are keyed on it."""
    return from_ms(to_ms(moment))


@dataclass(frozen=True)
class Claim:
    customer_id: int
    interaction_at: datetime
    due_at: datetime


class Tracker:
    def __init__(self, runtime: Runtime) -> None:
        self.redis = runtime.redis
        keys = runtime.keys
        self.due_key = keys("rec", "due")
        self.last_key = keys("rec", "last")
        self.claimed_key = keys("rec", "claimed")
        self.claimed_last_key = keys("rec", "claimed-last")
        self._note = self.redis.register_script(_NOTE)
        self._claim = self.redis.register_script(_CLAIM)
        self._reclaim = self.redis.register_script(_RECLAIM)
        self._unclaim = self.redis.register_script(_UNCLAIM)
        self._forget = self.redis.register_script(_FORGET)

    def note(self, customer_id: int, interaction_at: datetime, due_at: datetime) -> bool:
        """Track (or push later) a shopper's due time. An older interaction than the one held is ignored."""
        return bool(self._note(keys=[self.due_key, self.last_key],
                               args=[customer_id, to_ms(interaction_at), to_ms(due_at)]))

    def forget(self, customer_id: int) -> None:
        self._forget(keys=[self.due_key, self.last_key], args=[customer_id])

    def claim_due(self, now: datetime, limit: int) -> list[Claim]:
        flat = self._claim(keys=[self.due_key, self.last_key, self.claimed_key, self.claimed_last_key],
                           args=[to_ms(now), limit])
        return [
            Claim(int(flat[i]), from_ms(int(flat[i + 1])), from_ms(int(float(flat[i + 2]))))
            for i in range(0, len(flat), 3)
        ]

    def release(self, customer_ids: list[int]) -> None:
        """The claims are recorded in the database: drop them from the claimed set."""
        if customer_ids:
            with self.redis.pipeline() as pipe:
                pipe.zrem(self.claimed_key, *customer_ids)
                pipe.hdel(self.claimed_last_key, *customer_ids)
                pipe.execute()

    def unclaim(self, customer_ids: list[int]) -> None:
        """Give these claims back now (the tick failed before recording them)."""
        if customer_ids:
            self._unclaim(keys=[self.due_key, self.last_key, self.claimed_key, self.claimed_last_key],
                          args=customer_ids)

    def reclaim_stale(self, older_than: timedelta, limit: int = 10_000) -> int:
        """Return to the due set the claims taken more than ``older_than`` ago (by the Redis clock)."""
        return int(self._reclaim(keys=[self.due_key, self.last_key, self.claimed_key, self.claimed_last_key],
                                 args=[int(older_than.total_seconds() * 1000), limit]))

    def due_at(self, customer_id: int) -> datetime | None:
        score = self.redis.zscore(self.due_key, customer_id)
        return None if score is None else from_ms(int(score))

    def size(self) -> int:
        return int(self.redis.zcard(self.due_key))

    def count_due(self, now: datetime) -> int:
        return int(self.redis.zcount(self.due_key, "-inf", to_ms(now)))


# --- the functions the channel and the store events call --------------------------------------------

_trackers: weakref.WeakKeyDictionary[Runtime, Tracker] = weakref.WeakKeyDictionary()


def tracker_of(runtime: Runtime) -> Tracker:
    """The runtime's tracker, built once: building one hashes its five scripts, and this runs per message."""
    tracker = _trackers.get(runtime)
    if tracker is None:
        tracker = _trackers[runtime] = Tracker(runtime)
    return tracker


def note_interaction(session: Session, runtime: Runtime, customer_id: int, at: datetime) -> None:
    """A bot interaction or a cart event happened: the shopper is due `delay` minutes after it."""
    at = truncate_ms(at)
    tracker_of(runtime).note(customer_id, at, at + timedelta(minutes=delay_minutes(session, runtime.keys.prefix)))


def forget(runtime: Runtime, customer_id: int) -> None:
    """Stop tracking a shopper (opt-out, purchase). The send-time checks would refuse anyway."""
    tracker_of(runtime).forget(customer_id)
