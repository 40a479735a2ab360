"""One provider per model string per worker: created on first use, reused by every request,
closed when the app shuts down.

Each provider the pool creates gets the worker's concurrency limit as its own
max_concurrent and connection limit (the library's default of 10 would queue the 11th
stream), and the app's metrics callback. A provider_factory given to create_app is called
once per model string instead; what it returns is closed at shutdown too, and the metrics
callback is chained onto it."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ..core.base import BaseProvider
from ..core.metrics import MetricsCallback, RequestMetrics
from ..core.registry import ProviderFactory, create_provider
from ..core.retry import RetryConfig
from .errors import ServeError

logger = logging.getLogger("n3_notebook.serve")

#: Distinct model strings one worker keeps providers for (clients name models in
#: /v1/generate, so this bounds memory and metric labels).
MAX_PROVIDERS = 64


class ProviderPool:
    def __init__(
        self,
        factory: ProviderFactory | None,
        on_metrics: MetricsCallback | None,
        max_concurrent: int,
        max_providers: int = MAX_PROVIDERS,
    ) -> None:
        self._factory = factory
        self._on_metrics = on_metrics
        self._max_concurrent = max_concurrent
        self._max_providers = max_providers
        self._providers: dict[str, BaseProvider] = {}
        self._client_made = 0

    def __contains__(self, spec: str) -> bool:
        return spec in self._providers

    def __len__(self) -> int:
        return len(self._providers)

    def get(self, spec: str) -> BaseProvider:
        """The provider of a model string from the server's own configuration (a chain)."""
        provider = self._providers.get(spec)
        if provider is not None:
            return provider
        return self._create(spec)

    def get_for_client(self, spec: str) -> BaseProvider:
        """The provider of a model string a client named: at most max_providers of these."""
        provider = self._providers.get(spec)
        if provider is not None:
            return provider
        if self._client_made >= self._max_providers:
            raise ServeError(
                400,
                "too_many_models",
                f"this server already serves {self._max_providers} distinct client-named "
                "models; use one of them",
            )
        provider = self._create(spec)
        self._client_made += 1
        return provider

    def make_upstream(
        self, spec: str, api_key: str | None, retry: RetryConfig | None
    ) -> BaseProvider:
        """A new provider for the gateway's router (which keeps and closes it): with this
        API key (None: the provider's usual one) and retry policy (None: the default). A
        provider_factory given to the app makes it instead (its own key; the retry policy
        is set on what it returns)."""
        if self._factory is not None:
            provider = self._factory(spec)
            if retry is not None:
                provider.retry = retry
            self._chain_metrics(provider)
            return provider
        options: dict[str, Any] = {}
        if api_key is not None:
            options["api_key"] = api_key
        if retry is not None:
            options["retry"] = retry
        return self._new(spec, **options)

    def _create(self, spec: str) -> BaseProvider:
        if self._factory is not None:
            provider = self._factory(spec)
            self._chain_metrics(provider)
        else:
            provider = self._new(spec)
        self._providers[spec] = provider
        return provider

    def _new(self, spec: str, **options: Any) -> BaseProvider:
        """A provider of our own: the worker's concurrency as its limits, our metrics."""
        n = self._max_concurrent
        return create_provider(
            spec,
            max_concurrent=n,
            max_connections=n,
            max_keepalive=n,
            on_metrics=self._on_metrics,
            **options,
        )

    def _chain_metrics(self, provider: Any) -> None:
        mine = self._on_metrics
        if mine is None or not hasattr(provider, "on_metrics"):
            return
        theirs = provider.on_metrics
        if theirs is None:
            provider.on_metrics = mine
            return

        def both(rec: RequestMetrics) -> None:
            theirs(rec)
            mine(rec)

        provider.on_metrics = both

    async def aclose(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for p in providers:
            with contextlib.suppress(Exception):
                await p.aclose()
