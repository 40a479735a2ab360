"""Every request through the provider core lands in the call log, with its text and facts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

import n3_notebook.log as log
from n3_notebook import (
    AuthenticationError,
    Image,
    LLMError,
    Message,
    RetryConfig,
    StreamConfig,
    create_provider,
)
from n3_notebook.emulator import Emulator

from .conftest import DISTINCTIVE_KEY

FAST_RETRY = RetryConfig(max_attempts=3, base_delay=0.001, max_delay=0.01)


def _bytes(db: Path) -> bytes:
    """The database and its WAL and shared-memory files, as bytes."""
    files = sorted(f for f in db.parent.iterdir() if f.name.startswith(db.name))
    assert db in files
    return b"".join(f.read_bytes() for f in files)


def provider(emulator: Emulator, model: str = "openai:gpt-4o-mini", **kwargs: object):
    name = model.split(":", 1)[0]
    return create_provider(
        model, base_url=emulator.base_url(name), api_key=DISTINCTIVE_KEY, retry=FAST_RETRY, **kwargs
    )


async def test_a_stream_and_a_request_are_logged_with_text_usage_and_timings(
    emulator: Emulator, log_db: Path
) -> None:
    async with provider(emulator) as p:
        whole = await p.agenerate("What is a call log?", system="Be brief.")
        parts = [c async for c in p.stream_generate("And a dashboard?")]
    calls = log.query()
    assert [c.prompt for c in calls] == ["What is a call log?", "And a dashboard?"]
    request, stream = calls
    assert request.stream is False and stream.stream is True
    assert request.system == "Be brief."
    assert json.loads(request.messages or "") == [
        {"role": "user", "content": "What is a call log?"}
    ]
    assert request.response == whole.content
    assert stream.response == "".join(c.content for c in parts)
    assert request.input_tokens == whole.usage.input_tokens > 0
    assert request.output_tokens == whole.usage.output_tokens > 0
    assert stream.output_tokens == parts[-1].usage.output_tokens  # type: ignore[union-attr]
    assert request.finish_reason == stream.finish_reason == "stop"
    assert request.outcome == stream.outcome == "ok"
    assert request.request_id == whole.request_id and request.request_id
    assert stream.request_id and stream.chunks == len([c for c in parts if c.content])
    assert stream.ttft_s is not None and 0 <= stream.ttft_s <= stream.duration_s  # type: ignore[operator]
    assert request.duration_s is not None and request.duration_s > 0
    assert request.cost_usd is not None and request.cost_usd > 0  # gpt-4o-mini has a price
    assert (request.provider, request.model) == ("openai", "gpt-4o-mini")
    assert request.session == stream.session and request.session
    assert request.time.endswith("Z") and request.cached is False


@pytest.mark.parametrize(
    "model",
    [
        "anthropic:claude-3-5-haiku-latest",
        "gemini:gemini-2.0-flash",
        "cohere:command-r",
        "ollama:llama3.2",
    ],
)
async def test_every_provider_is_logged(emulator: Emulator, log_db: Path, model: str) -> None:
    async with provider(emulator, model) as p:
        text = "".join([c.content async for c in p.stream_generate("Hi")])
    (call,) = log.query()
    assert f"{call.provider}:{call.model}" == model
    assert call.response == text and text
    assert call.outcome == "ok" and call.finish_reason == "stop"


async def test_retries_and_errors_are_logged(emulator: Emulator, log_db: Path) -> None:
    async with provider(emulator, "openai:gpt-4o-mini~rate_limit:1") as p:
        await p.agenerate("once more")
    async with provider(emulator, "openai:gpt-4o-mini~midstream_error:2") as p:
        with pytest.raises(LLMError):
            async for _ in p.stream_generate("break"):
                pass
    retried, broken = log.query()
    assert retried.retries == 1 and retried.outcome == "ok"
    assert broken.outcome == "error" and broken.error_kind
    assert broken.error_message and broken.chunks == 2
    assert broken.response  # what arrived before the error


async def test_a_cancelled_stream_is_logged_as_cancelled(emulator: Emulator, log_db: Path) -> None:
    async with provider(emulator, "openai:gpt-4o-mini~slow_first:5") as p:

        async def consume() -> None:
            async for _ in p.stream_generate("wait"):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (call,) = log.query()
    assert call.outcome == "cancelled" and call.response == ""


async def test_the_notebook_and_cell_are_logged_when_set(emulator: Emulator, log_db: Path) -> None:
    async with provider(emulator) as p:
        with log.origin("analysis.ipynb", cell=7):
            await p.agenerate("tagged")
        await p.agenerate("untagged")
    tagged, untagged = log.query()
    assert (tagged.notebook, tagged.cell) == ("analysis.ipynb", "7")
    assert (untagged.notebook, untagged.cell) == (None, None)


def test_the_blocking_generate_keeps_the_callers_origin(emulator: Emulator, log_db: Path) -> None:
    p = provider(emulator)
    token = log.set_origin("sync.ipynb", "c-1")
    try:
        p.generate("blocking")
    finally:
        log.reset_origin(token)
    (call,) = log.query()
    assert (call.notebook, call.cell, call.prompt) == ("sync.ipynb", "c-1", "blocking")


async def test_text_is_not_stored_when_turned_off(emulator: Emulator, log_db: Path) -> None:
    log.configure(store_text=False)
    async with provider(emulator) as p:
        await p.agenerate("private matter", system="secret system")
    (call,) = log.query()
    assert (call.prompt, call.system, call.messages, call.response) == (None, None, None, None)
    assert call.output_tokens > 0 and call.duration_s
    assert b"private matter" not in _bytes(log_db)


async def test_disable_and_enable(emulator: Emulator, log_db: Path) -> None:
    log.disable()
    assert not log.is_enabled()
    async with provider(emulator) as p:
        await p.agenerate("not logged")
        log.enable()
        await p.agenerate("logged")
    assert [c.prompt for c in log.query()] == ["logged"]


async def test_a_key_never_reaches_the_database_file(emulator: Emulator, log_db: Path) -> None:
    """Success, a retry, a mid-stream error, a rejected key echoed back in full by the
    server, a timeout, and the key pasted into a prompt: the file never holds the key."""
    async with provider(emulator) as p:
        await p.agenerate(f"my key is {DISTINCTIVE_KEY}, keep it", system=DISTINCTIVE_KEY)
        async for _ in p.stream_generate("stream"):
            pass
    for fault in ("rate_limit:1", "midstream_error:1", "invalid_key", "status_500:5"):
        async with provider(emulator, f"openai:gpt-4o-mini~{fault}") as p:
            try:
                async for _ in p.stream_generate("faulty"):
                    pass
            except LLMError:
                pass

    def echo(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        body = {"error": {"message": f"Incorrect API key provided: {auth} / {DISTINCTIVE_KEY}"}}
        return httpx.Response(401, json=body, headers={"x-request-id": DISTINCTIVE_KEY})

    client = httpx.AsyncClient(transport=httpx.MockTransport(echo))
    p = create_provider(
        "openai:gpt-4o-mini",
        api_key=DISTINCTIVE_KEY,
        base_url="http://t.invalid",
        http_client=client,
    )
    with pytest.raises(AuthenticationError):
        await p.agenerate("echo my key")
    await client.aclose()
    p = provider(
        emulator, "openai:gpt-4o-mini~stall:3", stream_config=StreamConfig(chunk_timeout=0.1)
    )
    with pytest.raises(LLMError):
        async for _ in p.stream_generate("stall"):
            pass
    await p.aclose()

    calls = log.query(None)
    assert len(calls) == 8
    assert {c.outcome for c in calls} == {"ok", "error", "timeout"}
    assert DISTINCTIVE_KEY.encode() not in _bytes(log_db)
    conn_dump = "\n".join(str(c) for c in calls)
    assert DISTINCTIVE_KEY not in conn_dump
    assert "keep it" in (calls[0].prompt or "")  # the rest of the prompt is kept


def test_the_log_survives_the_process(tmp_path: Path) -> None:
    """A process that makes a call and exits at once leaves it in the file (the writer
    flushes at exit); a second process reads it back."""
    db = tmp_path / "restart.db"
    env = {**os.environ, "N3_LOG_DB": str(db), "N3_OFFLINE": "1", "PYTHONPATH": os.getcwd()}
    env.pop("N3_LOG", None)
    code = textwrap.dedent(
        """
        import n3_notebook
        n3_notebook.create_provider("emulator:demo").generate("remember me")
        """
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    read = "import n3_notebook.log as l; print(l.query()[-1].prompt)"
    out = subprocess.run(
        [sys.executable, "-c", read],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "remember me"


def test_n3_log_0_turns_the_log_off(tmp_path: Path) -> None:
    db = tmp_path / "off.db"
    env = {**os.environ, "N3_LOG_DB": str(db), "N3_OFFLINE": "1", "N3_LOG": "0"}
    code = textwrap.dedent(
        """
        import n3_notebook, n3_notebook.log as l
        n3_notebook.create_provider("emulator:demo").generate("forget me")
        print(l.is_enabled(), len(l.query()))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert out.stdout.split() == ["False", "0"]
    assert not db.exists()


