"""Where a call came from: the notebook and cell that made it, when the caller says so.

A context variable, so concurrent cells (background streams, maps) each keep their own; the
notebook layer sets it around a cell's run and every request made inside is logged with it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass

__all__ = ["Origin", "current_origin", "origin", "reset_origin", "set_origin"]


@dataclass(frozen=True, slots=True)
class Origin:
    """The notebook (a path or a name) and the cell (an id or an execution count)."""

    notebook: str | None = None
    cell: str | None = None


_origin: ContextVar[Origin | None] = ContextVar("n3_notebook_log_origin", default=None)


def set_origin(notebook: str | None = None, cell: str | int | None = None) -> Token[Origin | None]:
    """Tag every call made from now on in this context; pass the token to reset_origin()."""
    return _origin.set(Origin(notebook, None if cell is None else str(cell)))


def reset_origin(token: Token[Origin | None]) -> None:
    _origin.reset(token)


def current_origin() -> Origin | None:
    return _origin.get()


@contextlib.contextmanager
def origin(notebook: str | None = None, cell: str | int | None = None) -> Iterator[Origin]:
    """`with origin("analysis.ipynb", cell=12):` tags the calls made inside."""
    token = set_origin(notebook, cell)
    try:
        yield _origin.get() or Origin()
    finally:
        _origin.reset(token)
