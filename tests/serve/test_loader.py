"""Chain files and notebooks as the server reads them; `%chain serve`; layering."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from n3_notebook.chain import Chain
from n3_notebook.chain.model import REQUIRED
from n3_notebook.serve import ChainFileError, load_chains, parse_chain_file, parse_notebook

from .conftest import TWO_STEP

pytestmark = pytest.mark.timeout(60)

MULTI = """\
# two chains in one file
chain triage -m openai:gpt-4o-mini     # default model for steps without one
input ticket
step label:
    Label this ticket: {ticket}
step reply: anthropic:claude-3-5-haiku-latest
    Reply to this {label} ticket: {ticket}

%%chain summary --define
input text = "nothing"
step short: openai:gpt-4o-mini, max_tokens=20
    Summarize: {text}
"""


def test_several_chains_with_headers():
    chains = parse_chain_file(MULTI)
    assert list(chains) == ["triage", "summary"]
    triage, summary = chains["triage"], chains["summary"]
    assert triage.name == "triage" and triage.default_model == "openai:gpt-4o-mini"
    assert triage.inputs == {"ticket": REQUIRED} and triage.step_names == ["label", "reply"]
    assert triage.step("label").model is None
    assert triage.step("reply").model == "anthropic:claude-3-5-haiku-latest"
    assert summary.inputs == {"text": "nothing"} and summary.step("short").params == {
        "max_tokens": 20
    }
    assert summary.default_model is None


def test_file_without_header_is_one_chain_named_after_it(tmp_path):
    path = tmp_path / "my-brief.n3"
    path.write_text(Chain.parse(TWO_STEP, "brief").to_text(), encoding="utf-8")  # %chain export
    chains = load_chains(path)
    assert list(chains) == ["my-brief"]
    assert chains["my-brief"].step_names == ["outline", "answers"]
    assert chains["my-brief"].step("answers").system == "Be brief."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chain a\nstep x openai:gpt-4o-mini\n    hi\n", "f.n3, chain 'a': line 2:"),
        ("input x\nchain a\nstep s: demo\n    hi\n", "f.n3, line 1: text before the first"),
        (
            "chain a\nstep s: demo\n    hi\nchain a\nstep t: demo\n    ho\n",
            "f.n3, line 4: a second chain named 'a'",
        ),
        ("chain\nstep s: demo\n    hi\n", "f.n3, line 1: write `chain NAME`"),
        ("chain a/b\nstep s: demo\n    hi\n", "URL segment"),
        ("chain a -m\nstep s: demo\n    hi\n", "-m needs a model"),
        ("chain a\n\n\nstep s: demo\n    hi\nbogus\n", "f.n3, chain 'a': line 6:"),
    ],
)
def test_errors_name_file_and_line(text, message):
    with pytest.raises(ChainFileError) as info:
        parse_chain_file(text, source="f.n3")
    assert message in str(info.value)


def _notebook(*cells: tuple[str, str]) -> str:
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": kind,
                    "metadata": {},
                    "source": src.splitlines(keepends=True),
                    **({"outputs": [], "execution_count": None} if kind == "code" else {}),
                }
                for kind, src in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_notebook_cells():
    nb = _notebook(
        ("markdown", "%%chain not_code\nstep a: demo\n    hi\n"),
        ("code", "%load_ext n3_notebook"),
        ("code", "%%chain brief -o result\ninput topic\nstep a: demo\n    first {topic}\n"),
        ("code", "%%chain --background\nstep a: demo\n    unnamed: skipped\n"),
        ("code", "%%chain helper -m openai:gpt-4o-mini\nstep a:\n    help\n"),
        ("code", "%%chain brief\ninput topic\nstep b: demo\n    second {topic}\n"),
    )
    chains = parse_notebook(nb, "demo.ipynb")
    assert list(chains) == ["brief", "helper"]
    assert chains["brief"].step_names == ["b"]  # the later cell wins, as after Run All
    assert chains["helper"].default_model == "openai:gpt-4o-mini"


def test_notebook_errors(tmp_path):
    bad = _notebook(("code", "%%chain brief\nstep a: demo\n    hi\noops\n"))
    with pytest.raises(ChainFileError, match=r"demo.ipynb, cell 1 \(chain 'brief'\): line 4"):
        parse_notebook(bad, "demo.ipynb")
    with pytest.raises(ChainFileError, match="no `%%chain NAME` cell"):
        parse_notebook(_notebook(("code", "print(1)")), "x.ipynb")
    with pytest.raises(ChainFileError, match="not a notebook"):
        parse_notebook("{}", "x.ipynb")
    with pytest.raises(ChainFileError, match="cannot read"):
        load_chains(tmp_path / "missing.n3")
    path = tmp_path / "nb.ipynb"
    path.write_text(_notebook(("code", "%%chain one\nstep a: demo\n    hi\n")), encoding="utf-8")
    assert list(load_chains(path)) == ["one"]


def test_repository_notebooks_load_if_they_define_chains():
    from pathlib import Path

    for nb in sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb")):
        text = nb.read_text(encoding="utf-8")
        if re.search(r'"%%chain [A-Za-z]', text):
            assert parse_notebook(text, str(nb))


def test_chain_serve_magic(monkeypatch, capsys):
    from n3_notebook.jupyter.chain_commands import chain_command
    from n3_notebook.jupyter.errors import CellError
    from n3_notebook.jupyter.session import NotebookSession

    monkeypatch.setenv("N3_OFFLINE", "1")
    monkeypatch.setenv("N3_EMULATOR_TOKEN_DELAY", "0")
    monkeypatch.setenv("N3_EMULATOR_FIRST_TOKEN_DELAY", "0")
    chain = Chain.parse("input who\nstep a:\n    Greet {who} in a {tone} tone.\n", "greet")
    session = NotebookSession(namespace={"tone": "dry", "other": 1})
    session.chains["greet"] = chain
    chain_command(session, ["serve", "greet", "--port", "0"])
    out = capsys.readouterr().out
    url = re.search(r"(http://127\.0\.0\.1:\d+)/chains/greet/run", out).group(1)
    try:
        r = httpx.post(f"{url}/chains/greet/run", json={"who": "Ada"}, timeout=10)
        assert r.status_code == 200 and r.json()["steps"]["a"]["model"] == "emulator:demo"
        chain_command(session, ["serve", "greet", "--port", "0"])  # again: a new server
        url2 = re.search(r"(http://127\.0\.0\.1:\d+)/", capsys.readouterr().out).group(1)
        assert httpx.get(f"{url2}/healthz").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=2)
    finally:
        chain_command(session, ["serve", "greet", "--stop"])
    assert "stopped chain greet" in capsys.readouterr().out
    with pytest.raises(CellError, match="usage: %chain serve"):
        chain_command(session, ["serve", "greet", "--port", "nope"])
    with pytest.raises(CellError, match="no chain named 'nope'"):
        chain_command(session, ["serve", "nope"])


def test_serve_package_is_not_imported_by_the_library():
    code = (
        "import sys, n3_notebook, n3_notebook.core, n3_notebook.chain, n3_notebook.providers\n"
        "n3_notebook.Chain, n3_notebook.create_provider\n"
        "import n3_notebook.__main__\n"
        "print(sorted(m for m in sys.modules if m.startswith(('fastapi', 'prometheus_client',"
        " 'n3_notebook.serve'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "[]"
