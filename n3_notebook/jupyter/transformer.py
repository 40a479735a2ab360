"""The input transformer: a `%%llm` / `%%chain` cell (or a cell that is just
`%chain run ...`) becomes a top-level `await` of the magics' runner, so it runs as a
coroutine on the kernel's own loop (never a nested loop).

The generated code reaches the magics through IPython's own registry
(`get_ipython().magics_manager.registry[<class name>]`), so nothing is looked up through a
module global, and it keeps working however the package is imported."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CellTransformer"]


class CellTransformer:
    """An IPython cleanup transformer for the given cell magics and (magic, first word)
    line magics; every other cell is left as it is."""

    def __init__(
        self,
        magics_name: str,
        cell_magics: Iterable[str],
        line_magics: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.target = (
            f"__import__('IPython').get_ipython().magics_manager.registry[{magics_name!r}]"
        )
        self.cell_magics = frozenset(cell_magics)
        self.line_magics = frozenset(line_magics)

    def __call__(self, lines: list[str]) -> list[str]:
        if not lines:
            return lines
        first = lines[0].rstrip("\r\n")
        rest = "".join(lines[1:])
        if first.startswith("%%"):
            name, _, line = first[2:].partition(" ")
            if name not in self.cell_magics:
                return lines
            call = f"run_cell_async({name!r}, {line.strip()!r}, {rest!r})"
            return [f"await {self.target}.{call}\n"]
        if first.startswith("%") and not rest.strip():
            name, _, line = first[1:].partition(" ")
            word = line.split(None, 1)[0] if line.strip() else ""
            if (name, word) in self.line_magics:
                return [f"await {self.target}.run_line_async({name!r}, {line.strip()!r})\n"]
        return lines
