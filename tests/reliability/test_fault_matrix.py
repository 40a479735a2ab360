"""Every provider x every fault the emulator injects, over real sockets: the documented
outcome (retried and succeeded, or a typed error), text delivered before a mid-stream
failure kept, every case bounded in time, and the provider still works afterwards."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from n3_notebook import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ContentFilteredError,
    LLMError,
    LLMTimeoutError,
    RetryConfig,
    ServerError,
    StreamConfig,
    StreamProtocolError,
    create_provider,
)
from n3_notebook.emulator import expected_answer, run_emulator

MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
    "cohere": "command-r-plus",
    "ollama": "llama3",
}
PROVIDERS = sorted(MODELS)
PROMPT = "Explain backpressure"
CFG = StreamConfig(stream_timeout=3.0, chunk_timeout=0.3)
RETRY = RetryConfig(max_attempts=3, base_delay=0.01, max_delay=0.1)


@dataclass(frozen=True)
class Case:
    fault: str
    outcome: type[BaseException] | None  # None: the stream succeeds
    retries: int = 0  # expected retries when it succeeds
    partial: int = 0  # text chunks delivered before the error
    config: StreamConfig = CFG


CASES = [
    Case("rate_limit:2", None, retries=2),
    Case("status_500:1", None, retries=1),
    Case("status_503:2", None, retries=2),
    Case("status_529:1", None, retries=1),
    Case("status_500:5", ServerError),  # more failures than attempts: a typed error
    Case("html_error:5", ServerError),
    Case("invalid_key", AuthenticationError),
    Case("midstream_error:4", LLMError, partial=4),
    Case("stall:2@3", LLMTimeoutError, partial=3),
    Case("slow_first:5", LLMTimeoutError, config=StreamConfig(stream_timeout=0.5)),
    Case("disconnect:3", APIConnectionError, partial=3),
    Case("malformed:2", StreamProtocolError, partial=2),
]


@pytest.fixture(scope="module")
def emu():
    with run_emulator(token_delay=0.002, first_token_delay=0.0) as e:
        yield e


def make(emu, name: str, suffix: str = "", **kw):
    return create_provider(
        f"{name}:{MODELS[name]}{suffix}",
        api_key="k-fault-matrix-123456",
        base_url=emu.base_url(name),
        retry=RETRY,
        **kw,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fault)
@pytest.mark.parametrize("name", PROVIDERS)
async def test_fault(emu, name, case):
    emu.reset()
    answer = expected_answer(name, MODELS[name], [{"role": "user", "content": PROMPT}])
    got: list[str] = []
    last = None
    started = time.monotonic()
    async with make(emu, name, f"~{case.fault}") as p:
        if case.outcome is None:
            async for chunk in p.stream_generate(PROMPT, stream_config=case.config):
                got.append(chunk.content)
                last = chunk
            assert "".join(got) == answer.text
            assert last.metadata["retries"] == case.retries
            assert last.finish_reason == "stop"
        else:
            with pytest.raises(case.outcome) as info:
                async for chunk in p.stream_generate(PROMPT, stream_config=case.config):
                    got.append(chunk.content)
            texts = [g for g in got if g]
            assert texts == answer.tokens[: case.partial]  # what arrived is kept, in order
            err = info.value
            assert err.provider == name
            assert "k-fault-matrix" not in str(err) + repr(err)
            if isinstance(err, APIStatusError):
                assert err.status_code is not None and err.provider_message
    assert time.monotonic() - started < 5.0  # nothing hangs
    # every connection of the case is closed, and the provider still works afterwards
    for i in range(len(emu.records)):
        await emu.wait_for_close(i, timeout=2.0)
    async with make(emu, name) as p:
        again = await p.agenerate(PROMPT)
    assert again.content == answer.text


@pytest.mark.parametrize("name", PROVIDERS)
async def test_connection_refused_is_typed_and_bounded(name):
    p = create_provider(
        f"{name}:{MODELS[name]}",
        api_key="k-fault-matrix-123456",
        base_url="http://127.0.0.1:9",
        retry=RETRY,
    )
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as info:
        async for _ in p.stream_generate(PROMPT):
            pass
    assert time.monotonic() - started < 2.0
    assert "could not reach" in str(info.value)
    await p.aclose()


async def test_gemini_blocked_prompt(emu):
    emu.reset()
    async with make(emu, "gemini", "~blocked") as p:
        with pytest.raises(ContentFilteredError):
            async for _ in p.stream_generate(PROMPT):
                pass


async def test_retry_after_is_honoured_not_exceeded(emu):
    """A 429's Retry-After decides the wait (capped at max_delay), not the backoff."""
    emu.reset()
    slow = RetryConfig(max_attempts=2, base_delay=5.0, max_delay=0.2)
    p = create_provider(
        "openai:gpt-4o-mini~rate_limit:1",
        api_key="k-fault-matrix-123456",
        base_url=emu.base_url("openai"),
        retry=slow,
    )
    started = time.monotonic()
    r = await p.agenerate(PROMPT)
    assert r.retries == 1 and time.monotonic() - started < 1.5
    await p.aclose()


async def test_cancel_during_retry_sleep_is_not_retried(emu):
    emu.reset()
    p = create_provider(
        "openai:gpt-4o-mini~status_503:5",
        api_key="k-fault-matrix-123456",
        base_url=emu.base_url("openai"),
        retry=RetryConfig(max_attempts=5, base_delay=1.0, max_delay=1.0),
    )
    task = asyncio.create_task(p.agenerate(PROMPT))
    await asyncio.sleep(0.3)  # first attempt failed, now sleeping before the retry
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.2)
    assert len(emu.records) == 1  # cancellation stopped the retries
    await p.aclose()
