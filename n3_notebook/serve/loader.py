"""Chains to serve, from a chain file or from a notebook.

A chain file holds the %%chain syntax. One file may hold several chains, each starting
with a header line at the left margin:

    # support.n3
    chain triage -m openai:gpt-4o-mini          # `chain NAME [-m DEFAULT_MODEL]`
    input ticket
    step label:
        Label this ticket as bug, question or request: {ticket}
    step reply: anthropic:claude-3-5-haiku-latest
        Draft a reply to this {label}: {ticket}

    chain summary
    input text
    step short: openai:gpt-4o-mini
        Summarize in one line: {text}

`%%chain NAME [-m MODEL]` works as a header too (a cell pasted from a notebook; its other
options are ignored). Before the first header only comments and blank lines may stand. A
file without any header is one chain named after the file (what `%chain export NAME
FILE.n3` writes). Chain names are unique within a file.

A notebook (.ipynb) contributes every code cell that starts with `%%chain NAME`; cells
without a name are skipped, and when two cells define the same name the later one wins
(as after Run All). Errors name the file, the cell and the line."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from ..chain import Chain, ChainError, parse_chain

_HEADER = re.compile(r"^(%%chain|chain)(?:\s|$)")


class ChainFileError(ValueError):
    """A chain file or notebook that cannot be served; the message says where."""


def load_chains(path: str | Path) -> dict[str, Chain]:
    """name -> Chain from a chain file or a notebook (by the .ipynb suffix)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChainFileError(f"cannot read {p}: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".ipynb":
        return parse_notebook(text, str(p))
    return parse_chain_file(text, default_name=_stem_name(p), source=str(p))


def _stem_name(p: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", p.stem) or "chain"
    return name if name[0].isalnum() else f"c{name}"


def _header(line: str, where: str) -> tuple[str, str | None]:
    """`chain NAME [-m MODEL]` / `%%chain NAME [options]` -> (name, default model)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:
        raise ChainFileError(f"{where}: cannot read the header ({exc})") from None
    name: str | None = None
    model: str | None = None
    it = iter(words[1:])
    for word in it:
        if word in ("-m", "--model"):
            model = next(it, None)
            if not model:
                raise ChainFileError(f"{where}: {word} needs a model string")
        elif word.startswith("--model="):
            model = word.partition("=")[2]
        elif word in ("-o", "--output"):
            next(it, None)  # a notebook option, meaningless here
        elif word.startswith("-"):
            continue  # --define, --background, --no-widget
        elif name is None:
            name = word
        else:
            raise ChainFileError(f"{where}: unexpected {word!r} in the header")
    if not name:
        raise ChainFileError(f"{where}: write `chain NAME` (the chain needs a name)")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise ChainFileError(
            f"{where}: chain name {name!r} cannot be a URL segment; use letters, digits, _ . -"
        )
    return name, model


def parse_chain_file(
    text: str, default_name: str = "chain", source: str = "<chain file>"
) -> dict[str, Chain]:
    """name -> Chain from the text of a chain file (see the module docstring)."""
    lines = text.split("\n")
    headers = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    if not headers:
        return {default_name: _parse(text, default_name, None, 1, source)}
    for i in range(headers[0]):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            raise ChainFileError(
                f"{source}, line {i + 1}: text before the first `chain NAME` header"
            )
    chains: dict[str, Chain] = {}
    for k, start in enumerate(headers):
        end = headers[k + 1] if k + 1 < len(headers) else len(lines)
        name, model = _header(lines[start], f"{source}, line {start + 1}")
        if name in chains:
            raise ChainFileError(f"{source}, line {start + 1}: a second chain named {name!r}")
        body = "\n".join(lines[start + 1 : end])
        chains[name] = _parse(body, name, model, start + 2, source)
    return chains


def _parse(text: str, name: str, model: str | None, first_line: int, source: str) -> Chain:
    try:
        chain = parse_chain(text, name, first_line=first_line)
    except ChainError as exc:
        raise ChainFileError(f"{source}, chain {name!r}: {exc}") from None
    if model:
        chain.default_model = model
    return chain


def parse_notebook(text: str, source: str = "<notebook>") -> dict[str, Chain]:
    """name -> Chain from every `%%chain NAME` code cell of a notebook's JSON."""
    try:
        nb = json.loads(text)
        cells: list[dict[str, Any]] = nb["cells"]
    except (ValueError, KeyError, TypeError):
        raise ChainFileError(f"{source} is not a notebook (no cells in its JSON)") from None
    chains: dict[str, Chain] = {}
    for index, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        first, _, body = src.partition("\n")
        if not first.startswith("%%chain"):
            continue
        where = f"{source}, cell {index}"
        if not _has_name(first):
            continue  # an unnamed chain is a one-off run, not something to serve
        name, model = _header(first, where)
        try:
            chain = parse_chain(body, name, first_line=2)
        except ChainError as exc:
            raise ChainFileError(f"{where} (chain {name!r}): {exc}") from None
        if model:
            chain.default_model = model
        chains[name] = chain
    if not chains:
        raise ChainFileError(f"{source} has no `%%chain NAME` cell")
    return chains


def _has_name(line: str) -> bool:
    try:
        words = shlex.split(line, comments=True)[1:]
    except ValueError:
        return True  # let _header report it
    it = iter(words)
    for word in it:
        if word in ("-m", "--model", "-o", "--output"):
            next(it, None)
        elif not word.startswith("-"):
            return True
    return False
