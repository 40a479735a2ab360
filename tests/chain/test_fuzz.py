"""Property tests: whatever text a user types, the chain parser, the %%llm line parser and
the prompt template either succeed or raise their own short error, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from n3_notebook.chain import Chain, ChainError
from n3_notebook.core.template import TemplateError, fill
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.options import CellOptions, parse_line

from .test_parser import EXAMPLE

FAST = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

CHAIN_WORDS = [
    "step",
    "input",
    " ",
    "    ",
    "\t",
    "\n",
    "\r\n",
    ":",
    ",",
    "=",
    "#",
    "{",
    "}",
    "{{",
    "}}",
    "(",
    ")",
    "[",
    "]",
    '"',
    "'",
    "\\",
    "a",
    "b",
    "x1",
    "topic",
    "openai:gpt-4o-mini",
    "temperature=0.2",
    "system:",
    "{a}",
    "{b}",
    "{topic}",
    "0.5",
    "None",
    "class",
    "list",
    "é",
    "\x00",
    "\u2028",
]

chain_text = st.lists(st.sampled_from(CHAIN_WORDS), max_size=60).map("".join)


@st.composite
def mutated_example(draw) -> str:
    """The issue's example with a few random edits."""
    text = EXAMPLE
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        piece = draw(st.sampled_from(CHAIN_WORDS) | st.text(max_size=3))
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 10)) :]
        elif op == "replace":
            text = text[:pos] + piece + text[pos + len(piece) :]
        else:
            line_start = text.rfind("\n", 0, pos) + 1
            line_end = text.find("\n", pos)
            line = text[line_start : line_end if line_end != -1 else None]
            text = text[:line_start] + line + "\n" + text[line_start:]
    return text


def _parse_or_chain_error(text: str) -> None:
    try:
        chain = Chain.parse(text)
    except ChainError as exc:
        assert str(exc)  # a message, and the line when there is one
        if exc.line is not None:
            assert str(exc).startswith(f"line {exc.line}: ")
            assert 1 <= exc.line <= text.count("\n") + 1
        return
    assert chain.steps
    # a chain that parsed can be written out and read back the same
    again = Chain.parse(chain.to_text())
    assert [(s.name, s.model, s.params, s.system, s.prompt) for s in again.steps] == [
        (s.name, s.model, s.params, s.system, s.prompt) for s in chain.steps
    ]
    deps = chain.dependencies()
    assert all(name not in d for name, d in deps.items())


@FAST
@given(chain_text)
@example("step a: openai:gpt-4o-mini, note='it\\'s'\n    hi")
@example("step a:\n    {\x00}")
@example("input x = {[1]: 2}\nstep a:\n    hi")
@example("step a:\n    {" + "-" * 5000 + "1}")
@example("input x = " + "(" * 300 + ")" * 300 + "\nstep a:\n    hi")
def test_random_chain_text(text: str) -> None:
    _parse_or_chain_error(text)


@FAST
@given(mutated_example())
def test_mutated_example(text: str) -> None:
    _parse_or_chain_error(text)


LINE_WORDS = [
    "openai:gpt-4o-mini",
    "gemini:gemini-2.0-flash",
    "-o",
    "-s",
    "-t",
    "-n",
    "-p",
    "-f",
    "--repeat",
    "--timeout",
    "--background",
    "--no-widget",
    "--chat",
    "--",
    "-",
    "x",
    "0",
    "-1",
    "2.5",
    "nan",
    "inf",
    "1e999",
    "k=v",
    "=",
    "markdown",
    '"',
    "'",
    "\\",
    " ",
    "é",
]


@FAST
@given(st.lists(st.sampled_from(LINE_WORDS), max_size=12).map(" ".join) | st.text(max_size=40))
@example("--timeout nan")
@example("--repeat 1000000000000000000000")
def test_llm_line_parses_or_raises_cell_error(line: str) -> None:
    try:
        opts = parse_line(line)
    except CellError as exc:
        assert str(exc)
        return
    assert isinstance(opts, CellOptions)
    assert opts.repeat >= 1
    assert opts.temperature is None or 0 <= opts.temperature <= 2
    assert opts.output is None or opts.output.isidentifier()


TEMPLATE_WORDS = [
    "{",
    "}",
    "{{",
    "}}",
    "x",
    "y",
    "topic",
    "undefined_name",
    ".",
    "[",
    "]",
    "(",
    ")",
    "'",
    '"',
    ":",
    "!r",
    "0",
    "1",
    " ",
    ",",
    "len",
    "for",
    " in ",
    "lambda",
    "=",
    "\n",
    "\x00",
    "é",
]
NAMESPACE = {"x": 3, "y": "why", "topic": "tides", "d": {"k": [1, 2]}}


@FAST
@given(st.lists(st.sampled_from(TEMPLATE_WORDS), max_size=30).map("".join))
@example("{undefined_name}")
@example("{x.nope}")
@example("{'a'[5]}")
@example("{\x00}")
def test_fill_returns_text_or_template_error(template: str) -> None:
    try:
        out = fill(template, NAMESPACE)
    except TemplateError as exc:
        assert str(exc)
        return
    assert isinstance(out, str)
    if "{" not in template and "}" not in template:
        assert out == template


def test_fill_deeply_nested_expression() -> None:
    with pytest.raises(TemplateError):
        fill("{" + "-" * 5000 + "1}", {})


def test_timeout_nan_is_rejected() -> None:
    with pytest.raises(CellError):
        parse_line("--timeout nan")
