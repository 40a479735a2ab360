"""%chain line commands that do not stream: list, show, export and serve kept chains.

%chain list | show NAME | export NAME PATH
%chain serve NAME [--port P] [--stop]     serve it over HTTP from the kernel's background
(`%chain run ...` is a cell runner: see chain_cell.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .chain_cell import kept_chain
from .defaults import provider_with_key
from .errors import CellError
from .session import NotebookSession

__all__ = ["COMMANDS", "USAGE", "chain_command"]

USAGE = "usage: %chain list | show NAME | export NAME PATH | run NAME [key=value ...] | serve NAME"
SERVE_USAGE = "usage: %chain serve NAME [--port P] [--stop]"


def chain_command(session: NotebookSession, argv: list[str]) -> Any:
    """Run one %chain command (argv: the line, split)."""
    if not argv:
        print(__doc__)
        return None
    command = COMMANDS.get(argv[0])
    if command is None:
        raise CellError(USAGE, "Malformed %chain")
    return command(session, argv[1:])


def _list(session: NotebookSession, args: list[str]) -> None:
    if not session.chains:
        print("no chains yet: define one with a %%chain NAME cell")
    for name, chain in session.chains.items():
        inputs = ", ".join(chain.inputs) or "no inputs"
        print(f"{name}: inputs {inputs}; steps {', '.join(chain.step_names)}")


def _show(session: NotebookSession, args: list[str]) -> None:
    if len(args) != 1:
        raise CellError("usage: %chain show NAME", "Malformed %chain")
    print(kept_chain(session, args[0]).to_text(), end="")


def _export(session: NotebookSession, args: list[str]) -> None:
    if len(args) != 2:
        raise CellError("usage: %chain export NAME PATH", "Malformed %chain")
    path = Path(args[1]).expanduser()
    text = kept_chain(session, args[0]).to_text()
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CellError(f"cannot write {path}: {exc.strerror or exc}", "Export failed") from None
    print(f"wrote {path}")


def _serve(session: NotebookSession, args: list[str]) -> None:
    """`%chain serve NAME [--port P] [--stop]`: serve a kept chain over HTTP from a
    background thread of the kernel (its own event loop); serving it again restarts it
    with the chain's current definition. Needs the `serve` extra."""
    name, port, stop = (args[0] if args else ""), 0, False
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--stop":
            stop = True
        elif arg == "--port" and (value := next(rest, "")).isdigit():
            port = int(value)
        else:
            raise CellError(SERVE_USAGE, "Malformed %chain")
    if not name:
        raise CellError(SERVE_USAGE, "Malformed %chain")
    try:  # an optional dependency: the serve extra
        from ..serve.background import serve_chain, stop_chain
    except ImportError as exc:
        raise CellError(
            f"serving needs the serve extra ({exc.name} is missing): "
            "pip install 'n3_notebook[serve]'",
            "Missing package",
        ) from None
    if stop:
        print(f"stopped chain {name}" if stop_chain(name) else f"chain {name} was not served")
        return
    chain = kept_chain(session, name)
    user_ns = session.namespace
    namespace = {
        ref: user_ns[ref]
        for step in chain.steps
        for ref in step.references()
        if ref in user_ns and ref not in chain.inputs
    }
    fallback = chain.default_model or session.settings.default_model or None
    if fallback is None and any(step.model is None for step in chain.steps):
        fallback = provider_with_key()  # as a %%chain cell would (offline: the demo model)
    try:
        server = serve_chain(name, chain, port, namespace=namespace, default_model=fallback)
    except (ValueError, OSError) as exc:
        raise CellError(str(exc), "Cannot serve") from None
    print(
        f"serving chain {name} at {server.url}/chains/{name}/run and /stream "
        f"(docs: {server.url}/docs; stop: %chain serve {name} --stop)"
    )


#: %chain NAME -> handler(session, args); `run` is handled by the magics (it streams).
COMMANDS: dict[str, Callable[[NotebookSession, list[str]], Any]] = {
    "list": _list,
    "show": _show,
    "export": _export,
    "serve": _serve,
}
