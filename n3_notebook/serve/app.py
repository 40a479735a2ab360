"""The FastAPI application: chains and single prompts as async streaming HTTP endpoints.

    app = create_app({"brief": Chain.parse(text)})      # then: uvicorn, gunicorn, or mount it

Routes (every one but /healthz behind the bearer token when one is set):

    POST /chains/{name}/run       JSON inputs -> the chain's result (outputs, timings, usage, cost)
    POST /chains/{name}/stream    JSON inputs -> SSE: step_started, token, step_done, step_failed,
                                  step_skipped, step_cancelled, chain_done, then `done`
    POST /v1/generate             {"prompt", "model", "system"?, "temperature"?, "max_tokens"?}
    POST /v1/generate/stream      the same as SSE: token ..., then `done` (or `error`, `done`)
    GET  /chains                  names, inputs (required / default), steps with their models
    GET  /healthz                 {"status": "ok"}; 503 {"status": "draining"} while shutting down
    GET  /metrics                 Prometheus text format
    GET  /docs, /openapi.json     OpenAPI

(This module deliberately has no `from __future__ import annotations`: the per-chain
endpoints are built at run time and FastAPI reads their annotations as objects.)"""

import hmac
import logging
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .. import __version__
from ..chain import Chain, ChainError, ChainResult
from ..chain.engine import stream_chain_batches
from ..chain.model import REQUIRED
from ..core.base import BaseProvider
from ..core.collect import ResponseBuilder
from ..core.errors import LLMError
from ..core.offline import is_offline
from ..core.pricing import cost
from ..core.redact import register_secret
from ..core.registry import get_provider_class, resolve_model
from ..core.types import Message, StreamConfig
from .errors import ServeError, error_body, from_exception, from_step_error
from .jobs import Job, Lifecycle, Output, json_error
from .metrics import MetricsMiddleware, ServiceMetrics
from .models import (
    ChainList,
    ChainRunResult,
    ErrorResponse,
    GenerateRequest,
    GenerateResult,
    inputs_model,
    inputs_of,
)
from .pacing import PACED_INTERVAL, LoadPacer
from .providers import ProviderFactory, ProviderPool
from .sse import dumps

logger = logging.getLogger("n3_notebook.serve")

TOKEN_ENV = "N3_SERVE_TOKEN"
MAX_CONCURRENT_ENV = "N3_SERVE_MAX_CONCURRENT"
GRACE_PERIOD_ENV = "N3_SERVE_GRACE_PERIOD"
DEFAULT_MODEL_ENV = "N3_SERVE_DEFAULT_MODEL"
PACING_ENV = "N3_SERVE_PACING_INTERVAL"
FILE_ENV = "N3_SERVE_FILE"
DEFAULT_MAX_CONCURRENT = 1000
DEFAULT_GRACE_PERIOD = 25.0
OFFLINE_DEFAULT_MODEL = "emulator:demo"
#: A server's streams may run long: bounds on the whole stream and on silence mid-stream.
DEFAULT_STREAM_CONFIG = StreamConfig(stream_timeout=600.0, chunk_timeout=60.0)
CHAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

SSE_DOC = {
    200: {
        "description": "Server-Sent Events; each event has an `id`, the last one is `done`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in (
        (401, "missing or wrong bearer token"),
        (404, "unknown chain"),
        (422, "invalid inputs"),
        (502, "a provider failed"),
        (503, "over this worker's concurrency limit, or shutting down"),
        (504, "a provider timed out"),
    )
}


@dataclass
class ServeState:
    """What the app keeps (as app.state.n3): useful to embedders and tests."""

    chains: dict[str, Chain]
    models: dict[str, dict[str, str]]  # chain -> step -> model string
    pool: ProviderPool
    lifecycle: Lifecycle
    metrics: ServiceMetrics
    stream_config: StreamConfig
    namespace: dict[str, Any]
    allowed_models: frozenset[str] | None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _named(chains: Mapping[str, Chain] | Sequence[Chain]) -> dict[str, Chain]:
    if isinstance(chains, Mapping):
        named = dict(chains)
    else:
        named = {}
        for chain in chains:
            if not chain.name:
                raise ValueError("every chain served from a list needs a name (Chain.name)")
            if chain.name in named:
                raise ValueError(f"two chains are named {chain.name!r}")
            named[chain.name] = chain
    for name, chain in named.items():
        if not isinstance(chain, Chain):
            raise TypeError(f"chain {name!r} is a {type(chain).__name__}, not a Chain")
        if not CHAIN_NAME.match(name):
            raise ValueError(
                f"chain name {name!r} cannot be a URL segment; use letters, digits, _ . -"
            )
    return named


