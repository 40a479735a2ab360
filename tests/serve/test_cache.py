"""The response cache through the service: `cache: true` on /v1/generate and
/v1/generate/stream, `n3_cache: true` on the gateway's /v1/chat/completions. Off by
default; a cached answer comes back at once without a request upstream, also from Redis
when the server has a Redis URL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from n3_notebook.core.cache import CACHE_DIR_ENV
from n3_notebook.serve.redis_cache import KEY_PREFIX

from .conftest import RedisServer, parse_sse, redis_server_path

openai = pytest.importorskip("openai")

PROMPT = {"prompt": "Why is the sky blue?", "model": "openai:gpt-4o-mini", "max_tokens": 12}
HI = [{"role": "user", "content": "Say hi"}]
SLOW_FIRST_TOKEN = 0.4


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: Any) -> Any:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    emu.set_pacing(0.001, SLOW_FIRST_TOKEN)
    yield
    emu.set_pacing(0.001, 0.0)


def upstream_calls(emu: Any) -> int:
    return len([r for r in emu.records if r.body])


def stream_generate(url: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    start = time.perf_counter()
    with httpx.stream("POST", f"{url}/v1/generate/stream", json=body, timeout=30) as r:
        assert r.status_code == 200, r.read()
        events = parse_sse(r.read().decode())
    return events, time.perf_counter() - start


def test_generate_is_uncached_by_default(serve: Any, emu: Any) -> None:
    server = serve()
    for _ in range(2):
        r = httpx.post(f"{server.url}/v1/generate", json=PROMPT, timeout=30)
        assert r.status_code == 200 and r.json()["cached"] is False
    assert upstream_calls(emu) == 2


def test_generate_with_cache_answers_the_second_time_without_a_request(
    serve: Any, emu: Any
) -> None:
    server = serve()
    body = {**PROMPT, "cache": True}
    first = httpx.post(f"{server.url}/v1/generate", json=body, timeout=30).json()
    again = httpx.post(f"{server.url}/v1/generate", json=body, timeout=30).json()
    assert first["cached"] is False and again["cached"] is True
    assert again["text"] == first["text"] and again["usage"] == first["usage"]
    assert again["cost_usd"] == 0.0
    assert upstream_calls(emu) == 1


def test_a_cached_answer_streams_back_at_once(serve: Any, emu: Any) -> None:
    server = serve()
    body = {**PROMPT, "cache": True}
    first, slow = stream_generate(server.url, body)
    again, fast = stream_generate(server.url, body)
    assert upstream_calls(emu) == 1
    text = "".join(e["data"]["text"] for e in first if e["event"] == "token")
    assert text and text == "".join(e["data"]["text"] for e in again if e["event"] == "token")
    assert first[-1]["data"]["cached"] is False and again[-1]["data"]["cached"] is True
    assert again[-1]["data"]["ok"] is True and again[-1]["data"]["cost_usd"] == 0.0
    assert slow >= SLOW_FIRST_TOKEN and fast < SLOW_FIRST_TOKEN
    # the non-streamed route shares the entry (the key is the request, not the route)
    whole = httpx.post(f"{server.url}/v1/generate", json=body, timeout=30).json()
    assert whole["cached"] is True and whole["text"] == text and upstream_calls(emu) == 1


def test_a_bad_cache_value_is_a_422(serve: Any) -> None:
    server = serve()
    r = httpx.post(f"{server.url}/v1/generate", json={**PROMPT, "cache": "maybe"}, timeout=30)
    assert r.status_code == 422 and "cache" in r.text


def test_gateway_caches_with_n3_cache(serve: Any, emu: Any) -> None:
    server = serve()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    plain = client.chat.completions.with_raw_response.create(
        model="openai:gpt-4o-mini", messages=HI, max_tokens=10
    )
    assert "x-n3-cache" not in plain.headers
    answers = []
    for expected in ("miss", "hit"):
        raw = client.chat.completions.with_raw_response.create(
            model="openai:gpt-4o-mini", messages=HI, max_tokens=10, extra_body={"n3_cache": True}
        )
        assert raw.headers["x-n3-cache"] == expected
        answers.append(raw.parse().choices[0].message.content)
    assert answers[0] and answers[0] == answers[1]
    assert upstream_calls(emu) == 2  # the plain call and the first cached one


def test_gateway_streams_a_cached_answer_at_once(serve: Any, emu: Any) -> None:
    server = serve()
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    texts, times, marks = [], [], []
    for _ in range(2):
        start = time.perf_counter()
        raw = client.chat.completions.with_raw_response.create(
            model="openai:gpt-4o-mini",
            messages=HI,
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"n3_cache": True},
        )
        marks.append(raw.headers["x-n3-cache"])
        chunks = list(raw.parse())
        times.append(time.perf_counter() - start)
        texts.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert marks == ["miss", "hit"] and texts[0] and texts[0] == texts[1]
    assert times[0] >= SLOW_FIRST_TOKEN and times[1] < SLOW_FIRST_TOKEN
    assert upstream_calls(emu) == 1


def test_gateway_with_redis_answers_n3_cache_from_redis(serve: Any, emu: Any) -> None:
    """With a Redis URL the answer a request kept is in Redis (a second instance, sharing
    only Redis, serves it without a request upstream)."""
    redis = pytest.importorskip("redis")
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (scripts/install_redis.sh)")
    server = RedisServer()
    try:
        a, b = serve(redis_url=server.url), serve(redis_url=server.url)
        body = {"model": "openai:gpt-4o-mini", "messages": HI, "max_tokens": 10, "n3_cache": True}
        first = httpx.post(f"{a.url}/v1/chat/completions", json=body, timeout=30)
        again = httpx.post(f"{b.url}/v1/chat/completions", json=body, timeout=30)
        assert first.headers["x-n3-cache"] == "miss" and again.headers["x-n3-cache"] == "hit"
        text = first.json()["choices"][0]["message"]["content"]
        assert text and again.json()["choices"][0]["message"]["content"] == text
        assert upstream_calls(emu) == 1
        client = redis.Redis.from_url(server.url)
        assert len(client.keys(f"{KEY_PREFIX}*")) == 1
        client.close()
    finally:
        server.stop()
