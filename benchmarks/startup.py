"""Import and load cost: `import n3_notebook` in a fresh interpreter and `%load_ext
n3_notebook` in a fresh kernel, beside `import httpx`, `import openai` and `import anthropic`
measured the same way in the same run.

Imports: each statement runs in a fresh `python -c` subprocess that times itself with
perf_counter() around the statement, so interpreter start-up is excluded (it is reported
separately as the "process" column, the wall time of the whole `python -c`). The variants are
interleaved round by round so that machine noise spreads over all of them; one warm-up
round is discarded (it pays for .pyc compilation and a cold disk cache).

%load_ext: a fresh ipykernel per sample (jupyter_client), one cell that reads
perf_counter() just before and just after `%load_ext n3_notebook`, so only the extension
load is timed (not kernel start, not the cell's own compilation)."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TITLE = "Import and load: import n3_notebook and %load_ext vs httpx, openai, anthropic"

ROOT = Path(__file__).resolve().parent.parent

IMPORT_TARGET_S = 0.25
LOAD_EXT_TARGET_S = 0.5

REPEAT = 9
QUICK_REPEAT = 3
KERNELS = 5
QUICK_KERNELS = 1

#: Modules whose presence after an import tells that something was imported eagerly.
HEAVY = (
    "httpx",
    "IPython",
    "ipywidgets",
    "traitlets",
    "pydantic",
    "openai",
    "anthropic",
    "uvicorn",
)

#: (row name, statement) in the order of the table. "python (no import)" is the baseline
#: of the process column.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("import n3_notebook", "import n3_notebook"),
    ("n3_notebook.OpenAIProvider", "import n3_notebook; n3_notebook.OpenAIProvider"),
    ("import httpx", "import httpx"),
    ("import openai", "import openai"),
    ("import anthropic", "import anthropic"),
    ("python (no import)", "pass"),
)

_CHILD = """\
import sys, time
_before = set(sys.modules)
_t0 = time.perf_counter()
{stmt}
_t1 = time.perf_counter()
_added = len(set(sys.modules) - _before)
_heavy = [m for m in {heavy!r} if m in sys.modules]
import json
print(json.dumps({{"s": _t1 - _t0, "modules": _added, "heavy": _heavy}}))
"""


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("N3_")}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def time_import(stmt: str) -> dict[str, Any]:
    """One fresh interpreter: the statement's own time, the whole process's, what it loaded."""
    code = _CHILD.format(stmt=stmt, heavy=HEAVY)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{stmt!r} failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    return out


def importtime_rows(stmt: str) -> list[tuple[str, int, int]]:
    """`python -X importtime -c stmt`, one run: every module as (name, self µs,
    cumulative µs). Indicative only."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", stmt],
        cwd=ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    rows: list[tuple[str, int, int]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s?(\s*)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2))))
    return rows


def importtime_top(rows: list[tuple[str, int, int]], count: int = 10) -> list[tuple[str, int, int]]:
    """The modules with the largest self time."""
    return sorted(rows, key=lambda r: r[1], reverse=True)[:count]


def _packages_by_cumulative(
    rows: list[tuple[str, int, int]], count: int = 8
) -> list[tuple[str, int]]:
    """Top-level packages (first dotted component) by their largest cumulative import time."""
    best: dict[str, int] = {}
    for name, _, cumulative in rows:
        top = name.split(".")[0]
        best[top] = max(best.get(top, 0), cumulative)
    return sorted(best.items(), key=lambda kv: kv[1], reverse=True)[:count]


# --- %load_ext in a fresh kernel ---------------------------------------------------------

_LOAD_CELL = """\
import time as _n3_time
_n3_t0 = _n3_time.perf_counter()
%load_ext n3_notebook
_n3_t1 = _n3_time.perf_counter()
print("N3_LOAD_EXT", repr(_n3_t1 - _n3_t0))
"""


