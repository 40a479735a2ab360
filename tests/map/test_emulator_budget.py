"""The emulator's per-minute budgets: headers as OpenAI and Anthropic send them, 429 past
the budget in every provider's format, and a clean slate after reset()."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from n3_notebook.core.limits import parse_reset
from n3_notebook.emulator import Emulator, run_emulator
from n3_notebook.emulator.budget import BudgetTracker


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(emu: Emulator) -> Iterator[None]:
    emu.reset()
    yield
    emu.set_rate_limits(None, None)


def openai_post(emu: Emulator, content: str = "hi") -> httpx.Response:
    return httpx.post(
        emu.base_url("openai") + "/chat/completions",
        headers={"Authorization": "Bearer k"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]},
        timeout=10,
    )


def anthropic_post(emu: Emulator) -> httpx.Response:
    return httpx.post(
        emu.base_url("anthropic") + "/v1/messages",
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        json={
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}],
        },
        timeout=10,
    )


def test_no_budget_no_headers(emu: Emulator) -> None:
    r = openai_post(emu)
    assert r.status_code == 200 and "x-ratelimit-limit-requests" not in r.headers


def test_openai_budget_headers_and_429(emu: Emulator) -> None:
    emu.set_rate_limits(requests_per_minute=3, tokens_per_minute=100_000)
    seen = [openai_post(emu) for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    first = seen[0].headers
    assert first["x-ratelimit-limit-requests"] == "3"
    assert first["x-ratelimit-remaining-requests"] == "2"
    assert first["x-ratelimit-limit-tokens"] == "100000"
    assert int(first["x-ratelimit-remaining-tokens"]) < 100_000
    reset = parse_reset(first["x-ratelimit-reset-requests"])
    assert reset is not None and 0 < reset <= 60
    refused = seen[3]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert int(refused.headers["retry-after-ms"]) > 0
    assert emu.rate_limited == 1
    emu.reset()
    assert emu.rate_limited == 0 and openai_post(emu).status_code == 200


def test_anthropic_budget_headers(emu: Emulator) -> None:
    emu.set_rate_limits(requests_per_minute=2)
    first, second, third = (anthropic_post(emu) for _ in range(3))
    assert first.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert second.headers["anthropic-ratelimit-requests-remaining"] == "0"
    when = dt.datetime.fromisoformat(
        first.headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00")
    )
    assert when > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    assert third.status_code == 429
    assert third.json()["error"]["type"] == "rate_limit_error"


def test_a_token_budget_refuses_what_it_cannot_cover(emu: Emulator) -> None:
    emu.set_rate_limits(tokens_per_minute=50)  # smaller than one answer
    r = openai_post(emu)
    assert r.status_code == 429 and r.headers["x-ratelimit-limit-tokens"] == "50"


def test_budgets_are_per_model(emu: Emulator) -> None:
    emu.set_rate_limits(requests_per_minute=1)
    assert openai_post(emu).status_code == 200
    assert openai_post(emu).status_code == 429
    assert anthropic_post(emu).status_code == 200


def test_the_tracker_refills_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("n3_notebook.emulator.budget.time.monotonic", lambda: now[0])
    tracker = BudgetTracker()
    tracker.configure(60, None, burst_seconds=2)  # one a second, two at most
    verdicts = [tracker.charge("openai", "m", 10) for _ in range(3)]
    assert [v.allowed for v in verdicts if v] == [True, True, False]
    assert verdicts[2] is not None and verdicts[2].retry_after == pytest.approx(1.0)
    now[0] += 1.0
    allowed = tracker.charge("openai", "m", 10)
    assert allowed is not None and allowed.allowed
    with pytest.raises(ValueError):
        tracker.configure(0, None)