def _resolve_models(
    chains: dict[str, Chain], default_model: str | None, check_keys: bool
) -> dict[str, dict[str, str]]:
    """chain -> step -> model string, checked now: an unknown model or a provider without
    its key is a startup error, not the first request's."""
    out: dict[str, dict[str, str]] = {}
    fallback = default_model or (OFFLINE_DEFAULT_MODEL if is_offline() else None)
    for name, chain in chains.items():
        steps: dict[str, str] = {}
        for step in chain.steps:
            spec = step.model or chain.default_model or fallback
            if not spec:
                raise ValueError(
                    f"chain {name!r}, step {step.name!r} names no model and no default is "
                    "set; write one after `step NAME:`, or pass default_model"
                )
            try:
                provider, _ = resolve_model(spec)
            except LLMError as exc:
                raise ValueError(f"chain {name!r}, step {step.name!r}: {exc}") from None
            if check_keys and not is_offline():
                cls = get_provider_class(provider)
                if cls.requires_key and not any(os.environ.get(v) for v in cls.env_keys):
                    raise ValueError(
                        f"chain {name!r}, step {step.name!r} uses {spec}, but "
                        f"{' or '.join(cls.env_keys)} is not set in the server's environment "
                        "(or set N3_OFFLINE=1 to serve from the bundled emulator)"
                    )
            steps[step.name] = spec
        out[name] = steps
    return out


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
    """
    named = _named(chains)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or ""
    register_secret(token)
    limit = max_concurrent_per_worker or int(_env_float(MAX_CONCURRENT_ENV, DEFAULT_MAX_CONCURRENT))
    grace = (
        grace_period
        if grace_period is not None
        else _env_float(GRACE_PERIOD_ENV, DEFAULT_GRACE_PERIOD)
    )
    default_model = default_model or os.environ.get(DEFAULT_MODEL_ENV) or None
    ns = dict(namespace or {})
    for name, chain in named.items():
        try:
            chain.check_references(ns)
        except ChainError as exc:
            raise ValueError(f"chain {name!r}: {exc}") from None
    step_models = _resolve_models(named, default_model, check_keys=provider_factory is None)
    metrics = ServiceMetrics()
    pool = ProviderPool(provider_factory, metrics.observe_upstream, limit)
    if pacer is None:
        interval = _env_float(PACING_ENV, PACED_INTERVAL)
        try:
            pacer = LoadPacer(interval=interval)
        except ValueError as exc:
            raise ValueError(f"{PACING_ENV}: {exc}") from None
    lifecycle = Lifecycle(limit, grace, pacer)
    state = ServeState(
        named,
        step_models,
        pool,
        lifecycle,
        metrics,
        stream_config or DEFAULT_STREAM_CONFIG,
        ns,
        frozenset(models) if models is not None else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        lifecycle.install_signal_hook()
        lifecycle.pacer.start()
        try:
            yield
        finally:
            await lifecycle.close()
            await pool.aclose()

    app = FastAPI(
        title=title,
        version=__version__,
        description="Chains and prompts served by n3_notebook: JSON and Server-Sent Events.",
        lifespan=lifespan,
    )
    app.state.n3 = state
    _install_error_handlers(app)
    _add_service_routes(app, state)
    for name, chain in named.items():
        _add_chain_routes(app, state, name, chain)
    _add_unknown_chain_routes(app, state)
    _add_generate_routes(app, state)
    if token:
        app.add_middleware(BearerAuth, token=token)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """App factory for workers (`uvicorn --factory`, gunicorn): the chains come from the
    file or notebook named by N3_SERVE_FILE, the settings from N3_SERVE_* variables."""
    from .loader import load_chains

    path = os.environ.get(FILE_ENV)
    if not path:
        raise RuntimeError(f"set {FILE_ENV} to the chain file or notebook to serve")
    return create_app(load_chains(path))


# ---------------------------------------------------------------------------- routes


def _add_service_routes(app: FastAPI, state: ServeState) -> None:
    @app.get("/healthz", tags=["service"], summary="Liveness and readiness")
    async def healthz() -> Response:
        if state.lifecycle.draining:
            return Response(dumps({"status": "draining"}), 503, media_type="application/json")
        return Response(
            dumps({"status": "ok", "chains": len(state.chains)}), media_type="application/json"
        )

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics")
    async def metrics_route() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/chains", tags=["chains"], summary="The chains served", response_model=ChainList)
    async def list_chains() -> Response:
        return Response(dumps(_chain_list(state)), media_type="application/json")


def _chain_list(state: ServeState) -> dict[str, Any]:
    out = []
    for name, chain in state.chains.items():
        deps = chain.dependencies()
        out.append(
            {
                "name": name,
                "inputs": [
                    {"name": k, "required": True}
                    if v is REQUIRED
                    else {"name": k, "required": False, "default": v}
                    for k, v in chain.inputs.items()
                ],
                "steps": [
                    {
                        "name": s.name,
                        "model": state.models[name][s.name],
                        "depends_on": sorted(deps[s.name]),
                    }
                    for s in chain.steps
                ],
                "run": f"/chains/{name}/run",
                "stream": f"/chains/{name}/stream",
            }
        )
    return {"chains": out}


def _add_chain_routes(app: FastAPI, state: ServeState, name: str, chain: Chain) -> None:
    model = inputs_model(name, chain)
    required = any(v is REQUIRED for v in chain.inputs.values())
    base = f"/chains/{name}"

    def inputs(body: BaseModel | None) -> dict[str, Any]:
        return inputs_of(body) if body is not None else {}

    if required:

        async def run(request: Request, body: Annotated[model, Body()]) -> Response:  # type: ignore[valid-type]
            return Job(
                state.lifecycle, _chain_run(state, name, inputs(body)), state.metrics, f"{base}/run"
            )

        async def stream(request: Request, body: Annotated[model, Body()]) -> Response:  # type: ignore[valid-type]
            return Job(
                state.lifecycle,
                _chain_stream(state, name, inputs(body)),
                state.metrics,
                f"{base}/stream",
            )

    else:

        async def run(request: Request, body: Annotated[model | None, Body()] = None) -> Response:  # type: ignore[valid-type,no-redef]
            return Job(
                state.lifecycle, _chain_run(state, name, inputs(body)), state.metrics, f"{base}/run"
            )

        async def stream(
            request: Request, body: Annotated[model | None, Body()] = None
        ) -> Response:  # type: ignore[valid-type,no-redef]
            return Job(
                state.lifecycle,
                _chain_stream(state, name, inputs(body)),
                state.metrics,
                f"{base}/stream",
            )

    steps = ", ".join(f"{s.name} ({state.models[name][s.name]})" for s in chain.steps)
    app.add_api_route(
        f"{base}/run",
        run,
        methods=["POST"],
        tags=["chains"],
        summary=f"Run the chain {name}",
        description=f"Steps: {steps}. Answers when every step is done.",
        response_model=ChainRunResult,
        responses=ERRORS_DOC,
        operation_id=f"run_{name}",
    )
    app.add_api_route(
        f"{base}/stream",
        stream,
        methods=["POST"],
        tags=["chains"],
        summary=f"Stream the chain {name}",
        description=f"Steps: {steps}. Server-Sent Events, step-tagged, ending with `done`.",
        response_class=Response,
        responses={**SSE_DOC, **ERRORS_DOC},
        operation_id=f"stream_{name}",
    )


def _add_unknown_chain_routes(app: FastAPI, state: ServeState) -> None:
    async def unknown(name: str) -> Response:
        known = sorted(state.chains)
        return json_error(
            ServeError(
                404,
                "unknown_chain",
                f"no chain named {name!r}; this server has "
                f"{', '.join(known) if known else 'no chains'}",
                chains=known,
            )
        )

    for action in ("run", "stream"):
        app.add_api_route(
            f"/chains/{{name}}/{action}", unknown, methods=["POST"], include_in_schema=False
        )


def _add_generate_routes(app: FastAPI, state: ServeState) -> None:
    @app.post(
        "/v1/generate",
        tags=["generate"],
        summary="One prompt to one model",
        response_model=GenerateResult,
        responses=ERRORS_DOC,
    )
    async def generate(request: Request, body: GenerateRequest) -> Response:
        return Job(state.lifecycle, _generate(state, body), state.metrics, "/v1/generate")

    @app.post(
        "/v1/generate/stream",
        tags=["generate"],
        summary="One prompt to one model, streamed",
        response_class=Response,
        responses={**SSE_DOC, **ERRORS_DOC},
    )
    async def generate_stream(request: Request, body: GenerateRequest) -> Response:
        return Job(
            state.lifecycle, _generate_stream(state, body), state.metrics, "/v1/generate/stream"
        )


# ---------------------------------------------------------------------------- the work


def _chain_providers(state: ServeState, name: str) -> ServeError | None:
    """Create (or reuse) the chain's providers before anything is sent: a server without a
    key for a chain's model is a 500 naming the step, not a 422."""
    for step, spec in state.models[name].items():
        try:
            state.pool.get(spec)
        except LLMError as exc:
            err = from_exception(exc)
            err.message = f"chain {name!r}, step {step!r}: {err.message}"
            return err
    return None


