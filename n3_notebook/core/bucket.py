"""The token bucket under the provider core's waiting rate groups (limits.py) and the
gateway's refusing per-minute budgets (budgets.py): a level that refills at a per-minute rate
up to `burst` seconds of it.

Written here rather than taken from a library: the rate is an argument of every call (a
group's rate changes while callers wait: learned, cut, recovering), and a waiting caller
reserves as a debt it sleeps off, which the asyncio limiters (aiolimiter) do not offer."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket holding at most `burst` seconds of its rate. Waiting callers reserve
    (the level may go negative: the debt is what they sleep off); refusing callers ask
    wait_for first and take only what fits (the gateway's budgets, core/budgets.py)."""

    __slots__ = ("burst", "level", "updated")

    def __init__(self, now: float, burst: float = 1.0) -> None:
        self.level: float | None = None  # None: full (capacity is only known with a rate)
        self.updated = now
        self.burst = burst

    def capacity(self, per_minute: float) -> float:
        """The most the bucket holds at this rate: `burst` seconds of it, at least one unit."""
        return max(1.0, per_minute / 60.0 * self.burst)

    def _refill(self, per_minute: float, now: float) -> float:
        capacity = self.capacity(per_minute)
        level = capacity if self.level is None else self.level
        level = min(capacity, level + max(0.0, now - self.updated) * (per_minute / 60.0))
        self.level, self.updated = level, now
        return capacity

    def reserve(self, amount: float, per_minute: float, now: float) -> float:
        """Take `amount`; the seconds the caller must wait before it may send."""
        self._refill(per_minute, now)
        assert self.level is not None
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level * 60.0 / per_minute

    def wait_for(self, amount: float, per_minute: float, now: float) -> float:
        """Seconds until `amount` is there (0.0: now); nothing is taken. A request larger
        than the whole bucket waits for a full one."""
        capacity = self._refill(per_minute, now)
        assert self.level is not None
        amount = min(amount, capacity)
        return 0.0 if self.level >= amount else (amount - self.level) * 60.0 / per_minute

    def take(self, amount: float, per_minute: float) -> None:
        """Charge `amount` (at most the whole bucket) after wait_for said it fits."""
        if self.level is not None:
            self.level -= min(amount, self.capacity(per_minute))

    def give_back(self, amount: float, per_minute: float) -> None:
        """Return `amount` (negative: charge more), never above a full bucket."""
        if self.level is not None:
            self.level = min(self.capacity(per_minute), self.level + amount)

    def refund(self, amount: float) -> None:
        if self.level is not None:
            self.level += amount

    def seed(self, debt: float, per_minute: float, now: float) -> None:
        """A bucket whose rate just became known starts short of `debt` units spent while it
        was unknown (at most the whole bucket: a server refuses rather than lends)."""
        if self.level is None:
            capacity = self.capacity(per_minute)
            self.level, self.updated = capacity - min(capacity, max(0.0, debt)), now

    def cap(self, remaining: float) -> None:
        """The server says only `remaining` is left: never hold more than that."""
        if self.level is None or self.level > remaining:
            self.level = remaining
