"""Tool calls, thinking, structured output and images at the wire level, per provider:
request shapes from the docs, streamed calls with their quirks, hostile byte splits."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from n3_notebook import (
    Image,
    ImageError,
    Message,
    StreamChunk,
    StreamProtocolError,
    StructuredOutputError,
    Tool,
    ToolCall,
)
from n3_notebook.core.collect import ResponseBuilder
from n3_notebook.core.schema import as_output_schema

from .conftest import Recorder, json_response, make_provider, streaming
from .feature_samples import (
    CALLS,
    THINKING,
    TOOL_STREAMS,
    an_event,
    oa_chunk,
    ollama_tool_stream,
    openai_reasoning_stream,
)
from .wire_samples import sse

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PROVIDERS = sorted(TOOL_STREAMS)


def get_weather(city: str, days: Annotated[int, Field(ge=1)] = 1) -> str:
    """Weather forecast for a city.

    Args:
        city: The city's name.
        days: How many days ahead.
    """
    return f"{city}: sunny for {days} days"


async def get_time() -> str:
    """The current time."""
    return "12:00"


class Person(BaseModel):
    name: str
    age: int


async def collect(stream) -> list[StreamChunk]:
    return [c async for c in stream]


def split_every(parts: list[bytes], size: int) -> list[bytes]:
    data = b"".join(parts)
    return [data[i : i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------------- the Tool type
def test_tool_from_function_schema_and_docstring():
    tool = Tool.from_function(get_weather)
    assert tool.name == "get_weather"
    assert tool.description.startswith("Weather forecast for a city.")
    props = tool.parameters["properties"]
    assert props["city"] == {"type": "string", "description": "The city's name."}
    assert props["days"]["type"] == "integer" and props["days"]["minimum"] == 1
    assert props["days"]["description"] == "How many days ahead."
    assert tool.parameters["required"] == ["city"]


def test_tool_errors_are_clear():
    with pytest.raises(ValueError, match="lambda has no name"):
        Tool.from_function(lambda x: x)
    with pytest.raises(ValueError, match="type 'object'"):
        Tool("t", parameters={"type": "string"})


# ------------------------------------------------------------------ streamed tool calls
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("split", [None, 1, 7])
async def test_stream_tool_calls_reassembled(provider, split):
    make, model, raw = TOOL_STREAMS[provider]
    parts = make() if split is None else split_every(make(), split)
    rec = Recorder([streaming(parts, "text/event-stream")])
    p = make_provider(provider, model, rec)
    chunks = await collect(p.stream_generate("weather?", tools=[get_weather, get_time]))
    final = chunks[-1]
    assert final.finish_reason == "tool_calls"
    assert final.metadata["raw_finish_reason"] == raw
    assert [(c.name, c.arguments) for c in final.tool_calls] == CALLS
    ids = [c.id for c in final.tool_calls]
    assert len(set(ids)) == 2 and all(ids)
    assert all(c.content == "" for c in chunks)  # no call ever leaks into the text
    thinking = "" if provider == "openai" else THINKING[provider]
    assert "".join(c.reasoning or "" for c in chunks) == thinking
    builder = ResponseBuilder(provider, model)
    for c in chunks:
        builder.add(c)
    response = builder.build()
    assert response.tool_calls == final.tool_calls
    assert response.reasoning == (thinking or None)


async def test_anthropic_thinking_signature_kept_for_replay_not_text():
    make, model, _ = TOOL_STREAMS["anthropic"]
    p = make_provider("anthropic", model, Recorder([streaming(make(), "text/event-stream")]))
    chunks = await collect(p.stream_generate("x", tools=[get_weather]))
    replay = chunks[-1].metadata["replay"]
    assert replay == [{"type": "thinking", "thinking": "Need the weather.", "signature": "SIG=="}]
    assert all("SIG" not in (c.content + (c.reasoning or "")) for c in chunks)
    assert [c.id for c in chunks[-1].tool_calls] == ["toolu_1", "toolu_2"]  # not srv_1


async def test_gemini_thought_signature_goes_back_with_the_call():
    make, model, _ = TOOL_STREAMS["gemini"]
    rec = Recorder([streaming(make(), "text/event-stream")])
    p = make_provider("gemini", model, rec)
    chunks = await collect(p.stream_generate("x", tools=[get_weather]))
    call = chunks[-1].tool_calls[0]
    assert call.metadata == {"thoughtSignature": "c2ln"}
    history = [
        Message("user", "x"),
        Message("assistant", "", (call,)),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},  # name found by id
    ]
    await collect(p.stream_chat(history))
    contents = rec.bodies[-1]["contents"]
    assert contents[1]["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": 3}},
        "thoughtSignature": "c2ln",
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}],
    }


async def test_cohere_tool_plan_is_metadata_not_text():
    make, model, _ = TOOL_STREAMS["cohere"]
    p = make_provider("cohere", model, Recorder([streaming(make(), "text/event-stream")]))
    chunks = await collect(p.stream_generate("x", tools=[get_weather]))
    assert chunks[-1].metadata["tool_plan"] == "I will look it up."
    assert not any(c.content for c in chunks)
    assert "look it up" not in "".join(c.reasoning or "" for c in chunks)


@pytest.mark.parametrize("split", [None, 1, 3])
async def test_openrouter_reasoning_counted_once_encrypted_in_metadata(split):
    parts = openai_reasoning_stream()
    parts = parts if split is None else split_every(parts, split)
    p = make_provider("openai", "x", Recorder([streaming(parts, "text/event-stream")]))
    chunks = await collect(p.stream_generate("x", reasoning="low"))
    assert "".join(c.reasoning or "" for c in chunks) == "Thinking…"
    assert "".join(c.content for c in chunks) == "Answer"
    assert chunks[-1].metadata["reasoning_details"] == [
        {"type": "reasoning.encrypted", "data": "opaque=="}
    ]
    first_answer = next(i for i, c in enumerate(chunks) if c.content)
    assert all(c.reasoning for c in chunks[:first_answer])  # thinking streams first


async def test_bad_tool_arguments_are_a_protocol_error():
    parts = [
        oa_chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}
        ),
        oa_chunk({}, "tool_calls"),
        sse("[DONE]"),
    ]
    p = make_provider("openai", "x", Recorder([streaming(parts, "text/event-stream")]))
    with pytest.raises(StreamProtocolError, match="not valid JSON"):
        await collect(p.stream_generate("x"))


# ------------------------------------------------------------------ request shapes
def _stream_ok(provider: str):
    make, _, _ = TOOL_STREAMS[provider]
    return streaming(make(), "text/event-stream")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_request_shapes(provider):
    rec = Recorder([_stream_ok(provider)])
    model = TOOL_STREAMS[provider][1]
    p = make_provider(provider, model, rec)
    call = ToolCall("call_x1", "get_weather", {"city": "Paris"})
    history = [
        Message("user", ["What is in", Image.from_bytes(PNG)]),
        Message("assistant", "", (call,)),
        Message("tool", "sunny", tool_call_id="call_x1", name="get_weather"),
    ]
    await collect(p.stream_chat(history, tools=[get_weather], schema=Person, reasoning="high"))
    body = rec.bodies[0]
    b64 = Image.from_bytes(PNG).base64
    schema = Person.model_json_schema()
    spec = Tool.from_function(get_weather).parameters
    if provider == "openai":
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "What is in"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64}"}},
        ]
        assert body["messages"][1]["tool_calls"][0] == {
            "id": "call_x1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
        assert body["messages"][2] == {
            "role": "tool",
            "tool_call_id": "call_x1",
            "content": "sunny",
        }
        assert body["tools"][0]["function"]["parameters"] == spec
        strict = body["response_format"]["json_schema"]
        assert strict["strict"] is True and strict["schema"]["additionalProperties"] is False
        assert strict["schema"]["properties"] == schema["properties"]
        assert body["reasoning_effort"] == "high"
    elif provider == "anthropic":
        assert body["messages"][0]["content"][1] == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": b64},
        }
        assert body["messages"][1]["content"] == [
            {"type": "tool_use", "id": "call_x1", "name": "get_weather", "input": {"city": "Paris"}}
        ]
        assert body["messages"][2] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_x1", "content": "sunny"}],
        }
        assert body["tools"][0]["input_schema"] == spec
        fmt = body["output_config"]["format"]
        assert fmt["type"] == "json_schema" and fmt["schema"]["additionalProperties"] is False
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
        assert body["max_tokens"] > 16384
    elif provider == "gemini":
        assert body["contents"][0]["parts"][1] == {
            "inlineData": {"mimeType": "image/png", "data": b64}
        }
        assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == spec
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert config["responseJsonSchema"] == schema
        assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 16384}
    elif provider == "cohere":
        assert body["messages"][0]["content"][1]["type"] == "image_url"
        assert "content" not in body["messages"][1]
        assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert body["messages"][2]["role"] == "tool"
        assert body["response_format"] == {"type": "json_object", "json_schema": schema}
        assert body["thinking"] == {"type": "enabled", "token_budget": 16384}
    else:
        assert body["messages"][0] == {"role": "user", "content": "What is in", "images": [b64]}
        assert body["messages"][1]["tool_calls"] == [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
        ]
        assert body["messages"][2] == {
            "role": "tool",
            "content": "sunny",
            "tool_name": "get_weather",
        }
        assert body["format"] == schema
        assert body["think"] is True
    json.dumps(body)  # everything sent is JSON (no functions, no models)


async def test_cohere_v1_refuses_features_clearly():
    p = make_provider("cohere", "command-r", Recorder([_stream_ok("cohere")]), api_version="v1")
    with pytest.raises(ValueError, match='api_version="v2"'):
        await collect(p.stream_generate("x", tools=[get_weather]))


# ------------------------------------------------------------------ whole answers
async def test_agenerate_tool_calls_and_schema():
    whole = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    p = make_provider("openai", "gpt-4o-mini", Recorder([json_response(200, whole)]))
    r = await p.agenerate("x", tools=[get_weather])
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls == [ToolCall("call_1", "get_weather", {"city": "Oslo"})]

    def answer(text: str) -> dict:
        return {
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }

    good = json_response(200, answer('{"name": "Ada", "age": 36}'))
    p = make_provider("anthropic", "claude", Recorder([good]))
    r = await p.agenerate("x", schema=Person)
    assert r.parsed == Person(name="Ada", age=36)
    bad = json_response(200, answer('{"name": "Ada"}'))
    p = make_provider("anthropic", "claude", Recorder([bad]))
    with pytest.raises(StructuredOutputError) as info:
        await p.agenerate("x", schema=Person)
    assert info.value.raw_text == '{"name": "Ada"}'
    assert "age" in str(info.value)
    dict_schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    p = make_provider("anthropic", "claude", Recorder([json_response(200, answer('{"n": 2}'))]))
    assert (await p.agenerate("x", schema=dict_schema)).parsed == {"n": 2}


# ------------------------------------------------------------------ run_tools
async def test_run_tools_loop_openai():
    def call_answer(calls):
        return {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "tool_calls": calls},
                    "finish_reason": "tool_calls",
                }
            ]
        }

    def fn(id, name, args):
        return {"id": id, "type": "function", "function": {"name": name, "arguments": args}}

    def boom() -> str:
        """Always fails."""
        raise RuntimeError("no luck")

    first = call_answer(
        [
            fn("c1", "get_weather", '{"city": "Oslo", "days": 2}'),
            fn("c2", "get_time", "{}"),
            fn("c3", "boom", "{}"),
            fn("c4", "get_weather", '{"days": 0}'),
            fn("c5", "rm_rf", "{}"),
        ]
    )
    final = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Done."},
                "finish_reason": "stop",
            }
        ]
    }
    rec = Recorder([json_response(200, first), json_response(200, final)])
    p = make_provider("openai", "gpt-4o-mini", rec)
    r = await p.agenerate("plan", tools=[get_weather, get_time, boom], run_tools=True)
    assert r.content == "Done." and r.finish_reason == "stop"
    results = {m.tool_call_id: m for m in r.messages if m.role == "tool"}
    assert results["c1"].content == "Oslo: sunny for 2 days" and not results["c1"].is_error
    assert results["c2"].content == "12:00"
    assert results["c3"].is_error and "no luck" in results["c3"].content
    assert results["c4"].is_error and "city" in results["c4"].content  # schema-checked first
    assert results["c5"].is_error and "no tool named 'rm_rf'" in results["c5"].content
    assert [m.role for m in r.messages] == ["user", "assistant"] + ["tool"] * 5 + ["assistant"]
    sent = rec.bodies[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] + ["tool"] * 5
    assert sent[2] == {"role": "tool", "tool_call_id": "c1", "content": "Oslo: sunny for 2 days"}


async def test_run_tools_needs_functions_and_stops_after_max_steps():
    p = make_provider("openai", "x", Recorder([json_response(200, {})]))
    with pytest.raises(ValueError, match="needs tools="):
        await p.agenerate("x", run_tools=True)
    looping = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    rec = Recorder([json_response(200, looping)])
    p = make_provider("openai", "x", rec)
    r = await p.agenerate("x", tools=[get_time], run_tools=True, max_tool_steps=2)
    assert len(rec.requests) == 3 and r.finish_reason == "tool_calls"


async def test_stream_run_tools_anthropic():
    make, model, _ = TOOL_STREAMS["anthropic"]
    msg = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    answer = [
        an_event({"type": "message_start", "message": msg}),
        an_event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Sunny."},
            }
        ),
        an_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            }
        ),
        an_event({"type": "message_stop"}),
    ]
    rec = Recorder([streaming(make(), "text/event-stream"), streaming(answer, "text/event-stream")])
    p = make_provider("anthropic", model, rec)
    chunks = await collect(
        p.stream_generate("x", tools=[get_weather, get_time], run_tools=True, reasoning="low")
    )
    results = [
        c.metadata["tool_results"] for c in chunks if c.metadata and "tool_results" in c.metadata
    ]
    assert [r["content"] for r in results[0]] == ["Paris: sunny for 3 days", "12:00"]
    assert chunks[-1].finish_reason == "stop" and "".join(c.content for c in chunks) == "Sunny."
    builder = ResponseBuilder("anthropic", model)
    for c in chunks:
        builder.add(c)
    r = builder.build()
    assert [m.role for m in r.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    second = rec.bodies[1]["messages"]
    # the signed thinking block goes back first in the assistant turn, then the calls
    assert second[1]["content"][0] == {
        "type": "thinking",
        "thinking": "Need the weather.",
        "signature": "SIG==",
    }
    assert [b["type"] for b in second[1]["content"][1:]] == ["tool_use", "tool_use"]
    assert [b["tool_use_id"] for b in second[2]["content"]] == ["toolu_1", "toolu_2"]


# ------------------------------------------------------------------ images
def test_image_constructors_and_limits(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(PNG)
    assert Image.from_path(path).media_type == "image/png"
    assert Image.from_url("https://e.x/cat.webp").media_type == "image/webp"
    data_url = Image.from_bytes(PNG).data_url
    assert Image.from_url(data_url).data == PNG
    with pytest.raises(ImageError, match="not a PNG, JPEG"):
        Image.from_bytes(b"hello")
    with pytest.raises(ImageError, match="image/bmp"):
        Image.from_bytes(b"BM" + b"\0" * 10, "image/bmp")
    with pytest.raises(ImageError, match="MB"):
        Image.from_bytes(PNG + b"\0" * (6 * 1024 * 1024))
    with pytest.raises(ImageError, match="declared 'image/jpeg'"):
        Image.from_bytes(PNG, "image/jpeg")
    with pytest.raises(ImageError, match="cannot read"):
        Image.from_path(tmp_path / "missing.png")

    class Fig:
        def savefig(self, buf, **kw):
            assert kw["format"] == "png"
            buf.write(PNG)

    class Pil:
        def save(self, buf, format):
            buf.write(PNG)

    assert Image.from_figure(Fig()).data == PNG
    assert Image.from_pil(Pil()).data == PNG
    for value in (Fig(), Pil(), PNG, str(path), path, data_url, Image.from_bytes(PNG)):
        assert Image.of(value).data == PNG
    with pytest.raises(ImageError, match="cannot make an image of a int"):
        Image.of(5)
    assert "bytes" in repr(Image.from_bytes(PNG)) and "\\x" not in repr(Image.from_bytes(PNG))


async def test_ollama_needs_image_bytes_error_before_sending():
    rec = Recorder([_stream_ok("ollama")])
    p = make_provider("ollama", "llava", rec)
    with pytest.raises(ValueError, match="needs the image's bytes"):
        await collect(p.stream_chat([Message("user", ["x", Image.from_url("https://e.x/a.png")])]))
    assert rec.requests == []


def test_message_validation():
    with pytest.raises(ValueError, match="list of parts"):
        Message.coerce({"role": "user", "content": [1]})
    with pytest.raises(ValueError, match="tool_call_id"):
        Message.coerce({"role": "tool", "content": "x"})
    m = Message.coerce({"role": "user", "content": ["a", Image.from_bytes(PNG), "b"]})
    assert m.text == "a\nb" and len(m.images) == 1


async def test_ollama_generate_api_features():
    rec = Recorder([streaming(ollama_tool_stream(), "application/x-ndjson")])
    p = make_provider("ollama", "gpt-oss", rec, api="generate")
    await collect(
        p.stream_chat(
            [Message("user", ["Describe", Image.from_bytes(PNG)])], schema=Person, reasoning="low"
        )
    )
    body = rec.bodies[0]
    assert body["prompt"] == "Describe" and body["images"] == [Image.from_bytes(PNG).base64]
    assert body["format"] == Person.model_json_schema()
    assert body["think"] == "low"  # gpt-oss takes effort levels
    with pytest.raises(ValueError, match='api="chat"'):
        await collect(p.stream_generate("x", tools=[get_weather]))


def test_openai_strict_only_when_every_field_is_required():
    class Loose(BaseModel):
        name: str
        age: int = 0

    p = make_provider("openai", "gpt-4o-mini", Recorder([_stream_ok("openai")]))
    body = p.build_request([Message("user", "x")], None, False, {"schema": Loose}).json
    assert "strict" not in body["response_format"]["json_schema"]


def test_schema_parse_variants():
    people = as_output_schema(list[Person])
    assert people.parse('```json\n[{"name": "A", "age": 1}]\n```') == [Person(name="A", age=1)]
    with pytest.raises(StructuredOutputError, match="not valid JSON") as info:
        people.parse("Sure! Here it is")
    assert info.value.raw_text == "Sure! Here it is"
    with pytest.raises(ValueError, match="not a valid JSON schema"):
        as_output_schema({"type": 5})
    with pytest.raises(ValueError, match="pydantic model"):
        as_output_schema(object())


def test_reasoning_values_checked():
    p = make_provider("openai", "o4-mini", Recorder([_stream_ok("openai")]))
    with pytest.raises(ValueError, match="reasoning= takes an effort"):
        p.stream_generate("x", reasoning="extreme")
    assert (
        p.build_request([Message("user", "x")], None, True, {"reasoning": 20000}).json[
            "reasoning_effort"
        ]
        == "high"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_byte_split_gives_the_same_calls_and_thinking(provider, data):
    make, model, _ = TOOL_STREAMS[provider]
    body = b"".join(make())
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=40)))
    parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]

    async def run() -> list[StreamChunk]:
        rec = Recorder([streaming([p for p in parts if p], "text/event-stream")])
        p = make_provider(provider, model, rec)
        return await collect(p.stream_generate("x", tools=[get_weather, get_time]))

    chunks = asyncio.run(run())
    assert [(c.name, c.arguments) for c in chunks[-1].tool_calls] == CALLS
    thinking = "" if provider == "openai" else THINKING[provider]
    assert "".join(c.reasoning or "" for c in chunks) == thinking
