"""amap / map_prompts over the emulator: order, rows, errors, cancellation, laziness,
rate limits, the cache and the result's views."""

from __future__ import annotations

import _thread
import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import n3_notebook
from n3_notebook import (
    AnthropicProvider,
    ConfigurationError,
    GeminiProvider,
    MapProgress,
    MapResult,
    OpenAIProvider,
    RetryConfig,
    amap,
    map_prompts,
)
from n3_notebook.core.cache import CACHE_DIR_ENV
from n3_notebook.core.limits import rate_group
from n3_notebook.emulator import Emulator, run_emulator

KEY = "sk-test-KEY-0123456789"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _isolated(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    emu.reset()
    emu.set_rate_limits(None, None)
    emu.set_pacing(0, 0)


def openai(emu: Emulator, model: str = "gpt-4o-mini", **kw: object) -> OpenAIProvider:
    return OpenAIProvider(model, base_url=emu.base_url("openai"), api_key=KEY, **kw)  # type: ignore[arg-type]


def prompts_sent(emu: Emulator) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in emu.records if r.body]


async def test_answers_keep_the_input_order(emu: Emulator) -> None:
    emu.set_pacing(0.001, 0)
    rows = [{"word": f"w{i}", "n": i} for i in range(30)]
    result = await amap("Define {word} ({n * 2})", rows, model=openai(emu), max_tokens=5)
    assert isinstance(result, MapResult) and len(result) == 30 and not result.errors
    assert all(response is not None for response in result)
    assert sorted(prompts_sent(emu)) == sorted(f"Define w{i} ({i * 2})" for i in range(30))
    assert result.usage.output_tokens == sum(r.usage.output_tokens for r in result if r)
    assert result.cost is not None and result.cost > 0  # gpt-4o-mini has a known price
    assert all(r.model == "gpt-4o-mini" for r in result if r)


async def test_plain_strings_fill_row(emu: Emulator) -> None:
    result = await amap("Say {row}", ["a", "b"], model=openai(emu))
    assert len(result) == 2 and sorted(prompts_sent(emu)) == ["Say a", "Say b"]


async def test_a_dataframe_gives_its_records(emu: Emulator) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"city": ["Paris", "Oslo"], "pop": [2, 1]})
    result = await amap("{city} has {pop}M people", df, model=openai(emu))
    assert sorted(prompts_sent(emu)) == ["Oslo has 1M people", "Paris has 2M people"]
    table = result.to_pandas()
    assert list(table["city"]) == ["Paris", "Oslo"]
    for column in ("answer", "input_tokens", "output_tokens", "latency_s", "cost_usd", "error"):
        assert column in table.columns
    assert table["answer"].notna().all() and table["error"].isna().all()


async def test_a_missing_field_fails_before_any_request(emu: Emulator) -> None:
    rows = [{"title": "x", "body": "y"}]
    with pytest.raises(ConfigurationError) as info:
        await amap("Summarise {text}", rows, model=openai(emu))
    message = str(info.value)
    assert "text" in message and "title, body" in message
    assert emu.records == []


async def test_one_bad_row_does_not_stop_the_others(emu: Emulator) -> None:
    rows = [{"t": "ok"}, {"t": None}, {"t": "fine"}]
    result = await amap("Upper {t.upper()}", rows, model=openai(emu))
    assert result[0] is not None and result[2] is not None
    assert result[1] is None and set(result.errors) == {1}
    assert "NoneType" in str(result.errors[1]) or "upper" in str(result.errors[1])
    assert len(emu.records) == 2


async def test_fail_fast_stops_at_the_first_error(emu: Emulator) -> None:
    rows = [{"t": None}] + [{"t": f"r{i}"} for i in range(50)]
    progress = MapProgress()
    with pytest.raises(ConfigurationError):
        await amap(
            "Upper {t.upper()}",
            [{"t": "first"}, *rows],
            model=openai(emu),
            fail_fast=True,
            max_concurrent=2,
            progress=progress,
        )
    assert len(emu.records) < 50 and 1 in progress.result.errors


