"""The %%chain text format and the chain model: parsing, validation, errors that name the
line, and to_text() round trips (no I/O)."""

from __future__ import annotations

import re
import textwrap
import warnings

import pytest

from n3_notebook.chain import Chain, ChainError, Step, parse_chain
from n3_notebook.chain.model import REQUIRED

EXAMPLE = """\
input topic = "solid-state batteries"
step outline: openai:gpt-4o-mini
    system: You are concise.
    List three key questions about {topic}.
step answers: anthropic:claude-3-5-haiku-latest, temperature=0.2
    Answer each question briefly: {outline}
step summary: gemini:gemini-2.0-flash
    Summarize for a newcomer: {answers}
"""


def _shape(chain: Chain) -> tuple:
    """Everything to_text() must keep (line numbers excepted)."""
    inputs = {k: ("<required>" if v is REQUIRED else v) for k, v in chain.inputs.items()}
    steps = [(s.name, s.prompt, s.model, s.system, s.params) for s in chain.steps]
    return inputs, steps


def test_issue_example_parses() -> None:
    chain = Chain.parse(EXAMPLE, "research")
    assert chain.name == "research"
    assert chain.inputs == {"topic": "solid-state batteries"}
    assert chain.step_names == ["outline", "answers", "summary"]
    outline, answers, summary = chain.steps
    assert outline.model == "openai:gpt-4o-mini"
    assert outline.system == "You are concise."
    assert outline.prompt == "List three key questions about {topic}."
    assert outline.params == {}
    assert answers.model == "anthropic:claude-3-5-haiku-latest"
    assert answers.params == {"temperature": 0.2}
    assert answers.system is None
    assert answers.prompt == "Answer each question briefly: {outline}"
    assert summary.model == "gemini:gemini-2.0-flash"
    assert summary.prompt == "Summarize for a newcomer: {answers}"
    assert [s.line for s in chain.steps] == [2, 5, 7]
    assert chain.input_lines == {"topic": 1}
    assert chain.dependencies() == {
        "outline": set(),
        "answers": {"outline"},
        "summary": {"answers"},
    }


def test_first_line_offsets_every_line_number() -> None:
    chain = parse_chain(EXAMPLE, "research", first_line=2)
    assert [s.line for s in chain.steps] == [3, 6, 8]
    with pytest.raises(ChainError, match=r"^line 5: "):
        parse_chain("input a = 1\nstep x: openai:gpt-4o-mini\n    hi\nbogus", first_line=2)


def test_comments_and_blank_lines() -> None:
    text = """\
# a research chain
input topic = "tides"   # the default topic

# the steps
step outline: openai:gpt-4o-mini, temperature=0.5   # fast and cheap
    # Questions
    First paragraph about {topic}.

    Second paragraph, after a blank line.
      an indented line stays indented


step summary: gemini:gemini-2.0-flash, stop="#"
    Sum up {outline}
"""
    chain = Chain.parse(text)
    assert chain.inputs == {"topic": "tides"}
    outline, summary = chain.steps
    assert outline.model == "openai:gpt-4o-mini"
    assert outline.params == {"temperature": 0.5}
    assert outline.prompt == (
        "# Questions\nFirst paragraph about {topic}.\n\nSecond paragraph, after a blank line.\n"
        "  an indented line stays indented"
    )
    assert summary.params == {"stop": "#"}
    assert summary.line == 13


def test_crlf_and_tabs() -> None:
    chain = Chain.parse("input\tx = 1\r\nstep\ta: openai:gpt-4o-mini\r\n\tSay {x}\r\n")
    assert chain.inputs == {"x": 1}
    assert chain.steps[0].prompt == "Say {x}"


def test_step_without_model_uses_default() -> None:
    chain = Chain.parse(
        "step a:\n    hi\nstep b: temperature=0.3\n    {a}\nstep c: , top_p=0.5\n    x"
    )
    assert [s.model for s in chain.steps] == [None, None, None]
    assert chain.steps[1].params == {"temperature": 0.3}
    assert chain.steps[2].params == {"top_p": 0.5}


