"""Rate limits per provider and model, shared by every call in the process.

Each (provider, base URL, model) has one RateGroup: a request-rate and a token-rate bucket.
Their budgets come from the caller (`requests_per_minute=` / `tokens_per_minute=` on a call
or a provider's constructor), from the provider's response headers (OpenAI
`x-ratelimit-*`, Anthropic `anthropic-ratelimit-*`), whichever is lower, and shrink
adaptively after a 429: the group's rate is halved and paused for the server's retry-after,
then recovers linearly over RECOVERY_SECONDS.

The bucket (bucket.py) is written by hand instead of taken from aiolimiter (the maintained asyncio
limiter), because a group must be shared by calls on different event loops (the blocking
facade runs each call on a private loop in a worker thread, and aiolimiter's waiters are
futures of one loop), its rate changes while callers wait (learned, cut, recovering), and a
request's token cost is an estimate charged up front (input characters / 4 plus max_tokens,
which is how OpenAI itself counts a request against its token limit). A reservation here is
a debt on a thread-safe counter: the caller sleeps its share on its own loop, and a
cancelled waiter gives its reservation back.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import re
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from .bucket import TokenBucket
from .rate_store import RateBudget, RateFeedback, RateStore, Reservation

__all__ = [
    "BUDGET_HEADERS",
    "RateGroup",
    "RateLimitStats",
    "TokenBucket",
    "estimate_tokens",
    "parse_reset",
    "rate_group",
    "rate_store",
    "reset_rate_groups",
    "set_rate_store",
]

#: A bucket holds at most this many seconds of budget: providers enforce a per-minute
#: limit over shorter windows, so a full minute's burst at once would be refused.
BURST_SECONDS = 1.0
#: After a 429 the group's rate is multiplied by this (repeatedly, down to MIN_FACTOR).
BACKOFF_FACTOR = 0.5
MIN_FACTOR = 0.05
#: Seconds in which a cut rate climbs back to the full budget (linearly).
RECOVERY_SECONDS = 30.0
#: 429s that arrive within this many seconds of a cut belong to the same storm: one cut.
STORM_SECONDS = 1.0
#: The longest a 429's retry-after pauses the whole group.
MAX_PAUSE = 60.0
#: Window over which the request rate is observed (the base of a cut when no limit is known).
OBSERVE_SECONDS = 10.0
#: Requests let through before any request rate was known are owed to the first bucket for
#: this long at most (a per-minute budget is whole again a minute later).
UNMETERED_SECONDS = 60.0
#: Output tokens assumed for a request that sets no max_tokens.
DEFAULT_OUTPUT_ESTIMATE = 256
_MAX_TOKEN_KEYS = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "maxOutputTokens",
    "num_predict",
)

#: Headers whose presence says a response carries budget information worth learning.
BUDGET_HEADERS = ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit")

Clock = Callable[[], float]


def estimate_tokens(body: Mapping[str, Any] | None) -> int:
    """Tokens a request counts against a token budget before its answer is known: the
    characters of its text fields / 4, plus its output limit (or DEFAULT_OUTPUT_ESTIMATE)."""
    if not body:
        return DEFAULT_OUTPUT_ESTIMATE
    chars = 0
    stack: list[Any] = [body]
    output: int | None = None
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                if key in _MAX_TOKEN_KEYS and isinstance(value, int) and output is None:
                    output = value
                else:
                    stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return chars // 4 + 1 + (DEFAULT_OUTPUT_ESTIMATE if output is None else output)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None, now: float | None = None) -> float | None:
    """Seconds until a budget resets: OpenAI writes a duration ("1s", "6m0s", "20ms"),
    Anthropic an RFC 3339 time. None when unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _UNIT[u] for n, u in parts)
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 else None


@dataclass(frozen=True, slots=True)
class RateLimitStats:
    """What a group has done: requests let through, seconds waited, 429s seen, and the
    budgets in force (None = unlimited / unknown)."""

    requests: int
    waited: float
    rate_limited: int
    requests_per_minute: float | None
    tokens_per_minute: float | None
    factor: float


