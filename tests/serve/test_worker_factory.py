"""The workers' app factory (app_from_env): the chains and settings from N3_SERVE_*
variables, and gc.freeze() of what loading made, unless N3_SERVE_GC_FREEZE=0."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from n3_notebook.serve.app import app_from_env
from n3_notebook.serve.settings import FILE_ENV, GC_FREEZE_ENV


@pytest.fixture
def chain_file(tmp_path, monkeypatch) -> Iterator[None]:
    file = tmp_path / "chains.n3"
    file.write_text('chain hello\ninput who = "world"\nstep a: emulator:demo\n    Hi {who}.\n')
    monkeypatch.setenv(FILE_ENV, str(file))
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the test process's objects go back to the collector


def test_the_worker_factory_freezes_what_loading_made(chain_file):
    assert gc.get_freeze_count() == 0
    app = app_from_env()
    assert "hello" in app.state.n3.chains
    assert gc.get_freeze_count() > 10_000  # the modules and the app, at the least


@pytest.mark.parametrize("off", ["0", "off", "false"])
def test_gc_freeze_can_be_turned_off(chain_file, monkeypatch, off):
    monkeypatch.setenv(GC_FREEZE_ENV, off)
    app_from_env()
    assert gc.get_freeze_count() == 0


def test_the_factory_says_what_to_set_without_a_file(monkeypatch):
    monkeypatch.delenv(FILE_ENV, raising=False)
    with pytest.raises(RuntimeError, match=FILE_ENV):
        app_from_env()
