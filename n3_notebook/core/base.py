"""BaseProvider: everything a provider adapter shares.

An adapter (providers/*.py) says how to build a request, how to read a whole response,
how to map stream events to chunks and how to read an error body. This class owns the rest:
the HTTP client, the concurrency limit, retries before the first chunk, stream bounds
(StreamConfig), cancellation that closes the response at once, metrics and logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import httpx

from ..wire import NDJSONDecoder, SSEDecoder
from .batch import BatchAPI
from .cache import cache_key, cached_batches, response_cache
from .catalog import ModelInfo, is_model_not_found, models_hint
from .defaults import warn_if_deprecated
from .errors import (
    APIConnectionError,
    APIStatusError,
    LLMError,
    LLMTimeoutError,
    MissingAPIKeyError,
    ModelNotFoundError,
    StreamProtocolError,
    StructuredOutputError,
    TLSCertificateError,
    error_class_for_status,
)
from .fastjson import loads as fast_loads
from .features import prepare as prepare_features
from .http import DEFAULT_TIMEOUT, RequestSpec, make_client, read_error_body
from .limits import BUDGET_HEADERS, RateGroup, estimate_tokens, rate_group
from .metrics import MetricsCallback, RequestMetrics, emit, logger
from .offline import is_offline, offline_endpoint
from .redact import mask_url, redact, register_secret
from .retry import (
    RetryConfig,
    attempts_left,
    next_delay,
    retry_after_seconds,
    should_retry_status,
)
from .timeouts import StreamClock, wants_reasoning
from .tls import VerifyTypes, certificate_problem, describe_certificate_problem, ssl_context
from .toolloop import DEFAULT_MAX_TOOL_STEPS, run_tool_loop, stream_tool_loop
from .transport import BODY_READER
from .types import LLMResponse, Message, StreamChunk, StreamConfig, ToolCall, Usage

MessageLike = Message | Mapping[str, Any]
_ERROR_SNIPPET = 200
DRAIN_TIMEOUT = 0.05  # seconds to wait for the end of a body after the answer's last event
DRAIN_LIMIT = 64 * 1024  # bytes read at most while draining


class StreamMapper(Protocol):
    """Turns decoded stream items (SSEEvent or NDJSON record bytes) into chunks.

    `done` becomes True when the protocol says the answer is complete ([DONE],
    message_stop, done: true). end() is called at end of input and returns the final chunk
    (finish reason and usage) or raises StreamProtocolError if the stream was cut short."""

    done: bool

    def feed(self, item: Any) -> list[StreamChunk]: ...

    def end(self) -> list[StreamChunk]: ...


class ParsedResponse(Protocol):
    content: str
    raw_finish_reason: str | None
    usage: Usage
    model: str | None
    metadata: dict[str, Any]
    tool_calls: list[ToolCall]
    reasoning: str | None


def as_messages(messages: Iterable[MessageLike]) -> list[Message]:
    """Accept Message objects or {"role", "content", ...} dicts; validate them."""
    out = [Message.coerce(m) for m in messages]
    if not out:
        raise ValueError("at least one message is needed")
    return out


def finish_with_calls(finish: str | None, calls: Sequence[ToolCall] | None) -> str | None:
    """An answer that made calls finished with "tool_calls", also where the provider says
    "stop" (Gemini's STOP, Ollama's done_reason)."""
    return "tool_calls" if calls and finish == "stop" else finish


def split_system(
    messages: Sequence[Message], system: str | None
) -> tuple[str | None, list[Message]]:
    """Pull system messages out of a conversation (for APIs with a separate system field)."""
    parts = [system] if system else []
    rest: list[Message] = []
    for m in messages:
        if m.role == "system":
            parts.append(m.text)
        else:
            rest.append(m)
    return ("\n\n".join(parts) if parts else None), rest


class BaseProvider:
    """Shared machinery of every provider; see the module docstring."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    env_keys: ClassVar[tuple[str, ...]] = ()
    env_base_urls: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    requires_key: ClassVar[bool] = True
    framing: ClassVar[str] = "sse"  # or "ndjson"
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "request-id")
    unreachable_hint: ClassVar[str] = ""
    #: How this provider runs batch jobs (core/batch.py); None: it has no batch API.
    batch_api: ClassVar[BatchAPI | None] = None

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_concurrent: int = 10,
        retry: RetryConfig | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        stream_config: StreamConfig | None = None,
        max_connections: int = 100,
        max_keepalive: int = 20,
        on_metrics: MetricsCallback | None = None,
        verify: VerifyTypes = True,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        **default_params: Any,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.model = model or self.default_model
        self.offline = False
        if base_url is None and api_key is None and is_offline():
            base_url, api_key = offline_endpoint(self.name)
            self.offline = True
        self._api_key = api_key if api_key is not None else self._key_from_env()
        if self.requires_key and not self._api_key:
            raise MissingAPIKeyError(
                f"No API key for {self.display_name or self.name}.",
                provider=self.name,
                hint=(
                    f"Set the environment variable {self.env_keys[0]} (or pass api_key=...), "
                    "or turn on offline mode (N3_OFFLINE=1 or `%llm offline on`) to use the "
                    "bundled emulator instead."
                ),
            )
        register_secret(self._api_key)
        self.base_url = (base_url or self._base_url_from_env() or self.default_base_url).rstrip("/")
        self.max_concurrent = max_concurrent
        self.retry = retry or RetryConfig()
        self.timeout = timeout
        self.stream_config = stream_config or StreamConfig()
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.on_metrics = on_metrics
        #: TLS trust (core/tls.py): made now, so a bad path or verify=False shows at once
        self.ssl_context = ssl_context(verify)
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.default_params = default_params
        self._client = http_client
        self._owns_client = http_client is None
        self._semaphore: asyncio.Semaphore | None = None
        if not self.offline:
            warn_if_deprecated(self.name, self.model)

    # ----------------------------------------------------------------- adapter hooks
    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        raise NotImplementedError

    def parse_response(self, payload: Any) -> ParsedResponse:
        raise NotImplementedError

    def stream_mapper(self) -> StreamMapper:
        raise NotImplementedError

    def error_message(self, payload: Any) -> str | None:
        """The provider's own message from an error body (parsed JSON)."""
        if isinstance(payload, dict):
            err = payload.get("error", payload)
            if isinstance(err, dict):
                msg = err.get("message")
                if isinstance(msg, str):
                    return msg
            if isinstance(err, str):
                return err
            msg = payload.get("message")
            if isinstance(msg, str):
                return msg
        return None

    def normalize_finish(self, raw: str | None) -> str | None:
        return raw

    def error_class(self, status: int, payload: Any) -> type[APIStatusError]:
        """The error type for an error response (adapters refine it from the body)."""
        return error_class_for_status(status)

    def make_decoder(self) -> SSEDecoder | NDJSONDecoder:
        return SSEDecoder() if self.framing == "sse" else NDJSONDecoder()

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models this key can use, every page, cached for the process's life
        (refresh=True asks again). Adapters with a models endpoint override this."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its models")

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> BaseProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it (a borrowed one stays open)."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(
                self.timeout, self.max_connections, self.max_keepalive, verify=self.ssl_context
            )
        return self._client

    @property
    def api_key_set(self) -> bool:
        return bool(self._api_key)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={mask_url(self.base_url)!r}, "
            f"api_key={key}, max_concurrent={self.max_concurrent})"
        )

    def _key_from_env(self) -> str | None:
        for var in self.env_keys:
            value = os.environ.get(var)
            if value:
                return value
        return None

    def _base_url_from_env(self) -> str | None:
        for var in self.env_base_urls:
            value = os.environ.get(var)
            if value:
                return value
        return None

    def _limiter(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrent)
        return self._semaphore

    def _rate_group(self) -> RateGroup:
        """The process-wide budget of this endpoint and model (core/limits.py)."""
        group = rate_group(self.name, self.base_url, self.model)
        if self.requests_per_minute is not None or self.tokens_per_minute is not None:
            group.configure(self.requests_per_minute, self.tokens_per_minute)
        return group

    async def _rate_slot(self, spec: RequestSpec) -> None:
        """Wait for this request's share of the rate budget (never counted as a timeout)."""
        group = self._rate_group()
        await group.acquire(estimate_tokens(spec.json) if group.counts_tokens else 0)

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
                    f"the response is not JSON: {_snippet(body)!r}", provider=self.name
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
    ) -> AsyncIterator[StreamChunk]:
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
    ) -> AsyncIterator[StreamChunk]:
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
                lambda history, p: self._stream(
                    self._build(history, system, True, dict(p)), cfg
                ),
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
    ) -> AsyncIterator[list[StreamChunk]]:
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
        return cached_batches(response_cache(), key, self.name, self.model, batches)

    def generate(self, prompt: str, system: str | None = None, **params: Any) -> LLMResponse:
        """Blocking agenerate(); safe inside a running loop (runs on a private one)."""
        return self.chat([Message("user", prompt)], system=system, **params)

    def chat(
        self, messages: Iterable[MessageLike], system: str | None = None, **params: Any
    ) -> LLMResponse:
        """Blocking achat(); safe inside a running loop (runs on a private one)."""
        from .sync import run_sync

        msgs = as_messages(messages)

        async def job() -> LLMResponse:
            async with self._sync_clone() as p:
                return await p.achat(msgs, system=system, **params)

        return run_sync(job)

    def _sync_clone(self) -> BaseProvider:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._client = None
        clone._owns_client = True
        clone._semaphore = None
        return clone

    # ------------------------------------------------------------------ machinery
    def _url(self, spec: RequestSpec) -> str:
        return self.base_url + spec.path

    async def _open(self, spec: RequestSpec, clock: StreamClock | None = None) -> httpx.Response:
        """Send the request; a 4xx/5xx is read, closed and raised as a typed error. A
        stream's waits are bounded by its clock (StreamConfig), not the HTTP read timeout."""
        headers = self.auth_headers()
        headers.update(spec.headers)
        client = self.client
        request = client.build_request(
            spec.method,
            self._url(spec),
            json=spec.json,
            headers=headers,
            params=spec.params or None,
            timeout=_without_read(client.timeout)
            if clock is not None
            else httpx.USE_CLIENT_DEFAULT,
        )
        limit = None
        if clock is not None:
            clock.sent(asyncio.get_running_loop().time())
            limit = clock.head_limit()
        try:
            async with asyncio.timeout_at(limit):
                response = await client.send(request, stream=True)
        except TimeoutError as exc:
            assert clock is not None
            now = asyncio.get_running_loop().time()
            raise clock.expired(now, self.name, 0, False) from exc
        except httpx.TimeoutException as exc:
            err = LLMTimeoutError(
                f"no answer from {mask_url(self.base_url)} in time ({_http_timeout_text(exc)})",
                provider=self.name,
                hint="Pass timeout=... (seconds) to the provider, or run "
                "%config LLMMagics.request_timeout = ... in a notebook.",
            )
            err.retryable = True
            raise err from exc
        except httpx.TransportError as exc:
            problem = certificate_problem(exc)
            if problem is not None:  # never retried: the next try meets the same certificate
                raise TLSCertificateError(
                    describe_certificate_problem(problem, request.url.host),
                    provider=self.name,
                ) from exc
            reason = redact(str(exc)) or type(exc).__name__
            unreachable = APIConnectionError(
                f"could not reach {mask_url(self.base_url)} ({reason})",
                provider=self.name,
                hint=self.unreachable_hint or "Check the base URL and your network.",
            )
            unreachable.retryable = True
            raise unreachable from exc
        if response.status_code == 429 or any(h in response.headers for h in BUDGET_HEADERS):
            self._rate_group().observe(
                response.status_code, response.headers, retry_after_seconds(response.headers)
            )
        if 300 <= response.status_code < 400:
            location = mask_url(response.headers.get("location", "?"))
            await response.aclose()
            raise APIStatusError(
                f"the server redirected to {location}; redirects are not followed, so the API "
                "key is never sent to another address",
                provider=self.name,
                status_code=response.status_code,
                request_id=self._request_id(response.headers),
                hint="Set base_url to the final address.",
            )
        if response.status_code >= 400:
            try:
                body = await read_error_body(response)
            except httpx.HTTPError:
                body = b""
            finally:
                await _close(response)
            raise self._status_error(response, body)
        return response

    def _request_id(self, headers: httpx.Headers) -> str | None:
        for name in self.request_id_headers:
            value: str | None = headers.get(name)
            if value:
                return value
        return None

    def _status_error(self, response: httpx.Response, body: bytes) -> APIStatusError:
        status = response.status_code
        request_id = self._request_id(response.headers)
        provider_message: str | None = None
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        if payload is not None:
            provider_message = self.error_message(payload)
        if provider_message is None:
            text = body.decode("utf-8", "replace").strip()
            provider_message = _snippet_text(text) if text else (response.reason_phrase or "")
        cls = self.error_class(status, payload)
        hint: str | None = None
        if is_model_not_found(status, provider_message, _error_code(payload)):
            cls, hint = ModelNotFoundError, models_hint(self.name)
        err = cls(
            provider_message or f"HTTP {status}",
            provider=self.name,
            status_code=status,
            request_id=request_id,
            provider_message=provider_message,
            hint=hint,
            retry_after=retry_after_seconds(response.headers),
        )
        err.retryable = should_retry_status(status, response.headers, self.retry)
        return err

    async def _sleep_before_retry(
        self, exc: LLMError, attempt: int, rec: RequestMetrics, deadline: float | None
    ) -> bool:
        """Wait before the next attempt; False if no attempt is left (caller re-raises)."""
        if not exc.retryable or not attempts_left(attempt, self.retry):
            return False
        delay = next_delay(attempt, self.retry, exc.retry_after)
        loop = asyncio.get_running_loop()
        if deadline is not None and loop.time() + delay >= deadline:
            return False
        rec.retries += 1
        logger.warning(
            "%s %s: %s; retry %d of %d in %.2fs",
            self.name,
            self.model,
            type(exc).__name__,
            attempt,
            self.retry.max_attempts - 1,
            delay,
        )
        await asyncio.sleep(delay)
        return True

    async def _request_with_retries(
        self, spec: RequestSpec, rec: RequestMetrics, deadline: float | None
    ) -> bytes:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._open(spec)
                try:
                    body = await response.aread()
                except httpx.HTTPError as exc:
                    err = APIConnectionError(
                        f"the connection broke while reading the answer ({type(exc).__name__})",
                        provider=self.name,
                    )
                    err.retryable = True
                    raise err from exc
                finally:
                    await _close(response)
                rec.request_id = self._request_id(response.headers)
                return body
            except LLMError as exc:
                if not await self._sleep_before_retry(exc, attempt, rec, deadline):
                    raise

    def _stream(self, spec: RequestSpec, cfg: StreamConfig) -> AsyncIterator[StreamChunk]:
        return flatten(self._stream_batches(spec, cfg))

    async def _stream_batches(
        self, spec: RequestSpec, cfg: StreamConfig
    ) -> AsyncIterator[list[StreamChunk]]:
        """The stream, one list of chunks per network read that brought any."""
        loop = asyncio.get_running_loop()
        requested = loop.time()
        reasoning = wants_reasoning(self.model, spec.json)
        rec = self._record(spec, True)
        max_chunks = cfg.max_chunks
        delivered = 0
        attempt = 0
        logger.debug("%s %s stream start", self.name, self.model)
        try:
            async with self._limiter():
                await self._rate_slot(spec)  # a rate-limit wait is queue wait too
                start = loop.time()  # the clocks start now: waiting for the slot never counts
                rec.queue_wait = start - requested
                clock = StreamClock(cfg, reasoning, start)
                while True:
                    attempt += 1
                    response: httpx.Response | None = None
                    try:
                        response = await self._open(spec, clock)
                        rec.request_id = self._request_id(response.headers)
                        mapper = self.stream_mapper()
                        feed = self._guarded(mapper.feed)
                        async for batch in self._read(response, clock, rec, mapper):
                            out: list[StreamChunk] = []
                            try:
                                for item in batch:
                                    for chunk in feed(item):
                                        if not chunk.content and chunk.reasoning is None:
                                            out.append(self._final_chunk(chunk, rec))
                                            continue
                                        if chunk.content.__class__ is not str:
                                            raise self._shape_error(chunk.content)
                                        if delivered == 0:
                                            rec.time_to_first_token = loop.time() - start
                                        delivered += 1
                                        rec.chunks = delivered
                                        rec.answer_parts.append(chunk.content)
                                        out.append(chunk)
                                        if max_chunks is not None and delivered >= max_chunks:
                                            out.append(
                                                self._final_chunk(
                                                    StreamChunk("", "length", self.model),
                                                    rec,
                                                    stopped_by="max_chunks",
                                                )
                                            )
                                            yield out
                                            return
                            except LLMError:
                                if out:  # what this read brought before the bad data
                                    yield out
                                raise
                            if out:
                                yield out
                        if not mapper.done:
                            out = [self._final_chunk(c, rec) for c in self._guarded(mapper.end)()]
                            if out:
                                yield out
                        return
                    except LLMError as exc:
                        if delivered or not await self._sleep_before_retry(
                            exc, attempt, rec, clock.deadline
                        ):
                            raise
                    finally:
                        if response is not None:
                            await _close(response)
        except (asyncio.CancelledError, GeneratorExit):
            rec.outcome = "cancelled"
            raise
        except LLMError as exc:
            _fail(rec, exc)
            if delivered:
                exc.partial_chunks = delivered
            raise
        finally:
            rec.duration = loop.time() - requested
            emit(rec, self.on_metrics)

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

    async def _read(
        self,
        response: httpx.Response,
        clock: StreamClock,
        rec: RequestMetrics,
        mapper: StreamMapper,
    ) -> AsyncIterator[list[Any]]:
        """Network reads, decoded into batches of SSE events or NDJSON records, each wait
        bounded by the stream's clock (not the consumer's time). Once the mapper has seen
        the protocol's end, the rest of the body is drained so the connection can go back
        to the pool."""
        decoder = self.make_decoder()
        feed = decoder.feed
        read = _body_reader(response)
        loop = asyncio.get_running_loop()
        read_limit = clock.read_limit
        while True:
            limit = read_limit(loop.time(), rec.chunks > 0)
            try:
                data = await read(limit)
            except (TimeoutError, httpx.HTTPError) as exc:
                now = loop.time()
                ours = isinstance(exc, (TimeoutError, httpx.TimeoutException)) and (
                    limit is not None and now >= limit - 1e-3
                )  # else the client's own read timeout, or a broken connection
                if not ours:
                    raise APIConnectionError(
                        f"the connection broke mid-stream after {rec.chunks} chunks "
                        f"({type(exc).__name__})",
                        provider=self.name,
                    ) from exc
                with contextlib.suppress(Exception):
                    await response.aclose()
                raise clock.expired(now, self.name, rec.chunks, rec.chunks > 0) from exc
            if not data:
                rest = decoder.flush()
                if rest:
                    yield rest
                return
            clock.received += len(data)
            items = feed(data)
            if items:
                yield items
                if mapper.done:
                    await _drain(read)
                    return


