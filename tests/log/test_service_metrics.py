"""The service's /metrics carries the dashboard's aggregates: requests, errors by kind, TTFT
and duration histograms and tokens were there; cost and cache hits are counted too."""

from __future__ import annotations

import pytest

from .conftest import record

pytest.importorskip("prometheus_client")

from n3_notebook.core.pricing import cost
from n3_notebook.core.types import Usage
from n3_notebook.serve.metrics import ServiceMetrics


def test_cost_and_cache_hits_are_exported() -> None:
    metrics = ServiceMetrics()
    metrics.observe_upstream(record(input_tokens=1000, output_tokens=2000, duration=1.0))
    metrics.observe_upstream(
        record(input_tokens=10, output_tokens=20, duration=0.01, extra={"cached": True})
    )
    metrics.observe_upstream(record("emulator", "demo", output_tokens=5))  # no price
    body = metrics.render()[0].decode()
    costs = [x for x in body.splitlines() if x.startswith("n3_upstream_cost_usd_total{")]
    assert len(costs) == 1 and 'model="gpt-4o-mini"' in costs[0]
    expected = sum(
        cost("openai", "gpt-4o-mini", Usage.of(i, o)) or 0.0 for i, o in ((1000, 2000), (10, 20))
    )
    assert float(costs[0].split()[-1]) == pytest.approx(expected) and expected > 0
    assert 'n3_upstream_cache_hits_total{model="gpt-4o-mini",provider="openai"} 1.0' in body
    assert (
        'n3_upstream_requests_total{model="gpt-4o-mini",outcome="ok",provider="openai"} 2.0' in body
    )