class RateGroup:
    """The shared budget of one provider + model (see the module docstring). `store`: where
    the budget is shared (None: the store installed by set_rate_store, if any)."""

    def __init__(
        self,
        key: tuple[str, str, str],
        clock: Clock = time.monotonic,
        store: RateStore | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._requests = TokenBucket(now, BURST_SECONDS)
        self._tokens = TokenBucket(now, BURST_SECONDS)
        self.configured_rpm: float | None = None
        self.configured_tpm: float | None = None
        self.learned_rpm: float | None = None
        self.learned_tpm: float | None = None
        self._cut_factor = 1.0  # the factor right after the last cut
        self._cut_at: float | None = None
        self._cut_base_rpm: float | None = None  # observed rate at a cut, when no limit known
        self._pause_until = 0.0
        self._recent: collections.deque[float] = collections.deque()
        self._count = 0
        self._waited = 0.0
        self._rate_limited = 0
        self._stored: tuple[float | None, float | None] = (None, None)  # the store's learned
        self._unmetered = 0  # requests let through while no request rate was known
        self._unmetered_at = now  # the last of them

    # -------------------------------------------------------------- configuration
    def configure(
        self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None
    ) -> None:
        """Set the budgets a caller knows (None leaves a budget as it is)."""
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        with self._lock:
            if requests_per_minute is not None:
                self.configured_rpm = float(requests_per_minute)
            if tokens_per_minute is not None:
                self.configured_tpm = float(tokens_per_minute)

    @property
    def counts_tokens(self) -> bool:
        """Whether a token budget is known (else a request's tokens need no estimate)."""
        return self.configured_tpm is not None or self.learned_tpm is not None

    def _store(self) -> RateStore | None:
        return self.store if self.store is not None else _installed[0]

    def _budget(self) -> RateBudget:
        return RateBudget(self.configured_rpm, self.configured_tpm)

    def _factor(self, now: float) -> float:
        if self._cut_at is None:
            return 1.0
        progress = (now - self._cut_at) / RECOVERY_SECONDS
        if progress >= 1.0:
            self._cut_at, self._cut_factor, self._cut_base_rpm = None, 1.0, None
            return 1.0
        return self._cut_factor + (1.0 - self._cut_factor) * progress

    def _rpm(self, now: float) -> float | None:
        factor = self._factor(now)  # first: a finished recovery forgets the cut's base
        known = [v for v in (self.configured_rpm, self.learned_rpm) if v is not None]
        base = min(known) if known else self._cut_base_rpm
        return None if base is None else base * factor

    def _tpm(self, now: float) -> float | None:
        known = [v for v in (self.configured_tpm, self.learned_tpm) if v is not None]
        return min(known) * self._factor(now) if known else None

    # -------------------------------------------------------------------- acquire
    def _reserve(self, tokens: int) -> tuple[float, float, float]:
        """(seconds to wait, request units taken, token units taken), from the local buckets."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._pause_until - now)
            took_r = took_t = 0.0
            rpm = self._rpm(now)
            if rpm is not None:
                self._seed(rpm, now)
                wait = max(wait, self._requests.reserve(1.0, rpm, now))
                took_r = 1.0
            else:
                if now - self._unmetered_at > UNMETERED_SECONDS:
                    self._unmetered = 0
                self._unmetered += 1
                self._unmetered_at = now
            tpm = self._tpm(now)
            if tpm is not None and tokens > 0:
                wait = max(wait, self._tokens.reserve(float(tokens), tpm, now))
                took_t = float(tokens)
            self._counted(now, wait)
            return wait, took_r, took_t

    def _counted(self, now: float, wait: float) -> None:
        """One request let through after `wait` (under the lock)."""
        self._count += 1
        self._waited += wait
        recent = self._recent
        recent.append(now + wait)
        while recent and recent[0] < now - OBSERVE_SECONDS:
            recent.popleft()

    def _seed(self, rpm: float, now: float) -> None:
        """The request rate is known (under the lock): the upstream already counted the
        requests let through before, so a new bucket starts short of what they still weigh
        (each paid off at the rate from the last one on, which errs on the side of waiting;
        a remaining header lowers the level further). Without this, a burst sent before the
        first response would be spent twice, and the upstream would refuse the second."""
        if self._requests.level is None and self._unmetered:
            paid = max(0.0, now - self._unmetered_at) * rpm / 60.0
            self._requests.seed(self._unmetered - paid, rpm, now)
        self._unmetered = 0

    def _reserved(self, taken: Reservation) -> None:
        """The store took this request: count it, and keep the limits it learned."""
        with self._lock:
            self._counted(self._clock(), taken.wait)
            self._stored = (taken.learned_rpm, taken.learned_tpm)
            if taken.learned_rpm is not None:
                self.learned_rpm = taken.learned_rpm
            if taken.learned_tpm is not None:
                self.learned_tpm = taken.learned_tpm

    async def _pause_left(self, store: RateStore | None) -> float:
        if store is not None:
            left = await store.paused(self.key)
            if left is not None:
                return left
        with self._lock:
            return self._pause_until - self._clock()

    async def acquire(self, tokens: int = 0) -> float:
        """Wait for a request slot (and `tokens` of token budget); the seconds waited."""
        store = self._store()
        taken = None
        took_r = took_t = 0.0
        if store is not None:
            taken = await store.reserve(self.key, self._budget(), tokens)
        if taken is None:
            store = None
            wait, took_r, took_t = self._reserve(tokens)
        else:
            self._reserved(taken)
            wait = taken.wait
        total = 0.0
        try:
            while wait > 0:
                await asyncio.sleep(wait)
                total += wait
                wait = await self._pause_left(store)  # a 429 during the wait pauses everyone
        except asyncio.CancelledError:
            if store is not None and taken is not None:
                _give_back_soon(store.give_back(self.key, self._budget(), taken))
            else:
                with self._lock:
                    self._requests.refund(took_r)
                    self._tokens.refund(took_t)
            raise
        return total

    # ------------------------------------------------------------------- feedback
    def observe(
        self, status: int, headers: Mapping[str, str], retry_after: float | None
    ) -> RateFeedback | None:
        """Learn from a response: budget headers always, a 429 cuts the rate. Returns what
        other processes sharing the group must know (None: nothing new)."""
        now_wall = time.time()
        with self._lock:
            now = self._clock()
            if status == 429 and self._unmetered:
                self._unmetered -= 1  # refused: the upstream never counted it
            caps, pause = self._learn(headers, now, now_wall)
            if status == 429:
                self._rate_limited += 1
                self._cut(now, retry_after)
            learned = (self.learned_rpm, self.learned_tpm)
            new = any(v is not None and v != s for v, s in zip(learned, self._stored, strict=True))
            if status != 429 and not caps and pause is None and not new:
                return None
            return RateFeedback(
                rate_limited=status == 429,
                retry_after=retry_after,
                learned_rpm=learned[0],
                learned_tpm=learned[1],
                remaining_requests=caps.get("requests"),
                remaining_tokens=caps.get("tokens"),
                pause=pause,
            )

    async def report(
        self, status: int, headers: Mapping[str, str], retry_after: float | None
    ) -> None:
        """observe(), then share what it taught through the store (when one is in use)."""
        feedback = self.observe(status, headers, retry_after)
        store = self._store()
        if feedback is None or store is None:
            return
        if await store.observe(self.key, self._budget(), feedback):
            with self._lock:
                self._stored = (feedback.learned_rpm, feedback.learned_tpm)

    def _learn(
        self, headers: Mapping[str, str], now: float, now_wall: float
    ) -> tuple[dict[str, float], float | None]:
        """Learn limits from budget headers; (what is left where less than a burst, by kind;
        the pause an exhausted budget asks for)."""
        get = headers.get
        caps: dict[str, float] = {}
        pause: float | None = None
        for kind in ("requests", "tokens"):
            limit = _number(get(f"x-ratelimit-limit-{kind}"))
            remaining = _number(get(f"x-ratelimit-remaining-{kind}"))
            reset = parse_reset(get(f"x-ratelimit-reset-{kind}"), now_wall)
            if limit is None:
                limit = _number(get(f"anthropic-ratelimit-{kind}-limit"))
                remaining = _number(get(f"anthropic-ratelimit-{kind}-remaining"))
                reset = parse_reset(get(f"anthropic-ratelimit-{kind}-reset"), now_wall)
            if limit is None or limit <= 0:
                continue
            bucket = self._requests if kind == "requests" else self._tokens
            if kind == "requests":
                self.learned_rpm = limit
                rpm = self._rpm(now)
                if rpm is not None:
                    self._seed(rpm, now)
            else:
                self.learned_tpm = limit
            if remaining is not None:
                bucket.cap(remaining)
                if remaining < bucket.capacity(limit):
                    caps[kind] = remaining
                if remaining < 1 and reset:
                    # `reset` is when the budget is whole again; one unit is back after
                    # its share of that time (providers replenish continuously).
                    unit = min(MAX_PAUSE, reset / max(1.0, limit - remaining))
                    self._pause_until = max(self._pause_until, now + unit)
                    pause = unit if pause is None else max(pause, unit)
        return caps, pause

    def _cut(self, now: float, retry_after: float | None) -> None:
        if retry_after:
            pause = min(retry_after, MAX_PAUSE)
            self._pause_until = max(self._pause_until, now + pause)
        if self._cut_at is not None and now - self._cut_at < STORM_SECONDS:
            return
        if self.configured_rpm is None and self.learned_rpm is None and self._cut_base_rpm is None:
            recent = self._recent
            span = max(1.0, now - recent[0]) if recent else OBSERVE_SECONDS
            self._cut_base_rpm = max(1.0, len(recent) * 60.0 / span)
        factor = self._factor(now)
        self._cut_factor = max(MIN_FACTOR, factor * BACKOFF_FACTOR)
        self._cut_at = now

    # ---------------------------------------------------------------------- stats
    def stats(self) -> RateLimitStats:
        with self._lock:
            now = self._clock()
            return RateLimitStats(
                requests=self._count,
                waited=self._waited,
                rate_limited=self._rate_limited,
                requests_per_minute=self._rpm(now),
                tokens_per_minute=self._tpm(now),
                factor=self._factor(now),
            )


# The store every group without its own shares through (set_rate_store), in a list so the
# groups read it without a global statement.
_installed: list[RateStore | None] = [None]
# Give-backs of cancelled waiters still on their way to the store (held against collection).
_giving_back: set[asyncio.Task[bool]] = set()


def _give_back_soon(call: Coroutine[Any, Any, bool]) -> None:
    """Return a cancelled waiter's units without holding up its cancellation."""
    task = asyncio.get_running_loop().create_task(call)
    _giving_back.add(task)
    task.add_done_callback(_giving_back.discard)


def set_rate_store(store: RateStore | None) -> RateStore | None:
    """Share every rate group without its own store through `store` (None: each process's
    own buckets again); returns the store it replaces. The service installs its Redis store
    while it runs (serve/shared_rates.py)."""
    previous, _installed[0] = _installed[0], store
    return previous


def rate_store() -> RateStore | None:
    """The store installed by set_rate_store (None: none)."""
    return _installed[0]


_groups: dict[tuple[str, str, str], RateGroup] = {}
_groups_lock = threading.Lock()


def rate_group(provider: str, base_url: str, model: str) -> RateGroup:
    """The process-wide group of one provider endpoint and model (created on first use)."""
    key = (provider, base_url, model)
    group = _groups.get(key)
    if group is None:
        with _groups_lock:
            group = _groups.setdefault(key, RateGroup(key))
    return group


def reset_rate_groups() -> None:
    """Forget every group (their budgets, learned limits and cuts); for tests."""
    with _groups_lock:
        _groups.clear()
