"""BaseProvider: everything a provider adapter shares.

An adapter (providers/*.py) says how to build a request, how to read a whole response,
how to map stream events to chunks and how to read an error body. This class owns the rest
on top of ProviderConnection (core/connection.py: settings, the HTTP client, the
concurrency limit, sending with retries): the public API, the stream loop with its bounds
(StreamConfig), cancellation that closes the response at once, metrics and logging.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, ClassVar

from ..wire import NDJSONDecoder, SSEDecoder
from .batch import BatchAPI
from .cache import cache_key, cached_batches, response_cache
from .catalog import ModelInfo
from .connection import ProviderConnection
from .errors import (
    LLMError,
    LLMTimeoutError,
    StreamProtocolError,
    StructuredOutputError,
)
from .features import prepare as prepare_features
from .http import RequestSpec
from .limits import rate_group
from .messages import MessageLike, as_messages, finish_with_calls
from .metrics import RequestMetrics, emit, logger
from .protocols import ParsedResponse, StreamMapper
from .reading import close_response, flatten, read_batches
from .snippets import snippet
from .sync import run_sync
from .timeouts import StreamClock, wants_reasoning
from .toolloop import DEFAULT_MAX_TOOL_STEPS, run_tool_loop, stream_tool_loop
from .types import LLMResponse, Message, StreamChunk, StreamConfig

__all__ = ["BaseProvider"]


class BaseProvider(ProviderConnection):
    """Shared machinery of every provider; see the module docstring."""

    framing: ClassVar[str] = "sse"  # or "ndjson"
    #: How this provider runs batch jobs (core/batch.py); None: it has no batch API.
    batch_api: ClassVar[BatchAPI | None] = None

    # ----------------------------------------------------------------- adapter hooks
    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        raise NotImplementedError

    def parse_response(self, payload: Any) -> ParsedResponse:
        raise NotImplementedError

    def stream_mapper(self) -> StreamMapper:
        raise NotImplementedError

    def normalize_finish(self, raw: str | None) -> str | None:
        return raw

    def make_decoder(self) -> SSEDecoder | NDJSONDecoder:
        return SSEDecoder() if self.framing == "sse" else NDJSONDecoder()

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models this key can use, every page, cached for the process's life
        (refresh=True asks again). Adapters with a models endpoint override this."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its models")

    def _call_options(self, params: dict[str, Any]) -> bool:
        """Take the library's own options out of a call's params (they never reach the
        request body): per-call budgets go to the shared group; returns `cache`."""
        cache = bool(params.pop("cache", False))
        rpm = params.pop("requests_per_minute", None)
        tpm = params.pop("tokens_per_minute", None)
        if rpm is not None or tpm is not None:
            rate_group(self.name, self.base_url, self.model).configure(rpm, tpm)
        return cache

    def _cache_key(self, msgs: list[Message], system: str | None, params: dict[str, Any]) -> str:
        endpoint = "offline" if self.offline else self.base_url
        return cache_key(self.name, endpoint, self.build_request(msgs, system, False, params))

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        merged = dict(self.default_params)
        merged.update({k: v for k, v in params.items() if v is not None})
        prepare_features(merged)
        return merged

    def _build(
        self, msgs: list[Message], system: str | None, stream: bool, opts: dict[str, Any]
    ) -> RequestSpec:
        """build_request, remembering what was asked (for the request's record)."""
        spec = self.build_request(msgs, system, stream, opts)
        spec.messages, spec.system = msgs, system
        return spec

    def _cache_hit(
        self, msgs: list[Message], system: str | None, stream: bool, hit: LLMResponse
    ) -> None:
        """The record of a call the response cache answered (no request was sent): the
        observers (the call log, the service's metrics) count it as a cached call."""
        rec = RequestMetrics(
            self.name, self.model, stream, time.time(), messages=msgs, system=system
        )
        rec.duration = rec.time_to_first_token = 0.0
        rec.chunks = 1 if hit.content else 0
        rec.input_tokens = hit.usage.input_tokens
        rec.output_tokens = hit.usage.output_tokens
        rec.answer_parts.append(hit.content)
        rec.finish_reason = hit.finish_reason
        rec.request_id = hit.request_id
        rec.extra["cached"] = True
        emit(rec, self.on_metrics)

    def _record(self, spec: RequestSpec, stream: bool) -> RequestMetrics:
        return RequestMetrics(
            self.name, self.model, stream, time.time(), messages=spec.messages, system=spec.system
        )

    # ------------------------------------------------------------------ public API
    async def agenerate(self, prompt: str, system: str | None = None, **params: Any) -> LLMResponse:
        """One prompt, the whole answer."""
        return await self.achat([Message("user", prompt)], system=system, **params)

    async def achat(
        self, messages: Iterable[MessageLike], system: str | None = None, **params: Any
    ) -> LLMResponse:
        """A conversation, the whole answer (a non-streaming request).

        tools=[functions or Tool], schema= (pydantic model or JSON schema dict) and
        reasoning= (effort or token budget) work with every provider; run_tools=True runs
        the calls the model makes (at most max_tool_steps rounds) and returns the answer.
        cache=True answers from the response cache when it can and keeps a new answer
        there (not with run_tools: running tools has effects)."""
        msgs = as_messages(messages)
        use_cache = self._call_options(params)
        opts = self._params(params)
        max_steps = opts.pop("max_tool_steps", DEFAULT_MAX_TOOL_STEPS)
        if opts.pop("run_tools", False):
            return await run_tool_loop(
                lambda history, p: self._achat(history, system, dict(p)), msgs, opts, max_steps
            )
        if not use_cache:
            return await self._achat(msgs, system, opts)
        cache = response_cache()
        key = self._cache_key(msgs, system, opts)
        hit = cache.get(key)
        schema = opts.get("schema")
        if hit is not None:
            self._cache_hit(msgs, system, False, hit)
            if schema is not None:
                hit.parsed = schema.parse(hit.content, self.name)
            return hit
        response = await self._achat(msgs, system, opts)
        cache.put(key, response)
        return response

    async def _achat(
        self, msgs: list[Message], system: str | None, opts: dict[str, Any]
    ) -> LLMResponse:
        schema = opts.get("schema")
        spec = self._build(msgs, system, False, opts)
        rec = self._record(spec, False)
        start = time.perf_counter()
        logger.debug("%s %s request start", self.name, self.model)
        try:
            async with self._limiter():
                await self._rate_slot(spec)  # a rate-limit wait is queue wait too
                rec.queue_wait = time.perf_counter() - start
                body = await self._request_with_retries(spec, rec, None)
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise StreamProtocolError(
                    f"the response is not JSON: {snippet(body)!r}", provider=self.name
                ) from exc
            parsed = self._parse_answer(payload)
            rec.input_tokens = parsed.usage.input_tokens
            rec.output_tokens = parsed.usage.output_tokens
            rec.answer_parts.append(parsed.content)
            rec.finish_reason = finish_with_calls(
                self.normalize_finish(parsed.raw_finish_reason), parsed.tool_calls
            )
        except asyncio.CancelledError:
            rec.outcome = "cancelled"
            raise
        except LLMError as exc:
            _fail(rec, exc)
            raise
        finally:
            rec.duration = time.perf_counter() - start
            emit(rec, self.on_metrics)
        response = self._answer(
            parsed, rec.duration, rec.request_id, rec.retries, rec.duration - rec.queue_wait
        )
        if schema is not None and not response.tool_calls:
            try:
                response.parsed = schema.parse(response.content, self.name)
            except StructuredOutputError as exc:
                exc.request_id = rec.request_id
                exc.response = response
                raise
        return response

    def _parse_answer(self, payload: Any) -> ParsedResponse:
        """A whole answer's body, parsed and its shapes checked (StreamProtocolError)."""
        parsed: ParsedResponse = self._guarded(self.parse_response)(payload)
        raw_finish = parsed.raw_finish_reason
        if raw_finish is not None and raw_finish.__class__ is not str:
            raise self._shape_error(raw_finish, "finish reason")
        if parsed.content.__class__ is not str:
            raise self._shape_error(parsed.content)
        return parsed

    def _answer(
        self,
        parsed: ParsedResponse,
        latency: float | None,
        request_id: str | None,
        retries: int = 0,
        time_to_first_token: float | None = None,
    ) -> LLMResponse:
        """The LLMResponse of a parsed whole answer; TTFT is the latency unless given (from
        sending the request, without the queue wait)."""
        finish = self.normalize_finish(parsed.raw_finish_reason)
        return LLMResponse(
            content=parsed.content,
            model=parsed.model or self.model,
            provider=self.name,
            finish_reason=finish_with_calls(finish, parsed.tool_calls),
            usage=parsed.usage,
            raw_finish_reason=parsed.raw_finish_reason,
            latency=latency,
            time_to_first_token=latency if time_to_first_token is None else time_to_first_token,
            request_id=request_id,
            retries=retries,
            metadata=parsed.metadata,
            tool_calls=list(parsed.tool_calls),
            reasoning=parsed.reasoning,
        )

    def stream_generate(
        self,
        prompt: str,
        system: str | None = None,
        stream_config: StreamConfig | None = None,
        **params: Any,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Stream one prompt's answer chunk by chunk."""
        return self.stream_chat(
            [Message("user", prompt)], system=system, stream_config=stream_config, **params
        )

    def stream_chat(
        self,
        messages: Iterable[MessageLike],
        system: str | None = None,
        stream_config: StreamConfig | None = None,
        **params: Any,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Stream a conversation's answer. Leaving the loop early or cancelling the task
        closes the HTTP response at once. Request errors are raised on first iteration.

        Thinking arrives as chunks with `reasoning` set and empty content; the last chunk
        carries the tool calls. With run_tools=True every round streams in turn.
        cache=True replays a cached answer at once, or keeps this one when it completes
        (not with run_tools)."""
        if params.get("run_tools"):
            msgs = as_messages(messages)
            self._call_options(params)
            opts = self._params(params)
            cfg = stream_config or self.stream_config
            max_steps = opts.pop("max_tool_steps", DEFAULT_MAX_TOOL_STEPS)
            opts.pop("run_tools")
            return stream_tool_loop(
                lambda history, p: self._stream(self._build(history, system, True, dict(p)), cfg),
                msgs,
                opts,
                max_steps,
            )
        return flatten(self.stream_chat_batches(messages, system, stream_config, **params))

    def stream_chat_batches(
        self,
        messages: Iterable[MessageLike],
        system: str | None = None,
        stream_config: StreamConfig | None = None,
        **params: Any,
    ) -> AsyncGenerator[list[StreamChunk], None]:
        """stream_chat, a list of chunks at a time: each list holds what one network read
        brought. For relays (an HTTP service, a proxy) that write once per read instead of
        once per chunk; the chunks and their end are exactly stream_chat's."""
        msgs = as_messages(messages)
        use_cache = self._call_options(params)
        opts = self._params(params)
        if opts.pop("run_tools", False):
            raise ValueError("run_tools=True works with stream_chat and achat, not in batches")
        opts.pop("max_tool_steps", None)
        spec = self._build(msgs, system, True, opts)
        batches = self._stream_batches(spec, stream_config or self.stream_config)
        if not use_cache:
            return batches
        key = self._cache_key(msgs, system, opts)
        return cached_batches(
            response_cache(),
            key,
            self.name,
            self.model,
            batches,
            on_hit=lambda hit: self._cache_hit(msgs, system, True, hit),
        )

    def generate(self, prompt: str, system: str | None = None, **params: Any) -> LLMResponse:
        """Blocking agenerate(); safe inside a running loop (runs on a private one)."""
        return self.chat([Message("user", prompt)], system=system, **params)

    def chat(
        self, messages: Iterable[MessageLike], system: str | None = None, **params: Any
    ) -> LLMResponse:
        """Blocking achat(); safe inside a running loop (runs on a private one)."""
        msgs = as_messages(messages)

        async def job() -> LLMResponse:
            async with self._sync_clone() as p:
                return await p.achat(msgs, system=system, **params)

        return run_sync(job)

    def _stream(self, spec: RequestSpec, cfg: StreamConfig) -> AsyncGenerator[StreamChunk, None]:
        return flatten(self._stream_batches(spec, cfg))

    async def _stream_batches(
        self, spec: RequestSpec, cfg: StreamConfig
    ) -> AsyncGenerator[list[StreamChunk], None]:
        """The stream, one list of chunks per network read that brought any. Retried
        (with a new response) only while no chunk has reached the caller."""
        loop = asyncio.get_running_loop()
        requested = loop.time()
        rec = self._record(spec, True)
        logger.debug("%s %s stream start", self.name, self.model)
        try:
            async with self._limiter():
                await self._rate_slot(spec)  # a rate-limit wait is queue wait too
                start = loop.time()  # the clocks start now: waiting for the slot never counts
                rec.queue_wait = start - requested
                clock = StreamClock(cfg, wants_reasoning(self.model, spec.json), start)
                attempt = 0
                while True:
                    attempt += 1
                    response = None
                    try:
                        response = await self._open(spec, clock)
                        rec.request_id = self._request_id(response.headers)
                        mapper = self.stream_mapper()
                        feed = self._guarded(mapper.feed)
                        decoder = self.make_decoder()
                        async for items in read_batches(
                            response, decoder, clock, rec, mapper, self.name
                        ):
                            out: list[StreamChunk] = []
                            try:
                                stopped = self._take(items, feed, rec, start, cfg.max_chunks, out)
                            except LLMError:
                                if out:  # what this read brought before the bad data
                                    yield out
                                raise
                            if out:
                                yield out
                            if stopped:
                                return
                        if not mapper.done:
                            out = [self._final_chunk(c, rec) for c in self._guarded(mapper.end)()]
                            if out:
                                yield out
                        return
                    except LLMError as exc:
                        if rec.chunks or not await self._sleep_before_retry(
                            exc, attempt, rec, clock.deadline
                        ):
                            raise
                    finally:
                        if response is not None:
                            await close_response(response)
        except (asyncio.CancelledError, GeneratorExit):
            rec.outcome = "cancelled"
            raise
        except LLMError as exc:
            _fail(rec, exc)
            if rec.chunks:
                exc.partial_chunks = rec.chunks
            raise
        finally:
            rec.duration = loop.time() - requested
            emit(rec, self.on_metrics)

    def _take(
        self,
        items: list[Any],
        feed: Callable[[Any], list[StreamChunk]],
        rec: RequestMetrics,
        start: float,
        max_chunks: int | None,
        out: list[StreamChunk],
    ) -> bool:
        """Append the chunks of one read's items to `out` (rec.chunks counts those with
        content delivered so far); True when max_chunks ended the stream. An LLMError
        leaves in `out` what came before the bad data."""
        for item in items:
            for chunk in feed(item):
                if not chunk.content and chunk.reasoning is None:
                    out.append(self._final_chunk(chunk, rec))
                    continue
                if chunk.content.__class__ is not str:
                    raise self._shape_error(chunk.content)
                if rec.chunks == 0:
                    rec.time_to_first_token = asyncio.get_running_loop().time() - start
                rec.chunks += 1
                rec.answer_parts.append(chunk.content)
                out.append(chunk)
                if max_chunks is not None and rec.chunks >= max_chunks:
                    stop = StreamChunk("", "length", self.model)
                    out.append(self._final_chunk(stop, rec, stopped_by="max_chunks"))
                    return True
        return False

    def _guarded(self, fn: Any) -> Any:
        """fn, with data of an unexpected shape (a string where an object belongs, a list
        for a number...) reported as a StreamProtocolError instead of a TypeError."""
        provider = self.name

        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
                raise StreamProtocolError(
                    f"stream data of an unexpected shape ({type(exc).__name__}: {exc})",
                    provider=provider,
                ) from exc

        return call

    def _shape_error(self, value: Any, what: str = "text") -> StreamProtocolError:
        return StreamProtocolError(
            f"stream {what} of an unexpected type ({type(value).__name__})", provider=self.name
        )

    def _final_chunk(
        self, chunk: StreamChunk, rec: RequestMetrics, stopped_by: str | None = None
    ) -> StreamChunk:
        """Complete the last chunk: normalized finish reason, raw one and ids in metadata."""
        meta = dict(chunk.metadata or {})
        raw = meta.get("raw_finish_reason", chunk.finish_reason)
        if raw is not None and raw.__class__ is not str:
            raise self._shape_error(raw, "finish reason")
        meta["raw_finish_reason"] = raw
        meta["request_id"] = rec.request_id
        meta["retries"] = rec.retries
        if stopped_by:
            meta["stopped_by"] = stopped_by
        if chunk.usage is not None:
            rec.input_tokens = chunk.usage.input_tokens
            rec.output_tokens = chunk.usage.output_tokens
        finish = chunk.finish_reason if stopped_by else self.normalize_finish(raw)
        rec.finish_reason = finish_with_calls(finish, chunk.tool_calls)
        return StreamChunk(
            chunk.content,
            rec.finish_reason,
            chunk.model or self.model,
            chunk.usage,
            meta,
            chunk.tool_calls,
        )


def _fail(rec: RequestMetrics, exc: LLMError) -> None:
    rec.outcome = "timeout" if isinstance(exc, LLMTimeoutError) else "error"
    rec.error_type = type(exc).__name__
    rec.error_message = str(exc)
    rec.status_code = exc.status_code
    if exc.request_id:
        rec.request_id = exc.request_id
