"""Retry policy as pure functions and named constants (no I/O, tested alone).

A request is retried only before its first chunk has reached the caller, on the statuses
below or on a connection error, with exponential backoff and jitter. A server's
`retry-after-ms` / `retry-after` (seconds or an HTTP date) and `x-should-retry` win over
the computed delay, capped at max_delay."""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

#: 408 request timeout, 409 lock conflict, 429 rate limit, 5xx server errors, 529 overloaded.
RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BASE_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
DEFAULT_JITTER = 0.2
BACKOFF_MULTIPLIER = 2.0


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How a provider retries. max_attempts counts the first try (1 = never retry)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: float = DEFAULT_JITTER
    retry_statuses: frozenset[int] = RETRY_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryConfig.max_attempts must be at least 1")
        if not (self.base_delay >= 0 and self.max_delay >= 0):  # also refuses NaN
            raise ValueError("RetryConfig delays must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryConfig.jitter must be between 0 and 1")
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))


NO_RETRY = RetryConfig(max_attempts=1)


def should_retry_status(
    status: int, headers: Mapping[str, str] | None, config: RetryConfig
) -> bool:
    """Whether an HTTP error status is worth another attempt.

    An explicit `x-should-retry: true|false` from the server decides; otherwise the status
    must be in config.retry_statuses (any 5xx counts when 500 is listed)."""
    if headers is not None:
        hint = _header(headers, "x-should-retry")
        if hint is not None:
            if hint.strip().lower() == "true":
                return True
            if hint.strip().lower() == "false":
                return False
    if status in config.retry_statuses:
        return True
    return status >= 500 and 500 in config.retry_statuses


def retry_after_seconds(
    headers: Mapping[str, str] | None, now: float | None = None
) -> float | None:
    """The server's requested wait, from retry-after-ms or retry-after, or None."""
    if not headers:
        return None
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        value = _seconds(ms)
        if value is not None:
            return value / 1000.0
    ra = _header(headers, "retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        float(ra)
    except ValueError:
        pass
    else:
        return _seconds(ra)
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; a naive one must not be read as local time
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff_delay(attempt: int, config: RetryConfig, rand: float | None = None) -> float:
    """Delay before retry number `attempt` (1 = the first retry), with jitter.

    base_delay * 2**(attempt-1), capped at max_delay, then scaled by a factor drawn from
    [1 - jitter, 1]; `rand` in [0, 1) makes it deterministic for tests."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if config.base_delay == 0:
        return 0.0
    try:
        raw = config.base_delay * BACKOFF_MULTIPLIER ** (attempt - 1)
    except OverflowError:  # a huge attempt number: the cap applies
        raw = math.inf
    raw = min(config.max_delay, raw)
    r = random.random() if rand is None else rand
    return raw * (1.0 - config.jitter * r)


def next_delay(
    attempt: int, config: RetryConfig, asked: float | None = None, rand: float | None = None
) -> float:
    """Delay before retry `attempt`: what the server asked for (`asked`, seconds, from
    retry_after_seconds) if anything, else backoff. Always capped at max_delay."""
    if asked is not None:
        return min(asked, config.max_delay)
    return backoff_delay(attempt, config, rand)


def attempts_left(attempt: int, config: RetryConfig) -> bool:
    """True when, after `attempt` tries (counting from 1), another one is allowed."""
    return attempt < config.max_attempts


def _seconds(text: str) -> float | None:
    """A finite, non-negative number of seconds from a header value, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "multi_items"):
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return value
