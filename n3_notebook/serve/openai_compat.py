"""The OpenAI-compatible gateway: POST /v1/chat/completions (streaming and not) and
GET /v1/models, so any OpenAI client (the openai SDK, LangChain's ChatOpenAI, simonw/llm)
calls the server's models and chains unchanged (`base_url="http://HOST:PORT/v1"`, a token
of the server as the API key).

`model` is a route of the gateway configuration (fallbacks, see routing.py), a model string
(`anthropic:claude-3-5-haiku-latest`, an alias such as `haiku`), or `chain:NAME`: the
chain runs with its inputs taken from the last user message (a JSON object in it is the
inputs; plain text goes to the chain's one required input) and its final step's text is
the answer. A token of the token file may be limited to some models (models=) and have a
budget per minute; both are checked before any upstream is called.

(No `from __future__ import annotations`: FastAPI reads the route annotations as objects.)"""

import json
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from starlette.responses import Response

from ..chain import Chain, ChainError
from ..chain.model import REQUIRED
from ..core.collect import ResponseBuilder
from ..core.errors import LLMError
from ..core.images import Image, ImageError
from ..core.registry import resolve_model
from ..core.schema import as_output_schema
from ..core.tools import Tool, as_tools
from ..core.types import LLMResponse, Message, StreamChunk, ToolCall
from .auth import TOKEN_NAME_KEY
from .budgets import estimate_tokens
from .errors import ServeError, from_exception, from_step_error
from .jobs import Job, Output, Work
from .openai_wire import (
    CHAT_ROUTE,
    ROLES,
    ChatCompletionRequest,
    ChatMessage,
    ChunkWriter,
    ModelList,
    OpenAIErrorResponse,
    completion_body,
    completion_id,
    error_body,
    error_event,
)
from .routing import Served, complete_attempt, stream_attempt
from .sse import dumps
from .state import ServeState
from .work import chain_start

CHAIN_PREFIX = "chain:"
OPENAI_ERRORS_DOC: dict[int | str, dict[str, Any]] = {
    code: {"model": OpenAIErrorResponse, "description": why}
    for code, why in (
        (400, "invalid request, or text over the server's limits"),
        (401, "missing or wrong bearer token"),
        (403, "the token may not use this model"),
        (404, "no such model, route or chain"),
        (413, "the body is over the server's size limit"),
        (429, "a budget of the token or of every upstream is spent, or too many requests"),
        (500, "the server is misconfigured for this model"),
        (502, "the upstream failed"),
        (503, "every upstream is down or overloaded, or the worker is full"),
        (504, "the upstream timed out, or the request ran past the server's time limit"),
    )
}
CHAT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a chat.completion (JSON), or with `stream` a text/event-stream of "
        "`data: <chat.completion.chunk>` events ending with `data: [DONE]`",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    **OPENAI_ERRORS_DOC,
}


def openai_error(err: ServeError) -> Response:
    return Response(dumps(error_body(err)), err.status, err.headers, media_type="application/json")


class ChatPlan:
    """A checked request: what to call, with what, and what it is charged."""

    __slots__ = (
        "chain",
        "estimate",
        "include_usage",
        "messages",
        "model",
        "params",
        "shared",
        "token",
    )

    def __init__(
        self,
        model: str,
        messages: list[Message],
        params: dict[str, Any],
        include_usage: bool,
        estimate: int,
        token: str | None,
        chain: str | None,
    ) -> None:
        self.model = model
        self.messages = messages
        self.params = params
        self.include_usage = include_usage
        self.estimate = estimate
        self.token = token
        self.chain = chain
        self.shared = False  # the token's budget was charged in Redis


async def charge_token(state: ServeState, plan: ChatPlan) -> None:
    """Charge the request to its token's budget; a 429 with Retry-After when it is spent."""
    token = plan.token
    budget = state.gateway.budgets.get(token) if token is not None else None
    if budget is None:
        return
    wait, plan.shared = await budget.take(plan.estimate)
    if wait > 0:
        raise ServeError(
            429,
            "token_budget_exceeded",
            f"the token {token!r} has spent its requests or tokens per minute; retry in "
            f"{wait:.1f} s",
            {"retry-after": str(max(1, int(wait + 0.999)))},
        )


