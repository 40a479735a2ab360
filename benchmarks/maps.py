"""Maps: one template over many rows with amap(), against the emulator in its own process.

1. 10,000 rows under a requests-per-minute budget that the emulator enforces (429 past
   it). A real 600 requests/min budget would take 16.7 minutes, so the clock is scaled:
   both the budget and the emulator's limit are 600 x SCALE per minute, which is the same
   shape (wall / minimum, 429s, memory) in 1/SCALE of the time. The emulator's budget holds
   one second's worth (as OpenAI documents for its own limits). Two runs: the caller
   gives the budget; the budget is learned from the x-ratelimit-* headers alone.
2. The same 10,000 rows again with cache=True: every row answered from the SQLite cache.
3. 1,000 rows at max_concurrent=10, each answer ~0.5 s (10 tokens x 50 ms), default
   timeouts: how many rows time out (the issue measured 700 of 1,000 with a gather loop).

With N3_LITELLM_PYTHON naming a Python that has litellm (not a dependency here), the same
workloads run through LiteLLM (benchmarks/litellm_peer.py) against the same emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TITLE = "Maps: amap over 10,000 rows (rate-limited, cached replay) and 1,000 slow rows"

SCALE = 30
RPM = 600
ROWS, QUICK_ROWS = 10_000, 600
LEARNED_ROWS, QUICK_LEARNED_ROWS = 2_000, 600
SLOW_ROWS, QUICK_SLOW_ROWS = 1_000, 100
SLOW_TOKENS, SLOW_TOKEN_DELAY = 10, 0.05
WINDOW = 50
LITELLM_ENV = "N3_LITELLM_PYTHON"
LITELLM_SLOW_ROWS = 100
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "litellm_peer.py")


@contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """`python -m n3_notebook.emulator` on a free port; yields its OpenAI base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "n3_notebook.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        while not url:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the emulator did not start")
            if line.startswith("openai "):
                url = line.split()[1]
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _minimum(rows: int, per_minute: float) -> float:
    """The least wall time a budget allows: one second's burst at once, then its rate."""
    rate = per_minute / 60
    return max(0.0, rows - rate) / rate


def _litellm(kind: str, url: str, rows: int, width: int) -> dict[str, Any] | None:
    """One LiteLLM workload in the Python N3_LITELLM_PYTHON names; None without it."""
    python = os.environ.get(LITELLM_ENV)
    if not python:
        return None
    proc = subprocess.run(
        [python, PEER, kind, url, str(rows), str(width)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    got: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    got["rows"] = rows
    got["rows_per_s"] = rows / got["wall_s"]
    return got


def _ratio(row: dict[str, Any], minimum: float) -> float | None:
    return row["wall_s"] / minimum if minimum > 0 else None


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _map(url: str, rows: int, **options: Any) -> dict[str, Any]:
    from n3_notebook import LLMTimeoutError, MapProgress, OpenAIProvider, RateLimitError, amap
    from n3_notebook.core.limits import rate_group, reset_rate_groups

    reset_rate_groups()
    provider = OpenAIProvider("gpt-4o-mini", base_url=url, api_key="bench")
    peak_tasks = 0

    def on_update(_: MapProgress) -> None:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))

    rss0 = _peak_rss_mib()
    t0 = time.perf_counter()
    async with provider:
        result = await amap(
            "Label row {row}",
            (str(i) for i in range(rows)),
            model=provider,
            progress=MapProgress(on_update=on_update),
            **options,
        )
    wall = time.perf_counter() - t0
    stats = rate_group(provider.name, provider.base_url, provider.model).stats()
    errors = list(result.errors.values())
    return {
        "rows": rows,
        "wall_s": wall,
        "rows_per_s": rows / wall,
        "errors": len(errors),
        "timeouts": sum(isinstance(e, LLMTimeoutError) for e in errors),
        "rate_limited_rows": sum(isinstance(e, RateLimitError) for e in errors),
        "client_429s": stats.rate_limited,
        "cached": result.cached,
        "peak_tasks": peak_tasks,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_growth_mib": _peak_rss_mib() - rss0,
    }


