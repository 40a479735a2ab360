"""Shared by every test: process-wide state that one test must not leave to the next.

The call log (n3_notebook.log) writes to a temporary file for the whole test run, never to
the user's data folder; the variable is set before any test makes a call and is inherited
by every kernel and server subprocess a test starts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from n3_notebook.core.limits import reset_rate_groups

_LOG_DIR = tempfile.mkdtemp(prefix="n3-test-log-")
os.environ["N3_LOG_DB"] = os.path.join(_LOG_DIR, "log.db")


@pytest.fixture(scope="session", autouse=True)
def _call_log_in_a_temporary_folder() -> Iterator[None]:
    yield
    shutil.rmtree(_LOG_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_rate_groups() -> Iterator[None]:
    """Rate budgets are shared by every call in a process (core/limits.py): a 429 in one
    test would otherwise slow the next test that talks to the same address and model."""
    reset_rate_groups()
    yield
    reset_rate_groups()
