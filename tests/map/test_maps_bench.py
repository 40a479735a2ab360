"""`python -m benchmarks maps --quick` runs and writes well-formed results (shape only;
the numbers are in benchmarks/results/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_maps_benchmark_quick(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "maps", "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("N3_")},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))["benchmarks"]["maps"]
    rows = {row["name"]: row for row in entry["rows"]}
    assert len(rows) == 4
    assert all(row["errors"] == 0 for row in rows.values())
    assert rows["cached replay"]["cached"] == rows["cached replay"]["rows"]
    assert entry["summary"]["slow_rows_timeouts"] == 0
