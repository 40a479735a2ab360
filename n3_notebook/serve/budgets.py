"""Per-minute budgets of the gateway: requests and tokens per minute, for one upstream
([limits."provider:model"] in the gateway configuration) or for one bearer token (the token
file's requests_per_minute= / tokens_per_minute=).

A budget refuses instead of waiting: a gateway's client is better served by the next
upstream of its route, or by a 429 with Retry-After, than by a request held in a queue. Two
token buckets hold at most one minute's budget each and refill continuously; a request's
token cost is estimated up front (its text's characters / 4 plus its max_tokens, how
providers count a request against a token limit) and settled with the real usage after.

The buckets are this worker's own (local state, no I/O): with N workers each holds the
whole budget."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

#: Output tokens assumed for a request that sets no max_tokens.
DEFAULT_OUTPUT_ESTIMATE = 256

Clock = Callable[[], float]


def estimate_tokens(texts: Iterable[str], max_tokens: int | None) -> int:
    """Tokens a request counts against a token budget before its answer is known."""
    chars = sum(len(t) for t in texts)
    return math.ceil(chars / 4) + (max_tokens or DEFAULT_OUTPUT_ESTIMATE)


class _Bucket:
    __slots__ = ("level", "per_minute", "stamp")

    def __init__(self, per_minute: int, now: float) -> None:
        self.per_minute = float(per_minute)
        self.level = float(per_minute)
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.per_minute, self.level + (now - self.stamp) * self.per_minute / 60)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 when it is now)."""
        # a request larger than the whole budget waits for a full bucket
        amount = min(amount, self.per_minute)
        if self.level >= amount:
            return 0.0
        return (amount - self.level) * 60 / self.per_minute


class MinuteBudget:
    """Requests and tokens per minute (None: that one is unbounded)."""

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        now = clock()
        self._clock = clock
        self.requests = _Bucket(requests_per_minute, now) if requests_per_minute else None
        self.tokens = _Bucket(tokens_per_minute, now) if tokens_per_minute else None

    def take(self, tokens: int) -> float:
        """Charge one request of an estimated `tokens`: 0.0 when it fits now (and is charged),
        else the seconds until it would (nothing charged)."""
        now = self._clock()
        wait = 0.0
        if self.requests is not None:
            self.requests.refill(now)
            wait = max(wait, self.requests.wait_for(1))
        if self.tokens is not None:
            self.tokens.refill(now)
            wait = max(wait, self.tokens.wait_for(tokens))
        if wait > 0:
            return wait
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= min(tokens, self.tokens.per_minute)
        return 0.0

    def settle(self, estimated: int, actual: int) -> None:
        """After the answer: the real token count replaces the estimate."""
        if self.tokens is not None and actual >= 0:
            b = self.tokens
            b.level = min(b.per_minute, b.level + min(estimated, b.per_minute) - actual)


__all__ = ["DEFAULT_OUTPUT_ESTIMATE", "MinuteBudget", "estimate_tokens"]
