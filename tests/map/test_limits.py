"""The shared rate budget (core/limits.py): buckets, headers, 429 cuts and recovery."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from n3_notebook.core.limits import (
    BURST_SECONDS,
    DEFAULT_OUTPUT_ESTIMATE,
    RECOVERY_SECONDS,
    UNMETERED_SECONDS,
    RateGroup,
    estimate_tokens,
    parse_reset,
    rate_group,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def group(clock: FakeClock | None = None) -> RateGroup:
    return RateGroup(("openai", "http://x", "m"), clock=clock or FakeClock())


def test_no_budget_means_no_wait() -> None:
    g = group()
    assert all(g._reserve(100)[0] == 0 for _ in range(1000))


def test_requests_are_paced_after_a_one_second_burst() -> None:
    clock = FakeClock()
    g = group(clock)
    g.configure(requests_per_minute=600)  # 10 a second
    waits = [g._reserve(0)[0] for _ in range(20)]
    burst = int(10 * BURST_SECONDS)
    assert waits[:burst] == [0.0] * burst
    assert waits[burst:] == pytest.approx([0.1 * k for k in range(1, 11)])
    clock.now += 5.0  # idle time refills up to the burst, no more
    assert [g._reserve(0)[0] for _ in range(burst)] == [0.0] * burst
    assert g._reserve(0)[0] == pytest.approx(0.1)


def test_tokens_are_paced_by_their_estimate() -> None:
    clock = FakeClock()
    g = group(clock)
    g.configure(tokens_per_minute=6000)  # 100 a second
    assert g._reserve(100)[0] == 0.0
    assert g._reserve(300)[0] == pytest.approx(3.0)


def test_estimate_counts_text_and_the_output_limit() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}
    assert estimate_tokens(body) == (len("m") + len("user") + 400) // 4 + 1 + 50
    assert estimate_tokens({"messages": []}) == 1 + DEFAULT_OUTPUT_ESTIMATE
    gemini = {
        "contents": [{"parts": [{"text": "abcd"}]}],
        "generationConfig": {"maxOutputTokens": 7},
    }
    assert estimate_tokens(gemini) == 1 + 1 + 7


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1m30.5s", 90.5), ("2", 2.0), ("", None)],
)
def test_openai_reset_durations(text: str, seconds: float | None) -> None:
    assert parse_reset(text) == (None if seconds is None else pytest.approx(seconds))


def test_anthropic_reset_times() -> None:
    assert parse_reset("2026-01-01T00:00:30Z", now=1767225600.0) == pytest.approx(30.0)
    assert parse_reset("2026-01-01T00:00:00Z", now=1767225600.0 + 5) == 0.0
    assert parse_reset("soon") is None


def test_budget_is_learned_from_openai_headers() -> None:
    g = group()
    g.observe(
        200,
        {
            "x-ratelimit-limit-requests": "120",
            "x-ratelimit-remaining-requests": "119",
            "x-ratelimit-reset-requests": "500ms",
            "x-ratelimit-limit-tokens": "6000",
            "x-ratelimit-remaining-tokens": "5990",
        },
        None,
    )
    stats = g.stats()
    assert stats.requests_per_minute == 120 and stats.tokens_per_minute == 6000


def test_requests_sent_before_the_rate_was_known_are_owed_to_the_first_bucket() -> None:
    """Eight requests go out before the first response says 1,200 a minute (a burst of 20):
    the upstream counted them, so only 12 more go at once, and what time paid back returns."""
    clock = FakeClock()
    g = group(clock)
    assert [g._reserve(0)[0] for _ in range(8)] == [0.0] * 8
    clock.now += 0.1  # two of the eight paid back at 20 a second
    g.observe(200, {"x-ratelimit-limit-requests": "1200"}, None)
    waits = [g._reserve(0)[0] for _ in range(15)]
    assert waits[:14] == [0.0] * 14 and waits[14] == pytest.approx(0.05)


def test_the_remaining_header_still_lowers_a_seeded_bucket() -> None:
    clock = FakeClock()
    g = group(clock)
    for _ in range(3):
        g._reserve(0)
    headers = {"x-ratelimit-limit-requests": "1200", "x-ratelimit-remaining-requests": "5"}
    g.observe(200, headers, None)  # others sent elsewhere: the upstream has 5 left, not 17
    assert [g._reserve(0)[0] == 0.0 for _ in range(6)] == [True] * 5 + [False]


def test_a_refused_request_is_not_owed() -> None:
    """Fifteen go out unmetered; the last is refused with the limit (the upstream never
    counted it): the first bucket owes fourteen, not fifteen."""
    clock = FakeClock()
    g = group(clock)
    for _ in range(15):
        g._reserve(0)
    g.observe(429, {"x-ratelimit-limit-requests": "1200"}, None)  # a burst of 20, 14 owed
    assert [g._reserve(0)[0] == 0.0 for _ in range(7)] == [True] * 6 + [False]


def test_unmetered_requests_of_long_ago_are_forgotten() -> None:
    clock = FakeClock()
    g = group(clock)
    for _ in range(30):
        g._reserve(0)
    clock.now += UNMETERED_SECONDS + 1
    g._reserve(0)  # the only one the upstream may still count
    g.configure(requests_per_minute=600)  # a burst of 10
    assert [g._reserve(0)[0] == 0.0 for _ in range(10)] == [True] * 9 + [False]


def test_a_smaller_configured_budget_wins_over_a_learned_one() -> None:
    g = group()
    g.observe(200, {"anthropic-ratelimit-requests-limit": "4000"}, None)
    g.configure(requests_per_minute=50)
    assert g.stats().requests_per_minute == 50


def test_nothing_left_pauses_until_one_request_is_back() -> None:
    clock = FakeClock()
    g = group(clock)
    g.observe(
        200,
        {
            "anthropic-ratelimit-requests-limit": "60",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z",
        },
        None,
    )
    wait = g._reserve(0)[0]
    assert 0 < wait <= 60.0  # a share of the reset time, capped, never the whole of it


def test_a_429_halves_the_rate_then_it_recovers() -> None:
    clock = FakeClock()
    g = group(clock)
    g.configure(requests_per_minute=600)
    g.observe(429, {}, 2.0)
    assert g.stats().requests_per_minute == pytest.approx(300)
    assert g._reserve(0)[0] == pytest.approx(2.0)  # the server's retry-after pauses all
    clock.now += RECOVERY_SECONDS / 2
    assert g.stats().requests_per_minute == pytest.approx(450)
    clock.now += RECOVERY_SECONDS
    assert g.stats().requests_per_minute == pytest.approx(600)
    assert g.stats().rate_limited == 1


def test_a_storm_of_429s_is_one_cut_and_repeated_storms_cut_further() -> None:
    clock = FakeClock()
    g = group(clock)
    g.configure(requests_per_minute=600)
    for _ in range(50):  # 50 in-flight requests refused at once
        g.observe(429, {}, 0.0)
    assert g.stats().requests_per_minute == pytest.approx(300)
    clock.now += 2.0
    g.observe(429, {}, 0.0)
    assert (g.stats().requests_per_minute or 0) < 300
    for _ in range(20):
        clock.now += 2.0
        g.observe(429, {}, 0.0)
    assert (g.stats().requests_per_minute or 0) >= 600 * 0.05 - 1e-9


def test_a_429_without_any_known_budget_slows_to_half_the_observed_rate() -> None:
    clock = FakeClock()
    g = group(clock)
    for _ in range(100):  # 100 requests in the last second: 600 a minute observed
        g._reserve(0)
        clock.now += 0.01
    g.observe(429, {}, None)
    rpm = g.stats().requests_per_minute
    assert rpm is not None and rpm == pytest.approx(0.5 * 100 * 60 / 1.0, rel=0.02)
    clock.now += RECOVERY_SECONDS + 1
    assert g.stats().requests_per_minute is None  # recovered: unlimited again


async def test_acquire_sleeps_and_a_cancelled_waiter_gives_its_slot_back() -> None:
    g = group(FakeClock())
    g.configure(requests_per_minute=60)  # burst of 1, then one a second
    assert await g.acquire() == 0.0
    waiter = asyncio.create_task(g.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # the refunded slot means the next one waits one interval, not two
    assert g._reserve(0)[0] == pytest.approx(1.0)


def test_groups_are_shared_per_provider_endpoint_and_model() -> None:
    a = rate_group("openai", "http://a", "m")
    assert rate_group("openai", "http://a", "m") is a
    assert rate_group("openai", "http://a", "n") is not a
    assert rate_group("openai", "http://b", "m") is not a


def test_one_budget_holds_across_threads_and_loops() -> None:
    """The blocking facade runs each call on its own loop in a thread: still one budget."""
    g = rate_group("openai", "http://threads", "m")
    g.configure(requests_per_minute=1200)  # 20 a second, burst 20
    start = time.perf_counter()

    def worker() -> None:
        async def go() -> None:
            for _ in range(10):
                await g.acquire()

        asyncio.run(go())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert g.stats().requests == 40
    assert elapsed >= (40 - 20) / 20 * 0.9  # the 20 past the burst took a second


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        group().configure(requests_per_minute=0)
    with pytest.raises(ValueError, match="tokens_per_minute"):
        group().configure(tokens_per_minute=-5)
