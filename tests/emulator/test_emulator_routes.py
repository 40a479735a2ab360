"""Every route, streaming and not, over real sockets: text, finish reason, usage."""

from __future__ import annotations

import json

import pytest

from n3_notebook.emulator import EMULATOR_MODELS, expected_answer

from .emu_wire import (
    MSGS,
    anthropic_req,
    anthropic_stream,
    cohere_req,
    cohere_stream,
    cohere_v1_req,
    cohere_v1_stream,
    gemini_req,
    gemini_stream,
    ollama_req,
    ollama_stream,
    openai_req,
    openai_stream,
    parse_ndjson,
    parse_sse,
)


async def post(client, req):
    path, body, headers = req
    return await client.post(path, json=body, headers=headers)


# -- OpenAI ----------------------------------------------------------------------------


async def test_openai_stream_with_usage(client):
    r = await post(client, openai_req(stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-request-id"].startswith("req_")
    events = parse_sse(r.content)
    assert events[-1].data == "[DONE]"
    first, usage_chunk = events[0].json(), events[-2].json()
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first["object"] == "chat.completion.chunk"
    assert usage_chunk["choices"] == []
    finish_chunk = events[-3].json()
    assert finish_chunk["choices"][0]["delta"] == {}
    text, finish, usage = openai_stream(r.content)
    answer = expected_answer("openai", "gpt-4o-mini", MSGS)
    assert text == answer.text and finish == "stop"
    content_chunks = [e for e in events[1:-3]]
    assert len(content_chunks) == answer.output_tokens == usage["completion_tokens"]
    assert usage["prompt_tokens"] == answer.input_tokens
    assert usage["total_tokens"] == answer.input_tokens + answer.output_tokens
    assert all(e.json()["usage"] is None for e in events[:-2])


async def test_openai_stream_without_usage(client):
    r = await post(client, openai_req(stream=True))
    events = parse_sse(r.content)
    assert events[-1].data == "[DONE]"
    assert all("usage" not in e.json() for e in events[:-1])
    assert events[-2].json()["choices"][0]["finish_reason"] == "stop"


async def test_openai_non_stream(client):
    r = await post(client, openai_req())
    body = r.json()
    answer = expected_answer("openai", "gpt-4o-mini", MSGS)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": answer.text,
        "refusal": None,
        "annotations": [],
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == answer.output_tokens
    assert int(r.headers["content-length"]) == len(r.content)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_openai_max_tokens(client, field):
    r = await post(client, openai_req(stream=True, **{field: 5}))
    text, finish, _ = openai_stream(r.content)
    assert finish == "length"
    assert text == expected_answer("openai", "gpt-4o-mini", MSGS, max_tokens=5).text


async def test_openai_stop_sequence(client):
    r = await post(client, openai_req(stop=["."]))
    answer = expected_answer("openai", "gpt-4o-mini", MSGS, stop=["."])
    assert r.json()["choices"][0]["message"]["content"] == answer.text
    assert r.json()["choices"][0]["finish_reason"] == "stop"


async def test_openai_models_list(client, emu):
    r = await client.get("/v1/models", headers={"authorization": "Bearer k-123456"})
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == EMULATOR_MODELS["openai"]
    r = await client.get("/v1/models/gpt-4o", headers={"authorization": "Bearer k-123456"})
    assert r.json()["id"] == "gpt-4o"


# -- Anthropic -------------------------------------------------------------------------


async def test_anthropic_stream(client):
    r = await post(client, anthropic_req(stream=True))
    assert r.status_code == 200
    assert r.headers["request-id"].startswith("req_")
    events = parse_sse(r.content)
    names = [e.event for e in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text, stop, usage = anthropic_stream(r.content)
    answer = expected_answer("anthropic", "claude-3-5-haiku-latest", MSGS)
    assert text == answer.text and stop == "end_turn"
    assert usage["input_tokens"] == answer.input_tokens
    assert usage["output_tokens"] == answer.output_tokens == names.count("content_block_delta")


async def test_anthropic_non_stream_and_system(client):
    r = await post(client, anthropic_req(system=[{"type": "text", "text": "Be brief."}]))
    body = r.json()
    answer = expected_answer("anthropic", "claude-3-5-haiku-latest", MSGS, system="Be brief.")
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": answer.text}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"]["output_tokens"] == answer.output_tokens
    assert body["usage"]["input_tokens"] == answer.input_tokens


async def test_anthropic_max_tokens_and_stop_sequences(client):
    r = await post(client, anthropic_req(stream=True, max_tokens=4))
    _text, stop, usage = anthropic_stream(r.content)
    assert stop == "max_tokens" and usage["output_tokens"] == 4
    r = await post(client, anthropic_req(stop_sequences=["."]))
    body = r.json()
    assert body["stop_reason"] == "stop_sequence" and body["stop_sequence"] == "."
    answer = expected_answer("anthropic", "claude-3-5-haiku-latest", MSGS, stop=["."])
    assert body["content"][0]["text"] == answer.text


async def test_anthropic_block_content(client):
    blocks = [{"role": "user", "content": [{"type": "text", "text": MSGS[0]["content"]}]}]
    r = await post(client, anthropic_req(messages=blocks))
    answer = expected_answer("anthropic", "claude-3-5-haiku-latest", MSGS)
    assert r.json()["content"][0]["text"] == answer.text


async def test_anthropic_models_list(client):
    headers = {"x-api-key": "k-123456", "anthropic-version": "2023-06-01"}
    body = (await client.get("/v1/models", headers=headers)).json()
    assert [m["id"] for m in body["data"]] == EMULATOR_MODELS["anthropic"]
    assert body["has_more"] is False
    r = await client.get("/v1/models/claude-sonnet-4-20250514", headers=headers)
    assert r.json()["display_name"] == "Claude Sonnet 4"


# -- Gemini ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_gemini_sse_stream_uses_crlf(client, version):
    r = await post(client, gemini_req(stream=True, version=version))
    assert r.status_code == 200
    raw = r.content
    assert raw.endswith(b"\r\n\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")  # every line break is CRLF
    assert b"[DONE]" not in raw
    events = parse_sse(raw)
    answer = expected_answer("gemini", "gemini-2.0-flash", MSGS)
    assert len(events) == answer.output_tokens
    text, finish, usage = gemini_stream(raw)
    assert text == answer.text and finish == "STOP"
    assert usage["candidatesTokenCount"] == answer.output_tokens
    assert usage["promptTokenCount"] == answer.input_tokens
    assert usage["totalTokenCount"] == answer.input_tokens + answer.output_tokens
    assert all("finishReason" not in e.json()["candidates"][0] for e in events[:-1])
    assert events[-1].json()["modelVersion"] == "gemini-2.0-flash"


async def test_gemini_stream_without_alt_is_a_json_array(client):
    r = await post(client, gemini_req(stream=True, sse=False, config={"maxOutputTokens": 6}))
    items = json.loads(r.content)
    assert isinstance(items, list) and len(items) == 6
    text = "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items)
    assert text == expected_answer("gemini", "gemini-2.0-flash", MSGS, max_tokens=6).text
    assert items[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"


async def test_gemini_non_stream_with_system_and_key_param(client):
    path, body, _ = gemini_req()
    body["systemInstruction"] = {"parts": [{"text": "Be brief."}]}
    r = await client.post(path + "?key=k-123456", json=body)
    answer = expected_answer("gemini", "gemini-2.0-flash", MSGS, system="Be brief.")
    cand = r.json()["candidates"][0]
    assert cand["content"]["parts"][0]["text"] == answer.text
    assert cand["finishReason"] == "STOP"
    assert r.json()["usageMetadata"]["candidatesTokenCount"] == answer.output_tokens


async def test_gemini_max_tokens_and_stop(client):
    r = await post(client, gemini_req(stream=True, config={"maxOutputTokens": 3}))
    _text, finish, usage = gemini_stream(r.content)
    assert finish == "MAX_TOKENS" and usage["candidatesTokenCount"] == 3
    r = await post(client, gemini_req(config={"stopSequences": ["."]}))
    answer = expected_answer("gemini", "gemini-2.0-flash", MSGS, stop=["."])
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == answer.text


async def test_gemini_models_list(client):
    r = await client.get("/v1beta/models", headers={"x-goog-api-key": "k-123456"})
    names = [m["name"] for m in r.json()["models"]]
    assert names == [f"models/{n}" for n in EMULATOR_MODELS["gemini"]]
    r = await client.get("/v1beta/models/gemini-2.5-pro", headers={"x-goog-api-key": "k-1234"})
    assert r.json()["name"] == "models/gemini-2.5-pro"


# -- Cohere ----------------------------------------------------------------------------


async def test_cohere_v2_stream(client):
    r = await post(client, cohere_req(stream=True))
    assert r.status_code == 200
    events = parse_sse(r.content)
    names = [e.event for e in events]
    assert names[:2] == ["message-start", "content-start"]
    assert names[-3:] == ["content-end", "message-end", None]
    assert events[-1].data == "[DONE]"
    text, finish, usage = cohere_stream(r.content)
    answer = expected_answer("cohere", "command-r-plus", MSGS)
    assert text == answer.text and finish == "COMPLETE"
    assert usage["tokens"] == {
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
    }
    assert usage["billed_units"]["output_tokens"] == names.count("content-delta")


async def test_cohere_v2_non_stream_and_max_tokens(client):
    r = await post(client, cohere_req(max_tokens=4))
    body = r.json()
    answer = expected_answer("cohere", "command-r-plus", MSGS, max_tokens=4)
    assert body["message"]["content"] == [{"type": "text", "text": answer.text}]
    assert body["finish_reason"] == "MAX_TOKENS"
    assert body["usage"]["tokens"]["output_tokens"] == 4


async def test_cohere_v1_stream_is_ndjson(client):
    r = await post(client, cohere_v1_req(stream=True, preamble="Be brief."))
    objects = parse_ndjson(r.content)
    assert objects[0]["event_type"] == "stream-start" and "generation_id" in objects[0]
    assert objects[-1]["event_type"] == "stream-end" and objects[-1]["is_finished"] is True
    assert all(o["is_finished"] is False for o in objects[:-1])
    text, finish, meta = cohere_v1_stream(r.content)
    answer = expected_answer("cohere", "command-r-plus", MSGS, system="Be brief.")
    assert text == answer.text == objects[-1]["response"]["text"]
    assert finish == "COMPLETE"
    assert meta["billed_units"] == {
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
    }


async def test_cohere_v1_non_stream_with_history(client):
    history = [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hello!"}]
    r = await post(client, cohere_v1_req(chat_history=history))
    body = r.json()
    convo = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, *MSGS]
    answer = expected_answer("cohere", "command-r-plus", convo)
    assert body["text"] == answer.text and body["finish_reason"] == "COMPLETE"
    assert body["meta"]["billed_units"]["output_tokens"] == answer.output_tokens


# -- Ollama ----------------------------------------------------------------------------


async def test_ollama_chat_streams_by_default(client):
    path, body, _ = ollama_req()
    del body["stream"]
    r = await client.post(path, json=body)
    assert r.headers["content-type"] == "application/x-ndjson"
    text, reason, final = ollama_stream(r.content)
    answer = expected_answer("ollama", "llama3", MSGS)
    assert text == answer.text and reason == "stop"
    assert final["eval_count"] == answer.output_tokens
    assert final["prompt_eval_count"] == answer.input_tokens
    assert final["message"] == {"role": "assistant", "content": ""}
    for name in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[name], int)
    assert len(parse_ndjson(r.content)) == answer.output_tokens + 1


async def test_ollama_chat_non_stream_and_num_predict(client):
    r = await post(client, ollama_req(options={"num_predict": 5}))
    body = r.json()
    answer = expected_answer("ollama", "llama3", MSGS, max_tokens=5)
    assert body["message"]["content"] == answer.text
    assert body["done"] is True and body["done_reason"] == "length" and body["eval_count"] == 5


async def test_ollama_generate(client):
    body = {"model": "llama3:latest", "prompt": MSGS[0]["content"], "system": "Be brief."}
    r = await client.post("/api/generate", json=body)
    text, reason, final = ollama_stream(r.content, field="response")
    answer = expected_answer("ollama", "llama3", MSGS, system="Be brief.")
    assert text == answer.text and reason == "stop" and isinstance(final["context"], list)
    r = await client.post("/api/generate", json={**body, "stream": False})
    assert r.json()["response"] == answer.text


async def test_ollama_tags_pull_and_version(client):
    tags = (await client.get("/api/tags")).json()["models"]
    assert [t["name"] for t in tags] == [f"{n}:latest" for n in EMULATOR_MODELS["ollama"]]
    assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(tags[0])
    r = await client.post("/api/pull", json={"model": "llama3"})
    lines = parse_ndjson(r.content)
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses and "writing manifest" in statuses
    progress = [line for line in lines if "completed" in line]
    assert progress and all(p["digest"].startswith("sha256:") for p in progress)
    r = await client.post("/api/pull", json={"model": "nope-model"})
    assert r.status_code == 200 and "error" in parse_ndjson(r.content)[-1]
    r = await client.post("/api/pull", json={"model": "llama3", "stream": False})
    assert r.json() == {"status": "success"}
    assert (await client.get("/api/version")).json()["version"]
    assert (await client.get("/")).text == "Ollama is running"


# -- Cross-cutting ---------------------------------------------------------------------


async def test_same_request_twice_gives_the_same_text(client):
    a = openai_stream((await post(client, openai_req(stream=True))).content)[0]
    b = openai_stream((await post(client, openai_req(stream=True))).content)[0]
    assert a == b


async def test_demo_model_gives_the_same_text_on_every_route(client):
    texts = {
        "openai": openai_stream((await post(client, openai_req("demo", True))).content)[0],
        "anthropic": anthropic_stream((await post(client, anthropic_req("demo", True))).content)[0],
        "gemini": gemini_stream((await post(client, gemini_req("demo", True))).content)[0],
        "cohere": cohere_stream((await post(client, cohere_req("demo", True))).content)[0],
        "cohere_v1": cohere_v1_stream((await post(client, cohere_v1_req("demo", True))).content)[0],
        "ollama": ollama_stream((await post(client, ollama_req("demo", True))).content)[0],
    }
    assert set(texts.values()) == {expected_answer("openai", "demo", MSGS).text}


async def test_multibyte_text_is_raw_utf8_on_the_wire(client):
    r = await post(client, openai_req(stream=True))
    raw = r.content
    answer = expected_answer("openai", "gpt-4o-mini", MSGS)
    wide = next(t for t in answer.tokens if not t.isascii())
    assert json.dumps(wide, ensure_ascii=False).encode() in raw


@pytest.mark.parametrize(
    ("req", "status", "check"),
    [
        (openai_req("gpt-9"), 404, lambda b: b["error"]["code"] == "model_not_found"),
        (anthropic_req("claude-9"), 404, lambda b: b["error"]["type"] == "not_found_error"),
        (gemini_req("gemini-9"), 404, lambda b: b["error"]["status"] == "NOT_FOUND"),
        (cohere_req("command-z"), 404, lambda b: "not found" in b["message"]),
        (cohere_v1_req("command-z"), 404, lambda b: "not found" in b["message"]),
        (
            ollama_req("llama9"),
            404,
            lambda b: b == {"error": 'model "llama9" not found, try pulling it first'},
        ),
        (openai_req("llama3"), 404, lambda b: "llama3" in b["error"]["message"]),
    ],
)
async def test_unknown_model_gives_each_providers_404(client, req, status, check):
    r = await post(client, req)
    assert r.status_code == status
    assert check(r.json())


async def test_bad_json_is_a_400(client):
    r = await client.post(
        "/v1/chat/completions", content=b"{nope", headers={"authorization": "Bearer k-123456"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
