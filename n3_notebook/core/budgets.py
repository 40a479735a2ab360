"""Per-minute budgets that refuse instead of waiting: requests and tokens per minute for one
name (the gateway's upstreams and bearer tokens), on the same TokenBucket as the provider
core's waiting RateGroups (limits.py), each bucket holding one minute's budget.

A budget refuses instead of waiting: a gateway's client is better served by the next
upstream of its route, or by a 429 with Retry-After, than by a request held in a queue. A
request's token cost is estimated up front (limits.estimate_tokens) and settled with the
real usage after.

A SharedBudget keeps its buckets in a BudgetStore when one is given (the service injects
its Redis store, serve/shared_budgets.py, so every worker and instance sees one budget) and
falls back to this process's own MinuteBudget whenever the store cannot answer."""

from __future__ import annotations

import time
from typing import Protocol

from .bucket import TokenBucket
from .limits import Clock

__all__ = ["BUDGET_PREFIX", "BudgetStore", "MinuteBudget", "SharedBudget"]

#: A minute budget's bucket holds one minute of its rate.
MINUTE = 60.0
#: The prefix of a shared budget's keys in its store.
BUDGET_PREFIX = "n3:budget"


class MinuteBudget:
    """Requests and tokens per minute (None: that one is unbounded), this process's own."""

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        now = clock()
        self._clock = clock
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.requests = TokenBucket(now, MINUTE) if requests_per_minute else None
        self.tokens = TokenBucket(now, MINUTE) if tokens_per_minute else None

    def take(self, tokens: int) -> float:
        """Charge one request of an estimated `tokens`: 0.0 when it fits now (and is charged),
        else the seconds until it would (nothing charged)."""
        now = self._clock()
        rpm, tpm = self.requests_per_minute, self.tokens_per_minute
        wait = 0.0
        if self.requests is not None and rpm:
            wait = max(wait, self.requests.wait_for(1, rpm, now))
        if self.tokens is not None and tpm:
            wait = max(wait, self.tokens.wait_for(tokens, tpm, now))
        if wait > 0:
            return wait
        if self.requests is not None and rpm:
            self.requests.take(1, rpm)
        if self.tokens is not None and tpm:
            self.tokens.take(tokens, tpm)
        return 0.0

    def settle(self, estimated: int, actual: int) -> None:
        """After the answer: the real token count replaces the estimate."""
        tpm = self.tokens_per_minute
        if self.tokens is not None and tpm and actual >= 0:
            self.tokens.give_back(min(estimated, tpm) - actual, tpm)


class BudgetStore(Protocol):
    """Where shared buckets live. take: charge every bucket in `keys` (args: per_minute and
    amount for each) only if all fit; the wait in seconds (0.0: charged), None when the store
    cannot answer now. settle: give `delta` back to one bucket; False when it could not."""

    async def take(self, keys: list[str], args: list[float]) -> float | None: ...

    async def settle(self, key: str, per_minute: int, delta: float) -> bool: ...


class SharedBudget:
    """A named budget: in the store when one is given and answers, else this process's."""

    def __init__(
        self,
        name: str,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        store: BudgetStore | None = None,
    ) -> None:
        self.name = name
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.local = MinuteBudget(requests_per_minute, tokens_per_minute)
        self.store = store
        self._requests_key = f"{BUDGET_PREFIX}:{{{name}}}:requests"
        self._tokens_key = f"{BUDGET_PREFIX}:{{{name}}}:tokens"

    async def take(self, tokens: int) -> tuple[float, bool]:
        """(0.0 when a request of an estimated `tokens` fits now and is charged, else the
        seconds until it would; whether the shared budget answered)."""
        if self.store is not None:
            keys: list[str] = []
            args: list[float] = []
            if self.requests_per_minute:
                keys.append(self._requests_key)
                args += [self.requests_per_minute, 1]
            if self.tokens_per_minute:
                keys.append(self._tokens_key)
                args += [self.tokens_per_minute, tokens]
            wait = await self.store.take(keys, args)
            if wait is not None:
                return wait, True
        return self.local.take(tokens), False

    async def settle(self, estimated: int, actual: int, shared: bool) -> None:
        """After the answer: the real token count replaces the estimate, in the budget that
        was charged (`shared`: take's second value)."""
        tpm = self.tokens_per_minute
        if not tpm or actual < 0:
            return
        if shared and self.store is not None:
            await self.store.settle(self._tokens_key, tpm, min(estimated, tpm) - actual)
            return
        self.local.settle(estimated, actual)
