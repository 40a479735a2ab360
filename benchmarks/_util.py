"""Shared helpers for benchmarks: timing (median of N runs, wall and CPU), machine info,
and the results writer (merge into latest.json keyed by benchmark name, render latest.md).

A benchmark module defines:

    TITLE = "one line"
    def run(quick: bool) -> dict: ...

and returns a dict with at least "rows" (a list of flat dicts, one per measured variant;
every row has a "name" key). Optional keys: "columns" (the row keys to show in the
Markdown table, in order), "summary" (flat dict of headline numbers), "params" (what was
measured: sizes, repeats) and "notes" (list of strings). Everything must be JSON-safe."""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
JSON_NAME = "latest.json"
MD_NAME = "latest.md"

#: Packages whose versions are recorded with every result.
TRACKED_PACKAGES = ("n3_notebook", "httpx", "httpx-sse", "openai", "anthropic", "uvicorn")


@dataclass(frozen=True, slots=True)
class Timing:
    """Median (and spread) of repeated runs of one callable, in seconds."""

    runs: int
    wall_median: float
    wall_min: float
    wall_max: float
    cpu_median: float

    def rate(self, count: int) -> float:
        """Items per second of wall time at the median run."""
        return count / self.wall_median if self.wall_median > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(fn: Callable[[], Any], repeat: int = 7, warmup: int = 1) -> Timing:
    """Run fn `warmup` times untimed, then `repeat` times; median wall and CPU time.

    The garbage collector is collected before and disabled during each timed run, so one
    run's garbage does not bill the next one (as timeit does)."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        fn()
    walls: list[float] = []
    cpus: list[float] = []
    enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            gc.collect()
            gc.disable()
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            c1 = time.process_time()
            if enabled:
                gc.enable()
            walls.append(t1 - t0)
            cpus.append(c1 - c0)
    finally:
        if enabled:
            gc.enable()
    return Timing(
        runs=repeat,
        wall_median=statistics.median(walls),
        wall_min=min(walls),
        wall_max=max(walls),
        cpu_median=statistics.median(cpus),
    )


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_results(
    results: dict[str, dict[str, Any]],
    results_dir: Path | str = DEFAULT_RESULTS_DIR,
    quick: bool = False,
) -> tuple[Path, Path]:
    """Merge `results` (benchmark name -> result dict) into latest.json, re-render latest.md.

    Each entry gets the machine info and the quick flag of the run that produced it, so
    entries from different runs stay self-describing after a merge."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    md_path = directory / MD_NAME
    merged: dict[str, Any] = {}
    if json_path.exists():
        try:
            loaded = json.loads(json_path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                merged = loaded
        except (OSError, ValueError):
            merged = {}
    benchmarks = merged.get("benchmarks")
    if not isinstance(benchmarks, dict):
        benchmarks = {}
    machine = machine_info()
    for name, result in results.items():
        benchmarks[name] = {**result, "quick": quick, "machine": machine}
    merged = {"benchmarks": dict(sorted(benchmarks.items())), "updated": machine["date"]}
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(json_path)
    md_path.write_text(render_markdown(merged), encoding="utf-8")
    return json_path, md_path


def render_markdown(merged: dict[str, Any]) -> str:
    lines = ["# Benchmark results", "", f"Updated {merged.get('updated', '?')}.", ""]
    for name, result in merged.get("benchmarks", {}).items():
        lines += [f"## {name}: {result.get('title', '')}".rstrip(": "), ""]
        m = result.get("machine", {})
        pk = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items() if v)
        lines.append(
            f"{m.get('date', '?')} · Python {m.get('python', '?')} · {m.get('platform', '?')} · "
            f"{m.get('cpu_count', '?')} CPUs{' · quick run' if result.get('quick') else ''}"
        )
        if pk:
            lines.append(f"Packages: {pk}")
        lines.append("")
        rows = result.get("rows", [])
        if rows:
            columns = result.get("columns") or list(rows[0])
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "|".join("---" if c == "name" else "---:" for c in columns) + "|")
            for row in rows:
                lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
            lines.append("")
        summary = result.get("summary") or {}
        for key, value in summary.items():
            lines.append(f"- **{key}**: {_cell(value)}")
        for note in result.get("notes", []):
            lines.append(f"- {note}")
        if summary or result.get("notes"):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")