def _parts(content: Any, index: int, role: str) -> str | list[str | Image]:
    """A message's content: text, or text and images (image_url parts, user turns only)."""
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[str | Image] = []
    for part in content:
        kind = part.get("type", "text")
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif kind == "image_url" and role == "user":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            try:
                parts.append(Image.from_url(str(url or "")))
            except ImageError as exc:
                raise ServeError(
                    400, "invalid_image", f"messages[{index}]: {exc}", param=f"messages[{index}]"
                ) from None
        else:
            raise ServeError(
                400,
                "unsupported_content",
                f"messages[{index}]: a {kind!r} part is not supported here; send text parts "
                "(and image_url parts in user messages)",
                param=f"messages[{index}].content",
            )
    if all(isinstance(p, str) for p in parts):
        return "\n".join(p for p in parts if isinstance(p, str))
    return parts


def _tool_calls(m: ChatMessage, index: int) -> tuple[ToolCall, ...]:
    calls = []
    for call in m.tool_calls or ():
        fn = call.get("function") or {}
        try:
            raw = fn.get("arguments") or "{}"
            arguments = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(arguments, dict):
                raise ValueError
            calls.append(ToolCall(str(call.get("id") or ""), str(fn["name"]), arguments))
        except (KeyError, ValueError, TypeError):
            raise ServeError(
                400,
                "invalid_tool_call",
                f"messages[{index}].tool_calls: each needs function.name and function."
                "arguments, a JSON object",
                param=f"messages[{index}].tool_calls",
            ) from None
    return tuple(calls)


def _messages(req: ChatCompletionRequest) -> list[Message]:
    out = []
    for i, m in enumerate(req.messages):
        role = ROLES.get(m.role)
        if role is None:
            raise ServeError(
                400,
                "unsupported_role",
                f"messages[{i}]: role {m.role!r} is not supported; use system, developer, "
                "user, assistant or tool",
                param=f"messages[{i}].role",
            )
        try:
            message = Message.coerce(
                Message(
                    role,  # type: ignore[arg-type]
                    _parts(m.content, i, role),
                    _tool_calls(m, i),
                    m.tool_call_id,
                    m.name,
                )
            )
        except ValueError as exc:
            raise ServeError(
                400, "invalid_message", f"messages[{i}]: {exc}", param=f"messages[{i}]"
            ) from None
        out.append(message)
    return out


def _features(req: ChatCompletionRequest) -> dict[str, Any]:
    """tools and response_format (json_schema) as the provider core takes them (checked)."""
    params: dict[str, Any] = {}
    try:
        if req.tools:
            tools = []
            for t in req.tools:
                fn = t.get("function") if t.get("type", "function") == "function" else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise ValueError('each tool is {"type": "function", "function": {"name": ...}}')
                parameters = fn.get("parameters") or {"type": "object", "properties": {}}
                tools.append(Tool(fn["name"], str(fn.get("description") or ""), parameters))
            params["tools"] = as_tools(tools)
    except ValueError as exc:
        raise ServeError(400, "invalid_tools", f"tools: {exc}", param="tools") from None
    fmt = req.response_format
    if fmt and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        try:
            params["schema"] = as_output_schema(schema)
        except ValueError as exc:
            raise ServeError(
                400, "invalid_response_format", f"response_format: {exc}", param="response_format"
            ) from None
    elif fmt and fmt.get("type") not in (None, "text"):
        raise ServeError(
            400,
            "unsupported_response_format",
            f"response_format type {fmt.get('type')!r} is not supported; use json_schema",
            param="response_format",
        )
    return params