def _chain_start(
    state: ServeState, name: str, inputs: dict[str, Any], out: Output
) -> tuple[Any, ChainResult] | None:
    """The chain's event batches and the result they fill in; None, with the error already
    answered, when a step's model has no provider on this server."""
    err = _chain_providers(state, name)
    if err is not None:
        out.error(err)
        return None
    pool = state.pool

    def factory(spec: str) -> BaseProvider:
        return pool.get(spec)

    chain = state.chains[name]
    result = ChainResult(name, {}, {})
    gen = stream_chain_batches(
        chain,
        inputs,
        namespace=state.namespace,
        provider_factory=factory,
        default_model=_fallback(chain, state.models[name]),
        stream_config=state.stream_config,
        result=result,
    )
    return gen, result


def _fallback(chain: Chain, models: dict[str, str]) -> str | None:
    for s in chain.steps:
        if s.model is None:
            return models[s.name]
    return None


def _chain_run(state: ServeState, name: str, inputs: dict[str, Any]) -> Any:
    async def work(out: Output) -> None:
        started = _chain_start(state, name, inputs, out)
        if started is None:
            return
        gen, result = started
        try:
            async for _ in gen:
                pass
        except ChainError as exc:
            out.error(from_exception(exc))
            return
        finally:
            await gen.aclose()
        body = result.as_dict()
        if result.ok:
            out.json(200, body)
            return
        failed = [s for s in result.steps.values() if s.state == "failed"]
        if failed:
            err = from_step_error(failed[0])
        else:
            err = ServeError(500, "internal_error", "the chain did not finish")
        out.json(err.status, {**err.body(), "result": body}, err.headers)

    return work


