"""Recorded-style wire bytes per provider, written by hand from each provider's docs.

Each sample streams the text "Hello, world — ünïcode\u2028ok" in several chunks, ends with the
provider's own finish reason, and reports 12 input / 7 output tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PIECES = ["Hello", ",", " world", " — ünïcode", "\u2028ok"]
TEXT = "".join(PIECES)
IN_TOKENS, OUT_TOKENS = 12, 7


def sse(data: Any, event: str | None = None, eol: str = "\n") -> bytes:
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {body}{eol}{eol}".encode()


def ndjson(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


@dataclass
class Sample:
    provider: str
    model: str
    stream_parts: list[bytes]
    whole: dict[str, Any]
    raw_finish: str
    content_type: str
    in_band_error: bytes
    error_body: dict[str, Any]
    malformed: bytes
    extra: dict[str, Any] = field(default_factory=dict)


def openai_sample() -> Sample:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    parts = [sse(chunk({"role": "assistant", "content": ""}))]
    parts += [sse(chunk({"content": p})) for p in PIECES]
    parts.append(sse(chunk({}, "stop")))
    usage = {"prompt_tokens": IN_TOKENS, "completion_tokens": OUT_TOKENS, "total_tokens": 19}
    parts.append(
        sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage})
    )
    parts.append(sse("[DONE]"))
    whole = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }
    return Sample(
        "openai",
        "gpt-4o-mini",
        parts,
        whole,
        "stop",
        "text/event-stream",
        sse({"error": {"message": "The server had an error", "type": "server_error"}}),
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        b'data: {"choices": [tr\n\n',
    )


def anthropic_sample() -> Sample:
    parts = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-3-5-haiku-20241022",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": IN_TOKENS, "output_tokens": 1},
                },
            },
            "message_start",
        ),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    for p in PIECES:
        parts.append(
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": p},
                },
                "content_block_delta",
            )
        )
    parts += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUT_TOKENS},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    whole = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": IN_TOKENS, "output_tokens": OUT_TOKENS},
    }
    return Sample(
        "anthropic",
        "claude-3-5-haiku-latest",
        parts,
        whole,
        "end_turn",
        "text/event-stream",
        sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        ),
        {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        },
        b"event: content_block_delta\ndata: {not json\n\n",
    )


def gemini_sample() -> Sample:
    def chunk(text: str, finish: str | None = None, usage: bool = False) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        out: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.0-flash"}
        if usage:
            out["usageMetadata"] = {
                "promptTokenCount": IN_TOKENS,
                "candidatesTokenCount": OUT_TOKENS,
                "totalTokenCount": 19,
            }
        return out

    parts = [sse(chunk(p), eol="\r\n") for p in PIECES[:-1]]
    parts.append(sse(chunk(PIECES[-1], "STOP", usage=True), eol="\r\n"))
    whole = chunk(TEXT, "STOP", usage=True)
    return Sample(
        "gemini",
        "gemini-2.0-flash",
        parts,
        whole,
        "STOP",
        "text/event-stream",
        sse(
            {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}, eol="\r\n"
        ),
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
            }
        },
        b'data: {"candidates": [\r\n\r\n',
    )


def cohere_sample() -> Sample:
    parts = [
        sse(
            {"id": "c1", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
            "message-start",
        ),
        sse(
            {
                "type": "content-start",
                "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}},
            },
            "content-start",
        ),
    ]
    for p in PIECES:
        parts.append(
            sse(
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": p}}},
                },
                "content-delta",
            )
        )
    usage = {
        "billed_units": {"input_tokens": IN_TOKENS, "output_tokens": OUT_TOKENS},
        "tokens": {"input_tokens": IN_TOKENS + 60, "output_tokens": OUT_TOKENS},
    }
    parts += [
        sse({"type": "content-end", "index": 0}, "content-end"),
        sse(
            {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}},
            "message-end",
        ),
    ]
    whole = {
        "id": "c1",
        "message": {"role": "assistant", "content": [{"type": "text", "text": TEXT}]},
        "finish_reason": "COMPLETE",
        "usage": usage,
    }
    return Sample(
        "cohere",
        "command-r-plus",
        parts,
        whole,
        "COMPLETE",
        "text/event-stream",
        sse(
            {
                "type": "message-end",
                "delta": {"finish_reason": "ERROR", "error": "internal server error"},
            },
            "message-end",
        ),
        {"message": "invalid api token"},
        b'event: content-delta\ndata: {"type": "content-delta", \n\n',
    )


def ollama_sample() -> Sample:
    parts = [
        ndjson(
            {
                "model": "llama3",
                "created_at": "2024-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": p},
                "done": False,
            }
        )
        for p in PIECES
    ]
    final = {
        "model": "llama3",
        "created_at": "2024-01-01T00:00:01Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": 5_000_000,
        "load_duration": 1_000,
        "prompt_eval_count": IN_TOKENS,
        "prompt_eval_duration": 2_000,
        "eval_count": OUT_TOKENS,
        "eval_duration": 3_000,
    }
    parts.append(ndjson(final))
    whole = dict(final, message={"role": "assistant", "content": TEXT})
    return Sample(
        "ollama",
        "llama3",
        parts,
        whole,
        "stop",
        "application/x-ndjson",
        ndjson({"error": "an error was encountered while running the model"}),
        {"error": "unauthorized"},
        b'{"model": "llama3", "message": {"content": \n',
    )


SAMPLES = {
    s.provider: s
    for s in (
        openai_sample(),
        anthropic_sample(),
        gemini_sample(),
        cohere_sample(),
        ollama_sample(),
    )
}
