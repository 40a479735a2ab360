"""Prometheus metrics of one app (prometheus_client), fed by an ASGI middleware (HTTP side)
and by the providers' on_metrics records (upstream side).

Label values are route templates, chain-file model strings, provider names, exception
class names and status codes, never a raw path or a header; each one passes through
redact() and is cut to LABEL_MAX characters, so no key can reach a label.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn or uvicorn --workers), values live in that
directory and /metrics aggregates every worker (prometheus_client's multiprocess mode).

The same middleware writes the access log (logger `n3_notebook.serve.access`, INFO): one
line per request with the client, method, path (never the query string), status, the
name of the token that authenticated it (never the token) and the duration."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client import generate_latest as _generate_latest

from ..core.metrics import RequestMetrics
from ..core.pricing import cost
from ..core.redact import redact
from ..core.types import Usage
from .auth import TOKEN_NAME_KEY

access_logger = logging.getLogger("n3_notebook.serve.access")

LABEL_MAX = 120
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
CLIENT_CLOSED = "499"  # the client went away before an answer started (nginx's code)
T0_KEY = "n3.t0"  # where the middleware leaves the request's start time in the scope
RAW_SEND_KEY = "n3.send"  # and the send it was given (body messages of jobs go there)


def label(value: Any) -> str:
    text = redact(str(value)) if value is not None else ""
    return text[:LABEL_MAX]


class ServiceMetrics:
    """Every metric the service exports, in one registry of its own (so several apps can
    live in one process, e.g. in tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "n3_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.by_token = Counter(
            "n3_http_requests_by_token",
            "HTTP requests by the name of the token that authenticated them, and status",
            ["token", "status"],
            registry=r,
        )
        self.in_flight = Gauge(
            "n3_http_requests_in_flight",
            "HTTP requests being served now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "n3_streams_active",
            "SSE streams open now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.duration = Histogram(
            "n3_http_request_duration_seconds",
            "Time from request to the end of the answer (a stream's whole length)",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "n3_http_time_to_first_token_seconds",
            "Time from request to the first token written to the client",
            ["route"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.upstream_requests = Counter(
            "n3_upstream_requests",
            "Provider requests by provider, model and outcome (ok, error, cancelled, timeout)",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.upstream_ttft = Histogram(
            "n3_upstream_time_to_first_token_seconds",
            "Provider streams: time to the first text chunk",
            ["provider", "model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "n3_upstream_request_duration_seconds",
            "Provider requests: time to the end of the answer",
            ["provider", "model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "n3_upstream_tokens",
            "Tokens reported by providers, by direction (input, output)",
            ["provider", "model", "direction"],
            registry=r,
        )
        self.retries = Counter(
            "n3_upstream_retries",
            "Provider requests retried (before the first chunk)",
            ["provider", "model"],
            registry=r,
        )
        self.errors = Counter(
            "n3_upstream_errors",
            "Provider requests that failed, by provider, error type and upstream status",
            ["provider", "error_type", "status"],
            registry=r,
        )
        self.cost = Counter(
            "n3_upstream_cost_usd",
            "Provider requests' cost in USD (genai-prices; a request of unknown price adds 0)",
            ["provider", "model"],
            registry=r,
        )
        self.cache_hits = Counter(
            "n3_upstream_cache_hits",
            "Answers served from the response cache",
            ["provider", "model"],
            registry=r,
        )

    def observe_upstream(self, rec: RequestMetrics) -> None:
        """The on_metrics callback of every provider the app creates."""
        provider, model = label(rec.provider), label(rec.model)
        self.upstream_requests.labels(provider, model, label(rec.outcome)).inc()
        if rec.time_to_first_token is not None:
            self.upstream_ttft.labels(provider, model).observe(rec.time_to_first_token)
        if rec.duration is not None:
            self.upstream_duration.labels(provider, model).observe(rec.duration)
        if rec.input_tokens:
            self.tokens.labels(provider, model, "input").inc(rec.input_tokens)
        if rec.output_tokens:
            self.tokens.labels(provider, model, "output").inc(rec.output_tokens)
        if rec.retries:
            self.retries.labels(provider, model).inc(rec.retries)
        price = cost(rec.provider, rec.model, Usage.of(rec.input_tokens, rec.output_tokens))
        if price:
            self.cost.labels(provider, model).inc(price)
        if getattr(rec, "cached", None) or rec.extra.get("cached"):
            self.cache_hits.labels(provider, model).inc()
        if rec.outcome in ("error", "timeout"):
            status = str(rec.status_code) if rec.status_code is not None else ""
            self.errors.labels(provider, label(rec.error_type or rec.outcome), status).inc()

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text format."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return _generate_latest(registry), CONTENT_TYPE_LATEST
        return _generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: counts every HTTP request by route template and status, keeps
    the in-flight gauge and the duration histogram, and writes the access log when
    `access_log`. (Pure ASGI, not BaseHTTPMiddleware, so streams and their cancellation
    pass through untouched.)"""

    def __init__(self, app: Any, metrics: ServiceMetrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        m = self.metrics
        t0 = time.perf_counter()
        scope[T0_KEY] = t0
        scope[RAW_SEND_KEY] = send
        status = CLIENT_CLOSED

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        m.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        except Exception:
            if status == CLIENT_CLOSED:
                status = "500"
            raise
        finally:
            m.in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - t0
            method = scope.get("method", "")
            m.requests.labels(label(route), method, status).inc()
            m.duration.labels(label(route)).observe(elapsed)
            token = scope.get(TOKEN_NAME_KEY)
            if token is not None:
                m.by_token.labels(label(token), status).inc()
            if self.access_log and access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                access_logger.info(
                    '%s:%s - "%s %s" %s token=%s %.3fs',
                    client[0],
                    client[1],
                    method,
                    label(scope.get("path", "")),
                    status,
                    token or "-",
                    elapsed,
                )
