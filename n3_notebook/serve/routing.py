"""The gateway's routing: a model name to the upstreams tried in order, key pools, budgets
and a circuit breaker per upstream.

- A name a client sends as `model` is a route of the configuration (its model strings, in
  order) or one model string (`openai:gpt-4o-mini`, an alias).
- An upstream that answers 429, 5xx (529 included), times out or cannot be reached before
  the first token is left for the next one at once: providers before the last are made
  without retries (NO_RETRY), only the last one retries as the library does. Nothing falls
  back after the first token was read: the answer has begun.
- A key pool per provider ([keys]): each request takes the key that was rate-limited least
  recently (never-limited keys first, in their order); a 429 marks the key and the next key
  of the pool is tried on the same upstream before the route moves on.
- Budgets ([limits."provider:model"]; a token's requests_per_minute / tokens_per_minute)
  are shared through Redis when N3_REDIS_URL is set (shared_budgets.py), the worker's own
  otherwise; a spent upstream budget moves the route on.
- A circuit breaker per upstream: after `failures` failures in a row it opens and the
  upstream is skipped; after `cooldown` seconds one request probes it (half-open): success
  closes the breaker, failure opens it again. 429s do not count: a limited upstream is alive.
  Its state is the gauge n3_gateway_circuit_state (0 closed, 1 open, 2 half-open).

Hand-written: the breaker and pools are a few counters on the request path of one event
loop; the libraries that offer them (pybreaker, aiobreaker) are synchronous or unmaintained
and would not see our error classes."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

from ..core.base import BaseProvider
from ..core.budgets import SharedBudget
from ..core.errors import (
    APIConnectionError,
    APIStatusError,
    LLMError,
    LLMTimeoutError,
    OverloadedError,
    RateLimitError,
    StreamProtocolError,
)
from ..core.registry import resolve_model
from ..core.retry import NO_RETRY, RetryConfig
from ..core.types import LLMResponse, Message, StreamChunk, StreamConfig
from .errors import ServeError
from .gateway_config import BreakerConfig, GatewayConfig
from .metrics import label
from .shared_budgets import RedisStore
from .tokens import ApiToken

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
MAX_UPSTREAMS = 64
STATE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half_open"}

#: make(model string, API key or None for the provider's default, retry policy) -> provider
ProviderMaker = Callable[[str, str | None, RetryConfig | None], BaseProvider]
Clock = Callable[[], float]
T = TypeVar("T")
#: An opened stream and the chunks read from it up to its first text.
Opened = tuple[AsyncGenerator[list[StreamChunk], None], list[StreamChunk]]


def is_fallback_error(exc: LLMError) -> bool:
    """Errors another upstream may not have: rate limits, overload, 5xx, timeouts,
    unreachable hosts and broken streams (not a bad request, a wrong key or a filter)."""
    if isinstance(
        exc,
        (RateLimitError, OverloadedError, LLMTimeoutError, APIConnectionError, StreamProtocolError),
    ):
        return True
    return isinstance(exc, APIStatusError) and (exc.status_code or 0) >= 500


class CircuitBreaker:
    """Closed -> (failures in a row) -> open -> (cooldown) -> half-open: one probe."""

    def __init__(self, config: BreakerConfig, clock: Clock = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether a request may go to this upstream now (a half-open breaker lets one)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() - self.opened_at < self.config.cooldown:
                return False
            self.state = HALF_OPEN
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self._probing = False

    def failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.config.failures:
            self.state = OPEN
            self.opened_at = self._clock()
        self._probing = False

    def release(self) -> None:
        """A probe that ended with neither verdict (cancelled): let another one through."""
        self._probing = False


class KeyPool:
    """The API keys of one provider, least-recently-limited first."""

    def __init__(self, keys: Sequence[str], clock: Clock = time.monotonic) -> None:
        self.keys = tuple(keys)
        self._clock = clock
        self._limited: dict[str, float] = {}

    def order(self) -> list[str]:
        # stable: never-limited keys (0.0) keep their configured order
        return sorted(self.keys, key=lambda k: self._limited.get(k, 0.0))

    def limited(self, key: str) -> None:
        self._limited[key] = self._clock()


@dataclass
class Upstream:
    """One model string of the gateway, with its breaker and budget."""

    spec: str
    provider: str
    breaker: CircuitBreaker
    budget: SharedBudget | None
    providers: dict[tuple[str | None, bool], BaseProvider] = field(default_factory=dict)


@dataclass
class Served:
    """Which upstream answered, and through which provider object."""

    upstream: Upstream
    provider: BaseProvider
    estimate: int
    shared: bool = False  # the upstream's budget was charged in Redis


class Router:
    """Routes of one app (one worker): upstreams created on first use, closed at shutdown."""

    def __init__(
        self,
        config: GatewayConfig,
        make: ProviderMaker,
        registry: CollectorRegistry | None = None,
        clock: Clock = time.monotonic,
        store: RedisStore | None = None,
    ) -> None:
        self.config = config
        self._make = make
        self.store = store
        #: Client-named model strings get upstreams (providers, metric labels) up to this.
        self.max_upstreams = MAX_UPSTREAMS
        self._configured = {spec for specs in config.routes.values() for spec in specs}
        self._clock = clock
        self.upstreams: dict[str, Upstream] = {}
        self.pools = {p: KeyPool(keys, clock) for p, keys in config.keys.items()}
        self.circuit_state = Gauge(
            "n3_gateway_circuit_state",
            "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open",
            ["upstream"],
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.fallbacks = Counter(
            "n3_gateway_fallbacks",
            "Requests an upstream did not serve and the route passed on, by upstream and reason",
            ["upstream", "reason"],
            registry=registry,
        )

    def specs(self, model: str) -> tuple[str, ...]:
        """The model strings a client's `model` stands for, in order."""
        return self.config.routes.get(model) or (model,)

    def upstream(self, spec: str) -> Upstream:
        up = self.upstreams.get(spec)
        if up is None:
            if len(self.upstreams) >= self.max_upstreams and spec not in self._configured:
                raise ServeError(
                    400,
                    "too_many_models",
                    f"this server already serves {self.max_upstreams} distinct models; use "
                    "one of them (GET /v1/models) or a route",
                )
            provider, _ = resolve_model(spec)
            limit = self.config.limits.get(spec)
            budget = (
                SharedBudget(
                    f"upstream:{spec}",
                    limit.requests_per_minute,
                    limit.tokens_per_minute,
                    self.store,
                )
                if limit is not None
                else None
            )
            up = Upstream(spec, provider, CircuitBreaker(self.config.breaker, self._clock), budget)
            self.upstreams[spec] = up
            self._show(up)
        return up

    def _show(self, up: Upstream) -> None:
        self.circuit_state.labels(label(up.spec)).set(up.breaker.state)

    def _provider(self, up: Upstream, key: str | None, last: bool) -> BaseProvider:
        made = up.providers.get((key, last))
        if made is None:
            made = up.providers[(key, last)] = self._make(up.spec, key, None if last else NO_RETRY)
        return made

    def _keys(self, up: Upstream) -> list[str | None]:
        pool = self.pools.get(up.provider)
        return list(pool.order()) if pool is not None else [None]

    async def run(
        self,
        model: str,
        estimate: int,
        attempt: Callable[[BaseProvider], Awaitable[T]],
    ) -> tuple[Served, T]:
        """Try `attempt(provider)` (a coroutine; for a stream: open it and read up to its first
        text) on each upstream of the route until one succeeds; (which served, its result).
        Raises the last upstream's error when none could, or a 503 when every upstream was
        skipped (breaker open, budget spent)."""
        specs = self.specs(model)
        last_error: LLMError | None = None
        skipped: list[str] = []
        retry_after: float | None = None
        for index, spec in enumerate(specs):
            up = self.upstream(spec)
            is_last = index == len(specs) - 1
            if not up.breaker.allow():
                skipped.append(f"{spec} (circuit open)")
                self.fallbacks.labels(label(spec), "circuit_open").inc()
                continue
            self._show(up)
            shared = False
            if up.budget is not None:
                wait, shared = await up.budget.take(estimate)
                if wait > 0:
                    up.breaker.release()
                    skipped.append(f"{spec} (its limit in this gateway)")
                    self.fallbacks.labels(label(spec), "gateway_limit").inc()
                    retry_after = wait if retry_after is None else min(retry_after, wait)
                    continue
            keys = self._keys(up)
            for k, key in enumerate(keys):
                provider = self._provider(up, key, is_last and k == len(keys) - 1)
                try:
                    result = await attempt(provider)
                except LLMError as exc:
                    if not is_fallback_error(exc):
                        up.breaker.release()
                        raise
                    last_error = exc
                    if isinstance(exc, RateLimitError):
                        if key is not None:
                            self.pools[up.provider].limited(key)
                        if k < len(keys) - 1:
                            continue  # the next key of the pool, same upstream
                        up.breaker.release()
                    else:
                        up.breaker.failure()
                    self._show(up)
                    reason = type(exc).__name__
                    self.fallbacks.labels(label(spec), label(reason)).inc()
                    break
                except BaseException:  # cancelled, or not the upstream's fault: no verdict
                    up.breaker.release()
                    raise
                up.breaker.success()
                self._show(up)
                return Served(up, provider, estimate, shared), result
        if last_error is not None:
            raise last_error
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = str(max(1, int(retry_after + 0.999)))
        raise ServeError(
            429 if retry_after is not None else 503,
            "upstreams_unavailable",
            f"no upstream of {model!r} can take a request now: {', '.join(skipped)}",
            headers,
        )

    async def settle(self, served: Served, actual_tokens: int) -> None:
        if served.upstream.budget is not None:
            await served.upstream.budget.settle(served.estimate, actual_tokens, served.shared)

    async def aclose(self) -> None:
        for up in self.upstreams.values():
            for p in up.providers.values():
                try:
                    await p.aclose()
                except Exception:  # nosec B112  # closing: nothing to do about a failure
                    continue


