"""What chain.stream() yields, and what chain.run() returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.types import LLMResponse, Usage

EVENT_TYPES = (
    "step_started",
    "token",
    "step_done",
    "step_failed",
    "step_skipped",
    "step_cancelled",
    "chain_done",
)


@dataclass(slots=True)
class ChainEvent:
    """One step-tagged event. `data` holds the token text, usage, error or result."""

    type: str
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "step": self.step, **self.data}


@dataclass
class StepResult:
    name: str
    model: str
    state: str = "waiting"  # waiting, streaming, done, failed, skipped, cancelled
    response: LLMResponse | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    cost: float | None = None
    #: What failed the step (an LLMError keeps its provider, HTTP status and request id),
    #: for callers that need more than the ``error`` text; None unless state is "failed".
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    @property
    def output(self) -> str | None:
        return self.response.content if self.response is not None else None


@dataclass
class ChainResult:
    """Per-step outputs, timings, usage and cost of one chain run."""

    name: str | None
    inputs: dict[str, Any]
    steps: dict[str, StepResult]
    duration: float = 0.0

    @property
    def outputs(self) -> dict[str, str]:
        return {
            n: s.output for n, s in self.steps.items() if s.state == "done" and s.output is not None
        }

    @property
    def ok(self) -> bool:
        return all(s.state == "done" for s in self.steps.values())

    @property
    def usage(self) -> Usage:
        i = o = 0
        for s in self.steps.values():
            if s.response is not None:
                i += s.response.usage.input_tokens
                o += s.response.usage.output_tokens
        return Usage.of(i, o)

    @property
    def cost(self) -> float | None:
        """Total USD of the steps that finished; None if any of them has an unknown price
        (a failed or cancelled step's partial usage is not priced)."""
        done = [s for s in self.steps.values() if s.state == "done"]
        if any(s.cost is None for s in done):
            return None
        return sum(s.cost or 0.0 for s in done)

    def __getitem__(self, step: str) -> str | None:
        return self.steps[step].output

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "duration": self.duration,
            "usage": self.usage.as_dict(),
            "cost_usd": self.cost,
            "steps": {
                n: {
                    "state": s.state,
                    "model": s.model,
                    "duration": s.duration,
                    "error": s.error,
                    "input_tokens": s.response.usage.input_tokens if s.response else None,
                    "output_tokens": s.response.usage.output_tokens if s.response else None,
                    "cost_usd": s.cost,
                }
                for n, s in self.steps.items()
            },
        }

    def __repr__(self) -> str:
        lines = [
            f"ChainResult({self.name or 'chain'}: {len(self.steps)} steps, "
            f"{self.duration:.2f}s, {self.usage.total_tokens} tokens)"
        ]
        for n, s in self.steps.items():
            took = f"{s.duration:.2f}s" if s.duration is not None else "—"
            lines.append(f"  {n:<12} {s.state:<10} {s.model:<36} {took}")
        return "\n".join(lines)
