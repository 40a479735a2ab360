"""Prompt templates: `{name}` and `{expr}` filled from a namespace.

`{{` and `}}` are literal braces. A brace group that is not a Python expression (a JSON
object pasted into a prompt, say) is left as written. A name that is not defined raises
TemplateError naming it, before any request is sent."""

from __future__ import annotations

import ast
import warnings
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


def parse_expression(expr: str) -> ast.Expression | None:
    """The parsed expression, or None when the text is not a Python expression (then the
    braces are kept as written). Pathological input (nesting too deep for the parser) is a
    TemplateError, never a MemoryError or RecursionError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return ast.parse(expr, mode="eval")
    except SyntaxError:
        return None
    except (MemoryError, RecursionError):
        raise TemplateError(
            f"{{{expr[:40]}…}} in the prompt is nested too deeply to read. Write {{{{ and }}}} "
            "for literal braces."
        ) from None


def expressions(template: str) -> list[tuple[str, ast.Expression]]:
    """The (source, parsed) expressions a template will evaluate, in order."""
    out = []
    for start, end in _spans(template):
        expr = template[start + 1 : end - 1].strip()
        if not expr:
            continue
        tree = parse_expression(expr)
        if tree is not None:
            out.append((expr, tree))
    return out


def fill(template: str, namespace: Mapping[str, Any]) -> str:
    """The prompt with every {expression} replaced by its value's str()."""
    parts: list[str] = []
    pos = 0
    for start, end in _spans(template):
        expr = template[start + 1 : end - 1].strip()
        if not expr:
            continue
        tree = parse_expression(expr)
        if tree is None:
            continue  # not an expression: keep the braces as written
        parts.append(_unescape(template[pos:start]))
        parts.append(_evaluate(expr, tree, namespace))
        pos = end
    parts.append(_unescape(template[pos:]))
    return "".join(parts)


def _evaluate(expr: str, tree: ast.Expression, namespace: Mapping[str, Any]) -> str:
    try:
        code = compile(tree, "<prompt>", "eval")
        # bandit B307: the expression is the chain author's own template text (a notebook
        # cell, the served chain file); values a client sends are data, filled in once
        value = eval(code, dict(namespace))  # nosec B307
    except NameError as exc:
        name = getattr(exc, "name", None) or str(exc)
        raise TemplateError(
            f"{{{expr}}} in the prompt refers to {name!r}, which is not defined. Define it "
            "first, or write {{ and }} for literal braces.",
            name,
        ) from None
    except (MemoryError, RecursionError):
        raise TemplateError(f"{{{expr[:40]}…}} in the prompt is too deep to evaluate.") from None
    except Exception as exc:
        raise TemplateError(
            f"{{{expr}}} in the prompt failed: {type(exc).__name__}: {exc}. Write {{{{ and }}}} "
            "for literal braces."
        ) from None
    return str(value)
