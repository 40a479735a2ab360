"""Fault injection over real sockets, in each provider's own shapes."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from n3_notebook.emulator import expected_answer

from .emu_wire import (
    MSGS,
    anthropic_req,
    anthropic_stream,
    cohere_req,
    cohere_v1_req,
    gemini_req,
    gemini_stream,
    ollama_req,
    openai_req,
    openai_stream,
    parse_ndjson,
    parse_sse,
)


async def post(client, req, fault: str | None = None):
    path, body, headers = req
    if fault is not None:
        headers = {**headers, "x-n3-fault": fault}
    return await client.post(path, json=body, headers=headers)


async def test_rate_limit_n_times_then_success(client, emu):
    statuses = []
    for _ in range(3):
        r = await post(client, openai_req("gpt-4o-mini~rate_limit:2"))
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.headers["retry-after"] == "0"
            assert r.headers["retry-after-ms"] == "10"
            assert r.headers["x-ratelimit-remaining-requests"] == "0"
            assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert statuses == [429, 429, 200]
    assert r.json()["model"] == "gpt-4o-mini"  # the suffix is not echoed
    assert [rec.fault for rec in emu.records] == ["rate_limit:2"] * 3
    assert [rec.model for rec in emu.records] == ["gpt-4o-mini"] * 3


@pytest.mark.parametrize(
    ("req", "check"),
    [
        (anthropic_req(), lambda b: b["error"]["type"] == "rate_limit_error"),
        (gemini_req(), lambda b: b["error"]["status"] == "RESOURCE_EXHAUSTED"),
        (cohere_req(), lambda b: "message" in b),
        (ollama_req(), lambda b: "error" in b),
    ],
)
async def test_rate_limit_shapes(client, req, check):
    r = await post(client, req, "rate_limit")
    assert r.status_code == 429 and r.headers["retry-after"] == "0"
    assert check(r.json())
    assert (await post(client, req, "rate_limit")).status_code == 200


async def test_counters_are_per_model_and_reset(client, emu):
    assert (await post(client, openai_req(), "status_500")).status_code == 500
    assert (await post(client, openai_req("gpt-4o"), "status_500")).status_code == 500
    assert (await post(client, openai_req(), "status_500")).status_code == 200
    emu.reset()
    assert (await post(client, openai_req(), "status_500")).status_code == 500


@pytest.mark.parametrize(
    ("spec", "status", "etype"),
    [
        ("status_500", 500, "api_error"),
        ("status_503", 503, "api_error"),
        ("status_529", 529, "overloaded_error"),
    ],
)
async def test_server_errors_anthropic(client, spec, status, etype):
    r = await post(client, anthropic_req(), f"{spec}:2")
    assert r.status_code == status and r.json()["error"]["type"] == etype
    assert (await post(client, anthropic_req(), f"{spec}:2")).status_code == status
    assert (await post(client, anthropic_req(), f"{spec}:2")).status_code == 200


async def test_server_error_shapes_elsewhere(client):
    r = await post(client, openai_req(), "status_503")
    assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"
    r = await post(client, gemini_req(), "status_500")
    assert r.status_code == 500 and r.json()["error"]["status"] == "INTERNAL"
    r = await post(client, gemini_req(), "status_529")
    assert r.status_code == 529 and r.json()["error"]["code"] == 529
    r = await post(client, cohere_req(), "status_503")
    assert r.status_code == 503 and r.json() == {"message": "service unavailable"}
    r = await post(client, ollama_req(), "status_503")
    assert r.status_code == 503 and r.json()["error"].startswith("server busy")


async def test_html_error(client):
    r = await post(client, cohere_req(stream=True), "html_error")
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("text/html")
    assert "<html>" in r.text and "502 Bad Gateway" in r.text
    assert (await post(client, cohere_req(stream=True), "html_error")).status_code == 200


async def test_invalid_key_fault(client):
    for _ in range(2):
        r = await post(client, openai_req(), "invalid_key")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


async def test_unknown_fault_is_a_400(client):
    r = await post(client, openai_req("gpt-4o-mini~explode"))
    assert r.status_code == 400
    assert "unknown fault 'explode'" in r.json()["error"]["message"]
    r = await post(client, anthropic_req(), "stall")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


async def test_header_wins_over_suffix(client, emu):
    r = await post(client, openai_req("gpt-4o-mini~status_500"), "rate_limit")
    assert r.status_code == 429
    assert emu.records[-1].fault == "rate_limit"


async def test_suffix_in_gemini_url_path(client):
    r = await post(client, gemini_req("gemini-2.0-flash~rate_limit", stream=True))
    assert r.status_code == 429
    r = await post(client, gemini_req("gemini-2.0-flash~midstream_error:2", stream=True))
    assert r.status_code == 200
    events = parse_sse(r.content)
    assert len(events) == 3 and events[-1].json()["error"]["code"] == 500


# -- in-band mid-stream errors, one per provider --------------------------------------


async def test_midstream_error_openai(client):
    r = await post(client, openai_req(stream=True), "midstream_error:2")
    assert r.status_code == 200
    events = parse_sse(r.content)
    assert len(events) == 4  # role chunk, 2 tokens, the error
    assert events[-1].json()["error"]["type"] == "server_error"
    assert all(e.data != "[DONE]" for e in events)


async def test_midstream_error_anthropic(client):
    r = await post(client, anthropic_req(stream=True), "midstream_error")
    events = parse_sse(r.content)
    assert [e.event for e in events].count("content_block_delta") == 3
    assert events[-1].event == "error"
    assert events[-1].json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


async def test_midstream_error_gemini(client):
    r = await post(client, gemini_req(stream=True), "midstream_error:1")
    assert r.status_code == 200
    events = parse_sse(r.content)
    assert len(events) == 2 and r.content.endswith(b"\r\n\r\n")
    assert events[-1].json()["error"]["status"] == "INTERNAL"


async def test_midstream_error_cohere(client):
    r = await post(client, cohere_req(stream=True), "midstream_error:2")
    events = parse_sse(r.content)
    assert events[-1].event == "message-end"
    delta = events[-1].json()["delta"]
    assert delta["finish_reason"] == "ERROR" and delta["error"]
    r = await post(client, cohere_v1_req(stream=True), "midstream_error:2")
    objects = parse_ndjson(r.content)
    assert len(objects) == 4
    assert objects[-1]["event_type"] == "stream-end"
    assert objects[-1]["finish_reason"] == "ERROR" and objects[-1]["is_finished"] is True


async def test_midstream_error_ollama(client):
    r = await post(client, ollama_req(stream=True), "midstream_error:2")
    assert r.status_code == 200
    objects = parse_ndjson(r.content)
    assert len(objects) == 3 and set(objects[-1]) == {"error"}


async def test_midstream_error_non_stream_is_a_500(client):
    r = await post(client, openai_req(), "midstream_error")
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"


# -- stream-shaping faults -------------------------------------------------------------


async def test_stall(client, emu):
    path, body, headers = anthropic_req(stream=True)
    start = time.monotonic()
    raw, arrivals = b"", []
    async with client.stream(
        "POST", path, json=body, headers={**headers, "x-n3-fault": "stall:0.3@2"}
    ) as r:
        async for chunk in r.aiter_raw():
            raw += chunk
            if b"content_block_delta" in chunk:
                arrivals.append(time.monotonic() - start)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) >= 0.28
    answer = expected_answer("anthropic", "claude-3-5-haiku-latest", MSGS)
    assert anthropic_stream(raw)[0] == answer.text  # the stream continues after the stall
    rec = emu.records[-1]
    assert rec.completed and rec.duration is not None and rec.duration >= 0.3


async def test_disconnect_gives_an_incomplete_stream(client, emu):
    with pytest.raises(httpx.RemoteProtocolError):
        await post(client, openai_req(stream=True), "disconnect:2")
    rec = await emu.wait_for_close(-1)
    assert rec.tokens_sent == 2 and not rec.completed and not rec.client_disconnected
    with pytest.raises(httpx.RemoteProtocolError):
        await post(client, ollama_req(), "disconnect")  # non-streaming: a cut body
    # the server keeps serving afterwards
    assert (await post(client, openai_req())).status_code == 200


async def test_malformed(client):
    r = await post(client, openai_req(stream=True), "malformed:2")
    events = parse_sse(r.content)
    bad = events[3]
    assert bad.data == '{"choices": [tr'
    with pytest.raises(ValueError):
        bad.json()
    r = await post(client, gemini_req(stream=True), "malformed:1")
    assert b'data: {"candidates": [tr\r\n\r\n' in r.content
    r = await post(client, openai_req(), "malformed")
    with pytest.raises(ValueError):
        r.json()


async def test_slow_first(client, emu):
    start = time.monotonic()
    r = await post(client, openai_req(stream=True), "slow_first:0.3")
    assert time.monotonic() - start >= 0.3
    assert openai_stream(r.content)[0] == expected_answer("openai", "gpt-4o-mini", MSGS).text
    rec = emu.records[-1]
    assert rec.first_chunk_at is not None and rec.first_chunk_at - rec.opened_at < 0.1


async def test_long(client):
    r = await post(
        client, openai_req(stream=True, stream_options={"include_usage": True}), "long:3000"
    )
    text, _finish, usage = openai_stream(r.content)
    assert usage["completion_tokens"] == 3000
    assert text == expected_answer("openai", "gpt-4o-mini", MSGS, length=3000).text
    r = await post(client, ollama_req("llama3~long"))
    assert r.json()["eval_count"] == 20_000


async def test_blocked(client):
    r = await post(client, gemini_req(stream=True), "blocked")
    events = parse_sse(r.content)
    assert len(events) == 1
    obj = events[0].json()
    assert "candidates" not in obj and obj["promptFeedback"]["blockReason"] == "SAFETY"
    assert gemini_stream(r.content)[0] == ""
    r = await post(client, gemini_req(), "blocked")
    assert r.json()["promptFeedback"]["blockReason"] == "SAFETY"
    r = await post(client, openai_req(stream=True), "blocked")
    assert openai_stream(r.content)[:2] == ("", "content_filter")
    r = await post(client, anthropic_req(), "blocked")
    assert r.json()["stop_reason"] == "refusal" and r.json()["content"] == []
