"""Prompt chains: the chain spec, the %%chain parser, the async DAG engine and Chain, which
builds on all three (no IPython)."""

from .events import ChainEvent, ChainResult, StepResult
from .model import Chain, parse_chain
from .spec import ChainError, ChainSpec, Step

__all__ = [
    "Chain",
    "ChainError",
    "ChainEvent",
    "ChainResult",
    "ChainSpec",
    "Step",
    "StepResult",
    "parse_chain",
]
