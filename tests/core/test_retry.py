"""The retry policy: pure functions and named constants, no I/O."""

from __future__ import annotations

import calendar
import math
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n3_notebook.core import retry
from n3_notebook.core.retry import (
    NO_RETRY,
    RETRY_STATUSES,
    RetryConfig,
    attempts_left,
    backoff_delay,
    next_delay,
    retry_after_seconds,
    should_retry_status,
)

CFG = RetryConfig()
NOW = float(calendar.timegm((2015, 10, 21, 7, 28, 0)))  # Wed, 21 Oct 2015 07:28:00 GMT


# --- RetryConfig -----------------------------------------------------------------------


def test_defaults() -> None:
    assert (CFG.max_attempts, CFG.base_delay, CFG.max_delay, CFG.jitter) == (3, 1.0, 60.0, 0.2)
    assert CFG.retry_statuses == RETRY_STATUSES
    assert NO_RETRY.max_attempts == 1


def test_default_statuses() -> None:
    for status in (408, 409, 429, 500, 502, 503, 504, 529):
        assert status in RETRY_STATUSES
        assert should_retry_status(status, None, CFG), status
    for status in (400, 401, 403, 404, 413, 422):
        assert status not in RETRY_STATUSES
        assert not should_retry_status(status, None, CFG), status
    for status in (200, 301, 418):
        assert not should_retry_status(status, {}, CFG)


def test_any_5xx_retried_when_500_listed() -> None:
    assert should_retry_status(501, None, CFG)
    assert should_retry_status(599, None, CFG)
    only_429 = RetryConfig(retry_statuses={429})
    assert isinstance(only_429.retry_statuses, frozenset)
    assert should_retry_status(429, None, only_429)
    assert not should_retry_status(500, None, only_429)
    assert not should_retry_status(503, None, only_429)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": -1},
        {"base_delay": -0.1},
        {"max_delay": -1},
        {"base_delay": math.nan},
        {"max_delay": math.nan},
        {"jitter": -0.01},
        {"jitter": 1.01},
        {"jitter": math.nan},
    ],
)
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryConfig(**kwargs)


def test_config_edges_allowed_and_frozen() -> None:
    cfg = RetryConfig(max_attempts=1, base_delay=0, max_delay=0, jitter=0)
    assert cfg.max_attempts == 1
    RetryConfig(jitter=1.0)
    with pytest.raises(AttributeError):
        cfg.max_attempts = 5  # type: ignore[misc]


def test_attempts_left() -> None:
    assert attempts_left(1, CFG)
    assert attempts_left(2, CFG)
    assert not attempts_left(3, CFG)
    assert not attempts_left(4, CFG)
    assert not attempts_left(1, NO_RETRY)


# --- x-should-retry --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_x_should_retry_true_overrides(value: str) -> None:
    assert should_retry_status(400, {"x-should-retry": value}, CFG)
    assert should_retry_status(400, httpx.Headers({"X-Should-Retry": value}), CFG)


@pytest.mark.parametrize("value", ["false", "False"])
def test_x_should_retry_false_overrides(value: str) -> None:
    assert not should_retry_status(503, {"x-should-retry": value}, CFG)
    assert not should_retry_status(429, httpx.Headers({"X-Should-Retry": value}), CFG)


def test_x_should_retry_other_values_ignored() -> None:
    assert should_retry_status(503, {"x-should-retry": "maybe"}, CFG)
    assert not should_retry_status(400, {"x-should-retry": ""}, CFG)


def test_header_lookup_is_case_insensitive_for_plain_dicts() -> None:
    assert not should_retry_status(503, {"X-Should-Retry": "false"}, CFG)
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"RETRY-AFTER-MS": "250"}) == 0.25


# --- retry_after_seconds ---------------------------------------------------------------


def test_retry_after_none_and_empty() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(httpx.Headers()) is None
    assert retry_after_seconds({"content-type": "application/json"}) is None


def test_retry_after_seconds_values() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": " 3 "}) == 3.0
    assert retry_after_seconds({"retry-after": "0"}) == 0.0
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5


def test_retry_after_ms_wins() -> None:
    headers = httpx.Headers({"retry-after": "30", "retry-after-ms": "1500"})
    assert retry_after_seconds(headers) == 1.5
    assert retry_after_seconds({"retry-after-ms": "0"}) == 0.0


def test_invalid_retry_after_ms_falls_back_to_retry_after() -> None:
    for bad in ("soon", "-5", "nan", "inf", ""):
        assert retry_after_seconds({"retry-after-ms": bad, "retry-after": "2"}) == 2.0, bad
        assert retry_after_seconds({"retry-after-ms": bad}) is None, bad


@pytest.mark.parametrize(
    "value", ["garbage", "", "-1", "-0.5", "nan", "inf", "-inf", "Wed, 21 Oct", "1 2", "1s"]
)
def test_retry_after_garbage_or_negative_is_none(value: str) -> None:
    assert retry_after_seconds({"retry-after": value}, now=NOW) is None


