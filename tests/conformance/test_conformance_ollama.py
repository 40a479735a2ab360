"""The official ollama SDK against the emulator."""

from __future__ import annotations

import pytest

from n3_notebook.emulator import EMULATOR_MODELS, expected_answer

from .sdk_common import MESSAGES, PROMPT

ollama = pytest.importorskip("ollama")
pytestmark = pytest.mark.conformance


async def test_chat_stream(emu):
    client = ollama.AsyncClient(host=emu.base_url("ollama"))
    text, last = "", None
    async for part in await client.chat(model="llama3", messages=MESSAGES, stream=True):
        text += part.message.content
        last = part
    answer = expected_answer("ollama", "llama3", MESSAGES)
    assert text == answer.text
    assert last.done and last.done_reason == "stop"
    assert last.eval_count == answer.output_tokens
    assert last.prompt_eval_count == answer.input_tokens


async def test_generate_non_stream_and_num_predict(emu):
    client = ollama.AsyncClient(host=emu.base_url("ollama"))
    response = await client.generate(model="mistral", prompt=PROMPT, options={"num_predict": 4})
    answer = expected_answer("ollama", "mistral", MESSAGES, max_tokens=4)
    assert response.response == answer.text and response.done_reason == "length"


async def test_list_and_pull(emu):
    client = ollama.AsyncClient(host=emu.base_url("ollama"))
    listed = await client.list()
    assert [m.model for m in listed.models] == [f"{n}:latest" for n in EMULATOR_MODELS["ollama"]]
    statuses = [p.status async for p in await client.pull("llama3.2", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert (await client.pull("qwen2.5")).status == "success"
    with pytest.raises(ollama.ResponseError):
        async for _ in await client.pull("no-such-model", stream=True):
            pass


async def test_errors(emu):
    client = ollama.AsyncClient(host=emu.base_url("ollama"))
    with pytest.raises(ollama.ResponseError) as info:
        await client.chat(model="llama9", messages=MESSAGES)
    assert info.value.status_code == 404
    with pytest.raises(ollama.ResponseError, match="unexpected EOF"):
        async for _ in await client.chat(
            model="llama3~midstream_error:2", messages=MESSAGES, stream=True
        ):
            pass
