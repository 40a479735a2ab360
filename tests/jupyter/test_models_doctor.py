"""`%llm models` (live listings, the defaults and why, tiers, aliases) and `%llm doctor`,
awaited as the input transformer runs them and called as plain magics."""

from __future__ import annotations

import pytest

from n3_notebook.core.catalog import clear_model_cache
from n3_notebook.core.defaults import DEFAULTS
from n3_notebook.doctor import DoctorReport
from n3_notebook.emulator import EMULATOR_MODELS
from n3_notebook.jupyter.commands import COMMANDS
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.listing import models_line, run_doctor_line
from n3_notebook.jupyter.magics import LINE_RUNNERS, LLMMagics
from n3_notebook.jupyter.transformer import CellTransformer

from .conftest import KEY


@pytest.fixture(autouse=True)
def _no_cached_listings() -> None:
    clear_model_cache()


def rows(table, provider: str) -> list[tuple[str, ...]]:
    return [r for r in table.rows if r[0] == provider]


async def test_live_listing_with_a_key(session) -> None:
    table = await models_line(session, "models openai")
    live = [r[1] for r in rows(table, "openai") if r[2] == "live"]
    assert live == EMULATOR_MODELS["openai"]
    tiers = {r[1] for r in rows(table, "openai") if r[2] == "tier"}
    assert f"openai:fast → {DEFAULTS['openai'].fast}" in tiers
    assert all(r[0] == "openai" for r in table.rows)  # only the provider asked for
    gemini = await models_line(session, "models gemini")
    flash = next(r for r in gemini.rows if r[1] == "gemini-3.8-flash")
    assert "1,048,576 tokens" in flash[3] and "Gemini 3.8 Flash" in flash[3]


async def test_defaults_and_the_reason_without_a_list(session) -> None:
    table = await models_line(session, "models")
    anthropic = rows(table, "anthropic")
    assert anthropic[0][1:3] == (DEFAULTS["anthropic"].model, "default")
    assert "ANTHROPIC_API_KEY is not set" in anthropic[0][3]
    ollama = rows(table, "ollama")  # OLLAMA_HOST points where nothing listens
    assert ollama[0][2] == "default" and "could not reach" in ollama[0][3]
    assert [r[1] for r in rows(table, "emulator") if r[2] == "emulator"] == ["demo"]
    assert KEY not in repr(table) and KEY not in table._repr_html_()


async def test_models_called_as_a_plain_magic_and_bad_input(session) -> None:
    table = COMMANDS["models"](session, ["openai"])  # not awaited: a private loop
    assert [r[1] for r in table.rows if r[2] == "live"] == EMULATOR_MODELS["openai"]
    with pytest.raises(CellError, match="Unknown provider"):
        await models_line(session, "models nosuch")
    with pytest.raises(CellError, match="usage"):
        await models_line(session, "models openai gemini")


async def test_doctor_awaited_and_plain(session) -> None:
    report = await run_doctor_line(session, "doctor openai gemini --timeout 10")
    assert isinstance(report, DoctorReport) and report.ok
    assert [c.provider for c in report.checks] == ["openai", "gemini"]
    text = repr(report)
    assert "OPENAI_API_KEY (set" in text and KEY not in text
    assert "<table" in report._repr_html_()
    plain = COMMANDS["doctor"](session, ["openai"])
    assert plain.checks[0].ok is True
    with pytest.raises(CellError, match="positive"):
        await run_doctor_line(session, "doctor --timeout 0")
    with pytest.raises(CellError, match="usage"):
        await run_doctor_line(session, "doctor --frobnicate")


def test_models_and_doctor_cells_are_awaited() -> None:
    t = CellTransformer(LLMMagics.__name__, {}, LINE_RUNNERS)
    assert "run_line_async('llm', 'models openai')" in t(["%llm models openai\n"])[0]
    assert "run_line_async('llm', 'doctor --timeout 5')" in t(["%llm doctor --timeout 5\n"])[0]
