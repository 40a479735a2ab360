"""Where a RateGroup's budget lives when several processes share it (core/limits.py).

A RateStore keeps one group's buckets, learned limits, pause and 429 cut outside the
process (the service installs its Redis store, serve/shared_rates.py), so every worker and
every instance calling the same upstream spends one budget and a 429 seen by one slows all.
The store works on its own clock (Redis's TIME), never on the callers'.

This limiter waits, so reserving never refuses: the store takes the units (a debt when the
bucket is short) and answers how long the caller sleeps. Every method answers None / False
when the store cannot answer now (unreachable, slow, or not usable from the caller's event
loop): the group then uses its own local buckets for that call, and no request fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["RATE_PREFIX", "RateBudget", "RateFeedback", "RateStore", "Reservation"]

#: The prefix of a shared rate group's key in its store.
RATE_PREFIX = "n3:rate"

GroupKey = tuple[str, str, str]  # provider, base URL, model


@dataclass(frozen=True, slots=True)
class RateBudget:
    """The budgets this process's callers configured for a group (None: not configured);
    the store takes the lower of these and the learned limits it holds."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """What the store took for one request: the seconds to wait before sending, the
    request and token units charged (given back if the waiter is cancelled), and the
    learned limits the store holds (None: none learned yet)."""

    wait: float
    requests: float
    tokens: float
    learned_rpm: float | None = None
    learned_tpm: float | None = None


@dataclass(frozen=True, slots=True)
class RateFeedback:
    """What one response taught a group that the others must know: a 429 (`rate_limited`,
    with the server's retry-after in seconds), limits from budget headers, what the server
    says is left when that is less than a burst (`remaining_*`), and a pause in seconds when
    nothing is left."""

    rate_limited: bool = False
    retry_after: float | None = None
    learned_rpm: float | None = None
    learned_tpm: float | None = None
    remaining_requests: float | None = None
    remaining_tokens: float | None = None
    pause: float | None = None


class RateStore(Protocol):
    """A shared home for rate groups (see the module docstring). `key` is the group's
    (provider, base URL, model); a store never needs more to name it."""

    async def reserve(self, key: GroupKey, budget: RateBudget, tokens: int) -> Reservation | None:
        """Take one request and `tokens` token units; None when the store cannot answer."""
        ...

    async def give_back(self, key: GroupKey, budget: RateBudget, taken: Reservation) -> bool:
        """Return a cancelled waiter's units; False when the store cannot answer."""
        ...

    async def paused(self, key: GroupKey) -> float | None:
        """Seconds left of the group's pause (0.0: none); None when it cannot answer."""
        ...

    async def observe(self, key: GroupKey, budget: RateBudget, feedback: RateFeedback) -> bool:
        """Share what a response taught (limits, caps, pause, 429 cut); False on failure."""
        ...
