"""The OpenAI-compatible gateway: POST /v1/chat/completions (streaming and not) and
GET /v1/models, so any OpenAI client (the openai SDK, LangChain's ChatOpenAI, simonw/llm)
calls the server's models and chains unchanged (`base_url="http://HOST:PORT/v1"`, a token
of the server as the API key).

`model` is a route of the gateway configuration (fallbacks, see routing.py), a model string
(`anthropic:claude-3-5-haiku-latest`, an alias such as `haiku`), or `chain:NAME`: the
chain runs with its inputs taken from the last user message (a JSON object in it is the
inputs; plain text goes to the chain's one required input) and its final step's text is
the answer. A token of the token file may be limited to some models (models=) and have a
budget per minute; both are checked before any upstream is called (openai_plan.py).

(No `from __future__ import annotations`: FastAPI reads the route annotations as objects.)"""

from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from starlette.responses import Response

from ..chain import Chain, ChainError, ChainResult
from ..core.collect import ResponseBuilder
from ..core.errors import LLMError
from ..core.types import LLMResponse, StreamChunk
from .auth import TOKEN_NAME_KEY
from .errors import ServeError, from_exception
from .jobs import Job, Output, Work
from .openai_plan import CHAIN_PREFIX, ChatPlan, chain_inputs, charge_token, plan_chat
from .openai_wire import (
    CHAT_ROUTE,
    ChatCompletionRequest,
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
from .work import chain_failure, chain_start, run_to_end

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


async def _settle(state: ServeState, plan: ChatPlan, served: Served | None, tokens: int) -> None:
    if served is not None:
        await state.gateway.router.settle(served, tokens)
    budget = state.gateway.budgets.get(plan.token) if plan.token is not None else None
    if budget is not None:
        await budget.settle(plan.estimate, tokens, plan.shared)


def _cache_headers(plan: ChatPlan, cached: bool) -> dict[str, str]:
    """x-n3-cache: hit or miss, when the request asked for the cache (n3_cache: true)."""
    return {"x-n3-cache": "hit" if cached else "miss"} if plan.params.get("cache") else {}


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
        cached = bool(r.metadata.get("cached"))  # a cached answer spent no upstream tokens
        await _settle(state, plan, served, 0 if cached else r.usage.total_tokens)
        body = completion_body(
            completion_id(), served.upstream.spec, r.content, r.finish_reason, r.usage, r.tool_calls
        )
        out.json(200, body, {"x-n3-upstream": served.upstream.spec, **_cache_headers(plan, cached)})

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
        cached = any(c.metadata and c.metadata.get("cached") for c in held)
        try:
            out.start_sse(_cache_headers(plan, cached))
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
            await stream.aclose()
            spent = 0 if cached else builder.build().usage.total_tokens
            await _settle(state, plan, served, spent)
        r = builder.build()
        out.data(writer.end(r.finish_reason, r.usage, r.tool_calls))

    return work


# -- chains ------------------------------------------------------------------------------
def _chain_text(events: list[Any], final: str) -> str:
    return "".join(e.data.get("text", "") for e in events if e.type == "token" and e.step == final)


def _chain_opened(
    state: ServeState, plan: ChatPlan, name: str, out: Output
) -> tuple[Chain, Any, ChainResult] | None:
    """The chain, its event generator and its result, started with the inputs the last
    message gives (None when chain_start already answered the client)."""
    _openai_output(out)
    chain = state.chains[name]
    started = chain_start(state, name, chain_inputs(name, chain, plan.messages), out)
    return None if started is None else (chain, *started)


def chain_complete(state: ServeState, plan: ChatPlan, name: str) -> Work:
    async def work(out: Output) -> None:
        opened = _chain_opened(state, plan, name, out)
        if opened is None:
            return
        chain, gen, result = opened
        try:
            err = await run_to_end(gen)
        finally:
            await _settle(state, plan, None, result.usage.total_tokens)
        if err is not None:
            out.error(err)
            return
        if not result.ok:
            out.error(chain_failure(result))
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
        opened = _chain_opened(state, plan, name, out)
        if opened is None:
            return
        chain, gen, result = opened
        final = chain.steps[-1].name
        writer = ChunkWriter(completion_id(), plan.model, plan.include_usage)
        try:
            batch = await anext(gen, None)
            while batch is not None:
                text = _chain_text(batch, final)
                failed = any(e.type == "step_failed" for e in batch)
                if text and not out.sse:
                    out.start_sse()
                    out.data(writer.role())
                if text:
                    if out.first_token_at is None:
                        out.first_token()
                    out.data(writer.text(text))
                if failed:
                    err = chain_failure(result)
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
            err = chain_failure(result)
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
    "CHAT_DOC",
    "OPENAI_ERRORS_DOC",
    "add_openai_routes",
    "chain_complete",
    "chain_stream",
    "chat_complete",
    "chat_stream",
    "model_ids",
    "openai_error",
]
