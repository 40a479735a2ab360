"""Core data types: defaults, validation, small behaviours."""

from __future__ import annotations

import dataclasses
import math

import pytest

from n3_notebook.core.types import (
    FINISH_REASONS,
    LLMResponse,
    Message,
    StreamChunk,
    StreamConfig,
    Usage,
)


def test_stream_config_defaults_exactly() -> None:
    """Issue #23's defaults: no whole-stream limit, 2 min of silence once text flows, 2 min
    for the first text (10 min when reasoning is requested)."""
    cfg = StreamConfig()
    assert (cfg.stream_timeout, cfg.chunk_timeout, cfg.max_chunks, cfg.buffer_size) == (
        None,
        120.0,
        None,
        100,
    )
    assert (cfg.first_token_timeout, cfg.reasoning_first_token_timeout) == (120.0, 600.0)


def test_stream_config_positional_order() -> None:
    cfg = StreamConfig(60.0, 2.0, 10, 5)
    assert (cfg.stream_timeout, cfg.chunk_timeout, cfg.max_chunks, cfg.buffer_size) == (
        60.0,
        2.0,
        10,
        5,
    )


def test_stream_config_none_means_unbounded() -> None:
    cfg = StreamConfig(stream_timeout=None, chunk_timeout=None, max_chunks=None)
    assert cfg.stream_timeout is None and cfg.chunk_timeout is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stream_timeout": 0},
        {"stream_timeout": -1.0},
        {"chunk_timeout": 0.0},
        {"chunk_timeout": -5},
        {"max_chunks": 0},
        {"max_chunks": -3},
        {"buffer_size": 0},
        {"buffer_size": -1},
        {"stream_timeout": math.nan},
        {"chunk_timeout": math.nan},
        {"first_token_timeout": 0},
        {"reasoning_first_token_timeout": -1},
    ],
)
def test_stream_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="StreamConfig"):
        StreamConfig(**kwargs)


def test_stream_config_is_frozen_and_hashable() -> None:
    cfg = StreamConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_chunks = 3  # type: ignore[misc]
    assert hash(cfg) == hash(StreamConfig())
    assert dataclasses.replace(cfg, max_chunks=1).max_chunks == 1
    with pytest.raises(ValueError):
        dataclasses.replace(cfg, buffer_size=0)


def test_usage_of() -> None:
    assert Usage.of(10, 5) == Usage(10, 5, 15)
    assert Usage.of(None, 7) == Usage(0, 7, 7)
    assert Usage.of(3, None) == Usage(3, 0, 3)
    assert Usage.of(None, None) == Usage(0, 0, 0)
    assert Usage() == Usage(0, 0, 0)
    u = Usage.of(1, 2)
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (1, 2, 3)
    assert isinstance(Usage.of(2.0, 3.0).total_tokens, int)  # type: ignore[arg-type]


def test_message() -> None:
    m = Message("user", "hi")
    assert m.as_dict() == {"role": "user", "content": "hi"}
    assert m == Message(role="user", content="hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.content = "x"  # type: ignore[misc]


def test_stream_chunk_defaults() -> None:
    c = StreamChunk("tok")
    assert c.content == "tok"
    assert c.finish_reason is None and c.model is None
    assert c.usage is None and c.metadata is None
    last = StreamChunk("", "stop", "m", Usage.of(1, 1), {"raw_finish_reason": "end_turn"})
    assert last.finish_reason == "stop" and last.usage == Usage(1, 1, 2)


def test_llm_response_str_is_the_content() -> None:
    r = LLMResponse(content="Hello\nworld", model="gpt-4o-mini")
    assert str(r) == "Hello\nworld"
    assert f"{r}" == "Hello\nworld"
    assert r._repr_markdown_() == "Hello\nworld"
    assert "gpt-4o-mini" in repr(r)


def test_llm_response_defaults() -> None:
    r = LLMResponse(content="", model="m")
    assert r.usage == Usage()
    assert r.finish_reason is None and r.raw_finish_reason is None
    assert r.latency is None and r.time_to_first_token is None and r.request_id is None
    assert r.retries == 0
    assert r.metadata == {}
    other = LLMResponse(content="", model="m")
    other.metadata["x"] = 1
    assert r.metadata == {}  # not a shared default


def test_finish_reasons() -> None:
    assert set(FINISH_REASONS) >= {"stop", "length", "content_filter", "tool_calls", "error"}
