"""Fault spec grammar and the "N failures then success" counters (no I/O)."""

from __future__ import annotations

import pytest

from n3_notebook.emulator.faults import (
    FaultCounters,
    FaultSpecError,
    parse_fault,
    split_model_fault,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rate_limit", {"name": "rate_limit", "times": 1}),
        ("rate_limit:3", {"name": "rate_limit", "times": 3}),
        ("status_500:2", {"name": "status_500", "times": 2}),
        ("status_503", {"name": "status_503", "times": 1}),
        ("status_529:1", {"name": "status_529", "times": 1}),
        ("html_error", {"name": "html_error", "times": 1}),
        ("midstream_error", {"name": "midstream_error", "after": 3}),
        ("midstream_error:0", {"name": "midstream_error", "after": 0}),
        ("stall:1.5", {"name": "stall", "seconds": 1.5, "after": 1}),
        ("stall:0.2@4", {"name": "stall", "seconds": 0.2, "after": 4}),
        ("disconnect", {"name": "disconnect", "after": 3}),
        ("disconnect:5", {"name": "disconnect", "after": 5}),
        ("malformed:2", {"name": "malformed", "after": 2}),
        ("slow_first:2", {"name": "slow_first", "seconds": 2.0}),
        ("long", {"name": "long", "length": 20_000}),
        ("long:500", {"name": "long", "length": 500}),
        ("blocked", {"name": "blocked"}),
        ("invalid_key", {"name": "invalid_key"}),
    ],
)
def test_parse(spec, expected):
    fault = parse_fault(spec)
    assert fault.spec == spec
    for name, value in expected.items():
        assert getattr(fault, name) == value


@pytest.mark.parametrize(
    "spec",
    [
        "nope",
        "rate_limit:x",
        "rate_limit:-1",
        "stall",
        "stall:abc",
        "stall:1@x",
        "slow_first",
        "blocked:1",
        "long:",
        "stall:nan",
        "invalid_key:2",
    ],
)
def test_bad_specs_are_rejected_with_a_clear_message(spec):
    with pytest.raises(FaultSpecError) as info:
        parse_fault(spec)
    assert spec in str(info.value)


def test_unknown_fault_lists_the_known_ones():
    with pytest.raises(FaultSpecError, match="rate_limit"):
        parse_fault("explode")


def test_split_model_fault():
    assert split_model_fault("gpt-4o-mini~rate_limit:2") == ("gpt-4o-mini", "rate_limit:2")
    assert split_model_fault("llama3:latest~stall:1@2") == ("llama3:latest", "stall:1@2")
    assert split_model_fault("gpt-4o") == ("gpt-4o", None)


def test_counters_fail_n_times_then_succeed_per_key():
    counters = FaultCounters()
    fault = parse_fault("status_500:2")
    assert [counters.should_fail("openai", "gpt-4o", fault) for _ in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    assert counters.should_fail("openai", "gpt-4o-mini", fault)  # another model: own count
    counters.reset()
    assert counters.should_fail("openai", "gpt-4o", fault)
    always = parse_fault("invalid_key")
    assert all(counters.should_fail("openai", "gpt-4o", always) for _ in range(3))