def test_param_values() -> None:
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini, max_tokens=5, stop=[\"x, y\", 'z'], seed=None, "
        "mode=fast, extra={'k': (1, 2)}, note='it\\'s, \"fine\"'\n    hi"
    )
    assert chain.steps[0].params == {
        "max_tokens": 5,
        "stop": ["x, y", "z"],
        "seed": None,
        "mode": "fast",
        "extra": {"k": (1, 2)},
        "note": 'it\'s, "fine"',
    }


def test_odd_escapes_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chain = Chain.parse('step a: openai:gpt-4o-mini, stop="\\d"\n    {"\\i" + x}')
    assert chain.steps[0].params == {"stop": "\\d"}
    assert chain.steps[0].references() == {"x"}


def test_required_input() -> None:
    chain = Chain.parse("input a = 1\ninput x\nstep s: openai:gpt-4o-mini\n    {x} {a}")
    assert chain.inputs["x"] is REQUIRED
    with pytest.raises(ChainError, match=r"^line 2: .*'x'") as err:
        chain.resolve_inputs({})
    assert err.value.line == 2
    assert chain.resolve_inputs({"x": "v"}) == {"a": 1, "x": "v"}
    with pytest.raises(ChainError, match=r"unknown input.*nope"):
        chain.resolve_inputs({"x": 1, "nope": 2})


BAD = [
    ("    indented first", 1, "indented line outside a step"),
    ("step a openai:gpt-4o-mini\n    hi", 1, "colon"),
    ("step : openai:gpt-4o-mini\n    hi", 1, "colon"),
    ("stp a: openai:gpt-4o-mini\n    hi", 1, "expected `input"),
    ("step a: openai:gpt-4o-mini\nNot indented", 2, "step bodies are indented"),
    ("step a: openai:gpt-4o-mini\n    hi\nstep a: openai:gpt-4o-mini\n    ho", 3, "twice"),
    ("input a = 1\ninput a = 2\nstep s: m:x\n    {a}", 2, "twice"),
    ("input a = 1\nstep a: openai:gpt-4o-mini\n    hi", 2, "twice"),
    ("step a: openai:gpt-4o-mini\n\nstep b: openai:gpt-4o-mini\n    hi", 1, "no prompt"),
    ("step a: openai:gpt-4o-mini\n    system: only a system line", 1, "no prompt"),
    ("input 1x = 2\nstep a: m:x\n    hi", 1, "not a valid identifier"),
    ("input x = \nstep a: m:x\n    hi", 1, "cannot read the value"),
    ("step a-b: openai:gpt-4o-mini\n    hi", 1, "not a valid identifier"),
    ("step class: openai:gpt-4o-mini\n    hi", 1, "keyword"),
    ("step a: openai:gpt-4o-mini, temperature=[1,\n    hi", 1, "cannot read the value"),
    ("step a: openai:gpt-4o-mini, hot\n    hi", 1, "key=value"),
    ("step a: openai:gpt-4o-mini temperature=0.2\n    hi", 1, "commas"),
    ("step a: openai:gpt-4o-mini, 2x=1\n    hi", 1, "parameter name"),
    ("step a: openai:gpt-4o-mini\n    about {a}", 1, "refers to itself"),
    ("step a: m:x\n    {b}\nstep b: m:x\n    {a}", 1, "cycle: a -> b -> a"),
    ("step a: m:x\n    {c}\nstep b: m:x\n    {a}\nstep c: m:x\n    {b.upper()}", 1, "cycle"),
    (
        "input t = 1\n# c\n\nstep x: m:x\n    {t}\nstep y: m:x\n    {z}\nstep z: m:x\n    {y}",
        6,
        "cycle",
    ),
    ("", None, "no steps"),
    ("# only a comment\ninput x = 1\n", None, "no steps"),
]


@pytest.mark.parametrize(("text", "line", "needle"), BAD)
def test_errors_name_the_line(text: str, line: int | None, needle: str) -> None:
    with pytest.raises(ChainError) as err:
        Chain.parse(text)
    message = str(err.value)
    assert needle in message
    assert err.value.line == line
    if line is not None:
        assert message.startswith(f"line {line}: ")


def test_cycle_message_lists_the_whole_cycle() -> None:
    text = "step a: m:x\n    {c}\nstep b: m:x\n    {a}\nstep c: m:x\n    {b}\nstep d: m:x\n    {a}"
    with pytest.raises(ChainError) as err:
        Chain.parse(text)
    cycle = re.search(r"cycle: (.*)", str(err.value)).group(1).split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"} and len(cycle) == 4