def plan_chat(state: ServeState, req: ChatCompletionRequest, token: str | None) -> ChatPlan:
    """Check a request before anything is called: model, messages, limits, the token's
    models. Raises ServeError (answered in OpenAI's shape)."""
    gw = state.gateway
    model = req.model.strip()
    if not gw.may_use(token, model):
        raise ServeError(
            403,
            "model_not_allowed",
            f"the token {token!r} may not use the model {model!r}",
            param="model",
        )
    chain: str | None = None
    if model.startswith(CHAIN_PREFIX):
        chain = model[len(CHAIN_PREFIX) :]
        if chain not in state.chains:
            raise _no_model(state, model)
    elif model not in gw.router.config.routes:
        allowed = state.allowed_models
        if allowed is not None and model not in allowed:
            raise _no_model(state, model)
        try:
            resolve_model(model)
        except LLMError:
            raise _no_model(state, model) from None
    messages = _messages(req)
    limits = state.limits
    texts = [m.text for m in messages]
    if sum(len(t) for t in texts) > limits.max_prompt_chars:
        raise ServeError(
            400,
            "context_length_exceeded",
            f"the messages hold more than this server's limit of {limits.max_prompt_chars} "
            "characters (N3_SERVE_MAX_PROMPT_CHARS)",
            param="messages",
        )
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None and max_tokens > limits.max_output_tokens:
        raise ServeError(
            400,
            "max_tokens_too_large",
            f"max_tokens is {max_tokens}, over this server's limit of "
            f"{limits.max_output_tokens} (N3_SERVE_MAX_OUTPUT_TOKENS)",
            param="max_tokens",
        )
    params: dict[str, Any] = {
        k: v
        for k, v in (
            ("temperature", req.temperature),
            ("top_p", req.top_p),
            ("max_tokens", max_tokens),
            ("stop", req.stop),
        )
        if v is not None
    }
    params.update(_features(req))
    estimate = estimate_tokens(texts, max_tokens)
    include = bool(req.stream_options and req.stream_options.include_usage)
    return ChatPlan(model, messages, params, include, estimate, token, chain)


def _no_model(state: ServeState, model: str) -> ServeError:
    return ServeError(
        404,
        "model_not_found",
        f"The model {model!r} does not exist on this server; GET /v1/models lists the "
        "routes and chains it serves, and any provider:model string works unless the server "
        "restricts models",
        param="model",
    )


async def _settle(state: ServeState, plan: ChatPlan, served: Served | None, tokens: int) -> None:
    if served is not None:
        await state.gateway.router.settle(served, tokens)
    budget = state.gateway.budgets.get(plan.token) if plan.token is not None else None
    if budget is not None:
        await budget.settle(plan.estimate, tokens, plan.shared)


def _openai_output(out: Output) -> None:
    out.error_body = error_body

    def stream_error(err: ServeError) -> None:
        out.data(error_event(err))

    out.stream_error = stream_error


def chat_complete(state: ServeState, plan: ChatPlan) -> Work:
    async def work(out: Output) -> None:
        _openai_output(out)
        router = state.gateway.router
        try:
            served, r = await router.run(
                plan.model, plan.estimate, complete_attempt(plan.messages, plan.params)
            )
        except (LLMError, ServeError) as exc:
            await _settle(state, plan, None, 0)
            out.error(from_exception(exc, client_model=True))
            return
        await _settle(state, plan, served, r.usage.total_tokens)
        body = completion_body(
            completion_id(), served.upstream.spec, r.content, r.finish_reason, r.usage, r.tool_calls
        )
        out.json(200, body, {"x-n3-upstream": served.upstream.spec})

    return work