async def test_images_and_tool_rounds_are_logged_without_the_image_bytes(
    emulator: Emulator, log_db: Path
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"IMAGEBYTES" * 20

    def get_weather(city: str) -> str:
        """Weather forecast for a city."""
        return f"{city}: sunny"

    async with provider(emulator) as p:
        await p.achat([Message("user", ["What is in this picture?", Image.from_bytes(png)])])
        await p.agenerate("Weather in Paris?", tools=[get_weather], run_tools=True)
    pictured, *rounds = log.query()
    assert pictured.prompt == "What is in this picture?"
    (sent,) = json.loads(pictured.messages or "")
    assert sent["images"] == [f"image/png, {len(png)} bytes"]
    assert len(rounds) >= 2 and rounds[0].finish_reason == "tool_calls"
    last = json.loads(rounds[-1].messages or "")
    assert any(m.get("tool_calls") for m in last) and any(m["role"] == "tool" for m in last)
    assert b"IMAGEBYTES" not in _bytes(log_db)


async def test_an_answer_from_the_response_cache_is_logged_as_cached(
    emulator: Emulator, log_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("N3_CACHE_DIR", str(tmp_path / "cache"))
    seen_before = len(emulator.records)
    async with provider(emulator) as p:
        first = await p.agenerate("Cache me", cache=True)
        again = await p.agenerate("Cache me", cache=True)
        streamed = "".join([c.content async for c in p.stream_generate("Cache me", cache=True)])
        streamed_again = "".join(
            [c.content async for c in p.stream_generate("Cache me", cache=True)]
        )
    assert again.content == first.content and streamed_again == streamed
    assert streamed == first.content  # a stream and a request share the cached answer
    assert len(emulator.records) - seen_before == 1  # the first call; the rest are hits
    calls = log.query()
    assert [(c.stream, c.cached) for c in calls] == [
        (False, False),
        (False, True),
        (True, True),
        (True, True),
    ]
    hit, stream_hit = calls[1], calls[2]
    assert hit.response == first.content and stream_hit.response == streamed
    assert hit.prompt == "Cache me" and hit.outcome == "ok"
    assert hit.output_tokens == first.usage.output_tokens
