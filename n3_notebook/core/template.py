"""Prompt templates: `{name}` and `{expr}` filled from a namespace.

`{{` and `}}` are literal braces. A brace group that is not a Python expression (a JSON
object pasted into a prompt, say) is left as written. A name that is not defined raises
TemplateError naming it, before any request is sent."""

from __future__ import annotations

import ast
import builtins
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError


class TemplateError(ConfigurationError):
    """A prompt template refers to something undefined or fails to evaluate."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


def _spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each top-level {...} group, skipping {{ and }} escapes."""
    out: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "{":
            if text.startswith("{{", i):
                i += 2
                continue
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth == 0:
                out.append((i, j))
            i = j
            continue
        i += 2 if text.startswith("}}", i) else 1
    return out


def _unescape(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


def expressions(template: str) -> list[tuple[str, ast.Expression]]:
    """The (source, parsed) expressions a template will evaluate, in order."""
    out = []
    for start, end in _spans(template):
        expr = template[start + 1 : end - 1].strip()
        if not expr:
            continue
        try:
            out.append((expr, ast.parse(expr, mode="eval")))
        except SyntaxError:
            continue
    return out


def free_names(template: str) -> set[str]:
    """Names the template's expressions read (builtins excluded)."""
    names: set[str] = set()
    for _, tree in expressions(template):
        bound = {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
        names -= bound
    return {n for n in names if not hasattr(builtins, n)}


def fill(template: str, namespace: Mapping[str, Any]) -> str:
    """The prompt with every {expression} replaced by its value's str()."""
    parts: list[str] = []
    pos = 0
    for start, end in _spans(template):
        expr = template[start + 1 : end - 1].strip()
        if not expr:
            continue
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError:
            continue  # not an expression: keep the braces as written
        parts.append(_unescape(template[pos:start]))
        parts.append(_evaluate(expr, tree, namespace))
        pos = end
    parts.append(_unescape(template[pos:]))
    return "".join(parts)


def _evaluate(expr: str, tree: ast.Expression, namespace: Mapping[str, Any]) -> str:
    try:
        value = eval(compile(tree, "<prompt>", "eval"), dict(namespace))  # the user's own text
    except NameError as exc:
        name = getattr(exc, "name", None) or str(exc)
        raise TemplateError(
            f"{{{expr}}} in the prompt refers to {name!r}, which is not defined. Define it "
            "first, or write {{ and }} for literal braces.",
            name,
        ) from None
    except Exception as exc:
        raise TemplateError(
            f"{{{expr}}} in the prompt failed: {type(exc).__name__}: {exc}. Write {{{{ and }}}} "
            "for literal braces."
        ) from None
    return str(value)