class Gateway:
    """What the OpenAI-compatible routes keep: the router and each token's models and
    budget (by token name; the tokens themselves stay in the auth middleware)."""

    def __init__(self, router: Router, tokens: Sequence[ApiToken] = ()) -> None:
        self.router = router
        self.tokens = {t.name: t for t in tokens}
        self.budgets = {
            t.name: SharedBudget(
                f"token:{t.name}", t.requests_per_minute, t.tokens_per_minute, router.store
            )
            for t in tokens
            if t.requests_per_minute or t.tokens_per_minute
        }

    def may_use(self, token_name: str | None, model: str) -> bool:
        t = self.tokens.get(token_name) if token_name is not None else None
        return t is None or t.may_use(model)


async def first_text(
    stream: AsyncIterator[list[StreamChunk]],
) -> list[StreamChunk]:
    """Read a stream up to its first text (or its end): the chunks read so far. An error
    here has reached no client yet, so the route may still fall back."""
    held: list[StreamChunk] = []
    async for batch in stream:
        held.extend(batch)
        if any(c.content for c in batch):
            break
    return held


def stream_attempt(
    messages: list[Message], stream_config: StreamConfig, params: dict[str, Any]
) -> Callable[[BaseProvider], Awaitable[Opened]]:
    """An attempt for Router.run: open a stream and read it up to its first text; returns
    (stream, the chunks read). A failed attempt has closed its stream."""

    async def attempt(
        provider: BaseProvider,
    ) -> Opened:
        stream = provider.stream_chat_batches(messages, stream_config=stream_config, **params)
        try:
            held = await first_text(stream)
        except BaseException:
            await stream.aclose()
            raise
        return stream, held

    return attempt


def complete_attempt(
    messages: list[Message], params: dict[str, Any]
) -> Callable[[BaseProvider], Awaitable[LLMResponse]]:
    """An attempt for Router.run: one non-streaming request."""

    async def attempt(provider: BaseProvider) -> LLMResponse:
        return await provider.achat(messages, **params)

    return attempt


__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "MAX_UPSTREAMS",
    "OPEN",
    "CircuitBreaker",
    "Gateway",
    "KeyPool",
    "ProviderMaker",
    "Router",
    "Served",
    "Upstream",
    "complete_attempt",
    "first_text",
    "is_fallback_error",
    "stream_attempt",
]
