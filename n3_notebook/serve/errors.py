"""How failures become HTTP answers: one JSON shape for every error,

    {"error": {"type": "upstream_error", "message": "...", ...details}}

and one table from exception types to status codes. Messages pass through redact(), so a
key never leaves the server even if a provider echoed it."""

from __future__ import annotations

import math
from typing import Any

from ..chain.events import StepResult
from ..chain.model import ChainError
from ..core.errors import (
    ConfigurationError,
    ContentFilteredError,
    LLMError,
    LLMTimeoutError,
    MissingAPIKeyError,
    OverloadedError,
    RateLimitError,
    UnknownModelError,
)
from ..core.redact import redact


class ServeError(Exception):
    """An error with its HTTP status, machine-readable type and extra JSON fields."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = redact(message)
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"type": self.type, "message": self.message, **self.extra}}


def error_body(type: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type, "message": redact(message), **extra}}


def from_exception(exc: BaseException, *, client_model: bool = False) -> ServeError:
    """The HTTP form of an exception raised while serving a request.

    client_model: the model was named by the client (/v1/generate), so an unknown model or
    one this server has no key for is the client's 400, not the server's 500."""
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, LLMError):
        return _llm_error(exc, client_model)
    return ServeError(500, "internal_error", "internal error while serving the request")


def _llm_error(exc: LLMError, client_model: bool) -> ServeError:
    extra: dict[str, Any] = {}
    if exc.provider:
        extra["provider"] = exc.provider
    if exc.status_code is not None:
        extra["upstream_status"] = exc.status_code
    if exc.request_id:
        extra["request_id"] = exc.request_id
    headers: dict[str, str] = {}
    if isinstance(exc, ChainError):
        status, kind = 422, "chain_error"
    elif isinstance(exc, (UnknownModelError, MissingAPIKeyError)) and client_model:
        status, kind = 400, "model_unavailable"
    elif isinstance(exc, ConfigurationError):
        status, kind = 500, "configuration_error"
    elif isinstance(exc, LLMTimeoutError):
        status, kind = 504, "upstream_timeout"
    elif isinstance(exc, (RateLimitError, OverloadedError)):
        status, kind = 503, "upstream_overloaded"
        # the provider's own wait when it gave one (whole seconds, at least 1)
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after or 0)))
    elif isinstance(exc, ContentFilteredError):
        status, kind = 422, "content_filtered"
    else:
        status, kind = 502, "upstream_error"
    return ServeError(status, kind, str(exc), headers, **extra)


def from_step_error(step: StepResult) -> ServeError:
    """The HTTP form of a failed chain step, from the exception that failed it."""
    exc = step.exception
    if isinstance(exc, LLMError):
        err = _llm_error(exc, False)
        err.message = redact(f"step {step.name!r} failed: {exc}")
    else:  # not a provider's error: a bug in an adapter
        err = ServeError(500, "internal_error", f"step {step.name!r} failed: {step.error}")
    err.extra["step"] = step.name
    return err
