"""The Redis store of the provider core's waiting rate groups (core/rate_store.py's
RateStore): every worker and instance calling one upstream spends one budget, and a 429 or
an exhausted budget seen by one pauses and slows all of them.

A group is one Redis hash, `n3:rate:PROVIDER|BASE_URL|MODEL` (the base URL with any user
info or key-like parameter masked; never an API key). It holds the request and token
buckets, the limits learned from budget headers, the pause, the 429 cut (factor and time)
a decaying count of requests (the base of a cut when no limit is known) and the requests
let through while no request rate was known (a new request bucket starts short of them, as
RateGroup._seed does). Lua scripts
change it atomically on Redis's clock (TIME), with core/limits.py's rules and constants,
so machines with different clocks share one budget.

The connection is the app's RedisStore (shared_budgets.py): its short timeout, its one
warning when Redis goes (each group then uses this worker's own buckets, and no request
fails), its retry after RETRY_SECONDS, and its event loop (a call from another loop uses
its own buckets)."""

from __future__ import annotations

from typing import Any

from ..core import limits
from ..core.limits import set_rate_store
from ..core.rate_store import RATE_PREFIX, RateBudget, RateFeedback, RateStore, Reservation
from ..core.redact import mask_url
from .installed import Installed
from .shared_budgets import RedisStore

__all__ = ["RATE_TTL", "RedisRateStore", "install_rate_store", "rate_key", "uninstall_rate_store"]

#: Seconds an idle group stays in Redis (its learned limits are learned again after).
RATE_TTL = 300

# What every script begins with. KEYS[1]: the group's hash. ARGV[1..6]: configured requests
# and tokens per minute (0: none), BURST_SECONDS, RECOVERY_SECONDS, the TTL,
# UNMETERED_SECONDS. Defines now, the fields h, the current cut (factor; a finished recovery
# is forgotten), rates(), seen() (the decaying count of requests), unmetered() (counts a
# request let through with no request rate) and refill() (a new request bucket starts short
# of those requests, each paid off at the rate from the last one on).
_PRELUDE = """
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', key, 'rl', 'rs', 'tl', 'ts', 'lr', 'lt', 'pu', 'cf', 'ca', 'cb',
  'on', 'ot', 'un', 'ut')
local conf_r, conf_t = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, recovery, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local unmetered_for = tonumber(ARGV[6])
local cf, ca, cb = tonumber(h[8]) or 1, tonumber(h[9]), tonumber(h[10])
local factor = 1
if ca then
  local progress = (now - ca) / recovery
  if progress >= 1 then
    cf, ca, cb = 1, nil, nil
    redis.call('HDEL', key, 'cf', 'ca', 'cb')
  else
    factor = cf + (1 - cf) * progress
  end
end
local function lower(a, b)
  if a and a > 0 and b and b > 0 then return math.min(a, b) end
  if a and a > 0 then return a end
  if b and b > 0 then return b end
  return nil
end
local function rates()
  local base_r = lower(conf_r, tonumber(h[5])) or cb
  local base_t = lower(conf_t, tonumber(h[6]))
  return base_r and base_r * factor, base_t and base_t * factor
end
local function seen(window)
  local since = math.max(0, now - (tonumber(h[12]) or now))
  return (tonumber(h[11]) or 0) * math.exp(-since / window)
end
local function unmetered()
  local un, ut = tonumber(h[13]) or 0, tonumber(h[14]) or now
  if now - ut > unmetered_for then un = 0 end
  redis.call('HSET', key, 'un', tostring(un + 1), 'ut', tostring(now))
end
local function refill(level, stamp, per, requests)
  local cap = math.max(1, per / 60 * burst)
  level, stamp = tonumber(level), tonumber(stamp) or now
  if not level then
    level = cap
    if requests then
      local un, ut = tonumber(h[13]) or 0, tonumber(h[14]) or now
      local owed = un - math.max(0, now - ut) * per / 60
      level = cap - math.min(cap, math.max(0, owed))
      redis.call('HDEL', key, 'un', 'ut')
    end
  end
  return math.min(cap, level + math.max(0, now - stamp) * per / 60), cap
end
"""

