"""The feature options of a request (tools=, schema=, reasoning=) read once, checked, and
handed to the provider adapter that writes them in its own format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import OutputSchema, as_output_schema
from .tools import Tool, as_tools

__all__ = ["EFFORTS", "Features", "budget_of", "effort_of", "take_features"]

#: Effort words reasoning= takes, each with the thinking-token budget it stands for where a
#: provider wants a number (Anthropic, Gemini 2.5).
EFFORTS: dict[str, int] = {"minimal": 512, "low": 1024, "medium": 4096, "high": 16384}


@dataclass(slots=True)
class Features:
    tools: list[Tool] = field(default_factory=list)
    tool_choice: Any = None
    schema: OutputSchema | None = None
    reasoning: str | int | None = None  # an effort word or a token budget


def normalize_reasoning(value: Any) -> str | int | None:
    if value is None or value is False:
        return None
    if value is True:
        return "medium"
    if isinstance(value, str) and value.lower() in EFFORTS:
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValueError(
        f"reasoning= takes an effort ({', '.join(EFFORTS)}), a positive token budget or "
        f"True, got {value!r}"
    )


def prepare(params: dict[str, Any]) -> None:
    """Check and convert the feature options in place (done once per request)."""
    if params.get("tools") is not None:
        params["tools"] = as_tools(params["tools"])
    if params.get("schema") is not None:
        params["schema"] = as_output_schema(params["schema"])
    if "reasoning" in params:
        params["reasoning"] = normalize_reasoning(params["reasoning"])


def take_features(params: dict[str, Any]) -> Features:
    """Pop tools, tool_choice, schema and reasoning from a provider's params."""
    return Features(
        as_tools(params.pop("tools", None)),
        params.pop("tool_choice", None),
        as_output_schema(params.pop("schema", None)),
        normalize_reasoning(params.pop("reasoning", None)),
    )


def budget_of(reasoning: str | int) -> int:
    return reasoning if isinstance(reasoning, int) else EFFORTS[reasoning]


def effort_of(reasoning: str | int) -> str:
    if isinstance(reasoning, str):
        return reasoning
    for word, budget in EFFORTS.items():
        if reasoning <= budget:
            return word
    return "high"
