"""The service's response cache in Redis (N3_REDIS_URL): one cache for every worker and
every gateway instance, in place of each machine's SQLite file (core/cache.py).

The keys are core/cache.py's (cache_key: provider, endpoint, path and request body, never
the API key) under the prefix "n3:cache:"; the values its JSON (encode_response), never a
pickle, so reading an entry runs no code. Each entry expires after the TTL
(N3_CACHE_TTL seconds, DEFAULT_TTL when unset; 0 keeps entries until Redis evicts them).

The calls ask the cache synchronously (core's CacheBackend), so the client is redis-py's
blocking one with a short socket timeout: one round trip on loopback or a LAN. When Redis
cannot be reached the cache is a miss and keeps nothing, a warning is logged once, and
Redis is tried again after RETRY_SECONDS (recovery is logged too); no request fails for
it."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.exceptions import RedisError

from ..core.cache import (
    CacheStats,
    cacheable,
    decode_response,
    encode_response,
    use_response_cache,
)
from ..core.redact import register_secret
from ..core.types import LLMResponse
from .installed import Installed
from .shared_budgets import REDIS_TIMEOUT, RETRY_SECONDS, shown_url

__all__ = [
    "CACHE_TTL_ENV",
    "DEFAULT_TTL",
    "KEY_PREFIX",
    "RedisResponseCache",
    "cache_ttl",
    "install_cache",
    "uninstall_cache",
]

logger = logging.getLogger("n3_notebook.serve")

CACHE_TTL_ENV = "N3_CACHE_TTL"
#: Seconds an answer stays cached when N3_CACHE_TTL is unset (one week).
DEFAULT_TTL = 7 * 24 * 3600
KEY_PREFIX = "n3:cache:"
_SCAN_COUNT = 1000


def cache_ttl(value: str | None = None) -> int | None:
    """The TTL in seconds from N3_CACHE_TTL (or `value`); None: no expiry (0)."""
    text = os.environ.get(CACHE_TTL_ENV) if value is None else value
    if text is None or not text.strip():
        return DEFAULT_TTL
    try:
        ttl = float(text)
    except ValueError:
        raise ValueError(
            f"{CACHE_TTL_ENV}={text!r} is not a number of seconds; set it to how long a "
            "cached answer is kept (0: until Redis evicts it)"
        ) from None
    if ttl < 0:
        raise ValueError(f"{CACHE_TTL_ENV} must be 0 or more seconds, got {text!r}")
    return None if ttl == 0 else max(1, round(ttl))


class RedisResponseCache:
    """core/cache.py's CacheBackend on one Redis database (see the module docstring)."""

    def __init__(
        self, url: str, ttl: int | None = DEFAULT_TTL, clock: Any = time.monotonic
    ) -> None:
        self.url = url
        self.path = shown_url(url)  # what stats and messages show: no password
        password = urlsplit(url).password
        if password:
            register_secret(password)
        self.ttl = ttl
        self._clock = clock
        self._client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self._lock = threading.Lock()
        self._down_until = 0.0
        self.down = False
        self.error: str | None = None
        self.hits = 0
        self.misses = 0
        self.writes = 0

    # ---------------------------------------------------------------- reachability
    def _ready(self) -> bool:
        return not (self.down and self._clock() < self._down_until)

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = self._clock() + RETRY_SECONDS
            if self.down:
                return
            self.down = True
            self.error = f"Redis unreachable ({type(exc).__name__})"
        logger.warning(
            "Redis at %s is unreachable (%s): the response cache answers nothing until it "
            "is back (retried every %g s)",
            self.path,
            type(exc).__name__,
            RETRY_SECONDS,
        )

    def _ok(self) -> None:
        if self.down:
            with self._lock:
                was_down, self.down, self.error = self.down, False, None
            if was_down:
                logger.warning("Redis at %s is back: the response cache is shared again", self.path)

    # ---------------------------------------------------------------------- access
    def get(self, key: str) -> LLMResponse | None:
        """The cached answer (metadata["cached"] = True), or None on a miss or without Redis."""
        if not self._ready():
            return None
        start = time.perf_counter()
        try:
            blob = self._client.get(KEY_PREFIX + key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._ok()
        response = None
        if isinstance(blob, bytes):
            try:
                response = decode_response(blob, time.perf_counter() - start)
            except (ValueError, KeyError, TypeError):
                response = None  # not one of ours: a miss (it will be rewritten)
        with self._lock:
            if response is None:
                self.misses += 1
            else:
                self.hits += 1
        return response

    def put(self, key: str, response: LLMResponse) -> bool:
        """Keep a complete answer for the TTL; False when it is not kept."""
        if not cacheable(response) or not self._ready():
            return False
        try:
            self._client.set(KEY_PREFIX + key, encode_response(response), ex=self.ttl)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return False
        self._ok()
        with self._lock:
            self.writes += 1
        return True

    def _keys(self) -> list[bytes]:
        return list(self._client.scan_iter(match=KEY_PREFIX + "*", count=_SCAN_COUNT))

    def clear(self) -> int:
        """Delete every cached answer in this database; how many there were."""
        if not self._ready():
            return 0
        try:
            keys = self._keys()
            for i in range(0, len(keys), _SCAN_COUNT):
                self._client.unlink(*keys[i : i + _SCAN_COUNT])
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return 0
        self._ok()
        return len(keys)

    def stats(self) -> CacheStats:
        entries = size = 0
        if self._ready():
            try:
                keys = self._keys()
                pipe = self._client.pipeline(transaction=False)
                for k in keys:
                    pipe.strlen(k)
                size = sum(int(n) for n in pipe.execute())
                entries = len(keys)
            except (RedisError, OSError) as exc:
                self._failed(exc)
            else:
                self._ok()
        return CacheStats(self.path, entries, size, self.hits, self.misses, self.writes, self.error)

    def close(self) -> None:
        try:
            self._client.close()
        except (RedisError, OSError):
            logger.debug("closing the Redis cache client failed")

    def __repr__(self) -> str:
        state = f"bypassed: {self.error}" if self.error else f"{self.hits} hits"
        return f"<RedisResponseCache {self.path} ({state})>"


# The caches of the apps running in this process, the latest one still running in use.
_installed: Installed[RedisResponseCache] = Installed(use_response_cache)


def install_cache(cache: RedisResponseCache) -> None:
    """Make `cache` the process-wide response cache while its app runs."""
    _installed.add(cache)


def uninstall_cache(cache: RedisResponseCache) -> None:
    """Its app stopped: the cache of the latest app still running, else the SQLite file."""
    _installed.remove(cache)
    cache.close()