async def test_a_provider_that_dies_mid_map_fails_only_the_rows_after() -> None:
    emulator = run_emulator(token_delay=0.002, first_token_delay=0).start()
    provider = OpenAIProvider(
        "gpt-4o-mini",
        base_url=emulator.base_url("openai"),
        api_key=KEY,
        retry=RetryConfig(max_attempts=1),
    )
    progress = MapProgress()
    rows = [f"q{i}" for i in range(200)]

    def on_update(p: MapProgress) -> None:
        if p.done >= 20 and emulator.running:
            emulator.stop()

    progress.on_update = on_update
    result = await amap("{row}", rows, model=provider, max_concurrent=4, progress=progress)
    assert len(result) == 200
    answered = [i for i, r in enumerate(result) if r is not None]
    assert len(answered) >= 20 and result.errors
    assert len(answered) + len(result.errors) == 200
    assert all(isinstance(e, n3_notebook.LLMError) for e in result.errors.values())


async def test_cancelling_keeps_every_finished_row(emu: Emulator) -> None:
    emu.set_pacing(0.005, 0)
    progress = MapProgress()
    task = asyncio.create_task(
        amap("{row}", [f"q{i}" for i in range(500)], model=openai(emu), progress=progress)
    )
    enough = asyncio.Event()
    progress.on_update = lambda p: enough.set() if p.done >= 15 else None
    await asyncio.wait_for(enough.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = progress.result
    assert partial.cancelled and 15 <= partial.texts.count(None) + 15 <= 500
    finished = [r for r in partial if r is not None]
    assert len(finished) >= 15 and all(r.content for r in finished)
    assert not progress.in_flight
    assert f"{len(finished)} answers" in repr(partial)  # rows cut short are not answers
    await asyncio.sleep(0.2)
    assert emu.open_connections() == 0


async def test_rows_are_pulled_lazily(emu: Emulator) -> None:
    pulled = 0
    worst = 0
    window = 4

    def rows() -> Iterator[str]:
        nonlocal pulled
        for i in range(300):
            pulled += 1
            yield f"q{i}"

    def on_update(p: MapProgress) -> None:
        nonlocal worst
        worst = max(worst, pulled - (p.done + p.failed))

    result = await amap(
        "{row}",
        rows(),
        model=openai(emu),
        max_concurrent=window,
        progress=MapProgress(on_update=on_update),
    )
    assert len(result) == 300 and not result.errors
    assert worst <= window


async def test_in_flight_never_exceeds_max_concurrent(emu: Emulator) -> None:
    emu.set_pacing(0.002, 0)
    peak = 0

    def on_update(p: MapProgress) -> None:
        nonlocal peak
        peak = max(peak, len(p.in_flight))

    await amap(
        "{row}",
        [str(i) for i in range(15)],
        model=openai(emu),
        max_concurrent=3,
        progress=MapProgress(on_update=on_update),
    )
    assert 1 <= peak <= 3


async def test_a_rerun_with_the_cache_sends_nothing(emu: Emulator) -> None:
    rows = [f"question {i}" for i in range(40)]
    first = await amap("{row}", rows, model=openai(emu), cache=True)
    assert first.cached == 0 and len(emu.records) == 40
    again = await amap("{row}", rows, model=openai(emu), cache=True)
    assert again.cached == 40 and len(emu.records) == 40
    assert again.texts == first.texts
    assert again.cost == 0.0 and again.usage == first.usage
    assert all(r is not None and r.metadata["cached"] for r in again)


async def test_a_requests_per_minute_budget_paces_the_map(emu: Emulator) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await amap(
        "{row}", [str(i) for i in range(30)], model=openai(emu), requests_per_minute=1200
    )
    elapsed = loop.time() - start
    assert not result.errors
    assert elapsed >= (30 - 20) / 20 * 0.9  # 20 a second after a burst of 20


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_the_budget_is_learned_from_the_emulators_headers(emu: Emulator, name: str) -> None:
    emu.set_rate_limits(requests_per_minute=3000)
    provider = (
        openai(emu)
        if name == "openai"
        else AnthropicProvider(
            "claude-3-5-haiku-latest", base_url=emu.base_url("anthropic"), api_key=KEY
        )
    )
    result = await amap("{row}", ["a", "b", "c"], model=provider)
    assert not result.errors
    stats = rate_group(provider.name, provider.base_url, provider.model).stats()
    assert stats.requests_per_minute == 3000


async def test_a_429_storm_slows_the_group_and_every_row_completes(emu: Emulator) -> None:
    """Gemini sends no budget headers: the group only learns from the 429s themselves."""
    emu.set_rate_limits(requests_per_minute=900, burst_seconds=1.0)  # 15 a second
    provider = GeminiProvider(
        "gemini-2.0-flash",
        base_url=emu.base_url("gemini"),
        api_key=KEY,
        retry=RetryConfig(max_attempts=2, base_delay=0.05, max_delay=1.0),
    )
    rows = [str(i) for i in range(45)]
    result = await amap("{row}", rows, model=provider, max_concurrent=20)
    assert not result.errors, {type(e).__name__ for e in result.errors.values()}
    stats = rate_group(provider.name, provider.base_url, provider.model).stats()
    assert emu.rate_limited >= 1 and stats.rate_limited >= 1


async def test_a_429_fault_storm_is_retried_to_completion(emu: Emulator) -> None:
    provider = openai(
        emu, "gpt-4o-mini~rate_limit:12", retry=RetryConfig(max_attempts=2, base_delay=0.01)
    )
    result = await amap("{row}", [str(i) for i in range(20)], model=provider, max_concurrent=5)
    assert not result.errors and len(result) == 20


def test_map_prompts_blocks_and_works_inside_a_running_loop(emu: Emulator) -> None:
    result = map_prompts("{row}", ["x", "y", "z"], model=openai(emu))
    assert len(result) == 3 and not result.errors

    async def inside() -> MapResult:
        return map_prompts("{row}!", ["x"], model=openai(emu))

    assert len(asyncio.run(inside())) == 1


def test_map_prompts_takes_a_model_string(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    result = map_prompts(
        "{row}", ["one"], model="openai:gpt-4o-mini", system="Be brief.", max_concurrent=2
    )
    assert result[0] is not None and result.model == "openai:gpt-4o-mini"
    assert emu.records[-1].body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_bad_rows_are_explained(emu: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="not a single str"):
        await amap("{row}", "abc", model=openai(emu))
    with pytest.raises(ConfigurationError, match="mapping"):
        await amap("{row}", [1, 2], model=openai(emu))
    empty = await amap("{row}", [], model=openai(emu))
    assert len(empty) == 0 and empty.cost == 0.0


async def test_progress_reports_eta_tokens_and_recent_answers(emu: Emulator) -> None:
    seen: list[tuple[int, float | None]] = []
    progress = MapProgress(on_update=lambda p: seen.append((p.done, p.eta)))
    result = await amap("{row}", [str(i) for i in range(12)], model=openai(emu), progress=progress)
    assert progress.total == 12 and progress.done == 12 and progress.failed == 0
    assert progress.eta == 0.0 and progress.tokens_per_s > 0
    assert len(progress.recent) == 5 and progress.recent[-1][1]
    assert progress.result is result
    assert any(eta is not None and eta > 0 for _, eta in seen)
    assert "12 answers" in repr(result)


def test_ctrl_c_during_map_prompts_keeps_the_finished_rows(emu: Emulator) -> None:
    emu.set_pacing(0.005, 0)
    progress = MapProgress()

    fired = threading.Event()

    def interrupt_after_some(p: MapProgress) -> None:
        if p.done >= 5 and not fired.is_set():
            fired.set()
            _thread.interrupt_main()  # what Ctrl-C does

    progress.on_update = interrupt_after_some
    with pytest.raises(KeyboardInterrupt):
        map_prompts("{row}", [str(i) for i in range(300)], model=openai(emu), progress=progress)
    partial = progress.result
    assert partial.cancelled and 5 <= len([r for r in partial if r is not None]) < 300