def time_load_ext() -> dict[str, float]:
    """A fresh kernel: seconds to ready, and seconds of `%load_ext n3_notebook` alone."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    t0 = time.perf_counter()
    # the kernel's stderr (its "running over TCP" warning) would only clutter the output
    km.start_kernel(env=_child_env(), cwd=str(ROOT), stderr=subprocess.DEVNULL)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        ready = time.perf_counter() - t0
        texts: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                texts.append("\n".join(msg["content"]["traceback"]))

        reply = kc.execute_interactive(_LOAD_CELL, timeout=120, output_hook=hook)
        text = "".join(texts)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"%load_ext n3_notebook failed in a fresh kernel: {text[-2000:]}")
        m = re.search(r"N3_LOAD_EXT (\S+)", text)
        if m is None:
            raise RuntimeError(f"no timing printed by the kernel: {text[-2000:]}")
        return {"load_ext_s": float(m.group(1)), "kernel_ready_s": ready}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(quick: bool = False) -> dict[str, Any]:
    repeat = QUICK_REPEAT if quick else REPEAT
    kernels = QUICK_KERNELS if quick else KERNELS

    samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in VARIANTS}
    for round_no in range(repeat + 1):  # round 0 is the warm-up
        for name, stmt in VARIANTS:
            sample = time_import(stmt)
            if round_no:
                samples[name].append(sample)

    rows: list[dict[str, Any]] = []
    median_s: dict[str, float] = {}
    for name, _stmt in VARIANTS:
        got = samples[name]
        s = statistics.median(x["s"] for x in got)
        median_s[name] = s
        rows.append(
            {
                "name": name,
                "median_ms": round(s * 1e3, 2),
                "min_ms": round(min(x["s"] for x in got) * 1e3, 2),
                "max_ms": round(max(x["s"] for x in got) * 1e3, 2),
                "process_ms": round(statistics.median(x["process_s"] for x in got) * 1e3, 1),
                "modules": got[-1]["modules"],
                "eager": ", ".join(got[-1]["heavy"]) or "–",
                "runs": len(got),
            }
        )
    for row in rows:
        for peer in ("httpx", "openai", "anthropic"):
            base = median_s[f"import {peer}"]
            if row["name"] != "python (no import)":
                row[f"vs_{peer}"] = round(median_s[row["name"]] / base, 3) if base > 0 else None

    load_samples = [time_load_ext() for _ in range(kernels)]
    load_ext = statistics.median(x["load_ext_s"] for x in load_samples)
    ready = statistics.median(x["kernel_ready_s"] for x in load_samples)
    load_row: dict[str, Any] = {
        "name": "%load_ext n3_notebook (fresh kernel)",
        "median_ms": round(load_ext * 1e3, 2),
        "min_ms": round(min(x["load_ext_s"] for x in load_samples) * 1e3, 2),
        "max_ms": round(max(x["load_ext_s"] for x in load_samples) * 1e3, 2),
        "process_ms": None,
        "modules": None,
        "eager": None,
        "runs": len(load_samples),
    }
    for peer in ("httpx", "openai", "anthropic"):
        base = median_s[f"import {peer}"]
        load_row[f"vs_{peer}"] = round(load_ext / base, 3) if base > 0 else None
    rows.insert(2, load_row)

    ours = median_s["import n3_notebook"]
    with_provider = median_s["n3_notebook.OpenAIProvider"]
    summary: dict[str, Any] = {
        "import_n3_notebook_ms": round(ours * 1e3, 2),
        "python_c_import_n3_notebook_ms": next(
            r["process_ms"] for r in rows if r["name"] == "import n3_notebook"
        ),
        "python_c_pass_ms": next(
            r["process_ms"] for r in rows if r["name"] == "python (no import)"
        ),
        "import_with_provider_ms": round(with_provider * 1e3, 2),
        "load_ext_ms": round(load_ext * 1e3, 2),
        "ratio_import_vs_httpx": round(ours / median_s["import httpx"], 3),
        "ratio_import_vs_openai": round(ours / median_s["import openai"], 3),
        "ratio_import_vs_anthropic": round(ours / median_s["import anthropic"], 3),
        "ratio_with_provider_vs_openai": round(with_provider / median_s["import openai"], 3),
        "ratio_with_provider_vs_anthropic": round(with_provider / median_s["import anthropic"], 3),
        "ratio_load_ext_vs_openai": round(load_ext / median_s["import openai"], 3),
        "ratio_load_ext_vs_anthropic": round(load_ext / median_s["import anthropic"], 3),
        "import_target_met": with_provider <= IMPORT_TARGET_S,
        "load_ext_target_met": load_ext <= LOAD_EXT_TARGET_S,
    }

    notes = [
        "median_ms: perf_counter() around the statement inside a fresh `python -c` "
        f"(median of {repeat}, after one warm-up round, variants interleaved); process_ms: "
        "the wall time of that whole subprocess, interpreter start-up included.",
        "modules: how many modules the statement added to sys.modules; eager: which of "
        f"{', '.join(HEAVY)} were loaded afterwards.",
        f"%load_ext: median of {len(load_samples)} fresh kernel(s); only the magic is timed "
        f"(kernel ready in {ready:.2f} s median, not included).",
        f"Targets (issue 10): import <= {IMPORT_TARGET_S} s (checked on "
        "`n3_notebook.OpenAIProvider`, the stricter of the two), "
        f"%load_ext <= {LOAD_EXT_TARGET_S} s.",
    ]
    for stmt in ("import n3_notebook; n3_notebook.OpenAIProvider",):
        modules = importtime_rows(stmt)
        top = importtime_top(modules, 8)
        notes.append(
            f"-X importtime `{stmt}` (one run), largest self times: "
            + ", ".join(f"{name} {self_us / 1e3:.1f} ms" for name, self_us, _ in top)
        )
        packages = _packages_by_cumulative(modules, 6)
        notes.append(
            "  by package (cumulative): "
            + ", ".join(f"{name} {us / 1e3:.1f} ms" for name, us in packages)
        )
    return {
        "title": TITLE,
        "params": {
            "repeat": repeat,
            "warmup_rounds": 1,
            "kernels": len(load_samples),
            "statistic": "median",
            "python": sys.executable,
        },
        "columns": [
            "name",
            "median_ms",
            "min_ms",
            "max_ms",
            "process_ms",
            "vs_httpx",
            "vs_openai",
            "vs_anthropic",
            "modules",
            "eager",
        ],
        "rows": rows,
        "summary": summary,
        "notes": notes,
    }


if __name__ == "__main__":
    from benchmarks._util import main

    sys.exit(main(sys.modules[__name__]))
