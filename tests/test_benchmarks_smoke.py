"""`python -m benchmarks sse_decode --quick` runs and writes well-formed results.

A smoke test only: it checks the shape of the output, never the timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sse_decode_quick_writes_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "sse_decode",
            "--quick",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    entry = data["benchmarks"]["sse_decode"]
    assert entry["quick"] is True
    assert {"platform", "python", "cpu_count", "packages", "date"} <= set(entry["machine"])
    assert entry["params"]["events"] > 0
    rows = {row["name"]: row for row in entry["rows"]}
    assert "n3_notebook" in rows and "openai" in rows
    for row in rows.values():
        assert row["events_per_s"] > 0
        assert {"median_ms", "cpu_ms", "MB_per_s", "vs_openai"} <= set(row)
    assert {"ratio_ours_vs_openai", "goal_2x_met"} <= set(entry["summary"])
    md = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "sse_decode" in md and "| n3_notebook |" in md


def test_results_merge_keyed_by_name(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text(
        json.dumps({"benchmarks": {"other": {"title": "kept", "rows": []}}}), encoding="utf-8"
    )
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks._util import write_results
    finally:
        sys.path.remove(str(ROOT))
    write_results({"x": {"title": "new", "rows": [{"name": "a", "v": 1.5}]}}, tmp_path)
    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert set(data["benchmarks"]) == {"other", "x"}
    assert data["benchmarks"]["other"]["title"] == "kept"
    assert "| a | 1.5 |" in (tmp_path / "latest.md").read_text(encoding="utf-8")


def test_unknown_benchmark_is_an_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown benchmark" in proc.stderr
    assert not (tmp_path / "latest.json").exists()
