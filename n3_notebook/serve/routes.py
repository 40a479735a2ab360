"""The HTTP routes: service (/healthz, /metrics, /chains), one run and one stream route per
chain, and /v1/generate. Each route admits a Job that runs its work (work.py).

(This module deliberately has no `from __future__ import annotations`: the per-chain
endpoints are built at run time and FastAPI reads their annotations as objects.)"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from pydantic import BaseModel
from starlette.responses import PlainTextResponse, Response

from ..chain import Chain
from ..chain.model import REQUIRED
from . import work
from .auth import TOKEN_NAME_KEY
from .catalog import chain_list
from .errors import ServeError
from .jobs import Job, Work, json_error
from .models import (
    ChainList,
    ChainRunResult,
    ErrorResponse,
    GenerateRequest,
    GenerateResult,
    Health,
    generate_request_model,
    inputs_model,
    inputs_of,
    text_size,
)
from .sse import dumps
from .state import ServeState

SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events; each event has an `id`, the last one is `done`.",
        "content": {
            "text/event-stream": {
                # OpenAPI 3.1: the schema of each event (3.2 would call it itemSchema)
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "1, 2, ... in the stream"},
                        "event": {"type": "string"},
                        "data": {"type": "string", "description": "one line of JSON"},
                    },
                    "required": ["id", "event", "data"],
                }
            }
        },
    }
}
ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in (
        (400, "a model this server does not serve"),
        (401, "missing or wrong bearer token"),
        (403, "the token may not use this chain or model"),
        (404, "unknown chain"),
        (413, "the body is over the server's size limit"),
        (422, "invalid inputs, or text over the server's limit"),
        (429, "the token already has its limit of requests running"),
        (502, "a provider failed"),
        (503, "over this worker's concurrency limit, or shutting down"),
        (504, "a provider timed out, or the request ran past the server's time limit"),
    )
}


def check_model(state: ServeState, request: Request, model: str) -> None:
    """A token limited to some models (the token file's models=) may use only those: here
    `chain:NAME` for a chain's routes, the model string for /v1/generate."""
    token = request.scope.get(TOKEN_NAME_KEY)
    if not state.gateway.may_use(token, model):
        raise ServeError(403, "model_not_allowed", f"the token {token!r} may not use {model!r}")


def add_routes(app: FastAPI, state: ServeState) -> None:
    """Every route of the service, in the order the OpenAPI document lists them."""
    add_service_routes(app, state)
    for name, chain in state.chains.items():
        add_chain_routes(app, state, name, chain)
    add_unknown_chain_routes(app, state)
    add_generate_routes(app, state)


def add_service_routes(app: FastAPI, state: ServeState) -> None:
    @app.get(
        "/healthz",
        tags=["service"],
        summary="Liveness and readiness",
        response_model=Health,
        responses={503: {"model": Health, "description": "draining: shutting down"}},
    )
    async def healthz() -> Response:
        if state.lifecycle.draining:
            return Response(dumps({"status": "draining"}), 503, media_type="application/json")
        return Response(
            dumps({"status": "ok", "chains": len(state.chains)}), media_type="application/json"
        )

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={401: ERRORS_DOC[401], 429: ERRORS_DOC[429]},
    )
    async def metrics_route() -> Response:
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    @app.get(
        "/chains",
        tags=["chains"],
        summary="The chains served",
        response_model=ChainList,
        responses={401: ERRORS_DOC[401], 429: ERRORS_DOC[429]},
    )
    async def list_chains() -> Response:
        return Response(dumps(chain_list(state)), media_type="application/json")


def add_chain_routes(app: FastAPI, state: ServeState, name: str, chain: Chain) -> None:
    model = inputs_model(name, chain)
    required = any(v is REQUIRED for v in chain.inputs.values())
    base = f"/chains/{name}"

    max_chars = state.limits.max_prompt_chars

    def inputs(body: BaseModel | None) -> dict[str, Any]:
        given = inputs_of(body) if body is not None else {}
        if text_size(given) > max_chars:
            raise ServeError(
                422,
                "input_too_long",
                f"the inputs hold more than this server's limit of {max_chars} characters "
                "of text (N3_SERVE_MAX_PROMPT_CHARS)",
            )
        return given

    def run_job(request: Request, body: BaseModel | None) -> Job:
        check_model(state, request, f"chain:{name}")
        work_ = work.chain_run(state, name, inputs(body))
        return Job(state.lifecycle, work_, state.metrics, f"{base}/run")

    def stream_job(request: Request, body: BaseModel | None) -> Job:
        check_model(state, request, f"chain:{name}")
        work_ = work.chain_stream(state, name, inputs(body))
        return Job(state.lifecycle, work_, state.metrics, f"{base}/stream")

    # FastAPI reads the body's model from the annotation: a chain with a required input
    # needs a body, one without takes none as {}.
    async def run_required(request: Request, body: Annotated[model, Body()]) -> Response:  # type: ignore[valid-type]
        return run_job(request, body)

    async def stream_required(request: Request, body: Annotated[model, Body()]) -> Response:  # type: ignore[valid-type]
        return stream_job(request, body)

    async def run_optional(
        request: Request,
        body: Annotated[model | None, Body()] = None,  # type: ignore[valid-type]
    ) -> Response:
        return run_job(request, body)

    async def stream_optional(
        request: Request,
        body: Annotated[model | None, Body()] = None,  # type: ignore[valid-type]
    ) -> Response:
        return stream_job(request, body)

    run = run_required if required else run_optional
    stream = stream_required if required else stream_optional

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


def add_unknown_chain_routes(app: FastAPI, state: ServeState) -> None:
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


def add_generate_routes(app: FastAPI, state: ServeState) -> None:
    limits = state.limits
    request_model = generate_request_model(limits.max_prompt_chars, limits.max_output_tokens)

    def job(
        request: Request,
        body: GenerateRequest,
        make: Callable[[ServeState, GenerateRequest], Work],
        route: str,
    ) -> Response:
        """The job answering one /v1/generate request, once the token may use its model."""
        check_model(state, request, body.model)
        return Job(state.lifecycle, make(state, body), state.metrics, route)

    # request_model is made at run time (this server's caps): mypy cannot take it as a type
    @app.post(
        "/v1/generate",
        tags=["generate"],
        summary="One prompt to one model",
        response_model=GenerateResult,
        responses=ERRORS_DOC,
    )
    async def generate(request: Request, body: Annotated[request_model, Body()]) -> Response:  # type: ignore[valid-type]
        return job(request, body, work.generate, "/v1/generate")

    @app.post(
        "/v1/generate/stream",
        tags=["generate"],
        summary="One prompt to one model, streamed",
        response_class=Response,
        responses={**SSE_DOC, **ERRORS_DOC},
    )
    async def generate_stream(
        request: Request,
        body: Annotated[request_model, Body()],  # type: ignore[valid-type]
    ) -> Response:
        return job(request, body, work.generate_stream, "/v1/generate/stream")


__all__ = [
    "ERRORS_DOC",
    "SSE_DOC",
    "add_chain_routes",
    "add_generate_routes",
    "add_routes",
    "add_service_routes",
    "add_unknown_chain_routes",
    "check_model",
]
