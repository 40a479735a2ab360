"""The FastAPI application: chains and single prompts as async streaming HTTP endpoints.

    app = create_app({"brief": Chain.parse(text)})      # then: uvicorn, gunicorn, or mount it

Routes (every one but /healthz behind the bearer tokens when any is set; see routes.py):

    POST /chains/{name}/run       JSON inputs -> the chain's result (outputs, timings, usage, cost)
    POST /chains/{name}/stream    JSON inputs -> SSE: step_started, token, step_done, step_failed,
                                  step_skipped, step_cancelled, chain_done, then `done`
    POST /v1/generate             {"prompt", "model", "system"?, "temperature"?, "max_tokens"?}
    POST /v1/generate/stream      the same as SSE: token ..., then `done` (or `error`, `done`)
    POST /v1/chat/completions     OpenAI's Chat Completions (JSON or chat.completion.chunk SSE):
                                  a route, a model string or chain:NAME (openai_compat.py)
    GET  /v1/models               the routes, chains and models, OpenAI's list shape
    GET  /chains                  names, inputs (required / default), steps with their models
    GET  /healthz                 {"status": "ok"}; 503 {"status": "draining"} while shutting down
    GET  /metrics                 Prometheus text format
    GET  /docs, /openapi.json     OpenAPI

This module assembles the app from its parts: settings.py (environment), catalog.py (the
chains and their models), routes.py and work.py (the endpoints and what they run),
handlers.py (errors), the middleware (auth.py: tokens; limits.py: the body; headers.py:
security headers; metrics.py: metrics and access log) and tokens.py, settings.py's
Limits. protocol.py bounds what comes before the app: a request's head and its timing.
The OpenAI-compatible gateway: openai_compat.py (routes, what they run), openai_plan.py
(request checks), openai_wire.py (the wire format), routing.py (fallbacks, key pools,
breakers), gateway_config.py (the TOML file), core/budgets.py with shared_budgets.py
(budgets in Redis), shared_rates.py (the provider core's waiting rate limits in Redis) and
redis_cache.py (the response cache in Redis)."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from .._version import __version__
from ..chain import Chain, ChainError
from ..core.redact import register_secret
from ..core.registry import ProviderFactory
from ..core.types import StreamConfig
from .auth import BearerAuth
from .catalog import named_chains, resolve_models
from .gateway_config import GatewayConfig, load_gateway_config
from .handlers import install_error_handlers
from .headers import SecurityHeaders
from .jobs import Lifecycle
from .limits import BodyLimit
from .loader import load_chains
from .metrics import MetricsMiddleware, ServiceMetrics
from .openai_compat import add_openai_routes
from .pacing import PACED_INTERVAL, LoadPacer
from .providers import ProviderPool
from .redis_cache import RedisResponseCache, cache_ttl, install_cache, uninstall_cache
from .routes import add_routes
from .routing import Gateway, Router
from .settings import (
    CORS_ENV,
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MODEL_ENV,
    FILE_ENV,
    GATEWAY_CONFIG_ENV,
    GC_FREEZE_ENV,
    GRACE_PERIOD_ENV,
    MAX_CONCURRENT_ENV,
    PACING_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    Limits,
    env_float,
)
from .shared_budgets import REDIS_URL_ENV, RedisStore
from .shared_rates import RedisRateStore, install_rate_store, uninstall_rate_store
from .state import ServeState
from .tokens import ApiToken, collect_tokens


def create_app(
    chains: Mapping[str, Chain] | Sequence[Chain] = (),
    *,
    token: str | None = None,
    provider_factory: ProviderFactory | None = None,
    max_concurrent_per_worker: int | None = None,
    grace_period: float | None = None,
    default_model: str | None = None,
    stream_config: StreamConfig | None = None,
    models: Sequence[str] | None = None,
    namespace: Mapping[str, Any] | None = None,
    title: str = "n3_notebook chains",
    pacer: LoadPacer | None = None,
    tokens: Mapping[str, str] | Sequence[ApiToken] | None = None,
    token_file: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
    cors_origins: Sequence[str] | None = None,
    access_log: bool = True,
    gateway_config: GatewayConfig | str | os.PathLike[str] | None = None,
    redis_url: str | None = None,
) -> FastAPI:
    """A FastAPI app serving these chains (a dict name -> Chain, or a list of named chains).

    token: bearer token every route but /healthz requires; None reads N3_SERVE_TOKEN, ""
      turns auth off. provider_factory(model_string) -> provider: called once per model
      string per worker (default: create_provider with this worker's limits); the app
      closes the providers at shutdown. max_concurrent_per_worker: jobs (runs, streams,
      generations) at once, more get 503 (default N3_SERVE_MAX_CONCURRENT or 1000).
      grace_period: seconds running requests may go on after SIGTERM (default
      N3_SERVE_GRACE_PERIOD or 25). default_model: for steps that name none (offline
      mode falls back to emulator:demo). models: the model strings /v1/generate accepts
      (None: any). namespace: values the chains' templates may read besides their inputs.
      pacer: how streams batch their writes while the worker is busy (default: a
      LoadPacer with the interval N3_SERVE_PACING_INTERVAL or 0.1 s; interval 0 writes
      every read at once, always).
    tokens: more bearer tokens, name -> token or ApiToken (with its own concurrency
      limit); token_file: a file of `NAME TOKEN [key=value ...]` lines (tokens.py) (None reads
      N3_SERVE_TOKEN_FILE). Every source adds to the accepted tokens; with none, no auth.
    limits: the request bounds (default: Limits.from_env(), i.e. N3_SERVE_MAX_BODY_BYTES
      and friends). cors_origins: origins a browser may call from (None reads
      N3_SERVE_CORS_ORIGINS, comma-separated; empty: no CORS headers at all).
    access_log: one line per request on the `n3_notebook.serve.access` logger.
    gateway_config: the OpenAI-compatible gateway's routes, key pools, limits and breaker
      (a GatewayConfig or a TOML file; None reads N3_SERVE_GATEWAY_CONFIG; see
      gateway_config.py). Without one, /v1/chat/completions takes model strings and chains.
    redis_url: where the gateway's budgets (per upstream, per token), the provider core's
      waiting rate limits (configured, learned from budget headers, cut by 429s) and the
      response cache (calls with cache=True; entries expire after N3_CACHE_TTL seconds) are
      shared by every worker and instance (None reads N3_REDIS_URL; unset: each worker keeps
      its own budgets and rate limits, and the cache is the machine's SQLite file).
    """
    named = named_chains(chains)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or ""
    if token_file is None:
        token_file = os.environ.get(TOKEN_FILE_ENV) or None
    accepted = collect_tokens(token, tokens, token_file)
    for t in accepted:
        register_secret(t.token)
    limits = limits or Limits.from_env()
    if cors_origins is None:
        cors_origins = [o.strip() for o in os.environ.get(CORS_ENV, "").split(",") if o.strip()]
    limit = max_concurrent_per_worker or int(env_float(MAX_CONCURRENT_ENV, DEFAULT_MAX_CONCURRENT))
    grace = (
        grace_period
        if grace_period is not None
        else env_float(GRACE_PERIOD_ENV, DEFAULT_GRACE_PERIOD)
    )
    default_model = default_model or os.environ.get(DEFAULT_MODEL_ENV) or None
    ns = dict(namespace or {})
    for name, chain in named.items():
        try:
            chain.check_references(ns)
        except ChainError as exc:
            raise ValueError(f"chain {name!r}: {exc}") from None
    step_models = resolve_models(named, default_model, check_keys=provider_factory is None)
    metrics = ServiceMetrics()
    pool = ProviderPool(provider_factory, metrics.observe_upstream, limit)
    if gateway_config is None:
        gateway_config = os.environ.get(GATEWAY_CONFIG_ENV) or None
    if gateway_config is None:
        gateway_config = GatewayConfig()
    elif not isinstance(gateway_config, GatewayConfig):
        gateway_config = load_gateway_config(gateway_config)
    redis_url = redis_url or os.environ.get(REDIS_URL_ENV) or None
    store = RedisStore(redis_url) if redis_url else None
    ttl = cache_ttl() if redis_url else None
    router = Router(gateway_config, pool.make_upstream, metrics.registry, store=store)
    if pacer is None:
        interval = env_float(PACING_ENV, PACED_INTERVAL)
        try:
            pacer = LoadPacer(interval=interval)
        except ValueError as exc:
            raise ValueError(f"{PACING_ENV}: {exc}") from None
    lifecycle = Lifecycle(limit, grace, pacer, limits.request_timeout)
    state = ServeState(
        named,
        step_models,
        pool,
        lifecycle,
        metrics,
        stream_config or StreamConfig.from_env(),  # DEFAULT_STREAM_CONFIG, N3_*_TIMEOUT over it
        ns,
        frozenset(models) if models is not None else None,
        limits,
        tuple(t.name for t in accepted),
        Gateway(router, accepted),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifecycle.install_signal_hook()
        lifecycle.pacer.start()
        cache = RedisResponseCache(redis_url, ttl) if redis_url else None
        if cache is not None:
            install_cache(cache)
        rates = RedisRateStore(store) if store is not None else None
        if rates is not None:
            install_rate_store(rates)
        try:
            yield
        finally:
            if rates is not None:
                uninstall_rate_store(rates)
            if cache is not None:
                uninstall_cache(cache)
            await lifecycle.close()
            await router.aclose()
            if store is not None:
                await store.aclose()
            await pool.aclose()

    app = FastAPI(
        title=title,
        version=__version__,
        description="Chains and prompts served by n3_notebook: JSON and Server-Sent Events.",
        lifespan=lifespan,
    )
    app.state.n3 = state
    install_error_handlers(app)
    add_routes(app, state)
    add_openai_routes(app, state)
    # Outermost last: metrics and access log see every answer, CORS answers preflights
    # before auth, auth refuses before any body is read.
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout=limits.body_timeout)
    if accepted:
        app.add_middleware(
            BearerAuth, tokens=accepted, max_concurrent_per_token=limits.max_concurrent_per_token
        )
    app.add_middleware(SecurityHeaders)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics, access_log=access_log)
    return app


def app_from_env() -> FastAPI:
    """App factory for workers (`uvicorn --factory`, gunicorn): the chains come from the
    file or notebook named by N3_SERVE_FILE, the settings from N3_SERVE_* variables.

    A worker process is the app's alone, so what loading it made (modules, the app, the
    chains: a quarter of a million objects that live as long as the process) is moved out
    of the garbage collector's reach with gc.freeze(). Its full collections, which a ramp
    of new streams sets off, then look only at what requests made instead of at everything
    (benchmarks/gateway.py measures it on and off). N3_SERVE_GC_FREEZE=0 turns it off. Not
    done by create_app: a notebook's kernel that serves in the background keeps its
    objects collectable."""
    path = os.environ.get(FILE_ENV)
    if not path:
        raise RuntimeError(f"set {FILE_ENV} to the chain file or notebook to serve")
    app = create_app(load_chains(path))
    if os.environ.get(GC_FREEZE_ENV, "1").strip().lower() not in ("0", "false", "no", "off"):
        gc.collect()  # garbage of the loading goes now, not into the frozen set
        gc.freeze()
    return app


__all__ = ["ServeState", "app_from_env", "create_app"]
