"""The comparison result (rows, medians, table, HTML, pandas) and pricing (no I/O)."""

from __future__ import annotations

import sys

import pytest

from n3_notebook.core import pricing, registry
from n3_notebook.core.compare import COLUMNS, ComparisonResult, summarize
from n3_notebook.core.types import LLMResponse, Usage


def resp(
    latency: float,
    ttft: float,
    out: int = 100,
    inp: int = 10,
    finish: str = "stop",
    provider: str = "openai",
    model: str = "gpt-4o-mini",
) -> LLMResponse:
    return LLMResponse(
        content="answer",
        model=model,
        provider=provider,
        finish_reason=finish,
        usage=Usage.of(inp, out),
        latency=latency,
        time_to_first_token=ttft,
    )


def test_summarize_takes_medians_over_repeat_runs() -> None:
    runs = [resp(1.0, 0.1, out=101), resp(9.0, 0.9, out=301), resp(2.0, 0.2, out=201)]
    row = summarize("openai:gpt-4o-mini", runs)
    assert list(row) == list(COLUMNS)
    assert row["model"] == "openai:gpt-4o-mini"
    assert row["ttft_s"] == pytest.approx(0.2)
    assert row["total_s"] == pytest.approx(2.0)
    assert row["input_tokens"] == 10 and row["output_tokens"] == 201
    # per-run rates: 101/0.9, 301/8.1, 201/1.8 -> the median is 201/1.8
    assert row["tokens_per_s"] == pytest.approx(201 / 1.8)
    assert row["finish_reason"] == "stop"
    assert row["runs"] == 3 and row["error"] is None
    assert row["cost_usd"] == pytest.approx(
        pricing.cost("openai", "gpt-4o-mini", Usage.of(10, 201))
    )


def test_summarize_ignores_failed_runs_for_medians() -> None:
    runs = [resp(1.0, 0.1), resp(50.0, 40.0, finish="error"), resp(3.0, 0.3)]
    row = summarize("openai:gpt-4o-mini", runs)
    assert row["total_s"] == pytest.approx(2.0) and row["ttft_s"] == pytest.approx(0.2)
    assert row["runs"] == 3


def test_error_rows() -> None:
    row = summarize("anthropic:claude-3-5-haiku-latest", [], "MissingAPIKeyError: no key")
    assert row["error"] == "MissingAPIKeyError: no key"
    assert row["finish_reason"] == "error"
    assert row["runs"] == 0
    for col in ("ttft_s", "total_s", "input_tokens", "output_tokens", "tokens_per_s", "cost_usd"):
        assert row[col] is None, col
    partial = summarize("openai:gpt-4o-mini", [resp(1.0, 0.5, finish="error")], "StreamError: x")
    assert partial["finish_reason"] == "error" and partial["runs"] == 1


def test_cost_uses_the_resolved_model() -> None:
    usage = Usage.of(1000, 500)
    flash = registry.resolve_model("flash")[1]
    assert flash is not None
    expected = pricing.cost("gemini", flash, usage)
    assert expected is not None and expected > 0
    # an alias, and a server that answers with a dated snapshot name
    row = summarize("flash", [resp(1, 0.1, 500, 1000, provider="gemini", model=flash)])
    assert row["cost_usd"] == pytest.approx(expected)
    snap = resp(1, 0.1, 500, 1000, model="gpt-4o-mini-2024-07-18")
    row = summarize("openai:gpt-4o-mini", [snap])
    assert row["cost_usd"] == pytest.approx(pricing.cost("openai", "gpt-4o-mini", usage))


def test_price_overrides_and_unknown_prices() -> None:
    usage = Usage.of(2_000_000, 1_000_000)
    assert pricing.cost("ollama", "llama3", usage) is None
    assert pricing.cost("openai", "no-such-model-anywhere", usage) is None
    assert pricing.cost("openai", "gpt-4o-mini", None) is None
    pricing.set_price("ollama:llama3", 0.5, 2.0)
    assert pricing.cost("ollama", "llama3", usage) == pytest.approx(3.0)
    pricing.set_price("gpt-4o-mini", 1.0, 1.0)  # a well-known name resolves to its provider
    assert pricing.cost("openai", "gpt-4o-mini", usage) == pytest.approx(3.0)
    pricing.clear_price("openai:gpt-4o-mini")
    assert pricing.cost("openai", "gpt-4o-mini", usage) != pytest.approx(3.0)
    with pytest.raises(ValueError):
        pricing.set_price("openai:gpt-4o-mini", -1, 0)
    with pytest.raises(ValueError):
        pricing.set_price("openai:gpt-4o-mini", float("nan"), 0)
    ollama = resp(1.0, 0.1, provider="ollama", model="llama3")
    assert summarize("ollama:llama3", [ollama])["cost_usd"] == pytest.approx(
        (10 * 0.5 + 100 * 2.0) / 1e6
    )
    pricing.clear_price("ollama:llama3")
    assert summarize("ollama:llama3", [ollama])["cost_usd"] is None


def test_cost_is_unknown_when_any_run_is_unknown() -> None:
    runs = [resp(1, 0.1, provider="ollama", model="llama3")] * 2
    assert summarize("ollama:llama3", runs)["cost_usd"] is None


def _result() -> ComparisonResult:
    ok = [resp(1.0, 0.25, out=120), resp(1.5, 0.35, out=120)]
    local = resp(2.0, 0.5, out=80, provider="ollama", model="llama3")
    result = ComparisonResult("Why is the sky blue?")
    result.runs = {"openai:gpt-4o-mini": ok, "ollama:llama3": [local], "anthropic:x": []}
    result.responses = {"openai:gpt-4o-mini": ok[-1], "ollama:llama3": local, "anthropic:x": None}
    result.errors = {"anthropic:x": "MissingAPIKeyError: <no key> & more"}
    result.rows = [
        summarize(spec, result.runs[spec], result.errors.get(spec)) for spec in result.runs
    ]
    return result


def test_table_text() -> None:
    result = _result()
    text = result.table_text()
    lines = text.splitlines()
    assert lines[0].split() == [
        "model",
        "ttft",
        "total",
        "in",
        "out",
        "tok/s",
        "finish",
        "cost",
        "runs",
    ]
    assert set(lines[1]) <= {"-", " "}
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    openai = rows["openai:gpt-4o-mini"]
    assert openai[1:5] == ["0.30s", "1.25s", "10", "120"]
    assert openai[6] == "stop" and openai[7].startswith("$") and openai[8] == "2"
    assert rows["ollama:llama3"][7] == "unknown"  # never a guess
    assert rows["anthropic:x"][1] == "—" and rows["anthropic:x"][6] == "error"
    assert lines[-1] == "anthropic:x: MissingAPIKeyError: <no key> & more"
    assert repr(result) == text
    assert result["ollama:llama3"].model == "llama3"


def test_html_table_escapes() -> None:
    html = _result()._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 4
    assert "unknown" in html and "first token" in html
    assert "&lt;no key&gt; &amp; more" in html and "<no key>" not in html


def test_to_pandas() -> None:
    pd = pytest.importorskip("pandas")
    df = _result().to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == ["openai:gpt-4o-mini", "ollama:llama3", "anthropic:x"]
    assert df.loc["openai:gpt-4o-mini", "runs"] == 2


def test_to_pandas_without_pandas_says_so(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pandas"):
        _result().to_pandas()
