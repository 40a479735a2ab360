"""The work of each request (what a Job runs): a chain run, a chain stream, one generation
and one streamed generation. Each takes the app's ServeState and writes to an Output."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ..chain import Chain, ChainError, ChainResult
from ..chain.engine import stream_chain_batches
from ..core.base import BaseProvider
from ..core.collect import ResponseBuilder
from ..core.errors import LLMError
from ..core.pricing import cost
from ..core.types import Message
from .errors import ServeError, from_exception, from_step_error
from .jobs import Output, Work
from .models import GenerateRequest
from .state import ServeState


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


def chain_start(
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


async def run_to_end(gen: AsyncGenerator[Any, None]) -> ServeError | None:
    """Consume a chain's event batches to the end and close them: the ChainError raised,
    as the client's error, or None."""
    try:
        async for _ in gen:
            pass
    except ChainError as exc:
        return from_exception(exc)
    finally:
        await gen.aclose()
    return None


def chain_failure(result: ChainResult) -> ServeError:
    """What a chain that did not succeed answers: its first failed step's error."""
    failed = [s for s in result.steps.values() if s.state == "failed"]
    if failed:
        return from_step_error(failed[0])
    return ServeError(500, "internal_error", "the chain did not finish")


def _fallback(chain: Chain, models: dict[str, str]) -> str | None:
    for s in chain.steps:
        if s.model is None:
            return models[s.name]
    return None


def chain_run(state: ServeState, name: str, inputs: dict[str, Any]) -> Work:
    async def work(out: Output) -> None:
        started = chain_start(state, name, inputs, out)
        if started is None:
            return
        gen, result = started
        err = await run_to_end(gen)
        if err is not None:
            out.error(err)
            return
        body = result.as_dict()
        if result.ok:
            out.json(200, body)
            return
        err = chain_failure(result)
        out.json(err.status, {**err.body(), "result": body}, err.headers)

    return work


def chain_stream(state: ServeState, name: str, inputs: dict[str, Any]) -> Work:
    async def work(out: Output) -> None:
        started = chain_start(state, name, inputs, out)
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
        out.event(
            "done",
            {
                "ok": result.ok,
                "duration": result.duration,
                "usage": result.usage.as_dict(),
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
    params = {
        k: v
        for k, v in (("temperature", req.temperature), ("max_tokens", req.max_tokens))
        if v is not None
    }
    if req.cache:
        params["cache"] = True
    return params


def _cost(provider: BaseProvider, r: Any) -> float | None:
    """What the answer cost now: nothing when it came from the cache."""
    return 0.0 if r.metadata.get("cached") else cost(provider.name, provider.model, r.usage)


def generate(state: ServeState, req: GenerateRequest) -> Work:
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
                "usage": r.usage.as_dict(),
                "cost_usd": _cost(provider, r),
                "latency": r.latency,
                "request_id": r.request_id,
                "cached": bool(r.metadata.get("cached")),
            },
        )

    return work


def generate_stream(state: ServeState, req: GenerateRequest) -> Work:
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
            await stream.aclose()
        r = builder.build()
        out.event(
            "done",
            {
                "ok": True,
                "finish_reason": r.finish_reason,
                "model": r.model,
                "provider": r.provider,
                "usage": r.usage.as_dict(),
                "cost_usd": _cost(provider, r),
                "time_to_first_token": r.time_to_first_token,
                "duration": r.latency,
                "cached": bool(r.metadata.get("cached")),
            },
        )

    return work


__all__ = ["chain_run", "chain_start", "chain_stream", "generate", "generate_stream"]
