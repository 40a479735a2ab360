"""Run benchmarks: `python -m benchmarks [NAME ...] [--quick] [--results-dir DIR]`.

With no NAME every registered benchmark runs. To add one, write benchmarks/<name>.py with
TITLE and run(quick) (see benchmarks._util) and append <name> to BENCHMARKS."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

from ._util import DEFAULT_RESULTS_DIR, write_results

#: Registered benchmarks, in the order `python -m benchmarks` runs them.
BENCHMARKS: list[str] = [
    "sse_decode",
    "throughput",
    "first_token",
    "concurrency",
    "engine",
    "startup",
    "widget_cost",
    "seed_claims",
    "service",
    "gateway",
    "maps",
    "calllog",
    "long_session",
    "shared_rates",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="short smoke run (for CI)")
    parser.add_argument(
        "--results-dir",
        default=str(DEFAULT_RESULTS_DIR),
        help="where latest.json and latest.md are written (default: %(default)s)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(f"{name}: {_load(name).TITLE}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    results: dict[str, dict[str, Any]] = {}
    for name in args.names or BENCHMARKS:
        module = _load(name)
        print(f"==> {name}: {module.TITLE}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        result = module.run(quick=args.quick)
        result.setdefault("title", module.TITLE)
        result["elapsed_s"] = round(time.perf_counter() - t0, 3)
        results[name] = result
        for line in _summary_lines(result):
            print(f"    {line}", flush=True)
    json_path, md_path = write_results(results, args.results_dir, quick=args.quick)
    print(f"wrote {json_path} and {md_path}")
    return 0


def _load(name: str) -> Any:
    return importlib.import_module(f"{__package__ or 'benchmarks'}.{name}")


def _summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for row in result.get("rows", []):
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "name")
        lines.append(f"{row.get('name')}: {shown}")
    lines += [f"{k}: {_fmt(v)}" for k, v in (result.get("summary") or {}).items()]
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
