"""Parsing magic lines: every option, and a short error (never SystemExit) for mistakes."""

from __future__ import annotations

import pytest

from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.options import (
    CellOptions,
    parse_chain_line,
    parse_chain_run,
    parse_line,
)


def test_every_llm_option() -> None:
    opts = parse_line(
        "openai:gpt-4o-mini gemini:x -s 'Be kind' -t 0.3 -n 50 -p top_p=0.9 -p stop='[\"a\"]' "
        "-f json -o out --background --no-widget --timeout 9 --chat --repeat 2"
    )
    assert opts == CellOptions(
        models=["openai:gpt-4o-mini", "gemini:x"],
        system="Be kind",
        temperature=0.3,
        max_tokens=50,
        params={"top_p": 0.9, "stop": ["a"]},
        format="json",
        output="out",
        background=True,
        no_widget=True,
        timeout=9.0,
        chat=True,
        repeat=2,
    )
    assert opts.request_params() == {
        "top_p": 0.9,
        "stop": ["a"],
        "temperature": 0.3,
        "max_tokens": 50,
    }
    assert parse_line("") == CellOptions()


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("-t lots", "invalid float"),
        ("-t 3", "between 0 and 2"),
        ("-t nan", "between 0 and 2"),
        ("-n 0", "at least 1"),
        ("-p broken", "key=value"),
        ("-p =1", "key=value"),
        ("-o 2x", "variable name"),
        ("-f yaml", "invalid choice"),
        ("--timeout -1", "positive"),
        ("--repeat 101", "between 1 and 100"),
        ("--frobnicate", "unrecognized"),
        ("-s 'unclosed", "quotation"),
        ("--back", "unrecognized"),  # no abbreviations
    ],
)
def test_llm_line_mistakes(line: str, needle: str) -> None:
    with pytest.raises(CellError) as info:
        parse_line(line)
    assert needle in str(info.value) and info.value.kind == "Malformed %%llm line"
    if "unrecognized" in needle or "invalid" in needle:
        assert "Usage: %%llm" in str(info.value)


def test_chain_cell_line() -> None:
    opts = parse_chain_line("explain -o r -m openai:gpt-4o --define --background --no-widget")
    assert (opts.name, opts.output, opts.model) == ("explain", "r", "openai:gpt-4o")
    assert opts.define and opts.background and opts.no_widget
    assert parse_chain_line("").name is None
    with pytest.raises(CellError, match="Usage: %%chain"):
        parse_chain_line("a b")


def test_chain_run_line_takes_inputs_between_options() -> None:
    opts = parse_chain_run("run explain topic=tides -o r n=3 --background flag=true")
    assert opts.name == "explain" and opts.output == "r" and opts.background
    assert opts.inputs == {"topic": "tides", "n": 3, "flag": True}
    for bad in ("run", "run x y", "list x", "run x -o 1"):
        with pytest.raises(CellError):
            parse_chain_run(bad)
