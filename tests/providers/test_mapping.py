"""Every provider against recorded-style bytes through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import logging

import pytest

from n3_notebook import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    LLMError,
    OverloadedError,
    RateLimitError,
    RetryConfig,
    ServerError,
    StreamChunk,
    StreamConfig,
    StreamProtocolError,
)
from n3_notebook.core.limits import reset_rate_groups

from .conftest import (
    FAKE_KEYS,
    Recorder,
    json_response,
    make_provider,
    streaming,
    text_response,
)
from .wire_samples import IN_TOKENS, OUT_TOKENS, PIECES, SAMPLES, TEXT

PROVIDERS = sorted(SAMPLES)


async def collect(stream) -> list[StreamChunk]:
    return [c async for c in stream]


@pytest.fixture(params=PROVIDERS)
def sample(request):
    return SAMPLES[request.param]


async def test_stream_reassembles_text_finish_and_usage(sample):
    rec = Recorder([streaming(sample.stream_parts, sample.content_type)])
    p = make_provider(sample.provider, sample.model, rec)
    chunks = await collect(
        p.stream_generate("hi", system="Be brief", temperature=0.2, max_tokens=50)
    )
    texts = [c.content for c in chunks if c.content]
    assert texts == PIECES
    last = chunks[-1]
    assert last.content == ""
    assert last.finish_reason == "stop"
    assert last.metadata["raw_finish_reason"] == sample.raw_finish
    assert last.usage.input_tokens == IN_TOKENS
    assert last.usage.output_tokens == OUT_TOKENS
    assert last.usage.total_tokens == IN_TOKENS + OUT_TOKENS
    assert all(c.finish_reason is None for c in chunks[:-1])
    if sample.provider != "gemini":
        assert last.metadata["request_id"] == "req_123"


async def test_agenerate_whole_response(sample):
    rec = Recorder([json_response(200, sample.whole)])
    p = make_provider(sample.provider, sample.model, rec)
    r = await p.agenerate("hi", system="Be brief")
    assert r.content == TEXT
    assert r.finish_reason == "stop"
    assert r.raw_finish_reason == sample.raw_finish
    assert (r.usage.input_tokens, r.usage.output_tokens) == (IN_TOKENS, OUT_TOKENS)
    assert r.provider == sample.provider
    assert r.latency is not None and r.latency >= 0


async def test_request_shape_and_auth(sample):
    rec = Recorder([streaming(sample.stream_parts, sample.content_type)])
    p = make_provider(sample.provider, sample.model, rec)
    await collect(
        p.stream_generate(
            "Tell me", system="Be brief", temperature=0.3, max_tokens=42, stop=["END"], top_p=0.9
        )
    )
    req, body = rec.requests[0], rec.bodies[0]
    key = FAKE_KEYS[sample.provider]
    if sample.provider == "openai":
        assert req.url.path == "/chat/completions"
        assert req.headers["authorization"] == f"Bearer {key}"
        assert body["messages"][0] == {"role": "system", "content": "Be brief"}
        assert body["messages"][1] == {"role": "user", "content": "Tell me"}
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert (body["max_tokens"], body["temperature"], body["stop"], body["top_p"]) == (
            42,
            0.3,
            ["END"],
            0.9,
        )
    elif sample.provider == "anthropic":
        assert req.url.path == "/v1/messages"
        assert req.headers["x-api-key"] == key
        assert req.headers["anthropic-version"] == "2023-06-01"
        assert body["system"] == "Be brief"
        assert body["messages"] == [{"role": "user", "content": "Tell me"}]
        assert (body["max_tokens"], body["stop_sequences"], body["stream"]) == (42, ["END"], True)
    elif sample.provider == "gemini":
        assert req.url.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
        assert req.url.params["alt"] == "sse"
        assert req.headers["x-goog-api-key"] == key
        assert body["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
        assert body["contents"] == [{"role": "user", "parts": [{"text": "Tell me"}]}]
        assert body["generationConfig"] == {
            "temperature": 0.3,
            "maxOutputTokens": 42,
            "topP": 0.9,
            "stopSequences": ["END"],
        }
    elif sample.provider == "cohere":
        assert req.url.path == "/v2/chat"
        assert req.headers["authorization"] == f"Bearer {key}"
        assert body["messages"][0] == {"role": "system", "content": "Be brief"}
        assert (body["max_tokens"], body["p"], body["stop_sequences"], body["stream"]) == (
            42,
            0.9,
            ["END"],
            True,
        )
    elif sample.provider == "ollama":
        assert req.url.path == "/api/chat"
        assert "authorization" not in req.headers
        assert body["messages"][0] == {"role": "system", "content": "Be brief"}
        assert body["options"] == {
            "temperature": 0.3,
            "num_predict": 42,
            "top_p": 0.9,
            "stop": ["END"],
        }
        assert body["stream"] is True


async def test_auth_error_is_typed_and_keyless(sample):
    if sample.provider == "ollama":
        pytest.skip("Ollama has no key")
    rec = Recorder([json_response(401, sample.error_body)])
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(AuthenticationError) as info:
        await collect(p.stream_generate("hi"))
    err = info.value
    assert err.status_code == 401 and err.provider == sample.provider
    assert err.provider_message
    assert len(rec.requests) == 1  # 401 is never retried
    for text in (str(err), repr(err), err.provider_message):
        assert FAKE_KEYS[sample.provider] not in text
    assert FAKE_KEYS[sample.provider] not in repr(p)


async def test_inband_error_after_text_raises_and_keeps_text(sample):
    parts = sample.stream_parts[:-3] + [sample.in_band_error]
    rec = Recorder([streaming(parts, sample.content_type)])
    p = make_provider(sample.provider, sample.model, rec)
    got: list[str] = []
    with pytest.raises(LLMError) as info:
        async for c in p.stream_generate("hi"):
            got.append(c.content)
    assert got and "".join(got) == "".join(PIECES[: len(got)])
    assert info.value.provider == sample.provider
    assert len(rec.requests) == 1  # never replayed once text was delivered


async def test_malformed_data_names_the_line_after_valid_chunks(sample):
    parts = sample.stream_parts[:-3] + [sample.malformed]
    rec = Recorder([streaming(parts, sample.content_type)])
    p = make_provider(sample.provider, sample.model, rec)
    got: list[str] = []
    with pytest.raises(StreamProtocolError) as info:
        async for c in p.stream_generate("hi"):
            got.append(c.content)
    assert got
    assert "malformed" in str(info.value) and sample.provider in str(info.value)


async def test_truncated_stream_is_an_error(sample):
    parts = sample.stream_parts[:-3]  # text, but no finish event
    rec = Recorder([streaming(parts, sample.content_type)])
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(StreamProtocolError, match="ended before"):
        await collect(p.stream_generate("hi"))


@pytest.mark.parametrize("status", [429, 500, 503, 529])
async def test_retry_then_success(sample, status, caplog):
    rec = Recorder(
        [
            json_response(status, {"error": {"message": "busy"}}, {"retry-after-ms": "5"}),
            streaming(sample.stream_parts, sample.content_type),
        ]
    )
    seen = []
    p = make_provider(sample.provider, sample.model, rec, on_metrics=seen.append)
    with caplog.at_level(logging.WARNING, logger="n3_notebook"):
        chunks = await collect(p.stream_generate("hi"))
    assert "".join(c.content for c in chunks) == TEXT
    assert len(rec.requests) == 2
    assert chunks[-1].metadata["retries"] == 1
    assert seen[-1].retries == 1 and seen[-1].outcome == "ok"
    assert any("retry 1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "status,cls", [(400, APIStatusError), (403, APIStatusError), (404, APIStatusError)]
)
async def test_client_errors_not_retried(sample, status, cls):
    rec = Recorder([json_response(status, sample.error_body)])
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(cls) as info:
        await collect(p.stream_generate("hi"))
    assert info.value.status_code == status
    assert len(rec.requests) == 1


async def test_retries_exhausted_raise_typed(sample):
    rec = Recorder([json_response(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})])
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(RateLimitError) as info:
        await collect(p.stream_generate("hi"))
    assert len(rec.requests) == 3
    assert info.value.retry_after == 0.0


async def test_the_providers_wait_is_on_the_error(sample):
    """A 429 that is not retried (max_attempts=1) still says how long the provider asked
    to wait, so the caller (or the service's Retry-After) can honour it."""
    rec = Recorder([json_response(429, {"error": {"message": "slow"}}, {"retry-after": "12"})])
    p = make_provider(sample.provider, sample.model, rec, retry=RetryConfig(max_attempts=1))
    with pytest.raises(RateLimitError) as info:
        await collect(p.stream_generate("hi"))
    assert info.value.retry_after == 12.0 and len(rec.requests) == 1
    assert "asked to wait 12 s before trying again" in str(info.value)
    reset_rate_groups()  # else the next call waits out the 12 s the 429 asked the group for
    rec = Recorder([json_response(401, {"error": {"message": "bad key"}})])
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(APIStatusError) as info:
        await collect(p.stream_generate("hi"))
    assert info.value.retry_after is None


async def test_html_error_page_is_status_error_with_snippet(sample):
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 500 + "</body>"
    rec = Recorder([text_response(502, page)])
    p = make_provider(
        sample.provider,
        sample.model,
        rec,
        retry=__import__("n3_notebook").RetryConfig(max_attempts=1),
    )
    with pytest.raises(ServerError) as info:
        await p.agenerate("hi")
    msg = str(info.value)
    assert "502" in msg and "Bad Gateway" in msg
    assert len(info.value.provider_message) <= 201


async def test_max_chunks_stops_with_length(sample):
    rec = Recorder([streaming(sample.stream_parts, sample.content_type)])
    p = make_provider(sample.provider, sample.model, rec)
    chunks = await collect(p.stream_generate("hi", stream_config=StreamConfig(max_chunks=2)))
    assert [c.content for c in chunks[:-1]] == PIECES[:2]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].metadata["stopped_by"] == "max_chunks"


