"""Per-minute request and token budgets, as providers enforce them, with their headers.

Off unless configured (``Emulator(requests_per_minute=..., tokens_per_minute=...)`` or
``set_rate_limits``). Each (provider, model) has a bucket per budget that holds
``burst_seconds`` worth (a minute by default; OpenAI documents that a per-minute limit may
be enforced over shorter periods, e.g. 60,000/min as 1,000/s) and refills continuously.
A request is charged one request and its input plus output tokens when it is accepted.
A request the budget cannot cover is answered 429 in the provider's format, with a
``retry-after`` for when it would fit; accepted or not, OpenAI and
Anthropic responses carry the budget headers those providers document:

- OpenAI: ``x-ratelimit-limit-requests`` / ``-tokens``, ``x-ratelimit-remaining-*`` and
  ``x-ratelimit-reset-*`` as a duration ("1s", "6m0s", "20ms": until the bucket is full);
- Anthropic: ``anthropic-ratelimit-requests-limit`` / ``-remaining`` / ``-reset`` (an
  RFC 3339 time) and the same for ``tokens``.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from dataclasses import dataclass

__all__ = ["BudgetTracker", "Verdict"]


@dataclass(frozen=True)
class _Reading:
    limit: int
    remaining: int
    reset: float  # seconds until the bucket is full again


@dataclass(frozen=True)
class Verdict:
    """Whether a request fits, and what the budget headers say after it."""

    allowed: bool
    retry_after: float
    requests: _Reading | None
    tokens: _Reading | None

    def headers(self, provider: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for kind, reading in (("requests", self.requests), ("tokens", self.tokens)):
            if reading is None:
                continue
            if provider == "openai":
                out[f"x-ratelimit-limit-{kind}"] = str(reading.limit)
                out[f"x-ratelimit-remaining-{kind}"] = str(reading.remaining)
                out[f"x-ratelimit-reset-{kind}"] = _duration(reading.reset)
            elif provider == "anthropic":
                out[f"anthropic-ratelimit-{kind}-limit"] = str(reading.limit)
                out[f"anthropic-ratelimit-{kind}-remaining"] = str(reading.remaining)
                out[f"anthropic-ratelimit-{kind}-reset"] = _rfc3339(reading.reset)
        if not self.allowed:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after)))
            if provider == "openai":
                out["retry-after-ms"] = str(max(1, math.ceil(self.retry_after * 1000)))
        return out


def _duration(seconds: float) -> str:
    """OpenAI's reset format: "20ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{int(minutes)}m{rest:.0f}s"
    return f"{rest:.3g}s"


def _rfc3339(seconds: float) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Bucket:
    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.limit = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (0 if it does now; inf if it never can)."""
        if amount <= self.level:
            return 0.0
        if amount > self.capacity:
            return math.inf
        return (amount - self.level) / self.rate

    def reading(self) -> _Reading:
        return _Reading(
            int(self.limit),
            max(0, math.floor(self.level)),
            (self.capacity - self.level) / self.rate,
        )


class BudgetTracker:
    """Thread-safe budgets per (provider, model); see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests_per_minute: float | None = None
        self.tokens_per_minute: float | None = None
        self.burst_seconds = 60.0
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self.refused = 0

    def configure(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        burst_seconds: float = 60.0,
    ) -> None:
        for value in (requests_per_minute, tokens_per_minute):
            if value is not None and not value > 0:
                raise ValueError(f"a rate limit must be positive or None, got {value!r}")
        if not 0 < burst_seconds <= 60:
            raise ValueError(f"burst_seconds must be in (0, 60], got {burst_seconds!r}")
        with self._lock:
            self.requests_per_minute = requests_per_minute
            self.tokens_per_minute = tokens_per_minute
            self.burst_seconds = burst_seconds
            self._buckets.clear()

    @property
    def active(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    def _bucket(self, key: tuple[str, str, str], per_minute: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(per_minute, self.burst_seconds, now)
        bucket.refill(now)
        return bucket

    def charge(self, provider: str, model: str, tokens: int) -> Verdict | None:
        """Charge one request of `tokens`; None when no budget is configured."""
        if not self.active:
            return None
        with self._lock:
            now = time.monotonic()
            req = tok = None
            if self.requests_per_minute is not None:
                req = self._bucket((provider, model, "r"), self.requests_per_minute, now)
            if self.tokens_per_minute is not None:
                tok = self._bucket((provider, model, "t"), self.tokens_per_minute, now)
            wait = max(
                req.wait_for(1.0) if req is not None else 0.0,
                tok.wait_for(float(tokens)) if tok is not None else 0.0,
            )
            allowed = wait == 0.0
            if allowed:
                if req is not None:
                    req.level -= 1.0
                if tok is not None:
                    tok.level -= tokens
            else:
                self.refused += 1
            return Verdict(
                allowed,
                60.0 if math.isinf(wait) else wait,
                req.reading() if req is not None else None,
                tok.reading() if tok is not None else None,
            )

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self.refused = 0
