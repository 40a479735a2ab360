"""One prompt template over many rows: `await amap(template, rows, model=...)`.

Rows are pulled lazily and at most `max_concurrent` of them are in flight as tasks, so any
number of rows takes bounded memory. Every row streams through the provider's ordinary path
(rate limits, retries, the response cache), so a map is nothing but many ordinary calls
with bookkeeping: answers in input order, errors by index, usage, cost and cache hits.

A row's failure is recorded and the others go on (unless fail_fast=True). When the map is
cancelled (Cancel, a kernel interrupt) the CancelledError propagates as it must; every
finished row stays in `progress.result`, the MapProgress the caller passed in.

With batch_api=True the rows not already cached go to the provider's batch API as one job
(core/batch.py): every row is read first (a batch is one upload), the answers arrive
together when the job ends, and their cost is the batch price (BATCH_PRICE_FACTOR of the
direct price, as OpenAI and Anthropic both charge).

tools=, schema= and run_tools= go to every row's request like any other parameter. With
schema= each answer is parsed into `response.parsed` and to_pandas() spreads its fields
over columns; an answer that does not parse keeps its response (and its text) and records
the StructuredOutputError in `result.errors`. The cache keys on the request body, so on
the tools' and the schema's JSON, never on the function or model objects; answers that
call tools, and rows run with run_tools, are never cached (core/cache.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .base import BaseProvider
from .batch import BatchPolling, run_batch
from .cache import response_cache
from .collect import ResponseBuilder
from .errors import ConfigurationError, RateLimitError, StructuredOutputError
from .map_result import MapProgress, MapResult, Row
from .pricing import response_cost
from .registry import create_provider
from .schema import OutputSchema, as_output_schema
from .sync import run_sync
from .template import TemplateError, fill
from .types import LLMResponse, Message, StreamConfig

__all__ = ["MapProgress", "MapResult", "amap", "map_prompts"]

#: A row refused with 429 after the provider's own retries is queued again this many
#: times (behind the group's slowed-down budget) before it counts as failed.
RATE_LIMIT_REQUEUES = 3
#: What a batch answer costs relative to the same request sent directly.
BATCH_PRICE_FACTOR = 0.5


def _rows(rows: Any) -> Iterator[Row]:
    """Mappings or strings, one at a time (a pandas DataFrame gives its records)."""
    if hasattr(rows, "itertuples") and hasattr(rows, "columns"):
        columns = [str(c) for c in rows.columns]
        for values in rows.itertuples(index=False, name=None):
            yield dict(zip(columns, values, strict=True))
        return
    if isinstance(rows, str | Mapping):
        raise ConfigurationError(
            "rows must be an iterable of rows (mappings or strings), not a single "
            f"{type(rows).__name__}. Wrap one row in a list: rows=[...]."
        )
    for row in rows:
        if not isinstance(row, str | Mapping):
            raise ConfigurationError(
                f"each row must be a mapping (column -> value) or a string, got "
                f"{type(row).__name__}. Convert rows to dicts, or pass a DataFrame."
            )
        yield row


def _namespace(row: Row) -> Mapping[str, Any]:
    return {"row": row} if isinstance(row, str) else row


def _check_first(template: str, row: Row) -> None:
    """A field the template uses but the first row lacks is an error before any request."""
    try:
        fill(template, _namespace(row))
    except TemplateError as exc:
        fields = ", ".join(["row"] if isinstance(row, str) else [str(k) for k in row])
        if exc.name:
            problem = f"The template uses {{{exc.name}}}, but the first row has no such field."
        else:
            problem = f"The template cannot be filled from the first row ({exc})."
        raise ConfigurationError(
            f"{problem} The row's fields are: {fields or '(none)'}. Use one of them in the "
            "template (a plain string row is {row})."
        ) from None


def _size(rows: Any) -> int | None:
    try:
        return len(rows)
    except TypeError:
        return None


async def amap(
    template: str,
    rows: Iterable[Row] | Any,
    *,
    model: str | BaseProvider,
    cache: bool = False,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    max_concurrent: int | None = None,
    system: str | None = None,
    stream_config: StreamConfig | None = None,
    fail_fast: bool = False,
    progress: MapProgress | None = None,
    batch_api: bool | BatchPolling = False,
    **params: Any,
) -> MapResult:
    """Fill `template` from each row and ask `model`; see the module docstring.

    `model` is a model string ("openai:gpt-4o-mini", an alias) or a provider instance.
    `params` go to every request (temperature=..., max_tokens=...). Pass a MapProgress to
    watch the map live and to keep its partial result if it is cancelled. `batch_api=True`
    (or a BatchPolling) sends the rows as one provider batch job instead."""
    if max_concurrent is not None and max_concurrent < 1:
        raise ValueError("max_concurrent must be at least 1")
    owned = not isinstance(model, BaseProvider)
    if isinstance(model, str):  # its concurrency limit is the map's window: no queue behind it
        provider = create_provider(
            model, **({"max_concurrent": max_concurrent} if max_concurrent else {})
        )
    else:
        provider = model
    label = model if isinstance(model, str) else f"{provider.name}:{provider.model}"
    progress = progress if progress is not None else MapProgress()
    if progress.total is None:
        progress.total = _size(rows)
    schema = as_output_schema(params.get("schema"))
    result = progress.result = MapResult(label, schema=schema)
    progress.started = time.perf_counter()
    window = max_concurrent or provider.max_concurrent
    pending: set[asyncio.Task[None]] = set()
    try:
        iterator = _rows(rows)
        first = next(iterator, None)
        if first is None:
            return result
        _check_first(template, first)
        if batch_api:
            polling = batch_api if isinstance(batch_api, BatchPolling) else None
            rest = [first, *iterator]
            progress.total = len(rest)
            await _batch(provider, template, rest, result, progress, system, cache, polling, params)
            return result
        if requests_per_minute is not None or tokens_per_minute is not None:
            provider._rate_group().configure(requests_per_minute, tokens_per_minute)

        async def run_row(index: int, row: Row) -> None:
            builder = ResponseBuilder(provider.name, provider.model)
            progress.in_flight[index] = builder
            try:
                prompt = fill(template, _namespace(row))
                for requeue in range(RATE_LIMIT_REQUEUES + 1):
                    try:
                        stream = provider.stream_generate(
                            prompt,
                            system=system,
                            stream_config=stream_config,
                            cache=cache,
                            **params,
                        )
                        async for chunk in stream:
                            builder.add(chunk)
                        break
                    except RateLimitError:
                        if builder.chunks or requeue == RATE_LIMIT_REQUEUES:
                            raise
                response = builder.build()
            except Exception as exc:  # LLMError, TemplateError, or a bug: this row only
                result.errors[index] = exc
                progress.failed += 1
                return
            finally:
                progress.in_flight.pop(index, None)
            _record(result, progress, index, response, provider)
            if schema is not None and not response.tool_calls:
                _parse(result, progress, index, response, schema, provider.name)

        def start(index: int, row: Row) -> None:
            result.rows.append(row)
            result.responses.append(None)
            result.costs.append(None)
            pending.add(asyncio.ensure_future(run_row(index, row)))

        start(0, first)
        index = 1
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                row = next(iterator, None)
                if row is None:
                    exhausted = True
                    break
                start(index, row)
                index += 1
            if not pending:
                break
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending.difference_update(done)
            for task in done:
                task.result()  # a bug in bookkeeping surfaces here, never silently
            progress._notify()
            if fail_fast and result.errors:
                raise result.errors[min(result.errors)]
        return result
    except asyncio.CancelledError:
        result.cancelled = True
        raise
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        result.elapsed = time.perf_counter() - progress.started
        if owned:
            await provider.aclose()
        progress._notify()


async def _batch(
    provider: BaseProvider,
    template: str,
    rows: list[Row],
    result: MapResult,
    progress: MapProgress,
    system: str | None,
    cache: bool,
    polling: BatchPolling | None,
    params: dict[str, Any],
) -> None:
    """The rows as one batch job (cached rows answered from the cache, not sent)."""
    if provider.batch_api is None:
        raise ConfigurationError(
            f"{provider.display_name or provider.name} has no batch API here; batch_api=True "
            "works with OpenAI and Anthropic models. Run the map without batch_api."
        )
    merged = provider._params(params)
    store = response_cache() if cache else None
    pending: list[tuple[int, str | None, dict[str, Any]]] = []  # (row, cache key, body)
    for index, row in enumerate(rows):
        result.rows.append(row)
        result.responses.append(None)
        result.costs.append(None)
        try:
            msgs = [Message("user", fill(template, _namespace(row)))]
        except TemplateError as exc:
            result.errors[index] = exc
            progress.failed += 1
            continue
        key = provider._cache_key(msgs, system, merged) if store is not None else None
        hit = store.get(key) if store is not None and key is not None else None
        if hit is not None:
            _record(result, progress, index, hit, provider)
            if result.schema is not None and not hit.tool_calls:
                _parse(result, progress, index, hit, result.schema, provider.name)
            continue
        body = provider.build_request(msgs, system, False, merged).json or {}
        pending.append((index, key, body))
    progress._notify()
    if not pending:
        return
    outcomes = await run_batch(provider, [body for _, _, body in pending], polling)
    for (index, key, _), outcome in zip(pending, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            result.errors[index] = outcome
            progress.failed += 1
            continue
        outcome.metadata["batch"] = True
        if store is not None and key is not None:
            store.put(key, outcome)
        _record(result, progress, index, outcome, provider)
        if result.schema is not None and not outcome.tool_calls:
            _parse(result, progress, index, outcome, result.schema, provider.name)
    progress._notify()


def _record(
    result: MapResult,
    progress: MapProgress,
    index: int,
    response: LLMResponse,
    provider: BaseProvider,
) -> None:
    result.responses[index] = response
    price = response_cost(response, provider.name, provider.model)
    if price is not None and response.metadata.get("batch"):
        price *= BATCH_PRICE_FACTOR
    result.costs[index] = price
    if response.metadata.get("cached"):
        result.cached += 1
    progress.done += 1
    progress.recent.append((index, response.content))


def _parse(
    result: MapResult,
    progress: MapProgress,
    index: int,
    response: LLMResponse,
    schema: OutputSchema,
    provider: str,
) -> None:
    """response.parsed from its text; a failure keeps the response and records the error."""
    try:
        response.parsed = schema.parse(response.content, provider)
    except StructuredOutputError as exc:
        exc.request_id = response.request_id
        exc.response = response
        result.errors[index] = exc
        progress.done -= 1
        progress.failed += 1


def map_prompts(
    template: str,
    rows: Iterable[Row] | Any,
    *,
    model: str | BaseProvider,
    progress: MapProgress | None = None,
    **options: Any,
) -> MapResult:
    """Blocking amap() for scripts; safe inside a running loop (runs on a private one).
    Ctrl-C stops the map; the finished rows stay in `progress.result`."""
    progress = progress if progress is not None else MapProgress()

    async def job() -> MapResult:
        if isinstance(model, BaseProvider):
            async with model._sync_clone() as clone:
                return await amap(template, rows, model=clone, progress=progress, **options)
        return await amap(template, rows, model=model, progress=progress, **options)

    return run_sync(job)
