"""Tools a model may call: `Tool`, built from a Python function or written out, and running
one call safely.

The JSON schema of a function's parameters comes from pydantic's TypeAdapter (signature and
type hints); descriptions come from the docstring (docstring_parser reads Google, NumPy,
reST and Epydoc styles). Arguments are checked against the schema with jsonschema before
the function runs, then converted by pydantic's validate_call; whatever goes wrong becomes
an error result the model sees, never an exception in the caller's loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import docstring_parser
import jsonschema  # type: ignore[import-untyped]
from pydantic import PydanticUserError, TypeAdapter, validate_call

from .types import ToolCall

__all__ = ["Tool", "ToolResult", "as_tools", "run_tool_call"]

_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: its name, what it does, the JSON schema of its
    arguments (an object schema) and, to run it, the Python callable (sync or async)."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: dict(_EMPTY_OBJECT))
    function: Callable[..., Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Tool needs a non-empty name")
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            raise ValueError(
                f"Tool {self.name!r}: parameters must be a JSON schema of type 'object' "
                '(e.g. {"type": "object", "properties": {"city": {"type": "string"}}})'
            )

    @classmethod
    def from_function(
        cls, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """The tool for a Python function: schema from its signature and hints, description
        from its docstring (the parameters' descriptions too)."""
        if not callable(fn):
            raise ValueError(f"a tool must be a function or a Tool, got {type(fn).__name__}")
        tool_name = name or getattr(fn, "__name__", "")
        if not tool_name or tool_name == "<lambda>":
            raise ValueError("a lambda has no name; wrap it in Tool(name=..., function=...)")
        try:
            schema = TypeAdapter(fn).json_schema()  # type: ignore[arg-type]
        except (PydanticUserError, TypeError) as exc:  # schema generation errors included
            first = str(exc).split("\n", 1)[0]
            raise ValueError(
                f"cannot describe the parameters of {tool_name}() as JSON ({first}). Give each "
                "parameter a JSON-friendly type hint (str, int, float, bool, list, dict, a "
                "pydantic model...), or pass Tool(name, description, parameters, function)."
            ) from exc
        doc = docstring_parser.parse(inspect.getdoc(fn) or "")
        text = "\n\n".join(d for d in (doc.short_description, doc.long_description) if d)
        props = schema.get("properties") or {}
        for param in doc.params:
            prop = props.get(param.arg_name)
            if isinstance(prop, dict) and param.description and "description" not in prop:
                prop["description"] = param.description
        for prop in props.values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        schema.pop("title", None)
        schema.setdefault("properties", {})
        return cls(tool_name, description or text, schema, fn)

    def spec(self) -> dict[str, Any]:
        """{"name", "description", "parameters"}: the fields every provider's format uses."""
        return {"name": self.name, "description": self.description, "parameters": self.params}

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.parameters)


def as_tools(tools: Iterable[Any] | None) -> list[Tool]:
    """tools= as given (functions, Tool objects) -> a list of Tool, names unique."""
    if tools is None:
        return []
    if isinstance(tools, Tool) or callable(tools):
        tools = [tools]
    if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Iterable):
        raise ValueError(
            f"tools= takes a list of functions or Tool objects, got {type(tools).__name__}"
        )
    out: list[Tool] = []
    for item in tools:
        out.append(item if isinstance(item, Tool) else Tool.from_function(item))
    names = [t.name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two tools share the name {dupes[0]!r}; tool names must be unique")
    return out


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What running one call gave: the text the model sees, and whether it is an error."""

    call: ToolCall
    content: str
    is_error: bool = False
    value: Any = None


async def run_tool_call(call: ToolCall, tools: Mapping[str, Tool]) -> ToolResult:
    """Run one call: only a given function, arguments checked against its schema first;
    a failure is returned as an error result (cancellation is raised as it is)."""
    tool = tools.get(call.name)
    if tool is None or tool.function is None:
        known = ", ".join(sorted(n for n, t in tools.items() if t.function is not None))
        return ToolResult(
            call, f"Error: there is no tool named {call.name!r} (tools: {known})", True
        )
    try:
        jsonschema.validate(call.arguments, tool.params)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        return ToolResult(
            call, f"Error: invalid arguments for {call.name}: {where}: {exc.message}", True
        )
    except jsonschema.SchemaError:
        pass  # a hand-written schema jsonschema cannot read: let the function decide
    fn = tool.function
    try:
        if inspect.signature(fn).parameters or call.arguments:
            fn = validate_call(fn)
        value = fn(**call.arguments)
        if inspect.isawaitable(value):
            value = await value
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return ToolResult(call, f"Error: {type(exc).__name__}: {exc}", True)
    return ToolResult(call, _as_text(value), False, value)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
