"""Hand-written wire bytes (from each provider's docs and real recordings) of streamed tool
calls and thinking, with the quirks issue #16 lists."""

from __future__ import annotations

import json
from typing import Any

from .wire_samples import ndjson, sse

#: What every tool-call sample below must reassemble to, in order.
CALLS = [
    ("get_weather", {"city": "Paris", "days": 3}),
    ("get_time", {}),
]


def oa_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def openai_tool_stream() -> list[bytes]:
    """Parallel calls interleaved by index; the first delta lacks arguments, a later one
    lacks the id, a server repeats the name and sends the id "0"; arguments "" then "{}"."""

    def tc(index: int, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index}
        function = {k: v for k, v in fields.items() if k in ("name", "arguments")}
        if "id" in fields:
            out["id"] = fields["id"]
        if function:
            out["function"] = function
        return out

    return [
        oa_chunk({"role": "assistant", "content": None}),
        oa_chunk({"tool_calls": [tc(0, id="call_a", name="get_weather")]}),
        oa_chunk({"tool_calls": [tc(0, arguments='{"ci')]}),
        oa_chunk({"tool_calls": [tc(1, id="0", name="get_time", arguments="")]}),
        oa_chunk({"tool_calls": [tc(0, name="get_weather", arguments='ty": "Par')]}),
        oa_chunk({"tool_calls": [tc(1, id="0", arguments="{}")]}),
        oa_chunk({"tool_calls": [tc(0, arguments='is", "days": 3}')]}),
        oa_chunk({}, "tool_calls"),
        sse("[DONE]"),
    ]


def openai_reasoning_stream() -> list[bytes]:
    """OpenRouter: reasoning and reasoning_details carry the same text (count it once)."""
    return [
        oa_chunk(
            {
                "role": "assistant",
                "reasoning": "Think",
                "reasoning_details": [{"type": "reasoning.text", "text": "Think"}],
            }
        ),
        oa_chunk(
            {"reasoning": "ing…", "reasoning_details": [{"type": "reasoning.text", "text": "ing…"}]}
        ),
        oa_chunk({"reasoning_details": [{"type": "reasoning.encrypted", "data": "opaque=="}]}),
        oa_chunk({"content": "Answer"}),
        oa_chunk({}, "stop"),
        sse("[DONE]"),
    ]


def an_event(obj: dict[str, Any]) -> bytes:
    return sse(obj, obj["type"])


def anthropic_tool_stream() -> list[bytes]:
    """Thinking first (signature_delta is not text), a server_tool_use block whose input
    streams but is not a client call, a tool_use routed by index, and one whose only
    piece is "" (its input comes from content_block_start)."""
    msg = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    return [
        an_event({"type": "message_start", "message": msg}),
        an_event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Need the "},
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "weather."},
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "SIG=="},
            }
        ),
        an_event({"type": "content_block_stop", "index": 0}),
        an_event(
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "server_tool_use",
                    "id": "srv_1",
                    "name": "web_search",
                    "input": {},
                },
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
            }
        ),
        an_event({"type": "content_block_stop", "index": 1}),
        an_event(
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {},
                },
            }
        ),
        sse({"type": "ping"}, "ping"),
        an_event(
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'},
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": 'ris", "days": 3}'},
            }
        ),
        an_event({"type": "content_block_stop", "index": 2}),
        an_event(
            {
                "type": "content_block_start",
                "index": 3,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_time",
                    "input": {},
                },
            }
        ),
        an_event(
            {
                "type": "content_block_delta",
                "index": 3,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            }
        ),
        an_event({"type": "content_block_stop", "index": 3}),
        an_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 40},
            }
        ),
        an_event({"type": "message_stop"}),
    ]


def _gm(parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    obj = {
        "candidates": [cand],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 9},
    }
    return sse(obj, eol="\r\n")


