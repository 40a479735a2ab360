"""What one app keeps while it serves (app.state.n3): the routes and the job bodies read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..chain import Chain
from ..core.types import StreamConfig
from .jobs import Lifecycle
from .metrics import ServiceMetrics
from .providers import ProviderPool
from .routing import Gateway
from .settings import Limits


@dataclass
class ServeState:
    """What the app keeps (as app.state.n3): useful to embedders and tests."""

    chains: dict[str, Chain]
    models: dict[str, dict[str, str]]  # chain -> step -> model string
    pool: ProviderPool
    lifecycle: Lifecycle
    metrics: ServiceMetrics
    stream_config: StreamConfig
    namespace: dict[str, Any]
    allowed_models: frozenset[str] | None
    limits: Limits
    token_names: tuple[str, ...]  # names only: the tokens stay in the auth middleware
    gateway: Gateway  # the OpenAI-compatible routes' router, token models and budgets


__all__ = ["ServeState"]
