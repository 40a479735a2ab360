"""The HTTP engine under our providers, on its own: one 20,000-token stream (tokens/s and
client CPU), request to first text on a reused connection, and C paced streams at once
(wall time and client CPU, every text checked), against the benchmark server in its own
process. The raw-socket rows are the ceiling of the same run.

`python -m benchmarks.engine [--quick] [--json FILE]` runs it on its own, so the same
measurement can be taken of another checkout (the "before" of an engine change): run it
from that checkout's root with this file copied in."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from . import clients as c
from ._util import raise_fd_limit
from .stream_server import ServerProcess

TITLE = "HTTP engine: single-stream tok/s, first text, C paced streams (client CPU)"
TOKENS, QUICK_TOKENS = 20_000, 2_000
REPEAT, QUICK_REPEAT = 5, 2
FIRST_REQUESTS, QUICK_FIRST = 50, 10
LEVELS, QUICK_LEVELS = (1000, 4000), (100,)
PACED_TOKENS, PACED_DELAY_MS = 50, 20


async def _single(client: Any, tokens: int, repeat: int) -> tuple[float, float]:
    model = f"bench-{tokens}-0"
    expected = " token" * tokens
    assert await client.stream(model) == expected
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        assert await client.stream(model) == expected
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return tokens / statistics.median(walls), statistics.median(cpus) * 1e6 / tokens


async def _first(client: Any, n: int) -> float:
    for _ in range(3):
        await client.first_text("bench-5-0")
    return statistics.median([await client.first_text("bench-5-0") for _ in range(n)]) * 1000


async def _paced(make: Any, n: int) -> tuple[float, float, int]:
    client = make(n)
    model = f"bench-{PACED_TOKENS}-{PACED_DELAY_MS}"
    expected = " token" * PACED_TOKENS
    try:
        await asyncio.gather(*(client.stream(model) for _ in range(min(n, 20))))
        c0, t0 = time.process_time(), time.perf_counter()
        texts = await asyncio.gather(*(client.stream(model) for _ in range(n)))
        return time.perf_counter() - t0, time.process_time() - c0, sum(t == expected for t in texts)
    finally:
        await client.aclose()


async def _run(quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    clients: dict[str, Callable[..., Any]] = {
        "raw socket": lambda n=10: c.RawClient(url),
        "n3_notebook OpenAIProvider": lambda n=10: c.OursClient(url, concurrency=n),
    }
    with ServerProcess() as url:
        for name, make in clients.items():
            client = make()
            try:
                tps, us = await _single(
                    client, QUICK_TOKENS if quick else TOKENS, QUICK_REPEAT if quick else REPEAT
                )
                first = await _first(client, QUICK_FIRST if quick else FIRST_REQUESTS)
            finally:
                await client.aclose()
            row: dict[str, Any] = {
                "name": name,
                "tokens_per_s": tps,
                "cpu_us_per_token": us,
                "first_text_ms": first,
            }
            for n in QUICK_LEVELS if quick else LEVELS:
                wall, cpu, intact = await _paced(make, n)
                row[f"C{n}_wall_s"] = wall
                row[f"C{n}_cpu_s"] = cpu
                row[f"C{n}_intact"] = intact
            rows.append(row)
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    raise_fd_limit()
    rows = asyncio.run(_run(quick))
    levels = QUICK_LEVELS if quick else LEVELS
    columns = ["name", "tokens_per_s", "cpu_us_per_token", "first_text_ms"]
    for n in levels:
        columns += [f"C{n}_wall_s", f"C{n}_cpu_s", f"C{n}_intact"]
    return {
        "rows": rows,
        "columns": columns,
        "params": {
            "tokens": QUICK_TOKENS if quick else TOKENS,
            "levels": list(levels),
            "paced": f"{PACED_TOKENS} tokens x {PACED_DELAY_MS} ms",
        },
        "notes": [
            "Server: benchmarks/stream_server.py in its own process; CPU is the client's.",
            "first_text_ms: median request-to-first-text on a reused connection.",
        ],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = run(quick=args.quick)
    for r in result["rows"]:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
