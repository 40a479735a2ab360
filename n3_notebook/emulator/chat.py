"""The request pipeline shared by every chat route.

auth -> route prechecks -> JSON -> provider parse -> model lookup -> fault -> answer ->
streamed or whole response, in the provider's format.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .auth import KeyPolicy
from .batches import BatchStore
from .budget import BudgetTracker
from .faults import Fault, FaultCounters, FaultSpecError, parse_fault, split_model_fault
from .features import apply_features
from .formats.base import (
    BadRequest,
    ChatRequest,
    Context,
    ErrorKind,
    ProviderFormat,
    html_error_page,
)
from .models import ModelProfile, Pacing, lookup_model, resolve_pacing
from .recorder import Recorder, RequestRecord
from .streaming import RECORD_SCOPE_KEY, PacedResponse, produce_body, produce_stream
from .text import expected_answer

__all__ = ["FAULT_HEADER", "ServerState", "serve_chat"]

FAULT_HEADER = "x-n3-fault"

STATUS_FAULT_KIND: dict[str, ErrorKind] = {
    "rate_limit": "rate_limit",
    "status_500": "server_error",
    "status_503": "unavailable",
    "status_529": "overloaded",
    "invalid_key": "auth_invalid",
}


@dataclass
class ServerState:
    """Everything the routes share; lives on ``app.state.n3``."""

    recorder: Recorder = field(default_factory=Recorder)
    counters: FaultCounters = field(default_factory=FaultCounters)
    keys: KeyPolicy = field(default_factory=KeyPolicy)
    budget: BudgetTracker = field(default_factory=BudgetTracker)
    batches: BatchStore = field(default_factory=BatchStore)
    token_delay: float | None = None
    first_token_delay: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pacing(self, profile: ModelProfile, fault: Fault | None = None) -> Pacing:
        with self.lock:
            pacing = resolve_pacing(profile, self.token_delay, self.first_token_delay)
        if fault is not None and fault.name == "slow_first":
            pacing = Pacing(first_token_delay=fault.seconds, token_delay=pacing.token_delay)
        return pacing


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.n3
    return state


def _note(request: Request, **fields: Any) -> None:
    record: RequestRecord | None = request.scope.get(RECORD_SCOPE_KEY)
    if record is not None:
        _state(request).recorder.update(record, **fields)


def _display_model(fmt: ProviderFormat, model: str) -> str:
    name = split_model_fault(model)[0]
    if fmt.name == "gemini" and name.startswith("models/"):
        name = name[len("models/") :]
    return name


async def _read_json(request: Request) -> tuple[Any, bool]:
    raw = await request.body()
    if not raw:
        return None, False
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


async def serve_chat(
    request: Request,
    fmt: ProviderFormat,
    *,
    path_model: str | None = None,
    stream: bool | None = None,
    options: dict[str, Any] | None = None,
) -> Response:
    """Answer one chat request on ``fmt``'s route.

    ``path_model`` is the model taken from the URL (Gemini); ``stream`` overrides the
    body's stream flag when the route decides it (Gemini's two actions).
    """
    state = _state(request)
    ctx = Context(
        provider=fmt.name,
        model=_display_model(fmt, path_model or ""),
        pacing=Pacing(0.0, 0.0),
        request_id=fmt.new_request_id(),
        options=dict(options or {}),
    )
    try:
        body, valid_json = await _read_json(request)
    except ClientDisconnect:  # the client left (e.g. cancelled) before sending its body
        return Response(status_code=499)
    header_fault = request.headers.get(FAULT_HEADER)
    early_model = ctx.model
    if not early_model and isinstance(body, dict) and isinstance(body.get("model"), str):
        early_model = _display_model(fmt, body["model"])
    _note(
        request,
        provider=fmt.name,
        body=body,
        fault=header_fault,
        model=early_model or None,
        request_id=ctx.request_id,
    )

    if fmt.needs_auth:
        key = fmt.credentials(request)
        problem = state.keys.check(fmt.name, key)
        if problem is not None:
            return fmt.error(problem, ctx, key=key)
    precheck = fmt.precheck(request)
    if precheck is not None:
        return fmt.error(precheck[0], ctx, precheck[1])
    if not valid_json:
        return fmt.error("bad_request", ctx, "We could not parse the JSON body of your request.")
    try:
        chat = fmt.parse(body, request, path_model)
    except BadRequest as exc:
        return fmt.error("bad_request", ctx, exc.message)
    if stream is not None:
        chat.stream = stream

    model_name, suffix_fault = split_model_fault(chat.model)
    spec = header_fault or suffix_fault
    ctx.model = _display_model(fmt, chat.model)
    _note(request, model=ctx.model, stream=chat.stream, fault=spec)

    profile = lookup_model(fmt.name, model_name)
    if profile is None:
        return fmt.error("not_found", ctx)
    fault: Fault | None = None
    if spec:
        try:
            fault = parse_fault(spec)
        except FaultSpecError as exc:
            return fmt.error("bad_request", ctx, str(exc))

    if (
        fault is not None
        and fault.status is not None
        and state.counters.should_fail(fmt.name, profile.name, fault)
    ):
        if fault.name == "html_error":
            return html_error_page(502)
        kind = STATUS_FAULT_KIND[fault.name]
        status = 529 if fault.name == "status_529" else None
        return fmt.error(kind, ctx, status=status, key=fmt.credentials(request))

    return _answer(fmt, ctx, chat, profile, fault, state)


def _answer(
    fmt: ProviderFormat,
    ctx: Context,
    chat: ChatRequest,
    profile: ModelProfile,
    fault: Fault | None,
    state: ServerState,
) -> Response:
    answer = expected_answer(
        fmt.name,
        profile.name,
        chat.messages,
        chat.system,
        chat.max_tokens,
        stop=chat.stop,
        length=fault.length if fault is not None and fault.name == "long" else None,
    )
    answer = apply_features(answer, chat)
    ctx.pacing = state.pacing(profile, fault)
    ctx.blocked = fault is not None and fault.name == "blocked"
    verdict = state.budget.charge(
        fmt.name, profile.name, answer.input_tokens + answer.output_tokens
    )
    if verdict is not None and not verdict.allowed:
        refused = fmt.error("rate_limit", ctx)
        refused.headers.update(verdict.headers(fmt.name))
        return refused
    fmt.prepare(ctx, chat)
    headers = fmt.response_headers(ctx)
    if verdict is not None:
        headers.update(verdict.headers(fmt.name))

    if chat.stream:
        plan = fmt.plan(answer, ctx)
        return PacedResponse(
            partial(produce_stream, plan=plan, pacing=ctx.pacing, fault=fault),
            headers={**headers, "cache-control": "no-cache"},
            media_type=fmt.stream_media_type,
        )

    tokens = 0 if ctx.blocked else answer.output_tokens
    delay = ctx.pacing.generation_time(tokens)
    name = fault.name if fault is not None else None
    if name == "stall":
        delay += fault.seconds  # type: ignore[union-attr]
    if name == "midstream_error":
        return PacedResponse(
            partial(_error_after, fmt=fmt, ctx=ctx, delay=delay),
            status_code=500,
            headers=headers,
            media_type="application/json",
        )
    payload = fmt.encode_body(fmt.complete(answer, ctx))
    if name == "malformed":
        payload = payload[: max(1, len(payload) // 2)]
    headers["content-length"] = str(len(payload))
    return PacedResponse(
        partial(
            produce_body,
            body=payload,
            delay=delay,
            cut="disconnect" if name == "disconnect" else None,
        ),
        headers=headers,
        media_type="application/json",
    )


async def _error_after(writer: Any, *, fmt: ProviderFormat, ctx: Context, delay: float) -> None:
    """A non-streaming request with ``midstream_error``: a 500 in the provider's shape."""
    response = fmt.error("server_error", ctx)
    await produce_body(writer, bytes(response.body), delay)
