"""Parsing magic lines: `%%llm`, `%%chain` and `%chain run`, with clear errors instead of
SystemExit. A flag is one add_argument() in a parser below plus a field of the same name in
its options class (fields are filled from the parsed arguments by name)."""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from .errors import CellError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "FORMATS",
    "CellOptions",
    "ChainCellOptions",
    "ChainRunOptions",
    "LineParser",
    "parse_chain_line",
    "parse_chain_run",
    "parse_line",
    "parse_value",
]

FORMATS = ("markdown", "text", "code", "json", "html")
MAX_REPEAT = 100
USAGE = (
    "%%llm [MODEL ...] [-s SYSTEM] [-t TEMP] [-n MAX_TOKENS] [-p key=value ...] "
    "[-f markdown|text|code|json|html] [-o VAR] [--background] [--no-widget] "
    "[--timeout S] [--chat] [--repeat N] [--image IMG ...] [--schema NAME] [--tools f,g] "
    "[--run-tools] [--reasoning EFFORT] [--over ROWS] [--cache]"
)
CHAIN_USAGE = "%%chain [NAME] [-o VAR] [-m MODEL] [--define] [--background] [--no-widget]"
CHAIN_RUN_USAGE = "%chain run NAME [key=value ...] [-o VAR] [--background] [--no-widget]"

OptionsT = TypeVar("OptionsT", bound="DataclassInstance")


class LineParser(argparse.ArgumentParser):
    """argparse for a magic's line: a mistake is a CellError naming the usage."""

    def __init__(self, prog: str, usage_line: str, kind: str) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False)
        self.usage_line = usage_line
        self.kind = kind

    def error(self, message: str) -> NoReturn:
        raise CellError(f"{message}. Usage: {self.usage_line}", self.kind)

    def split(self, line: str) -> list[str]:
        try:
            return shlex.split(line)
        except ValueError as exc:
            self.error(f"{exc} in {line!r}")

    def parse_into(
        self, cls: type[OptionsT], argv: list[str], intermixed: bool = False
    ) -> OptionsT:
        """Parse argv into a `cls` dataclass whose fields are named like the arguments."""
        ns = self.parse_intermixed_args(argv) if intermixed else self.parse_args(argv)
        values = vars(ns)
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def fail(self, message: str) -> NoReturn:
        """A mistake found after parsing (a bad value), shown like argparse's own."""
        raise CellError(message, self.kind)


def parse_value(text: str) -> Any:
    """`key=value` values: JSON when they parse (numbers, true, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def key_values(items: list[str], parser: LineParser, example: str) -> dict[str, Any]:
    """`key=value` arguments as a dict (values read by parse_value)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.fail(f"expected key=value, got {item!r}. Example: {example}")
        out[key.strip()] = parse_value(value)
    return out


def check_output(name: str | None, parser: LineParser) -> None:
    if name is not None and not name.isidentifier():
        parser.fail(f"-o needs a Python variable name, got {name!r}")


# --- %%llm ---------------------------------------------------------------------------


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
    images: list[str] = field(default_factory=list)
    schema: str | None = None
    tools: list[str] = field(default_factory=list)
    run_tools: bool = False
    reasoning: str | None = None
    over: str | None = None
    cache: bool = False

    def request_params(self) -> dict[str, Any]:
        """What goes to the provider besides the messages: -p values, -t and -n."""
        params = dict(self.params)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params


def llm_parser() -> LineParser:
    p = LineParser("%%llm", USAGE, "Malformed %%llm line")
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
    p.add_argument("--image", dest="images", action="append", default=[])
    p.add_argument("--schema")
    p.add_argument("--tools", type=_names, default=[])
    p.add_argument("--run-tools", dest="run_tools", action="store_true")
    p.add_argument("--reasoning")
    p.add_argument("--over")
    p.add_argument("--cache", action="store_true")
    return p


def _names(value: str) -> list[str]:
    """`f,g` -> ["f", "g"]."""
    return [n.strip() for n in value.split(",") if n.strip()]


def parse_line(line: str) -> CellOptions:
    """The %%llm line: models and options, checked."""
    p = llm_parser()
    opts = p.parse_into(CellOptions, p.split(line))
    opts.params = key_values(list(opts.params), p, "-p top_p=0.9")
    check_output(opts.output, p)
    if opts.temperature is not None and not 0 <= opts.temperature <= 2:  # also refuses nan
        p.fail(f"-t must be between 0 and 2, got {opts.temperature}")
    if opts.max_tokens is not None and opts.max_tokens < 1:
        p.fail(f"-n must be at least 1, got {opts.max_tokens}")
    if opts.timeout is not None and not 0 < opts.timeout < float("inf"):
        p.fail(f"--timeout must be positive, got {opts.timeout}")
    if not 1 <= opts.repeat <= MAX_REPEAT:
        p.fail(f"--repeat must be between 1 and {MAX_REPEAT}, got {opts.repeat}")
    if opts.run_tools and not opts.tools:
        p.fail("--run-tools needs --tools f,g (the notebook functions the model may call)")
    for name in (opts.schema, *opts.tools):
        if name is not None and not name.isidentifier():
            p.fail(f"--schema and --tools take variable names, got {name!r}")
    return opts


# --- %%chain and %chain run ----------------------------------------------------------


@dataclass
class ChainCellOptions:
    name: str | None = None
    output: str | None = None
    model: str | None = None
    define: bool = False
    background: bool = False
    no_widget: bool = False


def parse_chain_line(line: str) -> ChainCellOptions:
    p = LineParser("%%chain", CHAIN_USAGE, "Malformed %%chain line")
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output")
    p.add_argument("-m", "--model")
    p.add_argument("--define", action="store_true")
    p.add_argument("--background", action="store_true")
    p.add_argument("--no-widget", dest="no_widget", action="store_true")
    opts = p.parse_into(ChainCellOptions, p.split(line))
    check_output(opts.output, p)
    return opts


@dataclass
class ChainRunOptions:
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    background: bool = False
    no_widget: bool = False


def parse_chain_run(line: str) -> ChainRunOptions:
    """`run NAME [key=value ...] [-o VAR] [--background] [--no-widget]` (a %chain line)."""
    p = LineParser("%chain run", CHAIN_RUN_USAGE, "Malformed %chain")
    argv = p.split(line)
    if argv[:1] != ["run"]:
        p.error("expected `run NAME`")
    argv = argv[1:]
    p.add_argument("name")
    p.add_argument("inputs", nargs="*")
    p.add_argument("-o", "--output")
    p.add_argument("--background", action="store_true")
    p.add_argument("--no-widget", dest="no_widget", action="store_true")
    opts = p.parse_into(ChainRunOptions, argv, intermixed=True)
    opts.inputs = key_values(list(opts.inputs), p, "topic=tides")
    check_output(opts.output, p)
    return opts