async def _run(quick: bool) -> dict[str, Any]:
    rows_n = QUICK_ROWS if quick else ROWS
    learned_n = QUICK_LEARNED_ROWS if quick else LEARNED_ROWS
    slow_n = QUICK_SLOW_ROWS if quick else SLOW_ROWS
    limit = RPM * SCALE
    minimum = _minimum(rows_n, limit)
    out: list[dict[str, Any]] = []
    budget = [
        "--requests-per-minute",
        str(limit),
        "--burst-seconds",
        "1",
        "--token-delay",
        "0",
        "--first-token-delay",
        "0",
    ]
    with emulator_process(*budget) as url:
        given = await _map(
            url,
            rows_n,
            requests_per_minute=limit,
            max_concurrent=WINDOW,
            max_tokens=5,
            cache=True,
        )
        given.update(name=f"budget given, {RPM}/min x{SCALE}", vs_minimum=_ratio(given, minimum))
        out.append(given)
        replay = await _map(url, rows_n, max_concurrent=WINDOW, max_tokens=5, cache=True)
        replay.update(name="cached replay", vs_minimum=None)
        out.append(replay)
    with emulator_process(*budget) as url:
        learned = await _map(url, learned_n, max_concurrent=WINDOW, max_tokens=5)
        learned.update(
            name=f"budget learned from headers, {RPM}/min x{SCALE}",
            vs_minimum=_ratio(learned, _minimum(learned_n, limit)),
        )
        out.append(learned)
        peer = _litellm("budget", url, learned_n, WINDOW)
        if peer is not None and "wall_s" in peer:
            peer.update(
                name=f"LiteLLM acompletion, window {WINDOW}, budget {RPM}/min x{SCALE}",
                vs_minimum=_ratio(peer, _minimum(learned_n, limit)),
            )
            out.append(peer)
    slow = ["--token-delay", str(SLOW_TOKEN_DELAY), "--first-token-delay", "0"]
    with emulator_process(*slow) as url:
        paced = await _map(url, slow_n, max_concurrent=10, max_tokens=SLOW_TOKENS)
        ideal = slow_n / 10 * SLOW_TOKENS * SLOW_TOKEN_DELAY
        paced.update(name="~0.5 s answers, max_concurrent=10", vs_minimum=paced["wall_s"] / ideal)
        out.append(paced)
        peer = _litellm("slow", url, LITELLM_SLOW_ROWS, 10)
        if peer is not None and "wall_s" in peer:
            ideal = LITELLM_SLOW_ROWS / 10 * SLOW_TOKENS * SLOW_TOKEN_DELAY
            peer.update(
                name="LiteLLM batch_completion, ~0.5 s answers, 10 workers",
                vs_minimum=peer["wall_s"] / ideal,
            )
            out.append(peer)
    return {"rows": out, "limit": limit, "minimum": minimum}


def run(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["N3_CACHE_DIR"] = cache_dir
        try:
            got = asyncio.run(_run(quick))
        finally:
            os.environ.pop("N3_CACHE_DIR", None)
    rows = got["rows"]
    mine = [r for r in rows if not r["name"].startswith("LiteLLM")]
    given, replay, learned, paced = mine
    peers = {r["name"]: r for r in rows if r["name"].startswith("LiteLLM")}
    summary: dict[str, Any] = {
        "rate_limited_wall_vs_minimum": given["vs_minimum"],
        "rate_limited_429s": given["client_429s"],
        "learned_wall_vs_minimum": learned["vs_minimum"],
        "learned_429s": learned["client_429s"],
        "cached_replay_rows_per_s": replay["rows_per_s"],
        "cached_replay_s": replay["wall_s"],
        "slow_rows_timeouts": paced["timeouts"],
        "peak_rss_mib": max(r["peak_rss_mib"] for r in mine),
        "peak_tasks": max(r["peak_tasks"] for r in mine),
        **{
            f"litellm_{'budget' if 'budget' in name else 'slow'}_vs_minimum": r["vs_minimum"]
            for name, r in peers.items()
        },
        "target": "wall <= 1.1x the budget's minimum, no 429 once paced; 10,000 cached rows "
        "< 2 s; 0 timeouts at max_concurrent=10",
    }
    return {
        "rows": rows,
        "columns": [
            "name",
            "rows",
            "wall_s",
            "vs_minimum",
            "rows_per_s",
            "errors",
            "timeouts",
            "client_429s",
            "cached",
            "peak_tasks",
            "peak_rss_mib",
        ],
        "summary": summary,
        "params": {
            "scale": SCALE,
            "requests_per_minute": RPM,
            "scaled_limit_per_minute": got["limit"],
            "window": WINDOW,
            "slow_answer": f"{SLOW_TOKENS} tokens x {SLOW_TOKEN_DELAY} s",
        },
        "notes": [
            f"The clock is scaled x{SCALE}: the budget and the emulator's limit are both "
            f"{RPM}x{SCALE} requests/min, so 10,000 rows take ~{ROWS / (RPM * SCALE / 60):.0f} s "
            "instead of 16.7 min; vs_minimum is wall / ((rows - one second's burst) / rate).",
            "The emulator runs in its own process; peak RSS is the client process's.",
            "peak_tasks counts every task on the loop (the map's in-flight rows plus "
            "the runner's own), sampled as rows finish.",
            "LiteLLM rows (when N3_LITELLM_PYTHON is set) run in their own interpreter "
            "against the same emulator; 'errors' there are calls that failed after "
            "LiteLLM's own retries (num_retries=3). LiteLLM has no client-side limit for "
            "a plain call, and batch_completion a thread pool: the LiteLLM slow row is "
            f"{LITELLM_SLOW_ROWS} rows.",
        ],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2, default=str))
