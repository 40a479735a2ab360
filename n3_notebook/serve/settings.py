"""The service's settings: environment variable names, defaults, and how they are read.

The CLI and the deploy files hand settings to the workers through these N3_SERVE_*
variables; create_app's keyword arguments override them."""

from __future__ import annotations

import os

from ..core.types import StreamConfig

TOKEN_ENV = "N3_SERVE_TOKEN"
MAX_CONCURRENT_ENV = "N3_SERVE_MAX_CONCURRENT"
GRACE_PERIOD_ENV = "N3_SERVE_GRACE_PERIOD"
DEFAULT_MODEL_ENV = "N3_SERVE_DEFAULT_MODEL"
PACING_ENV = "N3_SERVE_PACING_INTERVAL"
FILE_ENV = "N3_SERVE_FILE"

DEFAULT_MAX_CONCURRENT = 1000
DEFAULT_GRACE_PERIOD = 25.0
OFFLINE_DEFAULT_MODEL = "emulator:demo"
#: A server's streams may run long: bounds on the whole stream and on silence mid-stream.
DEFAULT_STREAM_CONFIG = StreamConfig(stream_timeout=600.0, chunk_timeout=60.0)


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
    "DEFAULT_GRACE_PERIOD",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MODEL_ENV",
    "DEFAULT_STREAM_CONFIG",
    "FILE_ENV",
    "GRACE_PERIOD_ENV",
    "MAX_CONCURRENT_ENV",
    "OFFLINE_DEFAULT_MODEL",
    "PACING_ENV",
    "TOKEN_ENV",
    "env_float",
]
