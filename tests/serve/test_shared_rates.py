"""The provider core's waiting rate groups shared through a real redis-server
(serve/shared_rates.py): two groups with their own Redis clients, as two processes have,
spend one budget; a 429 seen by one pauses and cuts the other; losing Redis falls back to
each group's own buckets with one warning; a cancelled waiter gives its units back; a call
from another event loop uses the local buckets. Then two `n3 serve` processes against the
emulator keep one combined rate. Rates are scaled up so the whole file takes seconds."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

pytest.importorskip("redis")

from n3_notebook.core import limits
from n3_notebook.core.limits import (
    BACKOFF_FACTOR,
    BURST_SECONDS,
    RateGroup,
    rate_store,
    set_rate_store,
)
from n3_notebook.core.rate_store import RATE_PREFIX, RateBudget
from n3_notebook.serve.shared_budgets import RedisStore
from n3_notebook.serve.shared_rates import RedisRateStore, rate_key

from .conftest import RedisServer

KEY = ("openai", "http://upstream.test/v1", "gpt-4o-mini")
Pair = tuple[RateGroup, RateGroup, list[RedisStore]]


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[Callable[..., Pair]]:
    """pair(rpm=..., tpm=...) -> two groups of one key, each with its own Redis client."""
    stores: list[RedisStore] = []

    def make(rpm: float | None = None, tpm: float | None = None) -> Pair:
        groups = []
        for _ in range(2):
            store = RedisStore(redis_server.url)
            stores.append(store)
            group = RateGroup(KEY, store=RedisRateStore(store))
            group.configure(rpm, tpm)
            groups.append(group)
        return groups[0], groups[1], stores

    yield make
    for store in stores:
        await store.aclose()


def _group_hash(redis_server: RedisServer) -> dict[bytes, bytes]:
    """The fields of KEY's group as Redis holds them."""
    client = pytest.importorskip("redis").Redis.from_url(redis_server.url)
    try:
        fields: dict[bytes, bytes] = client.hgetall(rate_key(KEY))
        return fields
    finally:
        client.close()


async def _hammer(group: RateGroup, until: float, granted: list[float]) -> None:
    while time.monotonic() < until:
        await group.acquire()
        granted.append(time.monotonic())


async def test_two_groups_keep_one_combined_rate(pair: Callable[..., Pair]) -> None:
    """Four callers on each of two groups for two seconds at 3,000 a minute: the requests let
    through stay within 1.05x of one budget (a burst, then the rate), where two budgets of
    their own would let through twice that."""
    a, b, _ = pair(rpm=3000)
    rate, seconds = 3000 / 60, 2.0
    granted: list[float] = []
    t0 = time.monotonic()
    until = t0 + seconds
    callers = [_hammer(g, until, granted) for g in (a, b) for _ in range(4)]
    await asyncio.wait_for(asyncio.gather(*callers), 10)
    within = [t for t in granted if t <= until]
    allowed = rate * BURST_SECONDS + rate * seconds
    assert allowed * 0.8 <= len(within) <= allowed * 1.05, (len(within), allowed)
    assert a.stats().requests > 10 and b.stats().requests > 10  # both spent the one budget


async def test_a_429_seen_by_one_pauses_and_cuts_the_other(
    pair: Callable[..., Pair], redis_server: RedisServer
) -> None:
    a, b, _ = pair(rpm=6000)
    assert await b.acquire() == 0.0
    await a.report(429, {}, 0.6)
    t0 = time.monotonic()
    await b.acquire()
    assert time.monotonic() - t0 >= 0.5  # b never saw the 429, yet it waited it out
    fields = _group_hash(redis_server)
    assert float(fields[b"cf"]) == pytest.approx(BACKOFF_FACTOR)


