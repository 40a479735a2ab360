"""Running a chain: every step starts as soon as the steps it reads are done; a failed step
skips its dependents (independent steps still finish); cancelling stops every running step
(closing its connection) and starts nothing new."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from ..core.base import BaseProvider
from ..core.collect import ResponseBuilder
from ..core.errors import LLMError
from ..core.pricing import response_cost
from ..core.reading import flatten
from ..core.registry import ProviderFactory, create_provider
from ..core.template import TemplateError, fill
from ..core.types import Message, StreamConfig
from .events import ChainEvent, ChainResult, StepResult
from .spec import ChainError, ChainSpec

__all__ = ["ProviderFactory", "run_chain", "stream_chain", "stream_chain_batches"]


class _Providers:
    """One provider per model string for one run. Providers the run creates itself are
    closed at its end; a factory's providers are borrowed (its owner closes them)."""

    def __init__(self, factory: ProviderFactory | None) -> None:
        self.factory = factory
        self.cache: dict[str, BaseProvider] = {}
        self.made: list[BaseProvider] = []

    def get(self, spec: str) -> BaseProvider:
        if spec not in self.cache:
            if self.factory is not None:
                self.cache[spec] = self.factory(spec)
            else:
                self.cache[spec] = create_provider(spec)
                self.made.append(self.cache[spec])
        return self.cache[spec]

    async def aclose(self) -> None:
        for p in self.made:
            with contextlib.suppress(Exception):
                await p.aclose()


_FINISHED = ChainEvent("_finished")  # a step task's last word (never yielded)
NOT_STARTED = "not started: the chain was cancelled"


def stream_chain(
    chain: ChainSpec,
    inputs: dict[str, Any],
    namespace: Mapping[str, Any] | None = None,
    provider_factory: ProviderFactory | None = None,
    default_model: str | None = None,
    stream_config: StreamConfig | None = None,
    result: ChainResult | None = None,
) -> AsyncGenerator[ChainEvent, None]:
    """Run the chain, yielding step-tagged events; the last is `chain_done`.

    Everything that can be known to be wrong (a missing input, an unknown reference, a
    model without a key) raises ChainError before any request is sent. Closing the
    generator or cancelling its consumer cancels every running step (closing its
    connection) and starts nothing new."""
    batches = stream_chain_batches(
        chain, inputs, namespace, provider_factory, default_model, stream_config, result
    )
    return flatten(batches)


