"""Parsing the `%%llm` line: models and options, with clear errors instead of SystemExit."""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from .errors import CellError

FORMATS = ("markdown", "text", "code", "json", "html")
MAX_REPEAT = 100
USAGE = (
    "%%llm [MODEL ...] [-s SYSTEM] [-t TEMP] [-n MAX_TOKENS] [-p key=value ...] "
    "[-f markdown|text|code|json|html] [-o VAR] [--background] [--no-widget] "
    "[--timeout S] [--chat] [--repeat N]"
)


@dataclass
class CellOptions:
    models: list[str] = field(default_factory=list)
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    format: str | None = None
    output: str | None = None
    background: bool = False
    no_widget: bool = False
    timeout: float | None = None
    chat: bool = False
    repeat: int = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise CellError(f"{message}. Usage: {USAGE}", "Malformed %%llm line")


def _parser() -> _Parser:
    p = _Parser(prog="%%llm", add_help=False, allow_abbrev=False)
    p.add_argument("models", nargs="*")
    p.add_argument("-s", "--system")
    p.add_argument("-t", "--temperature", type=float)
    p.add_argument("-n", "--max-tokens", dest="max_tokens", type=int)
    p.add_argument("-p", "--param", dest="params", action="append", default=[])
    p.add_argument("-f", "--format", choices=FORMATS)
    p.add_argument("-o", "--output")
    p.add_argument("--background", action="store_true")
    p.add_argument("--no-widget", dest="no_widget", action="store_true")
    p.add_argument("--timeout", type=float)
    p.add_argument("--chat", action="store_true")
    p.add_argument("--repeat", type=int, default=1)
    return p


def parse_value(text: str) -> Any:
    """`-p key=value` values: JSON when they parse (numbers, true, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_line(line: str) -> CellOptions:
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise CellError(f"{exc} in {line!r}. Usage: {USAGE}", "Malformed %%llm line") from None
    ns = _parser().parse_args(argv)
    params: dict[str, Any] = {}
    for item in ns.params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CellError(
                f"-p takes key=value, got {item!r}. Example: -p top_p=0.9",
                "Malformed %%llm line",
            )
        params[key.strip()] = parse_value(value)
    if ns.output is not None and not ns.output.isidentifier():
        raise CellError(
            f"-o needs a Python variable name, got {ns.output!r}", "Malformed %%llm line"
        )
    if ns.temperature is not None and not 0 <= ns.temperature <= 2:  # also refuses nan
        raise CellError(f"-t must be between 0 and 2, got {ns.temperature}", "Malformed %%llm line")
    if ns.max_tokens is not None and ns.max_tokens < 1:
        raise CellError(f"-n must be at least 1, got {ns.max_tokens}", "Malformed %%llm line")
    if ns.timeout is not None and not 0 < ns.timeout < float("inf"):
        raise CellError(f"--timeout must be positive, got {ns.timeout}", "Malformed %%llm line")
    if not 1 <= ns.repeat <= MAX_REPEAT:
        raise CellError(
            f"--repeat must be between 1 and {MAX_REPEAT}, got {ns.repeat}", "Malformed %%llm line"
        )
    return CellOptions(
        models=list(ns.models),
        system=ns.system,
        temperature=ns.temperature,
        max_tokens=ns.max_tokens,
        params=params,
        format=ns.format,
        output=ns.output,
        background=ns.background,
        no_widget=ns.no_widget,
        timeout=ns.timeout,
        chat=ns.chat,
        repeat=ns.repeat,
    )
