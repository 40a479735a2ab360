"""The emulator's tools, structured output, images and thinking, in every format: the raw
wire shape (arguments over several deltas, thinking first) and the library end to end."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import BaseModel

from n3_notebook import Image, Message, create_provider

KEY = "sk-emulator-test-0123456789"
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
    "cohere": "command-r-plus",
    "ollama": "llama3",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


def get_weather(city: str, days: int = 1) -> str:
    """Weather forecast for a city."""
    return f"{city}: sunny for {days} days"


async def explode(city: str) -> str:
    """Always fails."""
    raise RuntimeError("the weather service is down")


def provider(emu, name: str):
    return create_provider(f"{name}:{MODELS[name]}", base_url=emu.base_url(name), api_key=KEY)


@pytest.fixture(params=sorted(MODELS))
def name(request):
    return request.param


async def test_tool_call_then_final_text(emu, name):
    async with provider(emu, name) as p:
        chunks = [c async for c in p.stream_generate("weather in Paris?", tools=[get_weather])]
        final = chunks[-1]
        assert final.finish_reason == "tool_calls"
        [call] = final.tool_calls
        assert call.name == "get_weather" and call.arguments["city"] == "Paris"
        assert not any(c.content for c in chunks)
        whole = await p.agenerate("weather in Paris?", tools=[get_weather])
        assert [(c.name, c.arguments) for c in whole.tool_calls] == [(call.name, call.arguments)]
        r = await p.agenerate("weather in Paris?", tools=[get_weather], run_tools=True)
    assert r.finish_reason == "stop"
    days = call.arguments.get("days", 1)
    assert r.content.startswith(f"The tool returned: Paris: sunny for {days} days")
    assert [m.role for m in r.messages] == ["user", "assistant", "tool", "assistant"]
    assert r.messages[1].tool_calls[0].arguments == call.arguments


async def test_tool_error_reaches_the_model(emu, name):
    async with provider(emu, name) as p:
        r = await p.agenerate("weather in Paris?", tools=[explode], run_tools=True)
    tool_turn = r.messages[2]
    assert tool_turn.is_error and "weather service is down" in tool_turn.text
    assert "weather service is down" in r.content


async def test_stream_run_tools_streams_every_round(emu, name):
    async with provider(emu, name) as p:
        chunks = [
            c
            async for c in p.stream_generate(
                "weather in Paris?", tools=[get_weather], run_tools=True, reasoning="low"
            )
        ]
    finals = [c for c in chunks if c.finish_reason]
    assert [c.finish_reason for c in finals] == ["tool_calls", "stop"]
    results = [c.metadata["tool_results"] for c in chunks if "tool_results" in (c.metadata or {})]
    assert results[0][0]["content"].startswith("Paris: sunny")
    assert "".join(c.content for c in chunks).startswith("The tool returned: Paris")
    assert [m.role for m in chunks[-1].metadata["messages"]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


async def test_schema_answers_are_valid(emu, name):
    async with provider(emu, name) as p:
        r = await p.agenerate("Describe Ada Lovelace", schema=Person)
        assert isinstance(r.parsed, Person) and r.parsed.name == "Ada Lovelace"
        text = "".join(
            [c.content async for c in p.stream_generate("Describe Ada Lovelace", schema=Person)]
        )
    assert Person.model_validate_json(text) == r.parsed


async def test_images_acknowledged(emu, name):
    async with provider(emu, name) as p:
        r = await p.achat([Message("user", ["What is this?", Image.from_bytes(PNG)])])
    assert r.content.startswith("I see 1 image (image/png).")
    recorded = json.dumps(emu.records[-1].body)
    assert Image.from_bytes(PNG).base64 in recorded


async def test_thinking_streams_first(emu, name):
    async with provider(emu, name) as p:
        chunks = [c async for c in p.stream_generate("Explain tides", reasoning="high")]
        whole = await p.agenerate("Explain tides", reasoning="high")
    first_text = next(i for i, c in enumerate(chunks) if c.content)
    thinking = "".join(c.reasoning or "" for c in chunks)
    assert thinking.startswith("The question is about") and first_text > 0
    assert all(c.reasoning for c in chunks[:first_text])
    assert whole.reasoning == thinking
    assert whole.content == "".join(c.content for c in chunks)


async def test_openai_wire_arguments_over_several_deltas(emu, client: httpx.AsyncClient):
    body = {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": "weather in Paris?"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    },
                },
            }
        ],
    }
    r = await client.post(
        "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
    )
    deltas = [
        json.loads(line[6:])["choices"][0]["delta"]
        for line in r.text.splitlines()
        if line.startswith("data: {") and '"choices":[{' in line
    ]
    pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas if d.get("tool_calls")]
    assert len([p for p in pieces if p]) >= 2
    assert json.loads("".join(pieces)) == {
        "city": "Paris",
        "days": json.loads("".join(pieces))["days"],
    }
    first = next(d for d in deltas if d.get("tool_calls"))["tool_calls"][0]
    assert first["id"].startswith("call_") and first["function"]["name"] == "get_weather"