def test_unknown_reference_names_the_line() -> None:
    chain = Chain.parse("input t = 1\nstep a: m:x\n    {t}\nstep b: m:x\n    {a} and {nowhere}")
    with pytest.raises(ChainError, match=r"^line 4: .*\{nowhere\}"):
        chain.validate(namespace={})
    with pytest.raises(ChainError, match=r"^line 4: .*\{nowhere\}"):
        chain.check_references({})
    chain.validate(namespace={"nowhere": 1})  # a notebook variable is fine
    # builtins are always known; so are names bound inside the expression
    Chain.parse("step a: m:x\n    {len('x')} {[w for w in 'ab']}").check_references({})


def test_names_bound_inside_one_expression_stay_there() -> None:
    chain = Chain.parse("step a: m:x\n    {x} {[x for x in y]} {(lambda q: q)(z)} {(w := 1)}")
    assert chain.steps[0].references() == {"x", "y", "z"}
    chain = Chain.parse("step a: m:x\n    {[x for x in y]} {x}")
    assert chain.steps[0].references() == {"x", "y"}


def test_system_line_references_count() -> None:
    chain = Chain.parse("step a: m:x\n    hi\nstep b: m:x\n    system: Use {a}\n    go")
    assert chain.dependencies()["b"] == {"a"}


def test_step_named_like_a_builtin_is_a_dependency() -> None:
    chain = Chain.parse("step list: m:x\n    hi\nstep b: m:x\n    {list} and {len(list)}")
    assert chain.dependencies()["b"] == {"list"}
    with pytest.raises(ChainError, match="cycle"):
        Chain.parse("step sum: m:x\n    {max}\nstep max: m:x\n    {sum}")


def test_module_docstring_example_parses() -> None:
    from n3_notebook.chain import parser

    doc = parser.__doc__
    body = doc[doc.index("    # a comment") : doc.index("A step's body")]
    chain = Chain.parse(textwrap.dedent(body))
    assert chain.inputs["topic"] == "solid-state batteries"
    assert chain.inputs["audience"] is REQUIRED
    assert chain.steps[0].system == "You are concise."
    assert chain.steps[2].model is None and chain.steps[2].params == {"max_tokens": 200}
    assert chain.dependencies()["answers"] == {"outline"}


def test_chain_from_step_objects() -> None:
    chain = Chain(
        [Step("a", "About {topic}", "openai:gpt-4o-mini"), Step("b", "More on {a}")],
        inputs={"topic": "x"},
        default_model="gemini:gemini-2.0-flash",
    )
    assert chain.dependencies() == {"a": set(), "b": {"a"}}
    with pytest.raises(ChainError, match="twice"):
        Chain([Step("a", "x"), Step("a", "y")])
    with pytest.raises(ChainError, match="cycle"):
        Chain([Step("a", "{b}"), Step("b", "{a}")])
    with pytest.raises(ChainError, match="no steps"):
        Chain([])


ROUND_TRIP = [
    EXAMPLE,
    "input x\ninput y = 3\nstep a:\n    {x} {y}\nstep b: temperature=0.1\n    {a}",
    "step a: openai:gpt-4o-mini, stop=['a, b', \"it's\"], note='#1 \"q\" \\\\ end'\n"
    "    system: Be {mode}.\n"
    "    line one\n\n      indented\n    # not a comment\n"
    "input mode = 'brief'\n",
    "input n = [1, 2, {'k': None}]\nstep a: emulator:demo, max_tokens=3\n    {n}",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_to_text_round_trips(text: str) -> None:
    chain = Chain.parse(text)
    again = Chain.parse(chain.to_text())
    assert _shape(again) == _shape(chain)
    assert again.to_text() == chain.to_text()


def test_to_text_of_step_objects_round_trips() -> None:
    chain = Chain(
        [
            Step("a", "first\n\n  second {x}", None, "sys {x}", {"temperature": 0.5}),
            Step("b", "{a}", "ollama:llama3", None, {"stop": ["\n"], "k": "v, w"}),
            Step("c", "System: not a system line\n{b}", "emulator:demo"),
        ],
        inputs={"x": "a 'quoted' value", "y": REQUIRED},
    )
    assert _shape(Chain.parse(chain.to_text())) == _shape(chain)
