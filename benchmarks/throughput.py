"""Streaming throughput: one 20,000-token stream from the benchmark server (own process,
pre-encoded bytes), read by each client: a raw asyncio socket with a byte-level SSE split
(the ceiling), httpx + our decoder, httpx-sse, the openai and anthropic SDKs, LiteLLM if
installed, and our OpenAIProvider / AnthropicProvider. Tokens per second and client CPU
milliseconds per 1,000 tokens; medians of several runs, ratios within this run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from . import clients as c
from ._util import raise_fd_limit
from .stream_server import ServerProcess

TITLE = "Throughput: one 20,000-token stream, tokens/s and client CPU per 1k tokens"
TOKENS = 20_000
QUICK_TOKENS = 2_000
REPEAT = 5
QUICK_REPEAT = 2


async def _measure(client: Any, model: str, tokens: int, repeat: int) -> dict[str, Any]:
    expected = " token" * tokens
    walls, cpus = [], []
    assert await client.stream(model) == expected, f"{client.name}: wrong text"  # warm-up
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        text = await client.stream(model)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        assert text == expected, f"{client.name}: wrong text"
    walls.sort()
    cpus.sort()
    wall, cpu = walls[len(walls) // 2], cpus[len(cpus) // 2]
    return {
        "name": client.name,
        "tokens_per_s": tokens / wall,
        "cpu_ms_per_1k": cpu * 1000 / (tokens / 1000),
        "wall_ms": wall * 1000,
    }


async def _run(quick: bool) -> list[dict[str, Any]]:
    tokens = QUICK_TOKENS if quick else TOKENS
    repeat = QUICK_REPEAT if quick else REPEAT
    model = f"bench-{tokens}-0"
    rows = []
    with ServerProcess() as url:
        makers = [
            lambda: c.RawClient(url),
            lambda: c.HttpxOursClient(url),
            lambda: c.HttpxSSEClient(url),
            lambda: c.OpenAISDKClient(url),
            lambda: c.LiteLLMClient(url),
            lambda: c.OursClient(url),
            lambda: _named(c.RawClient(url, anthropic=True), "raw socket (anthropic)"),
            lambda: c.AnthropicSDKClient(url),
            lambda: c.OursClient(url, anthropic=True),
        ]
        for make in makers:
            try:
                client = make()
            except ImportError:
                continue
            try:
                rows.append(await _measure(client, model, tokens, repeat))
            finally:
                await client.aclose()
    return rows


def _named(client: Any, name: str) -> Any:
    client.name = name
    return client


def run(quick: bool = False) -> dict[str, Any]:
    raise_fd_limit()
    rows = asyncio.run(_run(quick))
    by = {r["name"]: r for r in rows}
    raw, raw_a = by["raw socket"], by["raw socket (anthropic)"]
    for r in rows:
        peer = raw_a if "nthropic" in r["name"] else raw
        r["vs_raw"] = r["tokens_per_s"] / peer["tokens_per_s"]
    ours_o = by["n3_notebook OpenAIProvider"]
    ours_a = by["n3_notebook AnthropicProvider"]
    summary = {
        "ours_openai_vs_raw": ours_o["vs_raw"],
        "ours_openai_vs_openai_sdk": ours_o["tokens_per_s"] / by["openai SDK"]["tokens_per_s"],
        "ours_anthropic_vs_raw": ours_a["vs_raw"],
        "ours_anthropic_vs_anthropic_sdk": ours_a["tokens_per_s"]
        / by["anthropic SDK"]["tokens_per_s"],
        "target": ">= 0.6x raw, >= 10x openai SDK, >= 3x anthropic SDK",
    }
    return {
        "rows": rows,
        "columns": ["name", "tokens_per_s", "cpu_ms_per_1k", "wall_ms", "vs_raw"],
        "summary": summary,
        "params": {"tokens": QUICK_TOKENS if quick else TOKENS, "repeat": REPEAT},
        "notes": [
            "Server: benchmarks/stream_server.py in its own process, pre-encoded bytes.",
            "CPU is this (client) process only; the text of every run is checked.",
            "LiteLLM appears only when installed.",
        ],
    }