async def test_chunk_timeout_fires(sample):
    import httpx

    async def body():  # some text, then silence
        for part in sample.stream_parts[:-3]:
            yield part
        await asyncio.sleep(10)

    rec = Recorder(
        [
            lambda r: httpx.Response(
                200, headers={"content-type": sample.content_type}, content=body()
            )
        ]
    )
    p = make_provider(sample.provider, sample.model, rec)
    from n3_notebook import LLMTimeoutError

    got = []
    with pytest.raises(LLMTimeoutError, match="chunk_timeout"):
        async for c in p.stream_generate("hi", stream_config=StreamConfig(chunk_timeout=0.1)):
            got.append(c)
    assert got  # what arrived before the stall was delivered


async def test_stream_timeout_fires(sample):
    import httpx

    from n3_notebook import LLMTimeoutError

    async def body():
        for part in sample.stream_parts:
            await asyncio.sleep(0.05)
            yield part

    rec = Recorder(
        [
            lambda r: httpx.Response(
                200, headers={"content-type": sample.content_type}, content=body()
            )
        ]
    )
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(LLMTimeoutError, match="stream_timeout"):
        await collect(
            p.stream_generate(
                "hi", stream_config=StreamConfig(stream_timeout=0.12, chunk_timeout=None)
            )
        )


