"""The maps workloads through LiteLLM, for benchmarks/maps.py (run in a Python that has
litellm installed: N3_LITELLM_PYTHON; LiteLLM is not a dependency of this project).

    python benchmarks/litellm_peer.py budget URL ROWS WINDOW
    python benchmarks/litellm_peer.py slow URL ROWS WORKERS

`budget`: ROWS acompletion calls, WINDOW at a time (a semaphore), LiteLLM's own retries
(num_retries=3), against an emulator that enforces a budget: LiteLLM has no client-side
limit for a plain call, so this is what a hand-written loop gets. `slow`: batch_completion
with max_workers=WORKERS. Prints one JSON line: wall, errors, 429s seen by the server are
counted by the caller."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any


def _quiet() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # optional: N3_LITELLM_PYTHON's

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    return litellm


async def _budget(url: str, rows: int, window: int) -> dict[str, Any]:
    litellm = _quiet()
    gate = asyncio.Semaphore(window)
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        async with gate:
            try:
                await litellm.acompletion(
                    model="openai/gpt-4o-mini",
                    api_base=url,
                    api_key="bench",
                    messages=[{"role": "user", "content": f"Label row {i}"}],
                    max_tokens=5,
                    num_retries=3,
                )
            except Exception:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(rows)))
    return {"wall_s": time.perf_counter() - t0, "errors": errors}


def _slow(url: str, rows: int, workers: int) -> dict[str, Any]:
    litellm = _quiet()
    t0 = time.perf_counter()
    answers = litellm.batch_completion(
        model="openai/gpt-4o-mini",
        api_base=url,
        api_key="bench",
        messages=[[{"role": "user", "content": f"Label row {i}"}] for i in range(rows)],
        max_tokens=10,
        max_workers=workers,
    )
    errors = sum(isinstance(a, Exception) for a in answers)
    return {"wall_s": time.perf_counter() - t0, "errors": errors}


def main(argv: list[str]) -> int:
    kind, url, rows, width = argv[0], argv[1], int(argv[2]), int(argv[3])
    run = {
        "budget": lambda: asyncio.run(_budget(url, rows, width)),
        "slow": lambda: _slow(url, rows, width),
    }
    out = run[kind]()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
