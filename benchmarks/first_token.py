"""First-token overhead: time from sending a request to the first text, on a connection
that is reused (so connection setup is not what is measured), 50 short streams per client.
Peers in the same run: a raw socket, bare httpx with our decoder, the official SDKs."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from typing import Any

from . import clients as c
from .stream_server import ServerProcess

TITLE = "First-token overhead: request to first text on a reused connection"
REQUESTS = 50
QUICK_REQUESTS = 10
MODEL = "bench-5-0"


async def _measure(client: Any, n: int) -> dict[str, Any]:
    for _ in range(3):  # warm the connection and any lazy imports
        await client.first_text(MODEL)
    times = [await client.first_text(MODEL) for _ in range(n)]
    return {
        "name": client.name,
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": sorted(times)[int(len(times) * 0.9) - 1] * 1000,
    }


async def _run(quick: bool) -> list[dict[str, Any]]:
    n = QUICK_REQUESTS if quick else REQUESTS
    rows = []
    with ServerProcess() as url:
        makers: list[Callable[[], Any]] = [
            lambda: c.RawClient(url),
            lambda: c.HttpxOursClient(url),
            lambda: c.OpenAISDKClient(url),
            lambda: c.AnthropicSDKClient(url),
            lambda: c.OursClient(url),
            lambda: c.OursClient(url, anthropic=True),
        ]
        for make in makers:
            try:
                client = make()
            except ImportError:
                continue
            try:
                rows.append(await _measure(client, n))
            finally:
                await client.aclose()
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    rows = asyncio.run(_run(quick))
    by = {r["name"]: r for r in rows}
    bare = by["httpx + n3 decoder"]["median_ms"]
    for r in rows:
        r["vs_bare_httpx"] = r["median_ms"] / bare
    return {
        "rows": rows,
        "columns": ["name", "median_ms", "p90_ms", "vs_bare_httpx"],
        "summary": {
            "ours_openai_vs_bare_httpx": by["n3_notebook OpenAIProvider"]["vs_bare_httpx"],
            "ours_anthropic_vs_bare_httpx": by["n3_notebook AnthropicProvider"]["vs_bare_httpx"],
            "target": "<= 1.3x bare httpx",
        },
        "params": {"requests": QUICK_REQUESTS if quick else REQUESTS, "model": MODEL},
        "notes": ["Each request's stream is read to its end so the connection is reused."],
    }
