"""The Starlette application: routes for all five providers on one port."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .batches import batch_routes
from .chat import STATUS_FAULT_KIND, ServerState, serve_chat
from .faults import FaultSpecError
from .formats import (
    AnthropicFormat,
    CohereV1Format,
    CohereV2Format,
    GeminiFormat,
    OllamaChatFormat,
    OllamaGenerateFormat,
    OpenAIFormat,
)
from .formats.base import Context, ProviderFormat, html_error_page, json_response
from .formats.ollama import produce_pull, pull_lines, tags_response
from .listing import PageError, cohere_entries, cohere_page, listing_fault
from .middleware import RecordingMiddleware
from .models import Pacing
from .streaming import RECORD_SCOPE_KEY, PacedResponse

__all__ = ["create_app"]

OPENAI = OpenAIFormat()
ANTHROPIC = AnthropicFormat()
GEMINI = GeminiFormat()
COHERE_V2 = CohereV2Format()
COHERE_V1 = CohereV1Format()
OLLAMA_CHAT = OllamaChatFormat()
OLLAMA_GENERATE = OllamaGenerateFormat()

OLLAMA_VERSION = "0.6.3"
_PULL_LINE_DELAY = 0.03


def _ctx(fmt: ProviderFormat, model: str = "") -> Context:
    return Context(fmt.name, model, Pacing(0.0, 0.0), request_id=fmt.new_request_id())


def _note(request: Request, **fields: object) -> None:
    record = request.scope.get(RECORD_SCOPE_KEY)
    if record is not None:
        request.app.state.n3.recorder.update(record, **fields)


def _auth_error(request: Request, fmt: ProviderFormat, ctx: Context) -> Response | None:
    _note(request, provider=fmt.name, request_id=ctx.request_id)
    key = fmt.credentials(request)
    problem = request.app.state.n3.keys.check(fmt.name, key)
    if problem is not None:
        return fmt.error(problem, ctx, key=key)
    precheck = fmt.precheck(request)
    if precheck is not None:
        return fmt.error(precheck[0], ctx, precheck[1])
    return None


# -- OpenAI / Anthropic / Gemini / Cohere listing on the shared /v1/models path ---------

_COHERE_QUERY = ("endpoint", "page_size", "page_token", "default_only")


def _listing_provider(request: Request) -> ProviderFormat:
    headers = request.headers
    if "anthropic-version" in headers or "x-api-key" in headers:
        return ANTHROPIC
    if "x-goog-api-key" in headers or "key" in request.query_params:
        return GEMINI
    if any(k in request.query_params for k in _COHERE_QUERY) or "x-fern-language" in headers:
        return COHERE_V2
    return OPENAI


def _listing_refusal(request: Request, fmt: ProviderFormat, ctx: Context) -> Response | None:
    """Auth, then an X-N3-Fault status fault asked of a listing (invalid_key...)."""
    error = _auth_error(request, fmt, ctx) if fmt.needs_auth else None
    if error is not None:
        return error
    _note(request, provider=fmt.name, request_id=ctx.request_id)
    try:
        fault = listing_fault(request)
    except FaultSpecError as exc:
        return fmt.error("bad_request", ctx, str(exc))
    if fault is None or not request.app.state.n3.counters.should_fail(fmt.name, "models", fault):
        return None
    if fault.name == "html_error":
        return html_error_page(502)
    status = 529 if fault.name == "status_529" else None
    kind = STATUS_FAULT_KIND[fault.name]
    return fmt.error(kind, ctx, status=status, key=fmt.credentials(request))


def _paged(fmt: ProviderFormat, ctx: Context, page: Callable[[], Response]) -> Response:
    try:
        return page()
    except PageError as exc:
        return fmt.error("bad_request", ctx, str(exc))


async def list_models(request: Request) -> Response:
    fmt = _listing_provider(request)
    ctx = _ctx(fmt)
    error = _listing_refusal(request, fmt, ctx)
    if error is not None:
        return error
    if fmt is ANTHROPIC:
        return _paged(fmt, ctx, lambda: ANTHROPIC.models_list(request))
    if fmt is GEMINI:
        return _paged(fmt, ctx, lambda: GEMINI.models_list(request))
    if fmt is COHERE_V2:
        return _paged(fmt, ctx, lambda: json_response(cohere_page(request, cohere_entries())))
    return OPENAI.models_list()


async def get_model(request: Request) -> Response:
    name = request.path_params["name"]
    fmt = _listing_provider(request)
    ctx = _ctx(fmt, name)
    error = _auth_error(request, fmt, ctx)
    if error is not None:
        return error
    if fmt is GEMINI:
        return GEMINI.model_info(name, ctx)
    if fmt is ANTHROPIC:
        return ANTHROPIC.model_info(name, ctx)
    return OPENAI.model_info(name, ctx)


async def openai_chat(request: Request) -> Response:
    return await serve_chat(request, OPENAI)


async def anthropic_messages(request: Request) -> Response:
    return await serve_chat(request, ANTHROPIC)


# -- Gemini ----------------------------------------------------------------------------


async def gemini_action(request: Request) -> Response:
    version = request.url.path.split("/")[1]
    target = request.path_params["target"]
    model, _, action = target.rpartition(":")
    if action not in ("generateContent", "streamGenerateContent") or not model:
        ctx = _ctx(GEMINI, target)
        ctx.options["api_version"] = version
        _note(request, provider="gemini")
        return GEMINI.error("not_found", ctx)
    streaming = action == "streamGenerateContent"
    options = {"sse": request.query_params.get("alt") == "sse", "api_version": version}
    return await serve_chat(request, GEMINI, path_model=model, stream=streaming, options=options)


async def gemini_list(request: Request) -> Response:
    ctx = _ctx(GEMINI)
    error = _listing_refusal(request, GEMINI, ctx)
    if error is not None:
        return error
    return _paged(GEMINI, ctx, lambda: GEMINI.models_list(request))


async def gemini_get(request: Request) -> Response:
    name = request.path_params["name"]
    ctx = _ctx(GEMINI, name)
    error = _auth_error(request, GEMINI, ctx)
    return error if error is not None else GEMINI.model_info(name, ctx)


# -- Cohere ----------------------------------------------------------------------------


async def cohere_v2_chat(request: Request) -> Response:
    return await serve_chat(request, COHERE_V2)


async def cohere_v1_chat(request: Request) -> Response:
    return await serve_chat(request, COHERE_V1)


# -- Ollama ----------------------------------------------------------------------------


async def ollama_chat(request: Request) -> Response:
    return await serve_chat(request, OLLAMA_CHAT)


async def ollama_generate(request: Request) -> Response:
    return await serve_chat(request, OLLAMA_GENERATE)


async def ollama_tags(request: Request) -> Response:
    _note(request, provider="ollama")
    error = _listing_refusal(request, OLLAMA_CHAT, _ctx(OLLAMA_CHAT))
    return error if error is not None else tags_response()


async def ollama_pull(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    _note(request, provider="ollama", body=body)
    if not isinstance(body, dict):
        return json_response({"error": "invalid request body"}, 400)
    model = body.get("model") or body.get("name")
    if not isinstance(model, str) or not model:
        return json_response({"error": "model is required"}, 400)
    stream = body.get("stream", True) is not False
    _note(request, model=model, stream=stream)
    lines = pull_lines(model)
    if not stream:
        last = lines[-1]
        return json_response(last, 500 if "error" in last else 200)
    state = request.app.state.n3
    delay = _PULL_LINE_DELAY if state.token_delay is None else min(state.token_delay, 0.05)
    return PacedResponse(
        partial(produce_pull, lines=lines, delay=delay), media_type="application/x-ndjson"
    )


async def ollama_version(request: Request) -> Response:
    _note(request, provider="ollama")
    return json_response({"version": OLLAMA_VERSION})


async def root(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


def create_app(state: ServerState) -> Starlette:
    routes = [
        Route("/", root, methods=["GET", "HEAD"]),
        # OpenAI (and the shared /v1/models listing)
        Route("/v1/chat/completions", openai_chat, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{target:path}", gemini_action, methods=["POST"]),
        Route("/v1/models/{name:path}", get_model, methods=["GET"]),
        # Anthropic
        Route("/v1/messages", anthropic_messages, methods=["POST"]),
        # Gemini
        Route("/v1beta/models", gemini_list, methods=["GET"]),
        Route("/v1beta/models/{target:path}", gemini_action, methods=["POST"]),
        Route("/v1beta/models/{name:path}", gemini_get, methods=["GET"]),
        # Cohere
        Route("/v2/chat", cohere_v2_chat, methods=["POST"]),
        Route("/v1/chat", cohere_v1_chat, methods=["POST"]),
        # Ollama
        Route("/api/chat", ollama_chat, methods=["POST"]),
        Route("/api/generate", ollama_generate, methods=["POST"]),
        Route("/api/tags", ollama_tags, methods=["GET"]),
        Route("/api/pull", ollama_pull, methods=["POST"]),
        Route("/api/version", ollama_version, methods=["GET"]),
        *batch_routes(),  # OpenAI /v1/files + /v1/batches, Anthropic /v1/messages/batches
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RecordingMiddleware, recorder=state.recorder)],
    )
    app.state.n3 = state
    return app
