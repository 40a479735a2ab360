"""A long notebook session: N `%%llm` cells, one after another, in a real kernel (driven by
jupyter_client as a frontend drives it), against the emulator in its own process. Measured
after a warm-up: live widget models in the kernel (ipywidgets' registry), comm_open and
comm_close messages seen on iopub, and the kernel's RSS, before and after the N cells.

A finished cell's pane is replaced by static HTML and its models closed, so live models
should stay at zero between cells however many cells run."""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from typing import Any

from jupyter_client.manager import KernelManager

from ._util import EmulatorProcess

TITLE = "Long session: live widget models and kernel memory after N %%llm cells"
CELLS, QUICK_CELLS = 1000, 100
WARMUP = 20
KEY = "sk-bench-session-FAKE-0123456789"
PROBE = (
    "import json as _j, ipywidgets.widgets.widget as _w\n"
    "print(_j.dumps({'models': len(_w._instances), 'rss_kib': int(next(l.split()[1] for l in "
    "open('/proc/self/status') if l.startswith('VmRSS:')))}))"
)


class _Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.comm_open = 0
        self.comm_close = 0

    def run(self, code: str, timeout: float = 60.0) -> str:
        msg_id = self.kc.execute(code, allow_stdin=False)
        out: list[str] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            kind = msg["msg_type"]
            self.comm_open += kind == "comm_open"
            self.comm_close += kind == "comm_close"
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise TimeoutError(f"cell did not finish: {code[:60]!r}")

    def probe(self) -> dict[str, int]:
        return dict(json.loads(self.run(PROBE).strip().splitlines()[-1]))

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def run(quick: bool) -> dict[str, Any]:
    cells = QUICK_CELLS if quick else CELLS
    with EmulatorProcess(token_delay=0, first_token_delay=0) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("N3_", "OPENAI_"))}
        env.update(
            OPENAI_BASE_URL=emu.base_url("openai"),
            OPENAI_API_KEY=KEY,
            N3_LOG_DB=os.environ["N3_LOG_DB"],  # the scratch log (benchmarks/__init__.py)
        )
        k = _Kernel(env)
        try:
            k.run("%load_ext n3_notebook")
            for i in range(WARMUP):
                k.run(f"%%llm openai:gpt-4o-mini\nwarm-up {i}")
            before = k.probe()
            opened, closed = k.comm_open, k.comm_close
            t0 = time.perf_counter()
            for i in range(cells):
                k.run(f"%%llm openai:gpt-4o-mini\nquestion {i}")
            elapsed = time.perf_counter() - t0
            after = k.probe()
            opened, closed = k.comm_open - opened, k.comm_close - closed
        finally:
            k.close()
    row = {
        "name": f"{cells} %%llm cells",
        "cells": cells,
        "live_models_before": before["models"],
        "live_models_after": after["models"],
        "comm_open": opened,
        "comm_close": closed,
        "rss_growth_mb": (after["rss_kib"] - before["rss_kib"]) / 1024,
        "ms_per_cell": elapsed * 1000 / cells,
    }
    return {
        "rows": [row],
        "params": {"cells": cells, "warmup": WARMUP},
        "summary": {
            "live_models_growth": after["models"] - before["models"],
            "rss_growth_mb": row["rss_growth_mb"],
            "target": "live models bounded by the running cells (0 here); RSS growth < 20 MB",
        },
    }


if __name__ == "__main__":
    from ._util import main

    sys.exit(main(sys.modules[__name__]))
