"""The demo notebooks run top to bottom offline and still produce their saved outputs.

One `pytest --nbval` subprocess (outputs compared, not --nbval-lax; sanitized with
notebooks/nbval_sanitize.cfg) runs every selected notebook in a clean environment: no
provider keys, N3_OFFLINE=1, fast emulator pacing. Each notebook is then one test here,
failing with nbval's own report of the cells that differ. The same run includes a copy of
the quickstart whose saved answer was altered, which must fail: drift is caught.

After an intended change: `python -m tests.notebooks.refresh` re-saves the outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .nbenv import NOTEBOOKS, ROOT, SANITIZE, notebook_env, notebook_paths

pytest.importorskip("nbval", reason="nbval is not installed (pip install -e '.[test]')")
nbformat = pytest.importorskip("nbformat")

# nbval drives real kernels; the first test waits for the whole nbval run (~20 s here)
pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

PATHS = notebook_paths()
DRIFT = "drift-01-quickstart"
SUBPROCESS_TIMEOUT = 400


@dataclass
class NotebookRun:
    cells: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass
class NbvalRun:
    returncode: int
    output: str
    notebooks: dict[str, NotebookRun]


def _make_drifted_copy(directory: Path) -> Path:
    """The quickstart's first two code cells, with the saved answer's last word changed."""
    nb = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup, first = code[0], code[1]
    answer = next(o for o in first.outputs if "text/markdown" in o.get("data", {}))
    for mime in ("text/markdown", "text/plain"):
        words = answer.data[mime].rsplit(" ", 1)
        answer.data[mime] = f"{words[0]} drifted"  # the sanitizers must not hide this
    nb.cells = [setup, first]
    path = directory / f"{DRIFT}.ipynb"
    nbformat.write(nb, path)
    return path


def _selected_stems(session: pytest.Session) -> list[str]:
    stems = []
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ == __name__ and hasattr(item, "callspec"):
            stems.append(item.callspec.params.get("stem"))
    return [s for s in stems if s] or [p.stem for p in PATHS]


def _parse_junit(path: Path) -> dict[str, NotebookRun]:
    runs: dict[str, NotebookRun] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        stem = classname.removesuffix(".ipynb").rsplit(".", 1)[-1]
        run = runs.setdefault(stem, NotebookRun())
        cell = case.get("name", "")
        run.cells.append(cell)
        for tag in ("failure", "error"):
            problem = case.find(tag)
            if problem is not None:
                run.failed[cell] = (problem.get("message") or "") + "\n" + (problem.text or "")
        if case.find("skipped") is not None:
            run.skipped.append(cell)
    return runs


@pytest.fixture(scope="session")
def nbval_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("nbval")
    stems = _selected_stems(request.session)
    paths = [str(NOTEBOOKS / f"{s}.ipynb") for s in stems if s != DRIFT]
    if DRIFT in stems:
        paths.append(str(_make_drifted_copy(work)))
    junit = work / "nbval.xml"
    ipython_dir = work / "ipython"
    ipython_dir.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval",
        "--nbval-current-env",
        f"--nbval-sanitize-with={SANITIZE}",
        "--nbval-cell-timeout=60",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        f"-c={ROOT / 'pyproject.toml'}",
        "--rootdir=/",  # node ids name the drifted copy (outside the repo) too
        f"--junitxml={junit}",
        "-q",
        "--color=no",
        *paths,
    ]
    env = notebook_env(ipython_dir)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    if not junit.exists():
        pytest.fail(f"nbval did not run (exit {proc.returncode}):\n{output[-4000:]}")
    return NbvalRun(proc.returncode, output, _parse_junit(junit))


def _code_cells(path: Path) -> int:
    return sum(1 for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("stem", [p.stem for p in PATHS])
def test_notebook_outputs_match(nbval_run: NbvalRun, stem: str) -> None:
    run = nbval_run.notebooks.get(stem)
    assert run is not None, f"nbval did not run {stem}:\n{nbval_run.output[-4000:]}"
    assert not run.failed, (
        f"{stem}: cells differ from the saved outputs or failed:\n"
        + "\n".join(f"--- {cell}\n{text[-3000:]}" for cell, text in run.failed.items())
        + "\n(after an intended change: python -m tests.notebooks.refresh)"
    )
    assert not run.skipped, f"{stem}: nbval skipped {run.skipped}"
    assert len(run.cells) == _code_cells(NOTEBOOKS / f"{stem}.ipynb")


@pytest.mark.parametrize("stem", [DRIFT])
def test_drifted_outputs_fail(nbval_run: NbvalRun, stem: str) -> None:
    run = nbval_run.notebooks.get(stem)
    assert run is not None, f"nbval did not run the drifted copy:\n{nbval_run.output[-4000:]}"
    assert list(run.failed) == ["Cell 1"], run.failed  # the setup cell still matches
    assert "Cell outputs differ" in run.failed["Cell 1"], run.failed["Cell 1"]
    assert nbval_run.returncode != 0


def test_saved_notebooks_are_clean() -> None:
    """Every code cell has run, in order, with outputs saved; failures only where tagged."""
    assert [p.stem for p in PATHS] == [
        "01-quickstart",
        "02-compare-models",
        "03-chains",
        "04-streaming-and-cancel",
        "05-local-models-with-ollama",
        "06-python-api",
        "07-working-over-data",
        "08-images-tools-structured",
        "09-serve-a-chain",
        "10-call-log",
    ]
    for path in PATHS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", path.name
        assert "widgets" not in nb.metadata, f"{path.name}: saved widget state (refresh it)"
        counts = []
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            tags = cell.metadata.get("tags", [])
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert bool(errors) == ("raises-exception" in tags), (path.name, cell.source[:60])
            assert "nbval-skip" not in tags and "nbval-ignore-output" not in tags, path.name
            counts.append(cell.execution_count)
        assert counts == list(range(1, len(counts) + 1)), (path.name, counts)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.outputs and first.outputs[0].get("name") == "stdout", path.name
        assert "Offline mode" in first.outputs[0].text, path.name
