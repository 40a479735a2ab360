"""Chain: a ChainSpec you can parse, run and stream (the public face of chains).

It builds on the parser (text -> spec) and the engine (spec -> events), both of which know
only ChainSpec, so imports point one way: spec <- parser, engine <- model."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from ..core.types import StreamConfig
from .engine import ProviderFactory, run_chain, stream_chain
from .events import ChainEvent, ChainResult
from .parser import parse_as
from .spec import REQUIRED, ChainError, ChainSpec, Step, merge_inputs

__all__ = ["REQUIRED", "Chain", "ChainError", "Step", "parse_chain"]


class Chain(ChainSpec):
    """A validated set of steps and inputs. Build it from Step objects or Chain.parse()."""

    @classmethod
    def parse(cls, text: str, name: str | None = None) -> Chain:
        return parse_as(cls, text, name)

    async def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        /,
        *,
        namespace: Mapping[str, Any] | None = None,
        provider_factory: ProviderFactory | None = None,
        default_model: str | None = None,
        stream_config: StreamConfig | None = None,
        **more_inputs: Any,
    ) -> ChainResult:
        """Run the chain; returns a ChainResult. Inputs come as keywords
        (`chain.run(topic="tides")`) or as a mapping, which also takes input names that
        clash with the options here (`chain.run({"namespace": "prod"})`)."""
        return await run_chain(
            self,
            merge_inputs(inputs, more_inputs),
            namespace=namespace,
            provider_factory=provider_factory,
            default_model=default_model,
            stream_config=stream_config,
        )

    def stream(
        self,
        inputs: Mapping[str, Any] | None = None,
        /,
        *,
        namespace: Mapping[str, Any] | None = None,
        provider_factory: ProviderFactory | None = None,
        default_model: str | None = None,
        stream_config: StreamConfig | None = None,
        **more_inputs: Any,
    ) -> AsyncGenerator[ChainEvent, None]:
        """Run the chain, yielding step-tagged ChainEvents (the last is `chain_done`).

        Leaving the loop early does not stop the steps until the generator is closed, so
        iterate inside `async with contextlib.aclosing(chain.stream(...)) as events:`;
        closing it (or cancelling the task while it waits for the next event) cancels
        every running step and closes its connection."""
        return stream_chain(
            self,
            merge_inputs(inputs, more_inputs),
            namespace=namespace,
            provider_factory=provider_factory,
            default_model=default_model,
            stream_config=stream_config,
        )


def parse_chain(text: str, name: str | None = None, first_line: int = 1) -> Chain:
    """Parse %%chain text into a Chain; errors name the line (numbered from first_line)."""
    return parse_as(Chain, text, name, first_line)