def gemini_tool_stream() -> list[bytes]:
    """A thought part, then each functionCall whole (no id), an empty text part after the
    call, and finishReason STOP."""
    return [
        _gm([{"text": "Let me check.", "thought": True}]),
        _gm(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": 3}},
                    "thoughtSignature": "c2ln",
                }
            ]
        ),
        _gm([{"functionCall": {"name": "get_time", "args": {}}}, {"text": ""}], "STOP"),
    ]


def _co(obj: dict[str, Any]) -> bytes:
    return sse(obj, obj["type"])


def cohere_tool_stream() -> list[bytes]:
    """tool-plan-delta (neither answer nor thinking), tool-call-start/-delta/-end, a call
    with empty arguments and no delta at all, finish TOOL_CALL."""

    def call_start(index: int, id: str, name: str, args: str) -> bytes:
        return _co(
            {
                "type": "tool-call-start",
                "index": index,
                "delta": {
                    "message": {
                        "tool_calls": {
                            "id": id,
                            "type": "function",
                            "function": {"name": name, "arguments": args},
                        }
                    }
                },
            }
        )

    return [
        _co({"type": "message-start", "id": "x", "delta": {"message": {"role": "assistant"}}}),
        _co(
            {
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}},
            }
        ),
        _co(
            {
                "type": "content-delta",
                "index": 0,
                "delta": {"message": {"content": {"thinking": "Call the "}}},
            }
        ),
        _co(
            {
                "type": "content-delta",
                "index": 0,
                "delta": {"message": {"content": {"thinking": "weather tool."}}},
            }
        ),
        _co({"type": "content-end", "index": 0}),
        _co({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will "}}}),
        _co({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "look it up."}}}),
        call_start(0, "get_weather_1", "get_weather", ""),
        _co(
            {
                "type": "tool-call-delta",
                "index": 0,
                "delta": {
                    "message": {"tool_calls": {"function": {"arguments": '{"city": "Paris", '}}}
                },
            }
        ),
        _co(
            {
                "type": "tool-call-delta",
                "index": 0,
                "delta": {"message": {"tool_calls": {"function": {"arguments": '"days": 3}'}}}},
            }
        ),
        _co({"type": "tool-call-end", "index": 0}),
        call_start(1, "get_time_2", "get_time", ""),
        _co({"type": "tool-call-end", "index": 1}),
        _co(
            {
                "type": "message-end",
                "delta": {
                    "finish_reason": "TOOL_CALL",
                    "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 9}},
                },
            }
        ),
        sse("[DONE]"),
    ]


def ollama_tool_stream() -> list[bytes]:
    """message.thinking first, then message.tool_calls complete with object arguments."""

    def line(message: dict[str, Any], done: bool = False, **extra: Any) -> bytes:
        return ndjson(
            {
                "model": "qwen3",
                "created_at": "t",
                "message": {"role": "assistant", "content": "", **message},
                "done": done,
                **extra,
            }
        )

    return [
        line({"thinking": "Weather "}),
        line({"thinking": "needed."}),
        line(
            {
                "tool_calls": [
                    {
                        "function": {
                            "name": "get_weather",
                            "arguments": {"city": "Paris", "days": 3},
                        }
                    },
                    {"function": {"name": "get_time", "arguments": {}}},
                ]
            }
        ),
        line({}, True, done_reason="stop", prompt_eval_count=5, eval_count=9),
    ]


TOOL_STREAMS = {
    "openai": (openai_tool_stream, "gpt-4o-mini", "tool_calls"),
    "anthropic": (anthropic_tool_stream, "claude-3-5-haiku-latest", "tool_use"),
    "gemini": (gemini_tool_stream, "gemini-2.0-flash", "STOP"),
    "cohere": (cohere_tool_stream, "command-r-plus", "TOOL_CALL"),
    "ollama": (ollama_tool_stream, "qwen3", "stop"),
}

#: The thinking each TOOL_STREAMS sample (or openai_reasoning_stream) carries.
THINKING = {
    "openai": "Thinking…",
    "anthropic": "Need the weather.",
    "gemini": "Let me check.",
    "ollama": "Weather needed.",
    "cohere": "Call the weather tool.",
}


def dumps(obj: Any) -> str:
    return json.dumps(obj)
