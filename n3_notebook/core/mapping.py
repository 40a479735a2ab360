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
import collections
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from .base import BaseProvider
from .batch import BatchPolling, run_batch
from .cache import response_cache
from .collect import ResponseBuilder
from .errors import ConfigurationError, RateLimitError, StructuredOutputError
from .pricing import response_cost
from .registry import create_provider
from .schema import OutputSchema, as_output_schema
from .sync import run_sync
from .template import TemplateError, fill
from .types import LLMResponse, Message, StreamConfig, Usage

__all__ = ["MapProgress", "MapResult", "amap", "map_prompts"]

#: How many finished answers MapProgress.recent keeps (for a live view).
RECENT_ANSWERS = 5
#: A row refused with 429 after the provider's own retries is queued again this many
#: times (behind the group's slowed-down budget) before it counts as failed.
RATE_LIMIT_REQUEUES = 3
#: What a batch answer costs relative to the same request sent directly.
BATCH_PRICE_FACTOR = 0.5

Row = Mapping[str, Any] | str


@dataclass
class MapResult(Sequence[LLMResponse | None]):
    """Answers in input order: result[i] is row i's LLMResponse, or None if it failed
    (its error is result.errors[i]) or never ran (the map was cancelled first). With
    schema=, an answer that did not parse is kept and its error is in result.errors too."""

    model: str
    rows: list[Row] = field(default_factory=list)
    responses: list[LLMResponse | None] = field(default_factory=list)
    errors: dict[int, BaseException] = field(default_factory=dict)
    costs: list[float | None] = field(default_factory=list)
    cached: int = 0
    cancelled: bool = False
    elapsed: float = 0.0
    schema: OutputSchema | None = None

    def __len__(self) -> int:
        return len(self.responses)

    @overload
    def __getitem__(self, index: int) -> LLMResponse | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[LLMResponse | None]: ...

    def __getitem__(self, index: int | slice) -> LLMResponse | list[LLMResponse | None] | None:
        return self.responses[index]

    @property
    def usage(self) -> Usage:
        """Tokens of every answered row (cached answers included: they were paid once)."""
        i = o = 0
        for r in self.responses:
            if r is not None:
                i += r.usage.input_tokens
                o += r.usage.output_tokens
        return Usage.of(i, o)

    @property
    def cost(self) -> float | None:
        """USD of the answers that were not cached; None when a price is unknown."""
        total = 0.0
        for r, c in zip(self.responses, self.costs, strict=True):
            if r is None or r.metadata.get("cached"):
                continue
            if c is None:
                return None
            total += c
        return total

    @property
    def texts(self) -> list[str | None]:
        return [None if r is None else r.content for r in self.responses]

    def to_pandas(self) -> Any:
        """Input fields + answer, tokens, latency, TTFT, cost, cached, error (needs pandas);
        with schema=, one column per field of the parsed answer (empty where it failed)."""
        try:
            import pandas as pd  # an optional dependency
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        records = []
        for i, r in enumerate(self.responses):
            row = self.rows[i] if i < len(self.rows) else {}
            record: dict[str, Any] = dict(row) if isinstance(row, Mapping) else {"row": row}
            err = self.errors.get(i)
            record.update(
                answer=None if r is None else r.content,
                input_tokens=None if r is None else r.usage.input_tokens,
                output_tokens=None if r is None else r.usage.output_tokens,
                latency_s=None if r is None else r.latency,
                ttft_s=None if r is None else r.time_to_first_token,
                cost_usd=self.costs[i],
                cached=bool(r is not None and r.metadata.get("cached")),
                error=None if err is None else f"{type(err).__name__}: {err}",
            )
            if self.schema is not None:
                record.update(_parsed_columns(self.schema, record, r))
            records.append(record)
        return pd.DataFrame.from_records(records)

    def __repr__(self) -> str:
        cost = "unknown" if self.cost is None else f"${self.cost:.6f}"
        state = ", cancelled" if self.cancelled else ""
        answers = sum(
            1 for i, r in enumerate(self.responses) if r is not None and i not in self.errors
        )  # rows a cancel cut short are None and no error: not answers
        return (
            f"MapResult({self.model}: {answers} answers, "
            f"{len(self.errors)} errors, {self.cached} cached, tokens={self.usage.input_tokens}"
            f"+{self.usage.output_tokens}, cost={cost}{state})"
        )


def _parsed_columns(
    schema: OutputSchema, record: Mapping[str, Any], response: LLMResponse | None
) -> dict[str, Any]:
    """The parsed answer's fields as columns (the schema's properties; one column "parsed"
    when it has none); a name already taken by an input field gets a "parsed." prefix."""
    properties = schema.schema.get("properties")
    parsed = None if response is None else response.parsed
    if not isinstance(properties, Mapping) or not properties:
        return {"parsed": parsed}
    columns: dict[str, Any] = {}
    for name in properties:
        if parsed is None:
            value = None
        elif isinstance(parsed, Mapping):
            value = parsed.get(name)
        else:
            value = getattr(parsed, name, None)
        columns[f"parsed.{name}" if name in record else str(name)] = value
    return columns


@dataclass
class MapProgress:
    """Live state of a running map, for a progress view; `result` is the partial result
    (complete once the map returns, and still there when it was cancelled)."""

    total: int | None = None
    on_update: Callable[[MapProgress], None] | None = None
    result: MapResult = field(default_factory=lambda: MapResult(""))
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    in_flight: dict[int, ResponseBuilder] = field(default_factory=dict)
    recent: collections.deque[tuple[int, str]] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_ANSWERS)
    )

    @property
    def cached(self) -> int:
        return self.result.cached

    @property
    def output_tokens(self) -> int:
        return self.result.usage.output_tokens

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def tokens_per_s(self) -> float:
        t = self.elapsed
        return self.output_tokens / t if t > 0 else 0.0

    @property
    def cost(self) -> float | None:
        return self.result.cost

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace so far; None when unknown."""
        finished = self.done + self.failed
        if self.total is None or finished == 0:
            return None
        return self.elapsed / finished * (self.total - finished)

    def _notify(self) -> None:
        if self.on_update is not None:
            self.on_update(self)


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
