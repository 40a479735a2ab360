"""Mutated real streams through every provider's decoder and event mapper: they produce
chunks or raise one of our LLMErrors, never another exception, and never hang."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from n3_notebook import LLMError, RetryConfig, StreamConfig, create_provider
from n3_notebook.wire import NDJSONDecoder, SSEDecoder

from ..providers.feature_samples import TOOL_STREAMS, openai_reasoning_stream
from ..providers.wire_samples import SAMPLES

PROVIDERS = sorted(SAMPLES)
#: The streams each fuzzer damages: plain text, and tool calls with thinking.
STREAMS = {
    **{(p, "text"): SAMPLES[p].stream_parts for p in PROVIDERS},
    **{(p, "tools"): TOOL_STREAMS[p][0]() for p in PROVIDERS},
    ("openai", "reasoning"): openai_reasoning_stream(),
}
KINDS = sorted(STREAMS)
KEYS = {
    "openai": "sk-fuzz-0123456789",
    "anthropic": "sk-ant-fuzz-0123456789",
    "gemini": "AIzaFUZZkey0123456789abcdefghij",
    "cohere": "co-fuzz-0123456789",
    "ollama": None,
}


@st.composite
def mutated(draw, kind: tuple[str, str]) -> list[bytes]:
    """A provider's real stream with random damage, cut into random reads."""
    body = bytearray(b"".join(STREAMS[kind]))
    for _ in range(draw(st.integers(0, 6))):
        if not body:
            break
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate", "json"]))
        i = draw(st.integers(0, len(body) - 1))
        if op == "flip":
            body[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del body[i : i + draw(st.integers(1, 20))]
        elif op == "insert":
            body[i:i] = draw(st.binary(min_size=1, max_size=12))
        elif op == "truncate":
            del body[i:]
        elif op == "duplicate":
            j = min(len(body), i + draw(st.integers(1, 200)))
            body[i:i] = body[i:j]
        else:  # swap a JSON value for a value of another type
            snippet = draw(st.sampled_from([b"null", b"[]", b"{}", b"1", b'"x"', b"true"]))
            start = body.find(b":", i)
            if start > 0:
                end = start + 1 + draw(st.integers(1, 15))
                body[start + 1 : end] = snippet
    data = bytes(body)
    cuts = sorted(draw(st.lists(st.integers(0, max(len(data), 1)), max_size=8)))
    pieces, last = [], 0
    for c in cuts:
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    return [p for p in pieces if p]


async def _run(provider: str, pieces: list[bytes]) -> None:
    async def body():
        for p in pieces:
            yield p

    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
    )
    p = create_provider(
        f"{provider}:{SAMPLES[provider].model}",
        api_key=KEYS[provider],
        base_url="http://fuzz.invalid",
        http_client=httpx.AsyncClient(transport=transport),
        retry=RetryConfig(max_attempts=1),
    )
    try:
        async with asyncio.timeout(5):
            async for chunk in p.stream_generate(
                "x", stream_config=StreamConfig(stream_timeout=5, chunk_timeout=5)
            ):
                assert isinstance(chunk.content, str)
                assert chunk.finish_reason is None or isinstance(chunk.finish_reason, str)
                assert chunk.reasoning is None or isinstance(chunk.reasoning, str)
                for call in chunk.tool_calls or ():
                    assert isinstance(call.name, str) and isinstance(call.arguments, dict)
    except LLMError:
        pass  # the documented outcome of a damaged stream


_JSON_LINE = re.compile(rb"^(data: |)(\{.*\})$", re.M)
_SWAPS = [None, "x", 5, -1, 2.5, True, [], [1], {}, {"text": 1}, "\u2028"]


@st.composite
def retyped(draw, kind: tuple[str, str]) -> list[bytes]:
    """A provider's real stream with values deep in its JSON replaced by values of other
    types: well-formed JSON of the wrong shape, which byte damage rarely produces."""
    parts = []
    for part in STREAMS[kind]:
        match = _JSON_LINE.search(part)
        if match is None or not draw(st.booleans()):
            parts.append(part)
            continue
        tree = json.loads(match.group(2))
        paths = list(_paths(tree))
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            _set(tree, path, copy.deepcopy(draw(st.sampled_from(_SWAPS))))
        encoded = json.dumps(tree, ensure_ascii=False).encode()
        parts.append(part[: match.start(2)] + encoded + part[match.end(2) :])
    return parts


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _set(tree, path, value):
    if not path:
        return
    node = tree
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    with contextlib.suppress(KeyError, IndexError, TypeError):
        node[path[-1]] = value


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_retyped_streams_give_chunks_or_our_errors(kind, data):
    asyncio.run(_run(kind[0], data.draw(retyped(kind))))


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_streams_give_chunks_or_our_errors(kind, data):
    pieces = data.draw(mutated(kind))
    asyncio.run(_run(kind[0], pieces))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_decoders_take_any_bytes(blob, cuts):
    for decoder in (SSEDecoder(), SSEDecoder(extra_fields=frozenset({"error"})), NDJSONDecoder()):
        last = 0
        for c in sorted(cuts):
            decoder.feed(blob[last:c])
            last = max(last, c)
        decoder.feed(blob[last:])
        decoder.flush()


async def _run_whole(provider: str, body: bytes) -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=body)
    )
    p = create_provider(
        f"{provider}:{SAMPLES[provider].model}",
        api_key=KEYS[provider],
        base_url="http://fuzz.invalid",
        http_client=httpx.AsyncClient(transport=transport),
        retry=RetryConfig(max_attempts=1),
    )
    try:
        r = await p.agenerate("x")
        assert isinstance(r.content, str)
    except LLMError:
        pass


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_retyped_whole_responses_give_answers_or_our_errors(provider, data):
    tree = copy.deepcopy(SAMPLES[provider].whole)
    paths = list(_paths(tree))
    for _ in range(data.draw(st.integers(1, 3))):
        _set(
            tree,
            data.draw(st.sampled_from(paths)),
            copy.deepcopy(data.draw(st.sampled_from(_SWAPS))),
        )
    asyncio.run(_run_whole(provider, json.dumps(tree).encode()))