def _chain_stream(state: ServeState, name: str, inputs: dict[str, Any]) -> Any:
    async def work(out: Output) -> None:
        started = _chain_start(state, name, inputs, out)
        if started is None:
            return
        gen, result = started
        try:
            try:
                batch = await anext(gen)
            except ChainError as exc:
                out.error(from_exception(exc))
                return
            out.start_sse()
            emit = out.event
            while batch is not None:
                for event in batch:
                    kind = event.type
                    data = event.as_dict()
                    if kind == "token":
                        if out.first_token_at is None:
                            out.first_token()
                    elif kind == "step_failed":
                        e = from_step_error(result.steps[event.step or ""])
                        data["error"] = e.message
                        data["error_type"] = e.type
                        for key in ("provider", "upstream_status", "request_id"):
                            if key in e.extra:
                                data[key] = e.extra[key]
                    emit(kind, data)
                await out.flush()  # what was ready together goes out in one write
                batch = await anext(gen, None)
        finally:
            await gen.aclose()
        u = result.usage
        out.event(
            "done",
            {
                "ok": result.ok,
                "duration": result.duration,
                "usage": {
                    "input_tokens": u.input_tokens,
                    "output_tokens": u.output_tokens,
                    "total_tokens": u.total_tokens,
                },
                "cost_usd": result.cost,
            },
        )

    return work


def _client_provider(state: ServeState, spec: str) -> BaseProvider:
    allowed = state.allowed_models
    if allowed is not None and spec not in allowed:
        raise ServeError(
            400,
            "model_not_allowed",
            f"this server does not serve {spec!r}; it serves {', '.join(sorted(allowed))}",
        )
    return state.pool.get_for_client(spec)


