"""Prompt chains: the chain model, the %%chain parser and the async DAG engine (no IPython)."""

from .events import ChainEvent, ChainResult, StepResult
from .model import Chain, ChainError, Step
from .parser import parse_chain

__all__ = ["Chain", "ChainError", "ChainEvent", "ChainResult", "Step", "StepResult", "parse_chain"]
