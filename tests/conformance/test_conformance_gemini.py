"""The official google-genai SDK against the emulator."""

from __future__ import annotations

import pytest

from n3_notebook.emulator import EMULATOR_MODELS, expected_answer

from .sdk_common import KEY, MESSAGES, PROMPT

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")
pytestmark = pytest.mark.conformance


@pytest.fixture(params=[None, "v1beta"], ids=["default-version", "v1beta"])
def client(emu, request):
    options = types.HttpOptions(base_url=emu.base_url("gemini"), api_version=request.param)
    return genai.Client(api_key=KEY, http_options=options)


async def test_generate_content_stream(client, emu):
    text, last, chunks = "", None, 0
    stream = await client.aio.models.generate_content_stream(
        model="gemini-2.0-flash",
        contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction="Be vivid."),
    )
    async for chunk in stream:
        chunks += 1
        text += chunk.text or ""
        last = chunk
    answer = expected_answer("gemini", "gemini-2.0-flash", MESSAGES, system="Be vivid.")
    assert text == answer.text and chunks == answer.output_tokens
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.candidates_token_count == answer.output_tokens
    assert last.usage_metadata.prompt_token_count == answer.input_tokens
    assert emu.records[-1].query["alt"] == "sse"


def test_sync_generate_content_and_max_tokens(client):
    response = client.models.generate_content(
        model="gemini-2.5-pro",
        contents=PROMPT,
        config=types.GenerateContentConfig(max_output_tokens=7),
    )
    answer = expected_answer("gemini", "gemini-2.5-pro", MESSAGES, max_tokens=7)
    assert response.text == answer.text
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    text = "".join(
        chunk.text or ""
        for chunk in client.models.generate_content_stream(
            model="gemini-2.5-pro",
            contents=PROMPT,
            config=types.GenerateContentConfig(max_output_tokens=7),
        )
    )
    assert text == answer.text


def test_blocked_prompt(client):
    response = client.models.generate_content(model="gemini-2.0-flash~blocked", contents=PROMPT)
    assert not response.candidates
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_errors(client):
    errors = pytest.importorskip("google.genai.errors")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="gemini-9", contents=PROMPT)
    assert info.value.code == 404
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="gemini-2.0-flash~rate_limit:5", contents=PROMPT)
    assert info.value.code == 429


def test_list_models(client):
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.0-flash" in names


def test_in_band_error_and_malformed_line(client):
    errors = pytest.importorskip("google.genai.errors")
    seen = []
    with pytest.raises(errors.ServerError):
        for chunk in client.models.generate_content_stream(
            model="gemini-2.0-flash~midstream_error:2", contents=PROMPT
        ):
            seen.append(chunk.text)
    assert len(seen) == 2
    with pytest.raises(errors.UnknownApiResponseError):
        for _ in client.models.generate_content_stream(
            model="gemini-2.0-flash~malformed:1", contents=PROMPT
        ):
            pass


def test_list_models_follows_page_tokens(client):
    names = [m.name for m in client.models.list(config={"page_size": 2})]
    assert names == [f"models/{n}" for n in EMULATOR_MODELS["gemini"]]
