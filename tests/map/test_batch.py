"""amap(..., batch_api=True): OpenAI Batch and Anthropic Message Batches against the
emulator's endpoints (fast clock), and those endpoints against the official SDKs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from n3_notebook import (
    AnthropicProvider,
    AuthenticationError,
    ConfigurationError,
    GeminiProvider,
    LLMTimeoutError,
    MapProgress,
    NotFoundError,
    OpenAIProvider,
    amap,
)
from n3_notebook.core.base import BaseProvider
from n3_notebook.core.batch import BatchPolling
from n3_notebook.core.cache import CACHE_DIR_ENV
from n3_notebook.core.mapping import BATCH_PRICE_FACTOR
from n3_notebook.core.pricing import response_cost
from n3_notebook.emulator import Emulator, run_emulator

KEY = "sk-batch-KEY-0123456789"
FAST = BatchPolling(first_delay=0.05, factor=1.5, max_delay=0.2)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        emulator.set_batch_seconds(0.3)
        yield emulator


@pytest.fixture(autouse=True)
def _isolated(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    emu.reset()


def provider(emu: Emulator, name: str, model: str | None = None) -> BaseProvider:
    if name == "openai":
        return OpenAIProvider(model or "gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY)
    return AnthropicProvider(
        model or "claude-3-5-haiku-latest", base_url=emu.base_url("anthropic"), api_key=KEY
    )


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_batch_gives_the_direct_answers_at_half_price(emu: Emulator, name: str) -> None:
    p = provider(emu, name)
    rows = [{"q": f"question {i}"} for i in range(5)]
    result = await amap("Answer {q}", rows, model=p, batch_api=FAST, max_tokens=40)
    assert not result.errors and len(result) == 5
    paths = [r.path for r in emu.records]
    assert not any(path.endswith(("/chat/completions", "/v1/messages")) for path in paths)
    for i, response in enumerate(result):
        assert response is not None and response.metadata["batch"] is True
        direct = await p.agenerate(f"Answer question {i}", max_tokens=40)
        assert response.content == direct.content and response.usage == direct.usage
        assert response.finish_reason == direct.finish_reason
        full = response_cost(direct, p.name, p.model)
        assert full is not None and result.costs[i] == pytest.approx(full * BATCH_PRICE_FACTOR)


async def test_per_request_errors_land_on_their_rows(emu: Emulator) -> None:
    p = provider(emu, "openai", "no-such-model")
    result = await amap("{row}", ["a", "b"], model=p, batch_api=FAST)
    assert set(result.errors) == {0, 1}
    assert all(isinstance(e, NotFoundError) for e in result.errors.values())


async def test_a_provider_without_a_batch_api_says_so_at_once(emu: Emulator) -> None:
    p = GeminiProvider("gemini-2.0-flash", base_url=emu.base_url("gemini"), api_key=KEY)
    with pytest.raises(ConfigurationError, match="no batch API"):
        await amap("{row}", ["a"], model=p, batch_api=True)
    assert emu.records == []


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_cancelling_a_map_cancels_the_remote_batch(emu: Emulator, name: str) -> None:
    emu.set_batch_seconds(30.0)
    try:
        progress = MapProgress()
        task = asyncio.create_task(
            amap("{row}", ["a", "b"], model=provider(emu, name), batch_api=FAST, progress=progress)
        )
        for _ in range(200):
            await asyncio.sleep(0.02)
            if any(r.method == "GET" for r in emu.records):
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert progress.result.cancelled
        assert emu.records[-1].method == "POST" and emu.records[-1].path.endswith("/cancel")
    finally:
        emu.set_batch_seconds(0.3)


async def test_a_batch_that_never_ends_times_out_and_is_cancelled(emu: Emulator) -> None:
    emu.set_batch_seconds(30.0)
    try:
        polling = BatchPolling(first_delay=0.05, max_delay=0.1, timeout=0.5)
        with pytest.raises(LLMTimeoutError, match="did not end"):
            await amap("{row}", ["a"], model=provider(emu, "openai"), batch_api=polling)
        assert emu.records[-1].path.endswith("/cancel")
    finally:
        emu.set_batch_seconds(0.3)


async def test_cached_rows_are_not_sent_again(emu: Emulator) -> None:
    p = provider(emu, "anthropic")
    rows = ["one", "two", "three"]
    first = await amap("{row}", rows, model=p, batch_api=FAST, cache=True)
    emu.reset()
    again = await amap("{row}", rows, model=p, batch_api=FAST, cache=True)
    assert again.cached == 3 and again.texts == first.texts and emu.records == []


def test_the_openai_sdk_runs_a_batch_on_the_emulator(emu: Emulator) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=emu.base_url("openai"), api_key=KEY, max_retries=0)
    line = (
        b'{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": '
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}\n'
    )
    uploaded = client.files.create(file=("in.jsonl", line), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    for _ in range(100):
        batch = client.batches.retrieve(batch.id)
        if batch.status == "completed":
            break
        time.sleep(0.05)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == 1 and batch.output_file_id
    text = client.files.content(batch.output_file_id).text
    assert '"custom_id": "r1"' in text and '"status_code": 200' in text


def test_the_anthropic_sdk_runs_a_batch_on_the_emulator(emu: Emulator) -> None:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(base_url=emu.base_url("anthropic"), api_key=KEY, max_retries=0)
    batch = client.messages.batches.create(
        requests=[
            {
                "custom_id": "r1",
                "params": {
                    "model": "claude-3-5-haiku-latest",
                    "max_tokens": 30,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            }
        ]
    )
    for _ in range(100):
        batch = client.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
        time.sleep(0.05)
    assert batch.processing_status == "ended" and batch.request_counts.succeeded == 1
    results = list(client.messages.batches.results(batch.id))
    assert results[0].custom_id == "r1" and results[0].result.type == "succeeded"


async def test_a_failed_poll_is_retried_and_a_bad_one_is_not() -> None:
    """Against a scripted server: a 503 while polling is tried again; a 401 is not."""
    polls: list[int] = []
    answer = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini",
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    line = {"custom_id": "row-0", "response": {"status_code": 200, "body": answer}}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/files"):
            return httpx.Response(200, json={"id": "file-in"})
        if path.endswith("/batches"):
            return httpx.Response(200, json={"id": "b1", "status": "validating"})
        if path.endswith("/batches/b1"):
            polls.append(1)
            if len(polls) == 1:
                return httpx.Response(503, json={"error": {"message": "busy"}})
            return httpx.Response(
                200, json={"id": "b1", "status": "completed", "output_file_id": "file-out"}
            )
        if path.endswith("/files/file-out/content"):
            return httpx.Response(200, content=json.dumps(line).encode())
        return httpx.Response(404)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = OpenAIProvider(
        "gpt-4o-mini", api_key=KEY, base_url="http://batch.test/v1", http_client=client
    )
    result = await amap("{row}", ["x"], model=p, batch_api=FAST)
    assert result[0] is not None and result[0].content == "hi" and len(polls) == 2

    def refusing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/batches/b1"):
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refusing))
    p = OpenAIProvider(
        "gpt-4o-mini", api_key=KEY, base_url="http://batch.test/v1", http_client=client
    )
    with pytest.raises(AuthenticationError):
        await amap("{row}", ["x"], model=p, batch_api=FAST)