# ARGV[7]: tokens; ARGV[8]: OBSERVE_SECONDS. Charges one request (and the tokens) as a debt;
# returns the wait, the units taken and the learned limits ('' when none), as strings.
RESERVE_SCRIPT = (
    _PRELUDE
    + """
local tokens, window = tonumber(ARGV[7]), tonumber(ARGV[8])
local rpm, tpm = rates()
local wait = math.max(0, (tonumber(h[7]) or 0) - now)
local took_r, took_t = 0, 0
if rpm then
  local level = refill(h[1], h[2], rpm, true) - 1
  redis.call('HSET', key, 'rl', tostring(level), 'rs', tostring(now))
  if level < 0 then wait = math.max(wait, -level * 60 / rpm) end
  took_r = 1
else
  unmetered()
end
if tpm and tokens > 0 then
  local level = refill(h[3], h[4], tpm) - tokens
  redis.call('HSET', key, 'tl', tostring(level), 'ts', tostring(now))
  if level < 0 then wait = math.max(wait, -level * 60 / tpm) end
  took_t = tokens
end
redis.call('HSET', key, 'on', tostring(seen(window) + 1), 'ot', tostring(now))
redis.call('EXPIRE', key, ttl)
return {tostring(wait), tostring(took_r), tostring(took_t), h[5] or '', h[6] or ''}
"""
)

# ARGV[7..8]: request and token units to give back.
GIVE_BACK_SCRIPT = (
    _PRELUDE
    + """
local rpm, tpm = rates()
local back_r, back_t = tonumber(ARGV[7]), tonumber(ARGV[8])
if rpm and back_r > 0 and h[1] then
  local level, cap = refill(h[1], h[2], rpm)
  redis.call('HSET', key, 'rl', tostring(math.min(cap, level + back_r)), 'rs', tostring(now))
end
if tpm and back_t > 0 and h[3] then
  local level, cap = refill(h[3], h[4], tpm)
  redis.call('HSET', key, 'tl', tostring(math.min(cap, level + back_t)), 'ts', tostring(now))
end
return 1
"""
)

# ARGV[7..]: 429 (1/0), retry-after, learned rpm, learned tpm (0: none), remaining requests,
# remaining tokens (-1: none), pause (0: none), BACKOFF_FACTOR, MIN_FACTOR, STORM_SECONDS,
# OBSERVE_SECONDS, MAX_PAUSE. Learns, caps, pauses and cuts as RateGroup.observe does.
OBSERVE_SCRIPT = (
    _PRELUDE
    + """
local limited, retry = tonumber(ARGV[7]) == 1, tonumber(ARGV[8])
local learned_r, learned_t = tonumber(ARGV[9]), tonumber(ARGV[10])
local left_r, left_t, pause = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local backoff, least, storm = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local window, longest = tonumber(ARGV[17]), tonumber(ARGV[18])
if limited and (tonumber(h[13]) or 0) > 0 then  -- refused: the upstream never counted it
  h[13] = tostring(tonumber(h[13]) - 1)
  redis.call('HSET', key, 'un', h[13])
end
if learned_r > 0 then h[5] = tostring(learned_r); redis.call('HSET', key, 'lr', h[5]) end
if learned_t > 0 then h[6] = tostring(learned_t); redis.call('HSET', key, 'lt', h[6]) end
local rpm, tpm = rates()
if rpm and left_r >= 0 then
  local level = math.min(refill(h[1], h[2], rpm, true), left_r)
  redis.call('HSET', key, 'rl', tostring(level), 'rs', tostring(now))
end
if tpm and left_t >= 0 then
  local level = math.min(refill(h[3], h[4], tpm), left_t)
  redis.call('HSET', key, 'tl', tostring(level), 'ts', tostring(now))
end
local until_ = tonumber(h[7]) or 0
if pause > 0 then until_ = math.max(until_, now + math.min(pause, longest)) end
if limited and retry > 0 then until_ = math.max(until_, now + math.min(retry, longest)) end
if until_ > now then redis.call('HSET', key, 'pu', tostring(until_)) end
if limited and not (ca and now - ca < storm) then
  if not lower(conf_r, tonumber(h[5])) and not cb then
    cb = math.max(1, seen(window) * 60 / window)
    redis.call('HSET', key, 'cb', tostring(cb))
  end
  cf = math.max(least, factor * backoff)
  redis.call('HSET', key, 'cf', tostring(cf), 'ca', tostring(now))
end
redis.call('EXPIRE', key, ttl)
return 1
"""
)

