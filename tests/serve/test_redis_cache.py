"""The service's response cache in a real redis-server (started on a free loopback port,
stopped by its PID): an answer kept by one instance (another process) is served by another
without a request; values are JSON with a TTL; killing Redis makes the cache a miss with one
logged warning and fails no call; a gateway with a Redis URL installs the cache while it runs."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

redis = pytest.importorskip("redis")

from n3_notebook import LLMResponse, OpenAIProvider, Usage  # noqa: E402
from n3_notebook.core.cache import response_cache, use_response_cache  # noqa: E402
from n3_notebook.emulator import Emulator, run_emulator  # noqa: E402
from n3_notebook.serve.redis_cache import (  # noqa: E402
    CACHE_TTL_ENV,
    DEFAULT_TTL,
    KEY_PREFIX,
    RedisResponseCache,
    cache_ttl,
)

from .conftest import RedisServer  # noqa: E402

KEY = "sk-secret-KEY-do-not-store-0123456789"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture
def installed() -> Iterator[list[RedisResponseCache]]:
    """Caches a test installs as the process-wide one; the SQLite file again after."""
    caches: list[RedisResponseCache] = []
    yield caches
    use_response_cache(None)
    for c in caches:
        c.close()


def answer(text: str = "hello") -> LLMResponse:
    return LLMResponse(
        content=text,
        model="m",
        provider="openai",
        finish_reason="stop",
        usage=Usage.of(3, 4),
        raw_finish_reason="stop",
        request_id="req_1",
    )


_INSTANCE_A = textwrap.dedent(
    """
    import sys
    from n3_notebook import OpenAIProvider
    from n3_notebook.core.cache import use_response_cache
    from n3_notebook.serve.redis_cache import RedisResponseCache

    use_response_cache(RedisResponseCache(sys.argv[1]))
    p = OpenAIProvider("gpt-4o-mini", base_url=sys.argv[2], api_key=sys.argv[3])
    r = p.generate("Which cache?", cache=True, temperature=0)
    assert not r.metadata.get("cached")
    print(r.content)
    """
)


async def test_an_answer_kept_by_one_instance_is_served_by_another(
    emu: Emulator, redis_server: RedisServer, installed: list[RedisResponseCache]
) -> None:
    emu.reset()
    base = emu.base_url("openai")
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    a = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _INSTANCE_A, redis_server.url, base, KEY],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert a.returncode == 0, a.stderr
    assert len(emu.records) == 1
    b = RedisResponseCache(redis_server.url)
    installed.append(b)
    use_response_cache(b)
    async with OpenAIProvider("gpt-4o-mini", base_url=base, api_key=KEY) as p:
        chunks = [c async for c in p.stream_generate("Which cache?", cache=True, temperature=0)]
        whole = await p.agenerate("Which cache?", cache=True, temperature=0)
    assert len(emu.records) == 1  # instance B sent nothing
    assert "".join(c.content for c in chunks) == a.stdout.rstrip("\n")
    assert (chunks[-1].metadata or {}).get("cached") is True
    assert whole.metadata["cached"] is True and whole.content == a.stdout.rstrip("\n")
    assert b.stats().hits == 2 and b.stats().entries == 1


def test_values_are_json_with_a_ttl(redis_server: RedisServer) -> None:
    cache = RedisResponseCache(redis_server.url, ttl=30)
    try:
        assert cache.put("k1", answer("kept"))
        raw = redis.Redis.from_url(redis_server.url)
        try:
            blob = raw.get(KEY_PREFIX + "k1")
            assert orjson.loads(blob)["content"] == "kept"  # JSON, not a pickle
            assert 0 < raw.ttl(KEY_PREFIX + "k1") <= 30
            raw.set(KEY_PREFIX + "bad", b"\x80\x04not json")  # a foreign value is a miss
        finally:
            raw.close()
        got = cache.get("k1")
        assert got is not None and got.content == "kept" and got.metadata["cached"] is True
        assert cache.get("bad") is None and cache.get("absent") is None
        assert not cache.put("cut", LLMResponse("x", "m", "openai", "error", Usage.of(1, 1)))
        assert cache.clear() == 2 and cache.stats().entries == 0
    finally:
        cache.close()


def test_ttl_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_TTL_ENV, raising=False)
    assert cache_ttl() == DEFAULT_TTL
    monkeypatch.setenv(CACHE_TTL_ENV, "90")
    assert cache_ttl() == 90
    monkeypatch.setenv(CACHE_TTL_ENV, "0")
    assert cache_ttl() is None
    for bad in ("soon", "-1"):
        monkeypatch.setenv(CACHE_TTL_ENV, bad)
        with pytest.raises(ValueError, match=CACHE_TTL_ENV):
            cache_ttl()


async def test_killing_redis_makes_the_cache_a_miss_without_failing(
    emu: Emulator,
    redis_server: RedisServer,
    installed: list[RedisResponseCache],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RedisResponseCache(redis_server.url)
    installed.append(cache)
    use_response_cache(cache)
    emu.reset()
    async with OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY) as p:
        await p.agenerate("before", cache=True)
        assert (await p.agenerate("before", cache=True)).metadata["cached"] is True
        caplog.set_level(logging.WARNING, logger="n3_notebook.serve")
        redis_server.stop()
        for _ in range(3):
            r = await p.agenerate("before", cache=True)
            assert r.content and not r.metadata.get("cached")
    assert len(emu.records) == 4
    warnings = [r.getMessage() for r in caplog.records if "Redis" in r.getMessage()]
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert cache.stats().error is not None and cache.clear() == 0


def test_a_gateway_with_redis_uses_the_redis_cache_while_it_runs(
    serve: Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, "60")
    server = serve(redis_url=redis_server.url)
    cache = response_cache()
    assert isinstance(cache, RedisResponseCache)
    assert cache.ttl == 60 and cache.path == redis_server.url
    server.stop()
    assert not isinstance(response_cache(), RedisResponseCache)


def test_a_bad_ttl_is_refused_before_anything_listens(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, "a week")
    with pytest.raises(ValueError, match="N3_CACHE_TTL='a week' is not a number"):
        serve(redis_url="redis://127.0.0.1:1/0")
