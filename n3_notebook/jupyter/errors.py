"""A short, one-paragraph cell error instead of a traceback from our internals."""

from __future__ import annotations


class CellError(Exception):
    """Shown by IPython as just its message (via _render_traceback_)."""

    def __init__(self, message: str, kind: str = "n3_notebook") -> None:
        super().__init__(message)
        self.kind = kind

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{self.kind}\x1b[0m: {self}"]


def describe(exc: BaseException) -> str:
    """One line for an error: its type and message (an LLMError's str has no key)."""
    return f"{type(exc).__name__}: {exc}"