# The pause left, in seconds (a string).
PAUSED_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = tonumber(redis.call('HGET', KEYS[1], 'pu')) or 0
return tostring(math.max(0, until_ - now))
"""


def rate_key(key: tuple[str, str, str]) -> str:
    """A group's Redis key: its provider, masked base URL and model."""
    provider, base_url, model = key
    return f"{RATE_PREFIX}:{provider}|{mask_url(base_url)}|{model}"


def _given(value: float | None) -> float:
    return 0.0 if value is None else value


def _optional(value: bytes | str) -> float | None:
    return float(value) if value not in (b"", "") else None


class RedisRateStore:
    """core/rate_store.py's RateStore on the app's RedisStore (see the module docstring)."""

    def __init__(self, redis: RedisStore) -> None:
        self.redis = redis

    @staticmethod
    def _head(budget: RateBudget) -> list[Any]:
        return [
            _given(budget.requests_per_minute),
            _given(budget.tokens_per_minute),
            limits.BURST_SECONDS,
            limits.RECOVERY_SECONDS,
            RATE_TTL,
            limits.UNMETERED_SECONDS,
        ]

    async def reserve(
        self, key: tuple[str, str, str], budget: RateBudget, tokens: int
    ) -> Reservation | None:
        args = [*self._head(budget), tokens, limits.OBSERVE_SECONDS]
        raw = await self.redis.evaluate(RESERVE_SCRIPT, [rate_key(key)], args)
        if raw is None:
            return None
        wait, took_r, took_t, rpm, tpm = raw
        return Reservation(
            float(wait), float(took_r), float(took_t), _optional(rpm), _optional(tpm)
        )

    async def give_back(
        self, key: tuple[str, str, str], budget: RateBudget, taken: Reservation
    ) -> bool:
        args = [*self._head(budget), taken.requests, taken.tokens]
        return await self.redis.evaluate(GIVE_BACK_SCRIPT, [rate_key(key)], args) is not None

    async def paused(self, key: tuple[str, str, str]) -> float | None:
        raw = await self.redis.evaluate(PAUSED_SCRIPT, [rate_key(key)], [])
        return None if raw is None else float(raw)

    async def observe(
        self, key: tuple[str, str, str], budget: RateBudget, feedback: RateFeedback
    ) -> bool:
        left_r, left_t = feedback.remaining_requests, feedback.remaining_tokens
        args = [
            *self._head(budget),
            int(feedback.rate_limited),
            _given(feedback.retry_after),
            _given(feedback.learned_rpm),
            _given(feedback.learned_tpm),
            -1 if left_r is None else left_r,
            -1 if left_t is None else left_t,
            _given(feedback.pause),
            limits.BACKOFF_FACTOR,
            limits.MIN_FACTOR,
            limits.STORM_SECONDS,
            limits.OBSERVE_SECONDS,
            limits.MAX_PAUSE,
        ]
        return await self.redis.evaluate(OBSERVE_SCRIPT, [rate_key(key)], args) is not None


_installed: Installed[RateStore] = Installed(set_rate_store)


def install_rate_store(store: RateStore) -> None:
    """Share every rate group through `store` while its app runs."""
    _installed.add(store)


def uninstall_rate_store(store: RateStore) -> None:
    """Its app stopped: the store of the latest app still running, else none."""
    _installed.remove(store)