def test_retry_after_http_date() -> None:
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}
    assert retry_after_seconds(headers, now=NOW) == pytest.approx(30.0)
    assert retry_after_seconds(headers, now=NOW + 10) == pytest.approx(20.0)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    headers = {"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}
    assert retry_after_seconds(headers, now=NOW) == 0.0


def test_retry_after_http_date_uses_the_clock_by_default() -> None:
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 100))
    assert 95 <= retry_after_seconds({"retry-after": future}) <= 100.5  # type: ignore[operator]


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset")
def test_retry_after_http_date_without_zone_is_gmt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        for value in ("Wed, 21 Oct 2015 07:28:30 -0000", "Wed, 21 Oct 2015 07:28:30"):
            assert retry_after_seconds({"retry-after": value}, now=NOW) == pytest.approx(30.0)
    finally:
        monkeypatch.undo()
        time.tzset()


# --- backoff_delay ---------------------------------------------------------------------


def test_backoff_is_exponential_without_jitter() -> None:
    cfg = RetryConfig(base_delay=0.5, max_delay=100, jitter=0.0)
    assert [backoff_delay(a, cfg, rand=0.7) for a in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_capped_at_max_delay() -> None:
    cfg = RetryConfig(base_delay=1.0, max_delay=5.0, jitter=0.0)
    assert backoff_delay(3, cfg, rand=0) == 4.0
    assert backoff_delay(4, cfg, rand=0) == 5.0
    assert backoff_delay(50, cfg, rand=0) == 5.0


def test_backoff_huge_attempt_does_not_overflow() -> None:
    assert backoff_delay(10_000, CFG, rand=0) == CFG.max_delay
    assert backoff_delay(1025, RetryConfig(base_delay=1e-300, max_delay=7), rand=0) == 7.0
    assert backoff_delay(10**9, RetryConfig(base_delay=0), rand=0) == 0.0


def test_backoff_jitter_is_deterministic_with_rand() -> None:
    cfg = RetryConfig(base_delay=1.0, max_delay=60, jitter=0.2)
    assert backoff_delay(1, cfg, rand=0.0) == 1.0
    assert backoff_delay(1, cfg, rand=0.5) == pytest.approx(0.9)
    assert backoff_delay(2, cfg, rand=0.5) == pytest.approx(1.8)
    assert backoff_delay(1, cfg, rand=0.999999) == pytest.approx(0.8, abs=1e-5)


def test_backoff_with_real_randomness_stays_in_range() -> None:
    cfg = RetryConfig(base_delay=2.0, max_delay=60, jitter=0.5)
    values = {backoff_delay(2, cfg) for _ in range(200)}
    assert all(2.0 <= v <= 4.0 for v in values)
    assert len(values) > 1


def test_backoff_attempt_counts_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, CFG)


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(1, 1000),
    base=st.floats(0, 100),
    cap=st.floats(0, 1000),
    jitter=st.floats(0, 1),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_backoff_property(
    attempt: int, base: float, cap: float, jitter: float, rand: float
) -> None:
    cfg = RetryConfig(base_delay=base, max_delay=cap, jitter=jitter)
    raw = min(cap, math.ldexp(base, attempt - 1))
    delay = backoff_delay(attempt, cfg, rand=rand)
    assert 0.0 <= delay <= cap
    assert raw * (1 - jitter) - 1e-9 <= delay <= raw + 1e-9


# --- next_delay ------------------------------------------------------------------------


def _asked(headers, now=None):
    return retry_after_seconds(headers, now=now)


def test_next_delay_prefers_the_server() -> None:
    assert next_delay(1, CFG, _asked({"retry-after": "7"}), rand=0) == 7.0
    assert next_delay(3, CFG, _asked({"retry-after-ms": "20"}), rand=0) == pytest.approx(0.02)
    assert next_delay(1, CFG, _asked({"retry-after": "0"}), rand=0) == 0.0


def test_next_delay_caps_the_server_at_max_delay() -> None:
    assert next_delay(1, CFG, _asked({"retry-after": "3600"}), rand=0) == CFG.max_delay
    cfg = RetryConfig(max_delay=2.0)
    date = {"retry-after": "Wed, 21 Oct 2015 08:28:00 GMT"}
    assert next_delay(1, cfg, _asked(date, now=NOW)) == 2.0


def test_next_delay_falls_back_to_backoff() -> None:
    assert next_delay(2, CFG, None, rand=0) == 2.0
    assert next_delay(2, CFG, _asked({"retry-after": "garbage"}), rand=0) == 2.0
    assert next_delay(2, CFG, _asked({}), rand=0.5) == pytest.approx(1.8)


def test_named_constants() -> None:
    assert retry.DEFAULT_MAX_ATTEMPTS == 3
    assert retry.DEFAULT_BASE_DELAY == 1.0
    assert retry.DEFAULT_MAX_DELAY == 60.0
    assert retry.DEFAULT_JITTER == 0.2
    assert retry.BACKOFF_MULTIPLIER == 2.0
    assert isinstance(RETRY_STATUSES, frozenset)