async def flatten(batches: AsyncIterator[list[Any]]) -> AsyncIterator[Any]:
    """The items of an async generator of lists, one by one; closing this closes it."""
    try:
        async for batch in batches:
            for item in batch:
                yield item
    finally:
        await batches.aclose()  # type: ignore[attr-defined]


async def _drain(read: BodyReader) -> None:
    """Read what is left of a body whose answer is complete (the chunked terminator, as a
    rule), briefly and boundedly, so the connection can be reused; else it is closed."""
    left = DRAIN_LIMIT
    until = asyncio.get_running_loop().time() + DRAIN_TIMEOUT
    try:
        while left > 0:
            data = await read(until)
            if not data:
                return
            left -= len(data)
    except (TimeoutError, httpx.HTTPError):
        pass


BodyReader = Callable[[float | None], Awaitable[bytes]]


def _body_reader(response: httpx.Response) -> BodyReader:
    """`read(until)`: the body's next bytes as they arrive, b"" at its end, waiting no later
    than `until` (loop time; TimeoutError or httpx.ReadTimeout past it). Without a
    content-encoding, the engine's own reader (BODY_READER): no async-iterator layers and no
    timer per read. Otherwise httpx's decoded bytes, each wait under asyncio.timeout_at."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    identity = encoding in ("", "identity")
    fast: BodyReader | None = response.extensions.get(BODY_READER) if identity else None
    if fast is not None:
        return fast
    it = (response.stream if identity else response.aiter_bytes()).__aiter__()  # type: ignore[union-attr]

    async def read(until: float | None) -> bytes:
        try:
            while True:
                if until is None:
                    data = await it.__anext__()
                else:
                    async with asyncio.timeout_at(until):
                        data = await it.__anext__()
                if data:
                    return data
        except StopAsyncIteration:
            return b""

    return read


_CLOSED_BODY = httpx.ByteStream(b"")


async def _close(response: httpx.Response) -> None:
    """Close a response and unlink it from its body stream (httpx makes them refer to each
    other), so what a finished stream held is freed at once instead of by the cycle
    collector, which is what a full collection with thousands of live streams costs."""
    await response.aclose()
    response.stream = _CLOSED_BODY


def _without_read(timeout: httpx.Timeout) -> httpx.Timeout:
    """The client's timeouts with no read limit (a stream's clock bounds its reads)."""
    return httpx.Timeout(connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool)


def _http_timeout_text(exc: httpx.TimeoutException) -> str:
    kind = {
        httpx.ConnectTimeout: "connect",
        httpx.ReadTimeout: "read",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "pool",
    }.get(type(exc))
    try:
        seconds = (exc.request.extensions.get("timeout") or {}).get(kind)
    except RuntimeError:  # an error raised without its request
        seconds = None
    if kind is None:
        return type(exc).__name__
    return f"the HTTP {kind} timeout" + (f" of {seconds:g}s" if seconds else "") + " ran out"


def _fail(rec: RequestMetrics, exc: LLMError) -> None:
    rec.outcome = "timeout" if isinstance(exc, LLMTimeoutError) else "error"
    rec.error_type = type(exc).__name__
    rec.error_message = str(exc)
    rec.status_code = exc.status_code
    if exc.request_id:
        rec.request_id = exc.request_id


def _error_code(payload: Any) -> Any:
    """The machine-readable code of an error body (OpenAI's error.code, Anthropic's
    error.type), if it has one."""
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        return err.get("code") or err.get("type")
    return None


def _snippet(body: bytes) -> str:
    return _snippet_text(body.decode("utf-8", "replace"))


def _snippet_text(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_SNIPPET else text[:_ERROR_SNIPPET] + "…"


def parse_json_line(provider: str, data: str | bytes) -> Any:
    """Parse one stream item, raising StreamProtocolError naming the bad line."""
    try:
        return fast_loads(data)
    except ValueError as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise StreamProtocolError(
            f"malformed stream data: {_snippet_text(text)!r}", provider=provider
        ) from exc