async def stream_chain_batches(
    chain: ChainSpec,
    inputs: dict[str, Any],
    namespace: Mapping[str, Any] | None = None,
    provider_factory: ProviderFactory | None = None,
    default_model: str | None = None,
    stream_config: StreamConfig | None = None,
    result: ChainResult | None = None,
) -> AsyncGenerator[list[ChainEvent], None]:
    """stream_chain, a list of events at a time: each list is every event ready when the
    consumer asked (the tokens one network read brought, for one), so a relay can write
    them at once. The events and their order are exactly stream_chain's."""
    values = chain.resolve_inputs(inputs)
    outside = dict(namespace or {})
    chain.check_references({**outside, **values})
    fallback = default_model or chain.default_model
    models: dict[str, str] = {}
    for s in chain.steps:
        spec = s.model or fallback
        if not spec:
            raise ChainError(f"step {s.name!r} names no model and no default is set", s.line)
        models[s.name] = spec
    providers = _Providers(provider_factory)
    # Resolve every model before sending anything: a bad model fails the whole run early.
    for s in chain.steps:
        try:
            providers.get(models[s.name])
        except LLMError as exc:
            await providers.aclose()
            raise ChainError(f"step {s.name!r}: {exc}", s.line) from None
        except BaseException:
            await providers.aclose()
            raise

    deps = chain.dependencies()
    res = result if result is not None else ChainResult(chain.name, values, {})
    res.name = chain.name
    res.inputs = values
    res.steps = {s.name: StepResult(s.name, models[s.name]) for s in chain.steps}
    queue: asyncio.Queue[ChainEvent] = asyncio.Queue()
    done_events = {s.name: asyncio.Event() for s in chain.steps}
    started = time.perf_counter()

    async def run_step(step_name: str) -> None:
        try:
            await _run_step(step_name)
        finally:
            done_events[step_name].set()
            queue.put_nowait(_FINISHED)

    async def _run_step(step_name: str) -> None:
        step = chain.step(step_name)
        sr = res.steps[step_name]
        for dep in sorted(deps[step_name]):
            await done_events[dep].wait()
        failed = [d for d in sorted(deps[step_name]) if res.steps[d].state != "done"]
        if failed:
            sr.state = "skipped"
            why = ", ".join(f"{d} {res.steps[d].state}" for d in failed)
            sr.error = f"skipped because {why}"
            queue.put_nowait(ChainEvent("step_skipped", step_name, {"reason": sr.error}))
            return
        scope = {**outside, **values, **{d: res.steps[d].output for d in deps[step_name]}}
        provider = providers.get(models[step_name])
        builder = ResponseBuilder(provider.name, provider.model)
        sr.started = time.perf_counter()
        sr.state = "streaming"
        queue.put_nowait(ChainEvent("step_started", step_name, {"model": models[step_name]}))
        try:
            try:
                prompt = fill(step.prompt, scope)
                system = fill(step.system, scope) if step.system else None
            except TemplateError as exc:
                raise ChainError(f"step {step_name!r}: {exc}", step.line) from None
            stream = provider.stream_chat(
                [Message("user", prompt)],
                system=system,
                stream_config=stream_config,
                **step.params,
            )
            try:
                async for chunk in stream:
                    builder.add(chunk)
                    if chunk.content:
                        queue.put_nowait(ChainEvent("token", step_name, {"text": chunk.content}))
            finally:
                await stream.aclose()
            sr.response = builder.build()
            sr.state = "done"
            sr.cost = response_cost(sr.response, provider.name, provider.model)
            u = sr.response.usage
            data = {
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "finish_reason": sr.response.finish_reason,
                "cost_usd": sr.cost,
            }
            queue.put_nowait(ChainEvent("step_done", step_name, data))
        except asyncio.CancelledError:
            sr.response = builder.build("cancelled")
            sr.state = "cancelled"
            queue.put_nowait(ChainEvent("step_cancelled", step_name, {}))
            raise
        except Exception as exc:  # an LLMError, or a bug in an adapter: only this step fails
            sr.response = builder.build("error")
            sr.state = "failed"
            sr.error = f"{type(exc).__name__}: {exc}"
            sr.exception = exc.with_traceback(None)  # keeps no frames of this run alive
            queue.put_nowait(ChainEvent("step_failed", step_name, {"error": sr.error}))
        finally:
            sr.finished = time.perf_counter()

    tasks = [asyncio.ensure_future(run_step(s.name)) for s in chain.steps]
    try:
        running = len(tasks)
        while running:
            event = await queue.get()
            batch: list[ChainEvent] = []
            while True:
                if event is _FINISHED:
                    running -= 1
                else:
                    batch.append(event)
                if queue.empty():
                    break
                event = queue.get_nowait()
            if batch:
                yield batch
        res.duration = time.perf_counter() - started
        yield [
            ChainEvent(
                "chain_done", None, {"ok": res.ok, "duration": res.duration, "outputs": res.outputs}
            )
        ]
    finally:
        try:
            for t in tasks:
                t.cancel()
            # Wait until every cancelled step has closed its connection.
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for sr in res.steps.values():
                if sr.state == "waiting":
                    sr.state, sr.error = "cancelled", NOT_STARTED
            res.duration = time.perf_counter() - started
            await providers.aclose()


async def run_chain(
    chain: ChainSpec,
    inputs: dict[str, Any],
    namespace: Mapping[str, Any] | None = None,
    provider_factory: ProviderFactory | None = None,
    default_model: str | None = None,
    stream_config: StreamConfig | None = None,
) -> ChainResult:
    """Run the chain to its end; the ChainResult of every step."""
    result = ChainResult(chain.name, {}, {})
    gen = stream_chain(
        chain, inputs, namespace, provider_factory, default_model, stream_config, result
    )
    try:
        async for _ in gen:
            pass
    finally:
        await gen.aclose()
    return result
