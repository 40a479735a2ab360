"""Tool calls, structured output and thinking from the emulator, read by the official SDKs:
each SDK reassembles the streamed call exactly as the whole (non-streamed) answer has it,
and as n3_notebook's own provider does."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from n3_notebook import create_provider

from .sdk_common import KEY

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


class Person(BaseModel):
    name: str
    age: int


def get_weather(city: str, days: int = 1) -> str:
    """Weather forecast for a city."""
    return f"{city}: sunny for {days} days"


async def ours(emu, provider: str, model: str, **params):
    p = create_provider(f"{provider}:{model}", base_url=emu.base_url(provider), api_key=KEY)
    async with p:
        chunks = [c async for c in p.stream_chat(ASK, **params)]
    return chunks[-1], "".join(c.reasoning or "" for c in chunks)


async def test_openai_sdk(emu):
    openai = pytest.importorskip("openai")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}]
    async with openai.AsyncOpenAI(base_url=emu.base_url("openai"), api_key=KEY) as client:
        whole = await client.chat.completions.create(
            model="gpt-4o-mini", messages=ASK, tools=tools, reasoning_effort="low"
        )
        async with client.chat.completions.stream(
            model="gpt-4o-mini", messages=ASK, tools=tools
        ) as stream:
            final = await stream.get_final_completion()
        parsed = await client.chat.completions.parse(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Describe Ada Lovelace"}],
            response_format=Person,
        )
    want = whole.choices[0].message.tool_calls[0]
    got = final.choices[0].message.tool_calls[0]
    assert whole.choices[0].finish_reason == final.choices[0].finish_reason == "tool_calls"
    assert (got.id, got.function.name, got.function.arguments) == (
        want.id,
        "get_weather",
        want.function.arguments,
    )
    assert json.loads(got.function.arguments)["city"] == "Paris"
    assert isinstance(parsed.choices[0].message.parsed, Person)
    last, _ = await ours(emu, "openai", "gpt-4o-mini", tools=[get_weather])
    assert [(c.id, c.arguments) for c in last.tool_calls] == [
        (want.id, json.loads(want.function.arguments))
    ]


async def test_anthropic_sdk(emu):
    anthropic = pytest.importorskip("anthropic")
    tools = [{"name": "get_weather", "description": "Weather.", "input_schema": PARAMS}]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    async with anthropic.AsyncAnthropic(base_url=emu.base_url("anthropic"), api_key=KEY) as client:
        whole = await client.messages.create(
            model="claude-3-5-haiku-latest",
            messages=ASK,
            max_tokens=2048,
            tools=tools,
            thinking=thinking,
        )
        async with client.messages.stream(
            model="claude-3-5-haiku-latest",
            messages=ASK,
            max_tokens=2048,
            tools=tools,
            thinking=thinking,
        ) as stream:
            final = await stream.get_final_message()
        structured = await client.messages.create(
            model="claude-3-5-haiku-latest",
            messages=[{"role": "user", "content": "Describe Ada Lovelace"}],
            max_tokens=512,
            output_config={"format": {"type": "json_schema", "schema": Person.model_json_schema()}},
        )
    assert Person.model_validate_json(structured.content[0].text).name == "Ada Lovelace"
    assert final.stop_reason == whole.stop_reason == "tool_use"
    assert [b.type for b in final.content] == [b.type for b in whole.content]
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[0].thinking == whole.content[0].thinking
    assert final.content[0].signature == whole.content[0].signature
    use = final.content[1]
    assert (use.id, use.name, use.input) == (
        whole.content[1].id,
        "get_weather",
        whole.content[1].input,
    )
    assert use.input["city"] == "Paris"
    last, thoughts = await ours(
        emu, "anthropic", "claude-3-5-haiku-latest", tools=[get_weather], reasoning="low"
    )
    assert [(c.id, c.arguments) for c in last.tool_calls] == [(use.id, use.input)]
    assert thoughts == final.content[0].thinking
    assert last.metadata["replay"][0]["signature"] == final.content[0].signature


async def test_gemini_sdk(emu):
    genai = pytest.importorskip("google.genai")
    types = pytest.importorskip("google.genai.types")
    client = genai.Client(
        api_key=KEY, http_options=types.HttpOptions(base_url=emu.base_url("gemini"))
    )
    config = types.GenerateContentConfig(
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(name="get_weather", parameters_json_schema=PARAMS)
                ]
            )
        ],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
    )
    prompt = ASK[0]["content"]
    whole = await client.aio.models.generate_content(
        model="gemini-2.0-flash", contents=prompt, config=config
    )
    calls, thoughts = [], ""
    async for chunk in await client.aio.models.generate_content_stream(
        model="gemini-2.0-flash", contents=prompt, config=config
    ):
        calls.extend(chunk.function_calls or ())
        for part in chunk.candidates[0].content.parts or ():
            if part.thought:
                thoughts += part.text
    assert [(c.name, c.args) for c in calls] == [(c.name, c.args) for c in whole.function_calls]
    assert calls[0].args["city"] == "Paris"
    structured = await client.aio.models.generate_content(
        model="gemini-2.0-flash",
        contents="Describe Ada Lovelace",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Person
        ),
    )
    assert isinstance(structured.parsed, Person)
    last, ours_thoughts = await ours(
        emu, "gemini", "gemini-2.0-flash", tools=[get_weather], reasoning=1024
    )
    assert [(c.name, c.arguments) for c in last.tool_calls] == [(calls[0].name, calls[0].args)]
    assert last.finish_reason == "tool_calls" and ours_thoughts == thoughts != ""


async def test_cohere_sdk(emu):
    cohere = pytest.importorskip("cohere")
    client = cohere.AsyncClientV2(api_key=KEY, base_url=emu.base_url("cohere"))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": PARAMS}}]
    whole = await client.chat(model="command-r-plus", messages=ASK, tools=tools)
    calls: dict[int, dict] = {}
    plan, finish = "", None
    async for event in client.chat_stream(model="command-r-plus", messages=ASK, tools=tools):
        if event.type == "tool-plan-delta":
            plan += event.delta.message.tool_plan
        elif event.type == "tool-call-start":
            call = event.delta.message.tool_calls
            calls[event.index] = {"id": call.id, "name": call.function.name, "args": ""}
        elif event.type == "tool-call-delta":
            calls[event.index]["args"] += event.delta.message.tool_calls.function.arguments
        elif event.type == "message-end":
            finish = event.delta.finish_reason
    want = whole.message.tool_calls[0]
    assert finish == whole.finish_reason == "TOOL_CALL"
    assert plan == whole.message.tool_plan
    assert calls[0] == {"id": want.id, "name": "get_weather", "args": want.function.arguments}
    structured = await client.chat(
        model="command-r-plus",
        messages=[{"role": "user", "content": "Describe Ada Lovelace"}],
        response_format={"type": "json_object", "json_schema": Person.model_json_schema()},
    )
    Person.model_validate_json(structured.message.content[0].text)
    last, _ = await ours(emu, "cohere", "command-r-plus", tools=[get_weather])
    assert [(c.id, c.arguments) for c in last.tool_calls] == [
        (want.id, json.loads(want.function.arguments))
    ]
    assert last.metadata["tool_plan"] == plan


async def test_ollama_sdk(emu):
    ollama = pytest.importorskip("ollama")
    client = ollama.AsyncClient(host=emu.base_url("ollama"))
    whole = await client.chat(model="llama3", messages=ASK, tools=[get_weather], think=True)
    calls, thinking = [], ""
    async for part in await client.chat(
        model="llama3", messages=ASK, tools=[get_weather], stream=True, think=True
    ):
        calls.extend(part.message.tool_calls or ())
        thinking += part.message.thinking or ""
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        (c.function.name, dict(c.function.arguments)) for c in whole.message.tool_calls
    ]
    assert thinking == whole.message.thinking != ""
    structured = await client.chat(
        model="llama3",
        messages=[{"role": "user", "content": "Describe Ada"}],
        format=Person.model_json_schema(),
    )
    Person.model_validate_json(structured.message.content)
    last, ours_thoughts = await ours(emu, "ollama", "llama3", tools=[get_weather], reasoning=True)
    assert [(c.name, c.arguments) for c in last.tool_calls] == [
        (calls[0].function.name, dict(calls[0].function.arguments))
    ]
    assert ours_thoughts == thinking
