"""What %%llm's --image, --schema, --tools, --run-tools and --reasoning become: the parts
of the user's message and the request's parameters, read from the notebook's namespace."""

from __future__ import annotations

from typing import Any

from ..core.errors import LLMError
from ..core.images import Image
from ..core.tools import Tool
from ..core.types import Message, Part
from .errors import CellError
from .options import CellOptions
from .session import NotebookSession

__all__ = ["cell_message", "feature_params"]


def cell_message(session: NotebookSession, opts: CellOptions, prompt: str) -> Message:
    """The user's turn: the prompt, then each --image (a variable, or a path or URL)."""
    if not opts.images:
        return Message("user", prompt)
    parts: list[Part] = [prompt]
    for name in opts.images:
        try:
            parts.append(Image.of(session.namespace.get(name, name)))
        except LLMError as exc:
            raise CellError(f"--image {name}: {exc.message}", "Bad --image") from None
    return Message("user", parts)


def _lookup(session: NotebookSession, name: str, flag: str, what: str) -> Any:
    if name not in session.namespace:
        raise CellError(
            f"{flag} {name}: no variable {name!r} in the notebook; define {what} first.",
            f"Bad {flag}",
        )
    return session.namespace[name]


def feature_params(session: NotebookSession, opts: CellOptions) -> dict[str, Any]:
    """schema=, tools=, run_tools= and reasoning= for the provider, from the flags."""
    params: dict[str, Any] = {}
    if opts.schema is not None:
        params["schema"] = _lookup(
            session, opts.schema, "--schema", "the pydantic model (or JSON schema dict)"
        )
    tools = []
    for name in opts.tools:
        fn = _lookup(session, name, "--tools", "the function")
        if not (callable(fn) or isinstance(fn, Tool)):
            raise CellError(f"--tools {name}: {name} is not a function", "Bad --tools")
        tools.append(fn)
    if tools:
        params["tools"] = tools
    if opts.run_tools:
        params["run_tools"] = True
    if opts.reasoning is not None:
        value = opts.reasoning
        params["reasoning"] = int(value) if value.isdigit() else value
    return params