async def test_connection_error_retried_then_typed(sample):
    import httpx

    calls = []

    def refuse(request):
        calls.append(1)
        raise httpx.ConnectError("connection refused")

    rec = Recorder([refuse])
    p = make_provider(sample.provider, sample.model, rec)
    with pytest.raises(APIConnectionError) as info:
        await p.agenerate("hi")
    assert len(calls) == 3
    assert "could not reach" in str(info.value)


async def test_inband_retryable_error_before_first_chunk_is_retried():
    s = SAMPLES["anthropic"]
    rec = Recorder(
        [
            streaming(s.stream_parts[:1] + [s.in_band_error], s.content_type),
            streaming(s.stream_parts, s.content_type),
        ]
    )
    p = make_provider("anthropic", s.model, rec)
    chunks = await collect(p.stream_generate("hi"))
    assert "".join(c.content for c in chunks) == TEXT
    assert len(rec.requests) == 2


async def test_anthropic_overloaded_midstream_is_overloaded_error():
    s = SAMPLES["anthropic"]
    rec = Recorder([streaming(s.stream_parts[:5] + [s.in_band_error], s.content_type)])
    p = make_provider("anthropic", s.model, rec)
    with pytest.raises(OverloadedError, match="Overloaded"):
        await collect(p.stream_generate("hi"))


async def test_anthropic_without_message_stop_is_complete():
    s = SAMPLES["anthropic"]
    rec = Recorder([streaming(s.stream_parts[:-1], s.content_type)])
    p = make_provider("anthropic", s.model, rec)
    chunks = await collect(p.stream_generate("hi"))
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage.output_tokens == OUT_TOKENS


