"""The service's settings: environment variable names, defaults, and how they are read.

The CLI and the deploy files hand settings to the workers through these N3_SERVE_*
variables; create_app's keyword arguments override them. `Limits` holds every bound a
request meets (body, headers, prompt, max_tokens, concurrency per token, timeouts)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, cast

from ..core.types import StreamConfig

TOKEN_ENV = "N3_SERVE_TOKEN"  # nosec B105  # the variable's name, not a token
MAX_CONCURRENT_ENV = "N3_SERVE_MAX_CONCURRENT"
GRACE_PERIOD_ENV = "N3_SERVE_GRACE_PERIOD"
DEFAULT_MODEL_ENV = "N3_SERVE_DEFAULT_MODEL"
PACING_ENV = "N3_SERVE_PACING_INTERVAL"
FILE_ENV = "N3_SERVE_FILE"
TOKEN_FILE_ENV = "N3_SERVE_TOKEN_FILE"  # nosec B105  # a variable name
INSECURE_ENV = "N3_SERVE_INSECURE_NO_AUTH"
CORS_ENV = "N3_SERVE_CORS_ORIGINS"
GATEWAY_CONFIG_ENV = "N3_SERVE_GATEWAY_CONFIG"
GC_FREEZE_ENV = "N3_SERVE_GC_FREEZE"

DEFAULT_MAX_CONCURRENT = 1000
DEFAULT_GRACE_PERIOD = 25.0
OFFLINE_DEFAULT_MODEL = "emulator:demo"
#: The library's stream limits (core/types.py says why); the app reads N3_*_TIMEOUT over them.
DEFAULT_STREAM_CONFIG = StreamConfig()


@dataclass(frozen=True)
class Limits:
    """Every bound a request meets, each answered before the work is done:

    max_body_bytes: request body (413; a larger content-length is refused unread).
    max_header_bytes, max_headers: the request line and headers, in bytes and in count
      (431, then the connection closes).
    max_prompt_chars: the text a client sends a model (/v1/generate prompt and system; a
      chain's string inputs together) (422).
    max_output_tokens: the largest max_tokens a client may ask for (422).
    max_concurrent_per_token: requests one token may have running at once in a worker
      (429 with Retry-After); a token file may set it per token.
    keepalive_timeout: seconds an idle kept-alive connection stays open.
    header_timeout: seconds a client has to send a request's line and headers, from the
      connection (or the end of the previous answer) on (408, connection closed).
    body_timeout: seconds a client has to send the whole body once its headers are in (408).
    request_timeout: wall-clock seconds a request's work may take, a stream's whole length
      included (504, or a stream's `error` event).
    """

    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 16 << 10
    max_headers: int = 100
    max_prompt_chars: int = 200_000
    max_output_tokens: int = 32_768
    max_concurrent_per_token: int = 100
    keepalive_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    request_timeout: float = 900.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"limit {f.name} must be positive, got {value!r}")

    @classmethod
    def from_env(cls, **overrides: float | None) -> Limits:
        """The defaults, then N3_SERVE_<FIELD> environment variables (e.g.
        N3_SERVE_MAX_BODY_BYTES), then the overrides that are not None."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            default = cast(float, f.default)
            value = env_float(limit_env(f.name), default)
            given = overrides.pop(f.name, None)
            if given is not None:
                value = given
            if not value > 0:
                raise ValueError(
                    f"{limit_env(f.name)} (limit {f.name}) must be a positive number, got {value!r}"
                )
            values[f.name] = int(value) if isinstance(default, int) else float(value)
        if overrides:
            raise TypeError(f"unknown limits: {', '.join(sorted(overrides))}")
        return cls(**values)


def limit_env(field: str) -> str:
    """The environment variable of a Limits field: max_body_bytes -> N3_SERVE_MAX_BODY_BYTES."""
    return f"N3_SERVE_{field.upper()}"


def env_float(name: str, default: float) -> float:
    """The number in environment variable `name`, or `default` when it is unset or blank."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


__all__ = [
    "CORS_ENV",
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MODEL_ENV",
    "DEFAULT_STREAM_CONFIG",
    "FILE_ENV",
    "GATEWAY_CONFIG_ENV",
    "GC_FREEZE_ENV",
    "GRACE_PERIOD_ENV",
    "INSECURE_ENV",
    "MAX_CONCURRENT_ENV",
    "OFFLINE_DEFAULT_MODEL",
    "PACING_ENV",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "Limits",
    "env_float",
    "limit_env",
]
