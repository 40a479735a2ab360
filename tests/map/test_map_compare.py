"""Several models over one dataset (core/map_compare.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from n3_notebook import MapComparison, MapProgress, amap_models
from n3_notebook.core.cache import CACHE_DIR_ENV
from n3_notebook.emulator import Emulator, run_emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _offline_on(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.base_url("anthropic"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    emu.reset()


MODELS = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]
ROWS = [{"review": "great"}, {"review": "awful"}, {"review": "fine"}]


async def test_answers_side_by_side_and_a_summary_per_model(emu: Emulator) -> None:
    comparison = await amap_models("Sentiment of: {review}", iter(ROWS), models=MODELS)
    assert isinstance(comparison, MapComparison) and comparison.models == MODELS
    assert len(emu.records) == 6
    rows = comparison.rows()
    assert [r["review"] for r in rows] == ["great", "awful", "fine"]
    assert all(isinstance(r[m], str) and r[m] for r in rows for m in MODELS)
    summary = {s["model"]: s for s in comparison.summary()}
    for model in MODELS:
        s = summary[model]
        assert s["rows"] == 3 and s["errors"] == 0 and s["cached"] == 0
        assert s["latency_p50_s"] is not None and s["latency_p95_s"] >= s["latency_p50_s"]
        assert s["output_tokens"] > 0 and s["cost_usd"] is not None
    text = comparison.table_text()
    assert all(m in text for m in MODELS) and "p95" in text
    assert "<table>" in comparison._repr_html_()


async def test_pandas_views_and_the_chart(emu: Emulator) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    comparison = await amap_models("{review}", ROWS, models=MODELS, cache=True)
    frame = comparison.to_pandas()
    assert list(frame.columns) == ["review", *MODELS]
    summary = comparison.summary_pandas()
    assert list(summary.index) == MODELS and "latency_p95_s" in summary.columns
    figure = comparison.plot()
    assert len(figure.axes) == 3
    again = await amap_models("{review}", ROWS, models=MODELS, cache=True)
    assert all(s["cached"] == 3 for s in again.summary())
    assert all(s["cost_usd"] == 0.0 for s in again.summary())


async def test_cancelling_keeps_each_models_finished_rows(emu: Emulator) -> None:
    emu.set_pacing(0.005, 0)
    try:
        tracks = {m: MapProgress() for m in MODELS}
        seen = asyncio.Event()
        for track in tracks.values():
            track.on_update = lambda p: seen.set() if p.done >= 3 else None
        task = asyncio.create_task(
            amap_models("{row}", [str(i) for i in range(200)], models=MODELS, progress=tracks)
        )
        await asyncio.wait_for(seen.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert any(t.result.cancelled for t in tracks.values())
        assert sum(t.done for t in tracks.values()) >= 3
    finally:
        emu.set_pacing(0, 0)


async def test_no_models_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        await amap_models("{row}", ["a"], models=[])
