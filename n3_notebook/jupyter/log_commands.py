"""%llm log and %llm dashboard: the call log (n3_notebook.log) in the notebook, and the
notebook and cell every request is logged with.

    %llm log [-n N] [--model M] [--search TEXT] [--since 1h] [--full] [-o VAR]
    %llm log off | on | status
    %llm dashboard [--since 1h] [--live]

Options are parsed by n3_notebook.log.cli, so `python -m n3_notebook.log` reads alike."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any

from IPython.display import DisplayHandle

from ..log import Dashboard, disable, enable, flush, origin, status
from ..log.cli import (
    HelpRequested,
    UsageError,
    dashboard_parser,
    log_parser,
    parse,
    run_dashboard,
    run_log,
)
from .errors import CellError
from .session import NotebookSession

__all__ = ["LIVE_INTERVAL", "cell_origin", "dashboard_command", "log_command"]

LIVE_INTERVAL = 2.0  # seconds between refreshes of a --live dashboard


def log_command(session: NotebookSession, args: list[str]) -> Any:
    """`%llm log ...`: the last calls as a table (a DataFrame with pandas; `-o VAR` keeps
    it, with every column), `--full` prints every message and answer."""
    if args[:1] in (["on"], ["off"], ["status"]):
        if args[0] == "on":
            enable()
        elif args[0] == "off":
            disable()
        now = status()
        state = "on" if now.enabled else "off"
        paused = f", paused: the database is {now.paused}" if now.paused else ""
        print(f"call log {state}{paused} ({now.path}; {now.written} calls written this session)")
        return None
    parser = log_parser("%llm log")
    parser.add_argument("-o", "--output", metavar="VAR", help="keep the calls in VAR")
    options = _parse(parser, args)
    if options is None:
        return None
    try:
        calls = run_log(options)
    except (ValueError, TypeError) as exc:
        raise CellError(str(exc), "Bad %llm log") from None
    if options.full:
        print(calls.details() if calls else "no calls logged")
    try:
        value: Any = calls.to_pandas()
    except ImportError:
        value = calls
    if options.output:
        session.namespace[options.output] = value
    if options.full:
        return None
    if not calls:
        print("no calls logged" + (" that match" if args else ""))
        return None
    return value


def dashboard_command(session: NotebookSession, args: list[str]) -> Any:
    """`%llm dashboard ...`: per provider and model aggregates as a table and charts (with
    matplotlib); `--live` refreshes them every LIVE_INTERVAL seconds while requests run."""
    parser = dashboard_parser("%llm dashboard")
    parser.add_argument("--live", action="store_true", help="refresh while requests run")
    options = _parse(parser, args)
    if options is None:
        return None
    board = _board(options)
    if not options.live:
        return _shown(board)
    handle = DisplayHandle()
    handle.display(_shown(board))
    with contextlib.suppress(RuntimeError):  # no running loop: nothing to refresh
        asyncio.get_running_loop().create_task(_refresh(session, options, handle))
    return None


async def _refresh(session: NotebookSession, options: Any, handle: DisplayHandle) -> None:
    idle = 0
    while idle < 2:  # one more refresh after the last request ended
        await asyncio.sleep(LIVE_INTERVAL)
        idle = 0 if session.running() else idle + 1
        if idle:  # a request just ended: its record may still be queued for the writer
            await asyncio.to_thread(flush, LIVE_INTERVAL)
        handle.update(_shown(_board(options)))


def _board(options: Any) -> Dashboard:
    try:
        return run_dashboard(options)
    except (ValueError, TypeError) as exc:
        raise CellError(str(exc), "Bad %llm dashboard") from None


class _Shown:
    """The dashboard's table, and its charts when matplotlib is there."""

    def __init__(self, board: Dashboard) -> None:
        self.board = board

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.board.table()}
        html = self.board._repr_html_()
        if self.board.models:
            with contextlib.suppress(ImportError):
                bundle["image/png"] = _png(self.board)
        bundle["text/html"] = html
        return bundle


def _shown(board: Dashboard) -> _Shown:
    return _Shown(board)


def _png(board: Dashboard) -> bytes:
    buffer = io.BytesIO()
    board.plot().savefig(buffer, format="png")
    return buffer.getvalue()


def _parse(parser: Any, args: list[str]) -> Any:
    try:
        return parse(parser, args)
    except HelpRequested as exc:
        print(exc)
        return None
    except UsageError as exc:
        raise CellError(str(exc), f"Malformed {parser.prog}") from None


@contextlib.contextmanager
def cell_origin(shell: Any) -> Iterator[None]:
    """Tag the calls a cell makes with its notebook (the path Jupyter gives the kernel) and
    its cell (the frontend's cell id, else its In [n] number)."""
    with origin(_notebook(shell), _cell(shell)):
        yield


def _notebook(shell: Any) -> str | None:
    namespace = getattr(shell, "user_ns", None) or {}
    name = namespace.get("__session__") or os.environ.get("JPY_SESSION_NAME")
    return str(name) if name else None


def _cell(shell: Any) -> str | None:
    kernel = getattr(shell, "kernel", None)
    with contextlib.suppress(Exception):  # kernels without get_parent (older ipykernel)
        cell_id = kernel.get_parent()["metadata"].get("cellId")  # type: ignore[union-attr]
        if cell_id:
            return str(cell_id)
    count = getattr(shell, "execution_count", None)
    # IPython counts the running cell before running it: In [n] runs with count n + 1
    return None if count is None else str(count - 1)