def chat_stream(state: ServeState, plan: ChatPlan) -> Work:
    async def work(out: Output) -> None:
        _openai_output(out)
        router = state.gateway.router
        attempt = stream_attempt(plan.messages, state.stream_config, plan.params)
        try:
            served, (stream, held) = await router.run(plan.model, plan.estimate, attempt)
        except (LLMError, ServeError) as exc:
            await _settle(state, plan, None, 0)
            out.error(from_exception(exc, client_model=True))
            return
        provider = served.provider
        writer = ChunkWriter(completion_id(), served.upstream.spec, plan.include_usage)
        builder = ResponseBuilder(provider.name, provider.model)
        add = builder.add
        batch: list[StreamChunk] | None = held
        try:
            out.start_sse()
            out.data(writer.role())
            try:
                # One event and one write per upstream read: its texts go out together.
                while batch is not None:
                    text = ""
                    for chunk in batch:
                        add(chunk)
                        if chunk.content:
                            text += chunk.content
                    if text:
                        if out.first_token_at is None:
                            out.first_token()
                        out.data(writer.text(text))
                    await out.flush()
                    batch = await anext(stream, None)
            except LLMError as exc:
                out.data(error_event(from_exception(exc, client_model=True)))
                return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
            await _settle(state, plan, served, builder.build().usage.total_tokens)
        r = builder.build()
        out.data(writer.end(r.finish_reason, r.usage, r.tool_calls))

    return work


# -- chains ------------------------------------------------------------------------------
def chain_inputs(name: str, chain: Chain, messages: list[Message]) -> dict[str, Any]:
    """A chain's inputs from the last user message: a JSON object in it is the inputs;
    plain text goes to the one required input (or the one input). Checked against the
    chain's inputs (a 400 naming them)."""
    given = _given_inputs(name, chain, messages)
    try:
        chain.resolve_inputs(given)
    except ChainError as exc:
        raise ServeError(400, "chain_inputs", f"chain {name!r}: {exc}", param="messages") from None
    return given


def _given_inputs(name: str, chain: Chain, messages: list[Message]) -> dict[str, Any]:
    text = next((m.text for m in reversed(messages) if m.role == "user"), "")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            given = json.loads(stripped)
        except ValueError:
            given = None
        if isinstance(given, dict):
            return given
    required = [k for k, v in chain.inputs.items() if v is REQUIRED]
    names = required or list(chain.inputs)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: text}
    raise ServeError(
        400,
        "chain_inputs",
        f"the chain {name!r} takes the inputs {', '.join(names)}: send the last user "
        'message as a JSON object, e.g. {"' + names[0] + '": "..."}',
        param="messages",
    )


def _chain_text(state: ServeState, name: str, events: list[Any], final: str) -> str:
    return "".join(e.data.get("text", "") for e in events if e.type == "token" and e.step == final)


def _chain_failure(result: Any) -> ServeError:
    failed = [s for s in result.steps.values() if s.state == "failed"]
    if failed:
        return from_step_error(failed[0])
    return ServeError(500, "internal_error", "the chain did not finish")


def chain_complete(state: ServeState, plan: ChatPlan, name: str) -> Work:
    async def work(out: Output) -> None:
        _openai_output(out)
        chain = state.chains[name]
        inputs = chain_inputs(name, chain, plan.messages)
        started = chain_start(state, name, inputs, out)
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
            await _settle(state, plan, None, result.usage.total_tokens)
        if not result.ok:
            out.error(_chain_failure(result))
            return
        final = chain.steps[-1].name
        step = result.steps[final]
        r: LLMResponse | None = step.response
        body = completion_body(
            completion_id(),
            plan.model,
            result.outputs.get(final, ""),
            r.finish_reason if r is not None else None,
            result.usage,
        )
        out.json(200, body)

    return work


