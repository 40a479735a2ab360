"""The service's /metrics carries the dashboard's aggregates: requests, errors by kind, TTFT
and duration histograms and tokens were there; cache hits are counted too."""

from __future__ import annotations

import pytest

from .conftest import record

pytest.importorskip("prometheus_client")

from n3_notebook.serve.metrics import ServiceMetrics


def test_cache_hits_are_exported() -> None:
    metrics = ServiceMetrics()
    metrics.observe_upstream(record(input_tokens=1000, output_tokens=2000, duration=1.0))
    metrics.observe_upstream(
        record(input_tokens=10, output_tokens=20, duration=0.01, extra={"cached": True})
    )
    body = metrics.render()[0].decode()
    assert 'n3_upstream_cache_hits_total{model="gpt-4o-mini",provider="openai"} 1.0' in body
    assert (
        'n3_upstream_requests_total{model="gpt-4o-mini",outcome="ok",provider="openai"} 2.0' in body
    )