async def test_an_exhausted_budget_header_pauses_the_other_and_limits_are_shared(
    pair: Callable[..., Pair],
) -> None:
    a, b, _ = pair()
    headers = {
        "x-ratelimit-limit-requests": "120",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s",  # one request back after 30/120 s
        "x-ratelimit-limit-tokens": "90000",
    }
    await a.report(200, headers, None)
    t0 = time.monotonic()
    await b.acquire()
    assert time.monotonic() - t0 >= 0.2
    assert (b.learned_rpm, b.learned_tpm) == (120, 90000)
    assert b.counts_tokens  # learned from a response only `a` saw


async def test_requests_sent_before_the_rate_was_known_are_owed_by_every_process(
    pair: Callable[..., Pair], redis_server: RedisServer
) -> None:
    """Eight requests through `a` before any limit is known, then `b` learns 1,200 a minute
    (a burst of 20) from a response: the upstream counted the eight, so about 12 more go at
    once, whichever process sends them."""
    a, b, _ = pair()
    for _ in range(8):
        assert await a.acquire() == 0.0
    await b.report(200, {"x-ratelimit-limit-requests": "1200"}, None)
    free = 0
    for group in (a, b) * 8:
        taken = await group.store.reserve(group.key, group._budget(), 0)  # type: ignore[union-attr]
        assert taken is not None
        free += taken.wait == 0.0
    assert 12 <= free <= 13, free  # 13: a twentieth of a second passed on a slow machine
    fields = _group_hash(redis_server)
    assert b"un" not in fields and b"ut" not in fields  # the debt went into the bucket


async def test_killing_redis_falls_back_to_local_with_one_warning(
    pair: Callable[..., Pair], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, stores = pair(rpm=60_000)
    for _ in range(5):
        await a.acquire()
        await b.acquire()
    caplog.set_level(logging.WARNING, logger="n3_notebook.serve")
    redis_server.stop()
    for _ in range(20):  # every acquire answers at once, from each group's own buckets
        await asyncio.wait_for(a.acquire(), 2)
        await asyncio.wait_for(b.acquire(), 2)
    await asyncio.wait_for(a.report(429, {}, 0.01), 2)
    assert a.stats().requests == b.stats().requests == 25
    for store in stores:
        assert store.down
    warnings = [r.getMessage() for r in caplog.records if "Redis" in r.getMessage()]
    assert len(warnings) == len(stores)  # one per worker's connection, not one per call
    assert all("unreachable" in w and "rate limits" in w for w in warnings)


async def test_a_stalled_redis_is_bypassed_after_its_short_timeout(
    pair: Callable[..., Pair], redis_server: RedisServer
) -> None:
    a, _, stores = pair(rpm=60_000)
    await a.acquire()
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for _ in range(10):
            await asyncio.wait_for(a.acquire(), 5)
        assert time.monotonic() - t0 < 3  # one short timeout, then the local buckets
        assert stores[0].down
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


async def test_a_cancelled_waiter_gives_its_units_back(pair: Callable[..., Pair]) -> None:
    a, b, _ = pair(rpm=60)  # a burst of one, then one a second
    assert await a.acquire() == 0.0
    waiter = asyncio.create_task(b.acquire())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    store = a.store
    assert store is not None
    for _ in range(200):  # the give-back runs beside the cancelled waiter
        if not limits._giving_back:
            break
        await asyncio.sleep(0.01)
    taken = await store.reserve(KEY, RateBudget(60), 0)
    assert taken is not None
    # the returned slot means the next one waits about one interval, not two
    assert taken.wait == pytest.approx(1.0, abs=0.15)


def test_each_event_loop_gets_its_own_client(redis_server: RedisServer) -> None:
    """The blocking facade runs calls on private loops in threads, and redis-py's asyncio
    client belongs to one loop: a call from another loop, while the first one runs, gets a
    client of its own (one budget still), and a closed loop's client is dropped."""
    store = RedisStore(redis_server.url)
    rates = RedisRateStore(store)
    budget = RateBudget(60)  # a burst of one, then one a second
    home = asyncio.new_event_loop()
    try:
        first = home.run_until_complete(rates.reserve(KEY, budget, 0))
        assert first is not None and first.wait == 0.0
        results: list[Any] = []

        def other_loop() -> None:
            async def go() -> None:
                results.append(await rates.reserve(KEY, budget, 0))

            asyncio.run(go())

        thread = threading.Thread(target=other_loop)
        thread.start()
        thread.join(10)
        assert results[0] is not None and results[0].wait == pytest.approx(1.0, abs=0.1)
        assert len(store._clients) == 2
        again = home.run_until_complete(rates.reserve(KEY, budget, 0))
        assert again is not None and again.wait == pytest.approx(2.0, abs=0.1)
        home.run_until_complete(store.aclose())
    finally:
        home.close()
    assert asyncio.run(rates.reserve(KEY, budget, 0)) is not None
    assert asyncio.run(rates.reserve(KEY, budget, 0)) is not None
    assert len(store._clients) == 1  # the closed loops' clients are gone


def test_keys_are_namespaced_and_never_hold_credentials() -> None:
    key = rate_key(("openai", "https://user:sk-live-0123456789abcdef@api.example/v1", "m"))
    assert key.startswith(f"{RATE_PREFIX}:openai|") and key.endswith("|m")
    assert "sk-live" not in key and "user:" not in key


def test_the_installed_store_is_used_by_groups_without_their_own() -> None:
    store = RedisRateStore(RedisStore("redis://127.0.0.1:1/0"))
    previous = set_rate_store(store)
    try:
        assert rate_store() is store and RateGroup(KEY)._store() is store
    finally:
        set_rate_store(previous)
    assert rate_store() is previous


CHAINS = """\
chain configured
step a: openai:gpt-4o-mini, max_tokens=5, requests_per_minute=1200
    Say hello.

chain learned
step a: openai:gpt-4o, max_tokens=5
    Say hello.
"""


def _load(servers: list[Any], chain: str, seconds: float) -> int:
    """Eight clients, four on each server, run `chain` for `seconds`; the runs served."""
    stop = time.monotonic() + seconds

    def client(url: str) -> int:
        ok = 0
        with httpx.Client(timeout=30) as c:
            while time.monotonic() < stop:
                r = c.post(f"{url}/chains/{chain}/run", json={})
                assert r.status_code == 200, r.text
                ok += 1
        return ok

    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(client, [s.url for s in servers] * 4))


