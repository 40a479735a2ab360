"""ProviderConnection: a provider's settings and its HTTP side, shared by every adapter.

It owns the API key (from the environment unless given; never shown), the base URL (the
emulator's in offline mode), the HTTP client (made on first use and closed by aclose(), or
borrowed and left open), the concurrency limit, and sending a request: auth headers, the
HTTP timeouts (a stream's clock instead of the read timeout), retries before the first
chunk, and error responses turned into typed errors. BaseProvider (core/base.py) builds
the public API on it."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, ClassVar, Self

import httpx

from .catalog import is_model_not_found, models_hint
from .defaults import warn_if_deprecated
from .errors import (
    APIConnectionError,
    APIStatusError,
    LLMError,
    LLMTimeoutError,
    MissingAPIKeyError,
    ModelNotFoundError,
    TLSCertificateError,
    error_class_for_status,
)
from .http import DEFAULT_TIMEOUT, OwnClient, RequestSpec, read_error_body
from .limits import BUDGET_HEADERS, RateGroup, estimate_tokens, rate_group
from .metrics import MetricsCallback, RequestMetrics, logger
from .offline import is_offline, offline_endpoint
from .reading import close_response, without_read_timeout
from .redact import mask_url, redact, register_secret
from .retry import (
    RetryConfig,
    attempts_left,
    next_delay,
    retry_after_seconds,
    should_retry_status,
)
from .snippets import error_code, http_timeout_text, snippet_text
from .timeouts import StreamClock
from .tls import VerifyTypes, certificate_problem, describe_certificate_problem, ssl_context
from .types import StreamConfig

__all__ = ["ProviderConnection"]


class ProviderConnection:
    """A provider's settings and HTTP side; see the module docstring."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    env_keys: ClassVar[tuple[str, ...]] = ()
    env_base_urls: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    requires_key: ClassVar[bool] = True
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "request-id")
    unreachable_hint: ClassVar[str] = ""

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
        self._own: OwnClient | None = None  # the client, when this provider made it
        self._semaphore: asyncio.Semaphore | None = None
        if not self.offline:
            warn_if_deprecated(self.name, self.model)

    # ----------------------------------------------------------------- adapter hooks
    def auth_headers(self) -> dict[str, str]:
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

    def error_class(self, status: int, payload: Any) -> type[APIStatusError]:
        """The error type for an error response (adapters refine it from the body)."""
        return error_class_for_status(status)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it (a borrowed one stays open)."""
        if self._owns_client and self._client is not None:
            client, self._client, self._own = self._client, None, None
            await client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._own = OwnClient.make(
                self.timeout, self.max_connections, self.max_keepalive, verify=self.ssl_context
            )
            self._client = self._own.client
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

    def _sync_clone(self) -> Self:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._client = None
        clone._own = None
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
        own = self._own if not spec.params else None  # query parameters: httpx merges them
        timeout = without_read_timeout(client.timeout) if clock is not None else client.timeout
        if own is not None:
            request = own.build_request(spec.method, self._url(spec), spec.json, headers, timeout)
        else:
            request = client.build_request(
                spec.method,
                self._url(spec),
                json=spec.json,
                headers=headers,
                params=spec.params or None,
                timeout=timeout,
            )
        limit = None
        if clock is not None:
            clock.sent(asyncio.get_running_loop().time())
            limit = clock.head_limit()
        try:
            async with asyncio.timeout_at(limit):
                if own is not None:
                    response = await own.send(request)
                else:
                    response = await client.send(request, stream=True)
        except TimeoutError as exc:
            assert clock is not None
            now = asyncio.get_running_loop().time()
            raise clock.expired(now, self.name, 0, False) from exc
        except httpx.TimeoutException as exc:
            err = LLMTimeoutError(
                f"no answer from {mask_url(self.base_url)} in time ({http_timeout_text(exc)})",
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
            try:  # shared with the other processes when a rate store is in use
                await self._rate_group().report(
                    response.status_code, response.headers, retry_after_seconds(response.headers)
                )
            except BaseException:
                await close_response(response)
                raise
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
                await close_response(response)
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
            provider_message = snippet_text(text) if text else (response.reason_phrase or "")
        cls = self.error_class(status, payload)
        hint: str | None = None
        if is_model_not_found(status, provider_message, error_code(payload)):
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
                    await close_response(response)
                rec.request_id = self._request_id(response.headers)
                return body
            except LLMError as exc:
                if not await self._sleep_before_retry(exc, attempt, rec, deadline):
                    raise
