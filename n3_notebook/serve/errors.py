"""How failures become HTTP answers: one JSON shape for every error,

    {"error": {"type": "upstream_error", "message": "...", ...details}}

and one table from exception types to status codes. Messages pass through redact(), so a
key never leaves the server even if a provider echoed it."""

from __future__ import annotations

import re
from typing import Any

from ..chain.model import ChainError
from ..core import errors as core_errors
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
        return _llm_error(type(exc), exc, str(exc), client_model)
    return ServeError(500, "internal_error", "internal error while serving the request")


def _llm_error(
    cls: type[BaseException], exc: LLMError | None, text: str, client_model: bool
) -> ServeError:
    extra: dict[str, Any] = {}
    if exc is not None:
        if exc.provider:
            extra["provider"] = exc.provider
        if exc.status_code is not None:
            extra["upstream_status"] = exc.status_code
        if exc.request_id:
            extra["request_id"] = exc.request_id
    else:
        m = re.search(r"HTTP (\d{3}):", text)
        if m:
            extra["upstream_status"] = int(m.group(1))
        m = re.match(r"\[([\w-]+)\]", text)
        if m:
            extra["provider"] = m.group(1)
        m = re.search(r"\(request id ([^)\s]+)\)$", text)
        if m:
            extra["request_id"] = m.group(1)
    headers: dict[str, str] = {}
    if issubclass(cls, ChainError):
        status, kind = 422, "chain_error"
    elif issubclass(cls, (UnknownModelError, MissingAPIKeyError)) and client_model:
        status, kind = 400, "model_unavailable"
    elif issubclass(cls, ConfigurationError):
        status, kind = 500, "configuration_error"
    elif issubclass(cls, LLMTimeoutError):
        status, kind = 504, "upstream_timeout"
    elif issubclass(cls, (RateLimitError, OverloadedError)):
        status, kind = 503, "upstream_overloaded"
        headers["retry-after"] = "1"
    elif issubclass(cls, ContentFilteredError):
        status, kind = 422, "content_filtered"
    else:
        status, kind = 502, "upstream_error"
    return ServeError(status, kind, text, headers, **extra)


_ERROR_CLASSES: dict[str, type[BaseException]] = {
    name: obj
    for name, obj in vars(core_errors).items()
    if isinstance(obj, type) and issubclass(obj, LLMError)
}
_ERROR_CLASSES["ChainError"] = ChainError


def from_step_error(step: str, error: str) -> ServeError:
    """The HTTP form of a failed chain step, from the engine's `"ClassName: message"` text."""
    name, sep, message = error.partition(": ")
    cls = _ERROR_CLASSES.get(name) if sep else None
    if cls is None:
        err = ServeError(500, "internal_error", f"step {step!r} failed: {error}")
    else:
        err = _llm_error(cls, None, message, False)
        err.message = redact(f"step {step!r} failed: {message}")
    err.extra["step"] = step
    return err
