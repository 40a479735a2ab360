"""The service's /metrics carries the dashboard's aggregates: besides requests, errors,
TTFT and duration histograms and tokens, the cost and the cache hits."""

from __future__ import annotations

import pytest

from .conftest import record

pytest.importorskip("prometheus_client")

from n3_notebook.serve.metrics import ServiceMetrics


def test_cost_and_cache_hits_are_exported() -> None:
    metrics = ServiceMetrics()
    metrics.observe_upstream(record(input_tokens=1000, output_tokens=2000, duration=1.0))
    metrics.observe_upstream(
        record(input_tokens=10, output_tokens=20, duration=0.01, extra={"cached": True})
    )
    metrics.observe_upstream(record("emulator", "demo", output_tokens=5))  # no price
    body = metrics.render()[0].decode()
    line = next(x for x in body.splitlines() if x.startswith("n3_upstream_cost_usd_total{"))
    assert 'model="gpt-4o-mini"' in line and float(line.split()[-1]) > 0
    assert 'model="demo"' not in "\n".join(
        x for x in body.splitlines() if x.startswith("n3_upstream_cost_usd_total")
    )
    assert 'n3_upstream_cache_hits_total{model="gpt-4o-mini",provider="openai"} 1.0' in body
