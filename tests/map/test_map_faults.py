"""Faults during a map: a process killed (SIGKILL) while its cached map is writing answers
leaves a cache that the next run opens and answers from, and a provider that refuses some
rows' connections fails those rows only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from n3_notebook import LLMError, OpenAIProvider, RetryConfig, amap
from n3_notebook.core.cache import CACHE_DIR_ENV, ResponseCache
from n3_notebook.emulator import Emulator, run_emulator

KEY = "sk-test-KEY-0123456789"
ROWS = [f"question {i}" for i in range(400)]
KILL_AFTER = 30

_MAPPER = textwrap.dedent(
    """
    import sys
    from n3_notebook import MapProgress, OpenAIProvider, map_prompts

    rows = [f"question {i}" for i in range(400)]

    def on_update(p):
        print("done", p.done, flush=True)

    provider = OpenAIProvider("gpt-4o-mini", base_url=sys.argv[1], api_key="sk-test-KEY-0123456789")
    map_prompts("{row}", rows, model=provider, cache=True, max_concurrent=8, max_tokens=20,
                progress=MapProgress(on_update=on_update))
    print("finished", flush=True)
    """
)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0.002, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> Path:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    emu.reset()
    return tmp_path / "cache"


def openai(emu: Emulator, **kw: object) -> OpenAIProvider:
    return OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY, **kw)  # type: ignore[arg-type]


def _kill_a_cached_map(emu: Emulator, cache_home: Path) -> int:
    """Run a cached map in a child process, SIGKILL it once KILL_AFTER rows are done
    (answers are still being written); the rows it reported done."""
    env = {**os.environ, CACHE_DIR_ENV: str(cache_home)}
    child = subprocess.Popen(
        [sys.executable, "-c", _MAPPER, emu.base_url("openai")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    done = 0
    try:
        for line in child.stdout:  # the child writes an answer to the cache per row
            if line.startswith("done "):
                done = int(line.split()[1])
                if done >= KILL_AFTER:
                    break
            assert not line.startswith("finished"), "the map ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    return done


async def test_a_process_killed_during_a_cached_map_leaves_a_cache_that_answers(
    emu: Emulator, cache_home: Path
) -> None:
    done = _kill_a_cached_map(emu, cache_home)
    assert done >= KILL_AFTER
    sent_by_child = len([r for r in emu.records if r.body])

    stats = ResponseCache(cache_home).stats()
    assert stats.error is None and stats.entries >= KILL_AFTER
    result = await amap(
        "{row}", ROWS, model=openai(emu), cache=True, max_concurrent=8, max_tokens=20
    )
    assert not result.errors and len(result) == len(ROWS)
    assert result.cached >= done  # every answer the child finished is answered from the file
    sent_now = len([r for r in emu.records if r.body]) - sent_by_child
    assert sent_now == len(ROWS) - result.cached
    assert ResponseCache(cache_home).stats().entries == len(ROWS)


async def test_a_provider_that_refuses_some_rows_fails_only_those() -> None:
    """Rows whose connection is refused (a dead upstream for them) fail with a clear error;
    every other row is answered."""
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        live = emulator.base_url("openai")

        async def route(request: httpx.Request) -> httpx.Response:
            body = request.content.decode()
            if '"question 1' in body:  # question 1, 10-19, 100-199: refused
                raise httpx.ConnectError("connection refused", request=request)
            async with httpx.AsyncClient() as client:
                upstream = await client.post(
                    f"{live}/chat/completions",
                    content=request.content,
                    headers={"authorization": request.headers["authorization"]},
                )
                return httpx.Response(
                    upstream.status_code, content=upstream.content, headers=upstream.headers
                )

        client = httpx.AsyncClient(transport=httpx.MockTransport(route))
        provider = OpenAIProvider(
            "gpt-4o-mini",
            base_url="http://upstream.invalid/v1",
            api_key=KEY,
            http_client=client,
            retry=RetryConfig(max_attempts=2, base_delay=0.01, max_delay=0.02),
        )
        rows = ROWS[:200]
        result = await amap("{row}", rows, model=provider, max_concurrent=10)
        await client.aclose()
    refused = {i for i, row in enumerate(rows) if row.startswith("question 1")}
    assert set(result.errors) == refused
    assert all(isinstance(e, LLMError) for e in result.errors.values())
    assert all(result[i] is not None for i in range(len(rows)) if i not in refused)