def chain_stream(state: ServeState, plan: ChatPlan, name: str) -> Work:
    async def work(out: Output) -> None:
        _openai_output(out)
        chain = state.chains[name]
        inputs = chain_inputs(name, chain, plan.messages)
        started = chain_start(state, name, inputs, out)
        if started is None:
            return
        gen, result = started
        final = chain.steps[-1].name
        writer = ChunkWriter(completion_id(), plan.model, plan.include_usage)
        try:
            batch = await anext(gen, None)
            while batch is not None:
                text = _chain_text(state, name, batch, final)
                failed = any(e.type == "step_failed" for e in batch)
                if text and not out.sse:
                    out.start_sse()
                    out.data(writer.role())
                if text:
                    if out.first_token_at is None:
                        out.first_token()
                    out.data(writer.text(text))
                if failed:
                    err = _chain_failure(result)
                    if out.sse:
                        out.data(error_event(err))
                    else:  # nothing sent yet: a proper status
                        out.error(err)
                    return
                if out.sse:
                    await out.flush()
                batch = await anext(gen, None)
        except ChainError as exc:
            if out.sse:
                out.data(error_event(from_exception(exc)))
            else:
                out.error(from_exception(exc))
            return
        finally:
            await gen.aclose()
            await _settle(state, plan, None, result.usage.total_tokens)
        if not result.ok:
            err = _chain_failure(result)
            out.data(error_event(err)) if out.sse else out.error(err)
            return
        if not out.sse:
            out.start_sse()
            out.data(writer.role())
        step = result.steps[final].response
        out.data(writer.end(step.finish_reason if step is not None else None, result.usage))

    return work


# -- routes ------------------------------------------------------------------------------
def model_ids(state: ServeState, token: str | None) -> list[str]:
    """What GET /v1/models lists: routes, chains (chain:NAME), the models the server
    restricts clients to, and its chains' models; only those the token may use."""
    ids: list[str] = list(state.gateway.router.config.routes)
    ids += [f"{CHAIN_PREFIX}{name}" for name in state.chains]
    ids += sorted(state.allowed_models or ())
    for steps in state.models.values():
        ids += steps.values()
    seen: dict[str, None] = {}
    for i in ids:
        if state.gateway.may_use(token, i):
            seen.setdefault(i, None)
    return list(seen)


def add_openai_routes(app: FastAPI, state: ServeState) -> None:
    @app.post(
        CHAT_ROUTE,
        tags=["openai"],
        summary="Chat completion (OpenAI-compatible)",
        description="OpenAI's Chat Completions API: `model` is a route, a model string or "
        "chain:NAME; `stream` answers with chat.completion.chunk events.",
        response_class=Response,
        responses=CHAT_DOC,
    )
    async def chat_completions(
        request: Request,
        body: Annotated[ChatCompletionRequest, Body()],
    ) -> Response:
        token = request.scope.get(TOKEN_NAME_KEY)
        try:
            plan = plan_chat(state, body, token)
            await charge_token(state, plan)
            if plan.chain is not None:
                name = plan.chain
                # checked now: a JSON body that is not the chain's inputs is the client's 400
                chain_inputs(name, state.chains[name], plan.messages)
                make = chain_stream if body.stream else chain_complete
                return Job(state.lifecycle, make(state, plan, name), state.metrics, CHAT_ROUTE)
        except ServeError as err:
            return openai_error(err)
        work = chat_stream(state, plan) if body.stream else chat_complete(state, plan)
        return Job(state.lifecycle, work, state.metrics, CHAT_ROUTE)

    @app.get(
        "/v1/models",
        tags=["openai"],
        summary="Models, routes and chains (OpenAI-compatible)",
        response_model=ModelList,
        responses={401: OPENAI_ERRORS_DOC[401], 429: OPENAI_ERRORS_DOC[429]},
    )
    async def list_models(request: Request) -> Response:
        token = request.scope.get(TOKEN_NAME_KEY)
        data = [
            {"id": i, "object": "model", "created": 0, "owned_by": "n3_notebook"}
            for i in model_ids(state, token)
        ]
        return Response(dumps({"object": "list", "data": data}), media_type="application/json")


__all__ = [
    "CHAIN_PREFIX",
    "CHAT_ROUTE",
    "ChatPlan",
    "add_openai_routes",
    "chain_inputs",
    "charge_token",
    "chat_complete",
    "chat_stream",
    "model_ids",
    "openai_error",
    "plan_chat",
]
