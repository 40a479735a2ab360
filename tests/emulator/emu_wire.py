"""Tiny, independent wire parsers for the emulator tests (bytes in, events out)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")

MSGS = [{"role": "user", "content": "Explain how TCP congestion control works."}]


@dataclass
class SSEEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(raw: bytes) -> list[SSEEvent]:
    """Split on CR, LF or CRLF; decode each complete line as UTF-8."""
    events: list[SSEEvent] = []
    event: str | None = None
    data: list[str] = []
    for line_bytes in _LINE_BREAK.split(raw):
        line = line_bytes.decode("utf-8")
        if not line:
            if data:
                events.append(SSEEvent(event, "\n".join(data)))
            event, data = None, []
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data:
        events.append(SSEEvent(event, "\n".join(data)))
    return events


def parse_ndjson(raw: bytes) -> list[Any]:
    return [json.loads(line.decode("utf-8")) for line in raw.split(b"\n") if line]


# Request builders: (path relative to the emulator root, json body, headers)
KEY = "sk-test-secret-0123456789"


def openai_req(model: str = "gpt-4o-mini", stream: bool = False, messages=MSGS, **extra):
    body = {"model": model, "messages": messages, "stream": stream, **extra}
    return "/v1/chat/completions", body, {"authorization": f"Bearer {KEY}"}


def anthropic_req(
    model: str = "claude-3-5-haiku-latest",
    stream: bool = False,
    messages=MSGS,
    max_tokens: int = 1024,
    **extra,
):
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "stream": stream,
        **extra,
    }
    return "/v1/messages", body, {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def gemini_req(
    model: str = "gemini-2.0-flash",
    stream: bool = False,
    messages=MSGS,
    sse: bool = True,
    config: dict | None = None,
    version: str = "v1beta",
):
    action = "streamGenerateContent" if stream else "generateContent"
    query = "?alt=sse" if stream and sse else ""
    contents = [
        {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
        for m in messages
    ]
    body: dict[str, Any] = {"contents": contents}
    if config:
        body["generationConfig"] = config
    return f"/{version}/models/{model}:{action}{query}", body, {"x-goog-api-key": KEY}


def cohere_req(model: str = "command-r-plus", stream: bool = False, messages=MSGS, **extra):
    body = {"model": model, "messages": messages, "stream": stream, **extra}
    return "/v2/chat", body, {"authorization": f"Bearer {KEY}"}


def cohere_v1_req(
    model: str = "command-r-plus", stream: bool = False, message: str | None = None, **extra
):
    body = {"model": model, "message": message or MSGS[-1]["content"], "stream": stream, **extra}
    return "/v1/chat", body, {"authorization": f"Bearer {KEY}"}


def ollama_req(model: str = "llama3", stream: bool = False, messages=MSGS, **extra):
    body = {"model": model, "messages": messages, "stream": stream, **extra}
    return "/api/chat", body, {}


# Stream reassembly: text, raw finish reason, (input, output) usage
def openai_stream(raw: bytes) -> tuple[str, str | None, dict | None]:
    events = parse_sse(raw)
    assert events[-1].data == "[DONE]"
    text, finish, usage = "", None, None
    for ev in events[:-1]:
        obj = ev.json()
        for choice in obj["choices"]:
            text += choice["delta"].get("content") or ""
            finish = choice["finish_reason"] or finish
        if obj.get("usage"):
            usage = obj["usage"]
    return text, finish, usage


def anthropic_stream(raw: bytes) -> tuple[str, str | None, dict]:
    text, stop, usage = "", None, {}
    for ev in parse_sse(raw):
        obj = ev.json()
        assert obj["type"] == ev.event
        if ev.event == "message_start":
            usage.update(obj["message"]["usage"])
        elif ev.event == "content_block_delta":
            text += obj["delta"]["text"]
        elif ev.event == "message_delta":
            stop = obj["delta"]["stop_reason"]
            usage.update(obj["usage"])
    return text, stop, usage


def gemini_stream(raw: bytes) -> tuple[str, str | None, dict]:
    text, finish, usage = "", None, {}
    for ev in parse_sse(raw):
        obj = ev.json()
        for cand in obj.get("candidates", []):
            for part in cand.get("content", {}).get("parts", []):
                text += part.get("text", "")
            finish = cand.get("finishReason", finish)
        usage = obj.get("usageMetadata", usage)
    return text, finish, usage


def cohere_stream(raw: bytes) -> tuple[str, str | None, dict]:
    text, finish, usage = "", None, {}
    for ev in parse_sse(raw):
        if ev.data == "[DONE]":
            continue
        obj = ev.json()
        assert obj["type"] == ev.event
        if ev.event == "content-delta":
            text += obj["delta"]["message"]["content"]["text"]
        elif ev.event == "message-end":
            finish = obj["delta"]["finish_reason"]
            usage = obj["delta"]["usage"]
    return text, finish, usage


def cohere_v1_stream(raw: bytes) -> tuple[str, str | None, dict]:
    text, finish, meta = "", None, {}
    for obj in parse_ndjson(raw):
        if obj["event_type"] == "text-generation":
            text += obj["text"]
        elif obj["event_type"] == "stream-end":
            finish = obj["finish_reason"]
            meta = obj["response"]["meta"]
    return text, finish, meta


def ollama_stream(raw: bytes, field: str = "message") -> tuple[str, str | None, dict]:
    text, reason, final = "", None, {}
    for obj in parse_ndjson(raw):
        piece = obj[field]["content"] if field == "message" else obj[field]
        text += piece
        if obj["done"]:
            reason, final = obj["done_reason"], obj
    return text, reason, final