def test_two_serve_processes_keep_one_upstream_rate(
    spawn: Any, emu: Any, redis_server: RedisServer
) -> None:
    """Two `n3 serve` processes sharing one Redis relay to one upstream at 1,200 requests a
    minute. Configured on the call: what reaches the upstream stays within 1.05x of one
    budget (each process alone would spend the whole of it). Learned from the upstream's
    rate-limit headers (the emulator enforces it): nothing is refused."""
    env = {
        "N3_REDIS_URL": redis_server.url,
        "OPENAI_BASE_URL": emu.base_url("openai"),
        "OPENAI_API_KEY": "sk-dummy-for-the-emulator-0123456789",
    }
    servers = [spawn(CHAINS, **env) for _ in range(2)]
    rate, seconds = 1200 / 60, 2.5
    emu.reset()
    served = _load(servers, "configured", seconds + 0.5)
    opened = sorted(r.opened_at for r in emu.records if r.provider == "openai")
    assert served == len(opened) and opened
    within = [t for t in opened if t <= opened[0] + seconds]
    allowed = rate * BURST_SECONDS + rate * seconds
    assert allowed * 0.7 <= len(within) <= allowed * 1.05, (len(within), allowed)

    emu.set_rate_limits(requests_per_minute=1200, burst_seconds=BURST_SECONDS)
    try:
        emu.reset()
        served = _load(servers, "learned", seconds)
        assert served >= allowed * 0.7, (served, allowed)
        assert emu.rate_limited <= 1, emu.rate_limited  # each alone: a dozen or more
    finally:
        emu.set_rate_limits(None, None)
