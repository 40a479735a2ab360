"""The Redis store of the budgets (core/budgets.py's BudgetStore) shared by every worker and
every gateway instance through Redis (N3_REDIS_URL), with the worker's own buckets as the
fallback.

Each budget's two buckets (requests, tokens per minute) are Redis hashes; one Lua script
refills and charges them atomically on Redis's own clock (TIME), so workers and machines
with different clocks see one budget. When Redis cannot be reached (or answers slowly,
REDIS_TIMEOUT) the request is not failed: the budget falls back to this worker's own
MinuteBudget (core/budgets.py), a warning is logged once, and Redis is tried again after
RETRY_SECONDS (recovery is logged too). Per-process budgets are then each the whole budget, so the
combined rate can reach N times it while Redis is away.

The client is redis-py's asyncio client (the `redis` package, the `serve` extra)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..core.redact import register_secret

logger = logging.getLogger("n3_notebook.serve")

REDIS_URL_ENV = "N3_REDIS_URL"
#: Seconds a Redis call may take before the worker's own budget answers instead.
REDIS_TIMEOUT = 0.5
#: Seconds between attempts to reach Redis again after it failed.
RETRY_SECONDS = 5.0
#: Seconds an idle bucket stays in Redis (a full minute's budget refills in 60 s).
BUCKET_TTL = 120

# KEYS: buckets; ARGV: per_minute and amount for each. Returns the wait in seconds (a
# string: Redis turns Lua numbers into integers); charges every bucket only if all fit.
TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local levels = {}
for i = 1, #KEYS do
  local per = tonumber(ARGV[2 * i - 1])
  local amount = math.min(tonumber(ARGV[2 * i]), per)
  local v = redis.call('HMGET', KEYS[i], 'level', 'stamp')
  local level = tonumber(v[1]) or per
  local stamp = tonumber(v[2]) or now
  level = math.min(per, level + math.max(0, now - stamp) * per / 60)
  levels[i] = level
  if level < amount then
    wait = math.max(wait, (amount - level) * 60 / per)
  end
end
for i = 1, #KEYS do
  local level = levels[i]
  if wait == 0 then
    level = level - math.min(tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i - 1]))
  end
  redis.call('HSET', KEYS[i], 'level', tostring(level), 'stamp', tostring(now))
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[#ARGV]))
end
return tostring(wait)
"""
# KEYS[1]: a token bucket; ARGV: per_minute, tokens to give back (negative: to charge).
SETTLE_SCRIPT = """
local v = redis.call('HGET', KEYS[1], 'level')
if v then
  local level = math.min(tonumber(ARGV[1]), tonumber(v) + tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'level', tostring(level))
end
return 1
"""


def shown_url(url: str) -> str:
    """The URL for messages: its user and password (redis://:PASSWORD@host) masked."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


class RedisStore:
    """The app's Redis connections (one worker's), and whether Redis is reachable. The
    budgets and the rate groups (shared_rates.py) share it: one warning when Redis goes.

    redis-py's asyncio client belongs to the event loop it was made on, so there is one
    client per loop that calls (the app's; the blocking facade's private loops, several
    apps in one process); a closed loop's client is dropped with its connections."""

    def __init__(self, url: str, clock: Any = time.monotonic) -> None:
        self.url = url
        self.shown = shown_url(url)
        password = urlsplit(url).password
        if password:
            register_secret(password)
        self._clock = clock
        self._lock = threading.Lock()
        # per loop: the client and its registered scripts (by their text)
        self._clients: dict[asyncio.AbstractEventLoop, tuple[Any, dict[str, Any]]] = {}
        self._down_until = 0.0
        self.down = False

    def _connection(self) -> tuple[Any, dict[str, Any]] | None:
        """This loop's client and scripts; None while Redis is known to be down."""
        if self.down and self._clock() < self._down_until:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._clients.get(loop)
            if found is None:
                for gone in [other for other in self._clients if other.is_closed()]:
                    del self._clients[gone]
                client = aioredis.Redis.from_url(
                    self.url,
                    socket_timeout=REDIS_TIMEOUT,
                    socket_connect_timeout=REDIS_TIMEOUT,
                    retry=Retry(NoBackoff(), 0),  # a slow Redis costs one timeout, not four
                )
                found = self._clients[loop] = (client, {})
            return found

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = self._clock() + RETRY_SECONDS
            if self.down:
                return
            self.down = True
        logger.warning(
            "Redis at %s is unreachable (%s): budgets and rate limits are this worker's own "
            "until it is back (retried every %g s)",
            self.shown,
            type(exc).__name__,
            RETRY_SECONDS,
        )

    def _ok(self) -> None:
        if not self.down:
            return
        with self._lock:
            was_down, self.down = self.down, False
        if was_down:
            logger.warning(
                "Redis at %s is back: budgets and rate limits are shared again", self.shown
            )

    async def evaluate(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script atomically; its answer, or None when Redis cannot answer now.
        The scripts here never answer nil."""
        connection = self._connection()
        if connection is None:
            return None
        client, scripts = connection
        runner = scripts.get(script)
        if runner is None:
            runner = scripts[script] = client.register_script(script)
        try:
            answer = await runner(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._ok()
        return answer

    async def take(self, keys: list[str], args: list[float]) -> float | None:
        """The wait from the shared buckets, or None when Redis cannot answer now."""
        raw = await self.evaluate(TAKE_SCRIPT, keys, [*args, BUCKET_TTL])
        return None if raw is None else float(raw)

    async def settle(self, key: str, per_minute: int, delta: float) -> bool:
        return await self.evaluate(SETTLE_SCRIPT, [key], [per_minute, delta]) is not None

    async def aclose(self) -> None:
        """Close this loop's client; the clients of other loops are dropped."""
        with self._lock:
            clients, self._clients = self._clients, {}
        found = clients.get(asyncio.get_running_loop())
        if found is not None:
            try:
                await found[0].aclose()
            except (RedisError, OSError):
                logger.debug("closing the Redis client failed")


__all__ = [
    "REDIS_URL_ENV",
    "RedisStore",
    "shown_url",
]