def _params(req: GenerateRequest) -> dict[str, Any]:
    return {
        k: v
        for k, v in (("temperature", req.temperature), ("max_tokens", req.max_tokens))
        if v is not None
    }


def _usage(usage: Any) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _generate(state: ServeState, req: GenerateRequest) -> Any:
    async def work(out: Output) -> None:
        try:
            provider = _client_provider(state, req.model)
            r = await provider.agenerate(req.prompt, system=req.system, **_params(req))
        except (LLMError, ServeError) as exc:
            out.error(from_exception(exc, client_model=True))
            return
        out.json(
            200,
            {
                "text": r.content,
                "model": r.model,
                "provider": r.provider,
                "finish_reason": r.finish_reason,
                "usage": _usage(r.usage),
                "cost_usd": cost(provider.name, provider.model, r.usage),
                "latency": r.latency,
                "request_id": r.request_id,
            },
        )

    return work


def _generate_stream(state: ServeState, req: GenerateRequest) -> Any:
    async def work(out: Output) -> None:
        try:
            provider = _client_provider(state, req.model)
            stream = provider.stream_chat_batches(
                [Message("user", req.prompt)],
                system=req.system,
                stream_config=state.stream_config,
                **_params(req),
            )
        except (LLMError, ServeError) as exc:
            out.error(from_exception(exc, client_model=True))
            return
        builder = ResponseBuilder(provider.name, provider.model)
        add = builder.add
        try:
            # The first read before the headers: an upstream error before any text is a
            # proper HTTP status (502, 504, ...), not a 200 with an error event.
            try:
                batch = await anext(stream, None)
            except LLMError as exc:
                out.error(from_exception(exc, client_model=True))
                return
            out.start_sse()
            emit = out.event
            try:
                # One write per upstream read: when reads carry several tokens (a busy
                # server reads less often), their events go out together.
                while batch is not None:
                    for chunk in batch:
                        add(chunk)
                        if chunk.content:
                            if out.first_token_at is None:
                                out.first_token()
                            emit("token", {"text": chunk.content})
                    await out.flush()
                    batch = await anext(stream, None)
            except LLMError as exc:
                err = from_exception(exc, client_model=True)
                emit("error", err.body())
                emit("done", {"ok": False, "reason": err.type, "text_chunks": builder.chunks})
                return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        r = builder.build()
        out.event(
            "done",
            {
                "ok": True,
                "finish_reason": r.finish_reason,
                "model": r.model,
                "provider": r.provider,
                "usage": _usage(r.usage),
                "cost_usd": cost(provider.name, provider.model, r.usage),
                "time_to_first_token": r.time_to_first_token,
                "duration": r.latency,
            },
        )

    return work


# ---------------------------------------------------------------------------- errors, auth


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        details = []
        parts = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x != "body"]
            where = ".".join(loc) or "body"
            msg = str(e.get("msg", "invalid"))
            if e.get("type") == "json_invalid":
                where = "body"
                msg = f"the body is not valid JSON ({e.get('ctx', {}).get('error', msg)})"
            elif e.get("type") == "extra_forbidden":
                msg = "unknown field"
            parts.append(f"{where}: {msg}")
            details.append({"field": where, "message": msg, "type": e.get("type")})
        body = error_body("invalid_request", "; ".join(parts) or "invalid request", errors=details)
        return Response(dumps(body), 422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = error_body(kind, str(exc.detail))
        return Response(dumps(body), exc.status_code, exc.headers, media_type="application/json")

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> Response:
        return json_error(exc)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        logger.error("unhandled %s in %s", type(exc).__name__, request.url.path)
        return json_error(from_exception(exc))


class BearerAuth:
    """Pure ASGI middleware: `Authorization: Bearer <token>` on every route but /healthz,
    compared in constant time; 401 otherwise (the token is never echoed)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path == "/healthz" or self._ok(scope):
            await self.app(scope, receive, send)
            return
        body = dumps(
            error_body("unauthorized", "a valid `Authorization: Bearer <token>` is needed")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _ok(self, scope: Any) -> bool:
        value = b""
        for name, v in scope.get("headers", ()):
            if name == b"authorization":
                value = v
                break
        scheme, _, given = value.partition(b" ")
        ok = hmac.compare_digest(given.strip(), self.token)
        return ok and scheme.lower() == b"bearer"
