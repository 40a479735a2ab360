"""The official openai SDK against the emulator."""

from __future__ import annotations

import pytest

from n3_notebook.emulator import expected_answer

from .sdk_common import KEY, MESSAGES

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.conformance


@pytest.fixture
async def client(emu):
    async with openai.AsyncOpenAI(base_url=emu.base_url("openai"), api_key=KEY, max_retries=0) as c:
        yield c


async def test_stream_with_usage(client, emu):
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, chunks = "", None, None, 0
    async for chunk in stream:
        if chunk.choices:
            chunks += 1
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    answer = expected_answer("openai", "gpt-4o-mini", MESSAGES)
    assert text == answer.text
    assert finish == "stop"
    assert usage.completion_tokens == answer.output_tokens
    assert usage.prompt_tokens == answer.input_tokens
    assert chunks == answer.output_tokens + 2  # role chunk + tokens + finish chunk
    assert emu.records[-1].completed


async def test_non_stream_and_length(client):
    completion = await client.chat.completions.create(
        model="gpt-4.1-mini", messages=MESSAGES, max_completion_tokens=9
    )
    answer = expected_answer("openai", "gpt-4.1-mini", MESSAGES, max_tokens=9)
    assert completion.choices[0].message.content == answer.text
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 9


async def test_models_list(client):
    ids = [m.id async for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "demo" in ids


async def test_errors_map_to_sdk_exceptions(emu):
    async with openai.AsyncOpenAI(
        base_url=emu.base_url("openai"), api_key=KEY, max_retries=2
    ) as retrying:
        # 429 with retry-after-ms: the SDK retries and then succeeds
        completion = await retrying.chat.completions.create(
            model="gpt-4o-mini~rate_limit:2", messages=MESSAGES, max_tokens=3
        )
        assert completion.choices[0].finish_reason == "length"
        assert [r.status for r in emu.records] == [429, 429, 200]
    async with openai.AsyncOpenAI(
        base_url=emu.base_url("openai"), api_key=KEY, max_retries=0
    ) as plain:
        with pytest.raises(openai.NotFoundError):
            await plain.chat.completions.create(model="gpt-9", messages=MESSAGES)
        with pytest.raises(openai.AuthenticationError) as info:
            await plain.chat.completions.create(model="gpt-4o-mini~invalid_key", messages=MESSAGES)
        assert info.value.code == "invalid_api_key"
        stream = await plain.chat.completions.create(
            model="gpt-4o-mini~midstream_error:2", messages=MESSAGES, stream=True
        )
        with pytest.raises(openai.APIError, match="server had an error"):
            async for _ in stream:
                pass
