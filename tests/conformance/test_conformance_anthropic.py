"""The official anthropic SDK against the emulator."""

from __future__ import annotations

import pytest

from n3_notebook.emulator import EMULATOR_MODELS, expected_answer

from .sdk_common import KEY, MESSAGES

anthropic = pytest.importorskip("anthropic")
pytestmark = pytest.mark.conformance


@pytest.fixture
async def client(emu):
    async with anthropic.AsyncAnthropic(
        base_url=emu.base_url("anthropic"), api_key=KEY, max_retries=0
    ) as c:
        yield c


async def test_messages_stream(client):
    async with client.messages.stream(
        model="claude-3-5-haiku-latest",
        messages=MESSAGES,
        max_tokens=1024,
        system="You write for museums.",
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        message = await stream.get_final_message()
    answer = expected_answer(
        "anthropic", "claude-3-5-haiku-latest", MESSAGES, system="You write for museums."
    )
    assert text == answer.text == message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == answer.input_tokens
    assert message.usage.output_tokens == answer.output_tokens


async def test_non_stream_max_tokens_and_stop_sequence(client):
    message = await client.messages.create(
        model="claude-sonnet-4-20250514", messages=MESSAGES, max_tokens=6
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 6
    message = await client.messages.create(
        model="claude-sonnet-4-20250514",
        messages=MESSAGES,
        max_tokens=500,
        stop_sequences=["."],
    )
    answer = expected_answer("anthropic", "claude-sonnet-4-20250514", MESSAGES, stop=["."])
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "."
    assert message.content[0].text == answer.text


async def test_errors_map_to_sdk_exceptions(client, emu):
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(model="claude-9", messages=MESSAGES, max_tokens=5)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(
            model="claude-3-5-haiku-latest~rate_limit", messages=MESSAGES, max_tokens=5
        )
    assert info.value.response.headers["request-id"].startswith("req_")
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(
            model="claude-3-5-haiku-latest~status_529", messages=MESSAGES, max_tokens=5
        )
    assert info.value.status_code == 529
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        async with client.messages.stream(
            model="claude-3-5-haiku-latest~midstream_error:2",
            messages=MESSAGES,
            max_tokens=100,
        ) as stream:
            async for _ in stream.text_stream:
                pass


async def test_models_list(client):
    ids = [m.id async for m in client.models.list()]
    assert "claude-3-5-haiku-latest" in ids


async def test_models_list_pages_with_after_id(client):
    ids = [m.id async for m in client.models.list(limit=2)]  # the SDK follows after_id
    assert ids == EMULATOR_MODELS["anthropic"]
