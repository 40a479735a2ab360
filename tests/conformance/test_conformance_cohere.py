"""The official cohere SDK (v2 client, and v1 where it still exists) against the emulator."""

from __future__ import annotations

import pytest

from n3_notebook.emulator import EMULATOR_MODELS, expected_answer

from .sdk_common import KEY, MESSAGES, PROMPT

cohere = pytest.importorskip("cohere")
pytestmark = [
    pytest.mark.conformance,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # pydantic v1 API in the SDK
]


async def test_v2_chat_stream(emu):
    client = cohere.AsyncClientV2(api_key=KEY, base_url=emu.base_url("cohere"))
    text, end = "", None
    async for event in client.chat_stream(model="command-r-plus", messages=MESSAGES):
        if event.type == "content-delta":
            text += event.delta.message.content.text
        elif event.type == "message-end":
            end = event
    answer = expected_answer("cohere", "command-r-plus", MESSAGES)
    assert text == answer.text
    assert end.delta.finish_reason == "COMPLETE"
    assert end.delta.usage.tokens.output_tokens == answer.output_tokens
    assert end.delta.usage.billed_units.input_tokens == answer.input_tokens


def test_v2_chat_non_stream_and_in_band_error(emu):
    client = cohere.ClientV2(api_key=KEY, base_url=emu.base_url("cohere"))
    response = client.chat(model="command-a-03-2025", messages=MESSAGES, max_tokens=5)
    answer = expected_answer("cohere", "command-a-03-2025", MESSAGES, max_tokens=5)
    assert response.message.content[0].text == answer.text
    assert response.finish_reason == "MAX_TOKENS"
    events = list(client.chat_stream(model="command-r~midstream_error:2", messages=MESSAGES))
    assert events[-1].type == "message-end"
    assert events[-1].delta.finish_reason == "ERROR" and events[-1].delta.error
    with pytest.raises(cohere.errors.UnauthorizedError):
        client.chat(model="command-r~invalid_key", messages=MESSAGES)
    with pytest.raises(cohere.errors.TooManyRequestsError):
        client.chat(model="command-r~rate_limit:9", messages=MESSAGES)  # outlasts retries


def test_v1_chat_stream(emu):
    client = cohere.Client(api_key=KEY, base_url=emu.base_url("cohere"))
    if not hasattr(client, "chat_stream"):
        pytest.skip("this cohere SDK has no v1 chat_stream")
    text, end = "", None
    for event in client.chat_stream(model="command-r-plus", message=PROMPT, preamble="Be brief."):
        if event.event_type == "text-generation":
            text += event.text
        elif event.event_type == "stream-end":
            end = event
    answer = expected_answer("cohere", "command-r-plus", MESSAGES, system="Be brief.")
    assert text == answer.text == end.response.text
    assert end.finish_reason == "COMPLETE"
    assert end.response.meta.billed_units.output_tokens == answer.output_tokens


def test_models_list_with_page_token(emu):
    client = cohere.ClientV2(api_key=KEY, base_url=emu.base_url("cohere"))
    first = client.models.list(endpoint="chat", page_size=3)
    assert first.next_page_token
    rest = client.models.list(endpoint="chat", page_size=3, page_token=first.next_page_token)
    names = [m.name for m in first.models + rest.models]
    assert names == EMULATOR_MODELS["cohere"] and not rest.next_page_token
    assert all("chat" in (m.endpoints or []) for m in first.models)
    assert first.models[0].context_length
