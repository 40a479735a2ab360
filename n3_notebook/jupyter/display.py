"""What a cell leaves in the notebook besides its live panes: the answer as an ordinary
output (kept in the saved notebook, compared by nbval) and small tables."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Display", "Table", "answer_bundle", "markdown_bundle"]

#: How outputs reach the notebook: IPython.display.display (a test passes a recorder).
Display = Callable[..., None]


def answer_bundle(text: str, fmt: str) -> dict[str, Any]:
    """A mime bundle for an answer shown as markdown, text, code, json or html."""
    bundle: dict[str, Any] = {"text/plain": text}
    if fmt == "markdown":
        bundle["text/markdown"] = text
    elif fmt == "code":
        body = text if text.lstrip().startswith("```") else f"```\n{text}\n```"
        bundle["text/markdown"] = body
    elif fmt == "html":
        bundle["text/html"] = text
    elif fmt == "json":
        try:
            bundle["application/json"] = json.loads(text)
            bundle["text/plain"] = json.dumps(bundle["application/json"], indent=2)
        except ValueError:
            pass
    return bundle


def markdown_bundle(text: str) -> dict[str, Any]:
    return {"text/markdown": text, "text/plain": text}


class Table:
    """A small table shown as HTML in notebooks and as aligned text elsewhere."""

    def __init__(self, header: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
        self.header = header
        self.rows = list(rows)

    def __repr__(self) -> str:
        cells = [self.header, *[tuple(str(c) for c in r) for r in self.rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
