"""The error hierarchy. Every error carries provider, status, request id and the
provider's own message; none ever carries an API key (messages pass through redact())."""

from __future__ import annotations

from typing import Any

from .redact import redact


class LLMError(Exception):
    """Base of every error n3_notebook raises about a model request."""

    default_hint = ""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        provider_message: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        partial_chunks: int = 0,
    ) -> None:
        self.message = redact(str(message))
        self.provider = provider
        self.status_code = status_code
        self.request_id = request_id
        self.provider_message = redact(provider_message) if provider_message else None
        self.hint = redact(hint) if hint is not None else self.default_hint
        #: Seconds the provider asked to wait before trying again (its retry-after-ms or
        #: retry-after header), or None when it said nothing.
        self.retry_after = retry_after
        #: Whether another attempt may succeed (a connection error, 429, 5xx); the retry
        #: loop reads it, and only before the first chunk has reached the caller.
        self.retryable = retryable
        #: How many chunks reached the caller before a stream failed (0: none did).
        self.partial_chunks = partial_chunks
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}:")
        parts.append(self.message)
        if self.hint:
            parts.append(self.hint)
        if self.retry_after:
            parts.append(f"The provider asked to wait {self.retry_after:g} s before trying again.")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        # redacted again on the way out: a key registered after the error was made is masked
        return redact(" ".join(parts))

    def __repr__(self) -> str:
        return redact(
            f"{type(self).__name__}(provider={self.provider!r}, status_code={self.status_code!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable, keyword args preserved
        return (
            _rebuild,
            (
                type(self),
                self.message,
                self.provider,
                self.status_code,
                self.request_id,
                self.provider_message,
                self.hint,
                self.retry_after,
                self.retryable,
                self.partial_chunks,
            ),
        )


def _rebuild(
    cls: type[LLMError],
    message: str,
    provider: str | None,
    status_code: int | None,
    request_id: str | None,
    provider_message: str | None,
    hint: str | None,
    retry_after: float | None = None,
    retryable: bool = False,
    partial_chunks: int = 0,
) -> LLMError:
    return cls(
        message,
        provider=provider,
        status_code=status_code,
        request_id=request_id,
        provider_message=provider_message,
        hint=hint,
        retry_after=retry_after,
        retryable=retryable,
        partial_chunks=partial_chunks,
    )


class ConfigurationError(LLMError):
    """Bad input before any request: unknown model, missing key, bad options."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was passed and the provider's environment variable is not set."""


class UnknownModelError(ConfigurationError):
    """A model string names no known provider or alias."""


class APIStatusError(LLMError):
    """The provider answered with an HTTP error status."""


class AuthenticationError(APIStatusError):
    """401: the key was refused."""

    default_hint = "Check that the API key is valid and belongs to this provider."


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or route."""


class NotFoundError(APIStatusError):
    """404: unknown model or route."""


class ModelNotFoundError(NotFoundError):
    """The provider does not know the model, or this key may not use it (a 404, or a 400
    in the provider's own words); the hint points at the provider's model list."""


class BadRequestError(APIStatusError):
    """400/422: the provider rejected the request."""


class RateLimitError(APIStatusError):
    """429: too many requests (retried before it reaches you)."""


class OverloadedError(APIStatusError):
    """529 / overloaded_error: the provider is overloaded."""


class ServerError(APIStatusError):
    """5xx from the provider."""


class APIConnectionError(LLMError):
    """The server could not be reached or the connection broke."""


class TLSCertificateError(APIConnectionError):
    """The server's TLS certificate was refused (unknown CA, expired, wrong host name).
    Never retried; the message says which problem and how to fix it."""


class LLMTimeoutError(LLMError):
    """A request, stream or chunk took longer than allowed. `limit` names the limit that
    fired (stream_timeout, chunk_timeout, first_token_timeout,
    reasoning_first_token_timeout, or None for the HTTP timeout), `limit_seconds` its
    value and `elapsed` the seconds since the request was sent."""

    def __init__(
        self,
        message: str,
        *,
        limit: str | None = None,
        limit_seconds: float | None = None,
        elapsed: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit
        self.limit_seconds = limit_seconds
        self.elapsed = elapsed

    def __reduce__(self) -> tuple[Any, ...]:
        _, args = super().__reduce__()
        return (_rebuild_timeout, (args, self.limit, self.limit_seconds, self.elapsed))


def _rebuild_timeout(
    args: tuple[Any, ...], limit: str | None, limit_seconds: float | None, elapsed: float | None
) -> LLMTimeoutError:
    err = _rebuild(*args)
    assert isinstance(err, LLMTimeoutError)
    err.limit, err.limit_seconds, err.elapsed = limit, limit_seconds, elapsed
    return err


class StreamProtocolError(LLMError):
    """The stream carried data we cannot understand, or an in-band error, or ended early."""


class StreamingNotSupportedError(LLMError):
    """The provider or model does not stream."""


#: The seed project's name for StreamingNotSupportedError, kept for code ported from it.
ProviderStreamingNotSupportedError = StreamingNotSupportedError


class ContentFilteredError(LLMError):
    """The provider refused the prompt or answer (blocked prompt, safety filter)."""


class StructuredOutputError(LLMError):
    """With schema=: the answer is not JSON that matches the schema. `raw_text` keeps the
    answer as the model wrote it; `response` is the whole LLMResponse when there is one."""

    default_hint = (
        "The raw answer is in .raw_text. Simplify the schema, describe the fields in the "
        "prompt, or raise max_tokens if the JSON was cut short."
    )
    raw_text: str = ""
    response: object = None


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
    529: OverloadedError,
}


def error_class_for_status(status: int) -> type[APIStatusError]:
    """The error type for an HTTP status (5xx → ServerError, other → APIStatusError)."""
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    if status >= 500:
        return ServerError
    return APIStatusError
