"""%%llm --image, --schema, --tools, --run-tools and --reasoning with a session (no
kernel): what is sent, what is shown, what -o keeps."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from n3_notebook.core.images import Image
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.llm_cell import run_llm_cell
from n3_notebook.jupyter.options import parse_line
from n3_notebook.jupyter.widget import WidgetView

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class Person(BaseModel):
    name: str
    age: int


def get_weather(city: str, days: int = 1) -> str:
    """Weather forecast for a city."""
    return f"{city}: sunny for {days} days"


def test_flags_parse():
    opts = parse_line("--image a --image b.png --schema P --tools f,g --run-tools --reasoning 2048")
    assert (opts.images, opts.schema, opts.tools, opts.run_tools, opts.reasoning) == (
        ["a", "b.png"],
        "P",
        ["f", "g"],
        True,
        "2048",
    )
    with pytest.raises(CellError, match="--run-tools needs --tools"):
        parse_line("--run-tools")
    with pytest.raises(CellError, match="variable names"):
        parse_line("--tools f,no-such")


async def test_image_from_a_variable_and_a_path(session, emu, tmp_path):
    path = tmp_path / "plot.png"
    path.write_bytes(PNG)
    session.namespace["img"] = Image.from_bytes(PNG)
    await run_llm_cell(session, f"openai:gpt-4o-mini --image img --image {path} -o r", "What?")
    content = emu.records[-1].body["messages"][0]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "image_url"]
    assert session.namespace["r"].content.startswith("I see 2 images (image/png).")
    with pytest.raises(CellError, match=r"--image nothing\.png"):
        await run_llm_cell(session, "openai:gpt-4o-mini --image nothing.png", "What?")


async def test_schema_output_is_the_parsed_object(session):
    session.namespace["Person"] = Person
    await run_llm_cell(session, "openai:gpt-4o-mini --schema Person -o p", "Describe Ada Lovelace")
    person = session.namespace["p"]
    assert isinstance(person, Person) and person.name == "Ada Lovelace"
    with pytest.raises(CellError, match="no variable 'Missing'"):
        await run_llm_cell(session, "openai:gpt-4o-mini --schema Missing", "x")


async def test_tools_offered_and_run(session, capsys):
    session.namespace["get_weather"] = get_weather
    await run_llm_cell(session, "openai:gpt-4o-mini --tools get_weather -o r", "Weather in Paris?")
    r = session.namespace["r"]
    assert r.finish_reason == "tool_calls" and r.tool_calls[0].arguments["city"] == "Paris"
    assert "→ get_weather(" in capsys.readouterr().out
    await run_llm_cell(
        session, "openai:gpt-4o-mini --tools get_weather --run-tools -o r", "Weather in Paris?"
    )
    r = session.namespace["r"]
    assert r.content.startswith("The tool returned: Paris: sunny")
    assert [m.role for m in r.messages] == ["user", "assistant", "tool", "assistant"]
    out = capsys.readouterr().out
    assert "→ get_weather(" in out and "← get_weather: Paris: sunny" in out


async def test_widget_thinking_section_and_tool_lines(session, shown):
    session.widgets = True
    session.namespace["get_weather"] = get_weather
    await run_llm_cell(
        session,
        "openai:gpt-4o-mini --reasoning low --tools get_weather --run-tools -o r",
        "Weather in Paris?",
    )
    view = next(o for o in shown if hasattr(o, "view")).view
    assert isinstance(view, WidgetView)
    assert view.thinking.layout.display is None and view.thinking.get_title(0) == "Thinking"
    assert view.thinking.selected_index is None  # collapsed until opened
    assert "The question is about Paris" in view.thinking_text.value
    assert any("get_weather" in c.value for c in view.tools.children)
    assert session.namespace["r"].reasoning.startswith("The question is about Paris")