async def test_ollama_error_line_after_200():
    s = SAMPLES["ollama"]
    rec = Recorder([streaming(s.stream_parts[:2] + [s.in_band_error], s.content_type)])
    p = make_provider("ollama", s.model, rec)
    got = []
    with pytest.raises(LLMError, match="error was encountered"):
        async for c in p.stream_generate("hi"):
            got.append(c.content)
    assert got == PIECES[:2]


async def test_gemini_blocked_prompt_is_content_filtered():
    from n3_notebook import ContentFilteredError

    from .wire_samples import sse

    blocked = sse(
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
        },
        eol="\r\n",
    )
    rec = Recorder([streaming([blocked], "text/event-stream")])
    p = make_provider("gemini", "gemini-2.0-flash", rec)
    with pytest.raises(ContentFilteredError, match="SAFETY"):
        await collect(p.stream_generate("something bad"))


async def test_gemini_max_tokens_is_length():
    from .wire_samples import sse

    part = sse(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "Hi"}], "role": "model"},
                    "finishReason": "MAX_TOKENS",
                }
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
        },
        eol="\r\n",
    )
    rec = Recorder([streaming([part], "text/event-stream")])
    p = make_provider("gemini", "gemini-2.0-flash", rec)
    chunks = await collect(p.stream_generate("x"))
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].metadata["raw_finish_reason"] == "MAX_TOKENS"


async def test_openai_compatible_quirks():
    """Integer error codes, reasoning_content, usage on the finish chunk, no [DONE],
    llama.cpp's `error:` field."""
    from .wire_samples import sse

    def chunk(delta, finish=None, usage=None):
        out = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            out["usage"] = usage
        return out

    parts = [
        sse(chunk({"reasoning_content": "thinking..."})),
        sse(chunk({"content": "Hi"})),
        sse(chunk({}, "stop", {"prompt_tokens": 3, "completion_tokens": 1})),
    ]
    rec = Recorder([streaming(parts, "text/event-stream")])
    p = make_provider("openai", "local-model", rec)
    chunks = await collect(p.stream_generate("x"))
    assert chunks[-1].usage.total_tokens == 4
    assert [c.reasoning for c in chunks if c.reasoning] == ["thinking..."]
    assert "reasoning" not in chunks[-1].metadata  # thinking is never in metadata as text
    assert chunks[-1].finish_reason == "stop"

    err = b'error: {"code": 500, "message": "llama.cpp failed", "type": "server_error"}\n\n'
    rec = Recorder([streaming([sse(chunk({"content": "Hi"})), err], "text/event-stream")])
    p = make_provider("openai", "local-model", rec)
    with pytest.raises(ServerError, match=r"llama\.cpp failed"):
        await collect(p.stream_generate("x"))

    inband = sse({"error": {"code": 429, "message": "slots busy"}})
    rec = Recorder([streaming([sse(chunk({"content": "Hi"})), inband], "text/event-stream")])
    p = make_provider("openai", "local-model", rec)
    with pytest.raises(RateLimitError, match="slots busy"):
        await collect(p.stream_generate("x"))


async def test_cohere_v1_ndjson():
    from .wire_samples import ndjson

    parts = [
        ndjson({"is_finished": False, "event_type": "stream-start", "generation_id": "g"}),
        *[
            ndjson({"is_finished": False, "event_type": "text-generation", "text": p})
            for p in PIECES
        ],
        ndjson(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "finish_reason": "COMPLETE",
                "response": {
                    "text": TEXT,
                    "meta": {
                        "billed_units": {"input_tokens": IN_TOKENS, "output_tokens": OUT_TOKENS}
                    },
                },
            }
        ),
    ]
    rec = Recorder([streaming(parts, "application/stream+json")])
    p = make_provider("cohere", "command-r", rec, api_version="v1")
    chunks = await collect(
        p.stream_chat(
            [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ]
        )
    )
    assert "".join(c.content for c in chunks) == TEXT
    assert chunks[-1].usage.input_tokens == IN_TOKENS
    body = rec.bodies[0]
    assert rec.requests[0].url.path == "/v1/chat"
    assert body["message"] == "c" and body["preamble"] == "S"
    assert body["chat_history"] == [
        {"role": "USER", "message": "a"},
        {"role": "CHATBOT", "message": "b"},
    ]
