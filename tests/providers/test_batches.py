"""stream_chat_batches: the same chunks as stream_chat, grouped by the network read that
brought them (what a relay writes at once)."""

from __future__ import annotations

import pytest

from n3_notebook import StreamProtocolError

from .conftest import Recorder, make_provider, streaming
from .wire_samples import PIECES, SAMPLES, TEXT

HI = [{"role": "user", "content": "hi"}]


def _view(chunks):
    return [(c.content, c.finish_reason, c.usage) for c in chunks]


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_batches_are_the_stream_grouped_by_read(name):
    s = SAMPLES[name]
    whole = b"".join(s.stream_parts)
    half = len(whole) // 2
    reads = [whole[:half], whole[half:]]  # two reads, each holding several events
    rec = Recorder([streaming(reads, s.content_type)])
    p = make_provider(s.provider, s.model, rec)
    batches = [b async for b in p.stream_chat_batches(HI, max_tokens=5)]
    flat = [c async for c in p.stream_chat(HI, max_tokens=5)]
    await p.aclose()
    assert all(batches), "no empty batch"
    assert _view([c for b in batches for c in b]) == _view(flat)
    assert "".join(c.content for b in batches for c in b) == TEXT
    assert len(flat) > len(PIECES) >= len(batches) >= 2
    assert batches[-1][-1].finish_reason is not None
    assert rec.bodies[0] == rec.bodies[1]  # the same request either way


async def test_good_chunks_of_a_read_arrive_before_its_bad_event_raises():
    s = SAMPLES["openai"]
    read = s.stream_parts[0] + s.stream_parts[1] + s.stream_parts[2] + s.malformed
    p = make_provider("openai", s.model, Recorder([streaming([read], s.content_type)]))
    stream = p.stream_chat_batches(HI)
    first = await anext(stream)
    assert [c.content for c in first] == PIECES[:2]
    with pytest.raises(StreamProtocolError):
        await anext(stream)
    await p.aclose()


async def test_max_chunks_ends_the_batch_with_a_length_chunk():
    from n3_notebook import StreamConfig

    s = SAMPLES["openai"]
    p = make_provider(
        "openai", s.model, Recorder([streaming([b"".join(s.stream_parts)], s.content_type)])
    )
    batches = [b async for b in p.stream_chat_batches(HI, stream_config=StreamConfig(max_chunks=3))]
    await p.aclose()
    assert len(batches) == 1
    assert [c.content for c in batches[0]] == [*PIECES[:3], ""]
    assert batches[0][-1].finish_reason == "length"
    assert batches[0][-1].metadata["stopped_by"] == "max_chunks"
