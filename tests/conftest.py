"""Shared by every test: process-wide state that one test must not leave to the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from n3_notebook.core.limits import reset_rate_groups


@pytest.fixture(autouse=True)
def _fresh_rate_groups() -> Iterator[None]:
    """Rate budgets are shared by every call in a process (core/limits.py): a 429 in one
    test would otherwise slow the next test that talks to the same address and model."""
    reset_rate_groups()
    yield
    reset_rate_groups()
