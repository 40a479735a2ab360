"""The %%chain text format.

    # a comment                                 (top-level lines only)
    input topic = "solid-state batteries"       # an input with a default (a Python literal)
    input audience                              # a required input: run(audience=...)
    step outline: openai:gpt-4o-mini            # a step: name, model, then key=value params
        system: You are concise.
        List three key questions about {topic}.
    step answers: anthropic:claude-3-5-haiku-latest, temperature=0.2
        Answer each question briefly for {audience}: {outline}
    step summary: max_tokens=200
        Summarize for a newcomer: {answers}

A step's body is its indented lines, dedented, with blank lines inside kept and `#` kept
as text (a Markdown heading is fine). An optional first body line `system: ...` is the
system prompt. `{name}` reads an input, an earlier step's output or a notebook variable;
a step runs as soon as the steps it reads are done. On `input` and `step` lines a `#`
outside quotes starts a comment (quote values that contain `#`). The model may be left
out (`step name:` or `step name: key=value`) to use the default model. Errors name the
line."""

from __future__ import annotations

import ast
import textwrap
import warnings
from keyword import iskeyword
from typing import Any, TypeVar

from .spec import REQUIRED, ChainError, ChainSpec, Step

__all__ = ["parse_as", "parse_spec"]

SpecT = TypeVar("SpecT", bound=ChainSpec)


def _value(text: str, line: int) -> Any:
    text = text.strip()
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence" in a user's string
            warnings.simplefilter("ignore")
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if text and not any(c in text for c in "\"'[]{}()"):
            return text  # a bare word
        raise ChainError(f"cannot read the value {text!r}; quote strings", line) from None


def _strip_comment(text: str) -> str:
    """`text  # comment` -> `text` (a # inside quotes stays)."""
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return text[:i].rstrip()
    return text


def _split_params(text: str, line: int) -> tuple[str | None, dict[str, Any]]:
    """`model, key=value, ...` (model optional) -> (model, params)."""
    model: str | None = None
    params: dict[str, Any] = {}
    if not text.strip():
        return None, params
    for i, part in enumerate(_split_commas(text)):
        part = part.strip()
        if i == 0 and not part:
            continue  # `step name: , key=value`: no model
        if "=" in part and not (i == 0 and ":" in part.split("=", 1)[0]):
            key, _, value = part.partition("=")
            key = key.strip()
            if not key.isidentifier():
                raise ChainError(f"{key!r} is not a parameter name", line)
            params[key] = _value(value, line)
        elif i == 0:
            if len(part.split()) > 1:
                raise ChainError(
                    f"{part!r} is not a model name; separate the model and each key=value "
                    "with commas",
                    line,
                )
            model = part
        else:
            raise ChainError(f"expected key=value after the model, got {part!r}", line)
    return model, params


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote, escaped = 0, "", False
    for ch in text:
        if quote:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def parse_spec(text: str, name: str | None = None, first_line: int = 1) -> ChainSpec:
    """Parse %%chain text; errors name the line (numbered from first_line)."""
    return parse_as(ChainSpec, text, name, first_line)


def parse_as(cls: type[SpecT], text: str, name: str | None = None, first_line: int = 1) -> SpecT:
    """parse_spec, making a `cls` (ChainSpec or a subclass of it, such as Chain)."""
    inputs: dict[str, Any] = {}
    input_lines: dict[str, int] = {}
    steps: list[Step] = []
    current: dict[str, Any] | None = None

    def close() -> None:
        if current is None:
            return
        body = textwrap.dedent("\n".join(current["body"])).strip("\n")
        lines = body.split("\n") if body else []
        system = None
        if lines and lines[0].lstrip().lower().startswith("system:"):
            system = lines[0].split(":", 1)[1].strip() or None
            lines = lines[1:]
        prompt = "\n".join(lines).strip()
        if not prompt:
            raise ChainError(f"step {current['name']!r} has no prompt", current["line"])
        steps.append(
            Step(
                current["name"],
                prompt,
                current["model"],
                system,
                current["params"],
                current["line"],
            )
        )

    for offset, raw in enumerate(text.split("\n")):
        lineno = first_line + offset
        line = raw.rstrip()
        if not line.strip():
            if current is not None:
                current["body"].append("")
            continue
        indented = line[:1] in (" ", "\t")
        if indented:
            if current is None:
                raise ChainError("an indented line outside a step", lineno)
            current["body"].append(line)
            continue
        stripped = _strip_comment(line.strip())
        if not stripped:
            continue  # a comment line
        keyword, *more = stripped.split(None, 1)
        rest = more[0] if more else ""
        if keyword == "input":
            close()
            current = None
            key, eq, default = rest.partition("=")
            key = key.strip()
            if not key.isidentifier() or iskeyword(key):
                raise ChainError(f"input name {key!r} is not a valid identifier", lineno)
            if key in inputs:
                raise ChainError(f"the input {key!r} is defined twice", lineno)
            inputs[key] = _value(default, lineno) if eq else REQUIRED
            input_lines[key] = lineno
        elif keyword == "step":
            close()
            head, colon, tail = rest.partition(":")
            step_name = head.strip()
            if not colon or not step_name or step_name.split()[0] != step_name:
                raise ChainError("write `step NAME: provider:model` (a name, then a colon)", lineno)
            model, params = _split_params(tail, lineno)
            current = {
                "name": step_name,
                "model": model,
                "params": params,
                "line": lineno,
                "body": [],
            }
        else:
            raise ChainError(
                f"expected `input NAME = value` or `step NAME: model`, got {stripped!r} "
                "(step bodies are indented)",
                lineno,
            )
    close()
    return cls(steps, inputs, name, input_lines=input_lines)
