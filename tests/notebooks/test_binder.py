"""binder/: what Binder (repo2docker) runs. `start` turns offline mode on when no provider
key is configured, and leaves it alone otherwise."""

from __future__ import annotations

import os
import subprocess

import pytest

from .nbenv import PROVIDER_VARS, ROOT

BINDER = ROOT / "binder"


def start_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.update(extra)
    out = subprocess.run(
        ["bash", str(BINDER / "start"), "env"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_start_turns_offline_mode_on_without_a_key() -> None:
    assert start_env()["N3_OFFLINE"] == "1"


@pytest.mark.parametrize(
    "key",
    [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "CO_API_KEY",
        "COHERE_API_KEY",
    ],
)
def test_start_leaves_offline_mode_off_with_a_key(key: str) -> None:
    assert "N3_OFFLINE" not in start_env(**{key: "sk-test-FAKE"})


def test_start_respects_an_explicit_choice() -> None:
    assert start_env(N3_OFFLINE="0")["N3_OFFLINE"] == "0"


def test_binder_files() -> None:
    for name in ("start", "postBuild"):
        path = BINDER / name
        assert os.access(path, os.X_OK), f"binder/{name} must be executable"
        subprocess.run(["bash", "-n", str(path)], check=True)
    assert "-e ." in (BINDER / "postBuild").read_text()  # installs this checkout
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    assert (ROOT / "notebooks" / "01-quickstart.ipynb").exists()  # what the badge opens
