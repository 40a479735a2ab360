"""The environment the demo notebooks are executed in: for saving their outputs
(`python -m tests.notebooks.refresh`), for nbval, and for the browser test.

Offline mode with no provider key and no reachable Ollama, so every answer comes from the
bundled emulator and depends only on the model and the conversation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = NOTEBOOKS / "nbval_sanitize.cfg"

#: Variables that would point a kernel at a real provider (or change the emulator's pace).
PROVIDER_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "CO_API_KEY",
    "COHERE_API_KEY",
    "OLLAMA_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GEMINI_BASE_URL",
    "CO_API_URL",
    "OLLAMA_HOST",
    "N3_OFFLINE",
    "N3_EMULATOR_TOKEN_DELAY",
    "N3_EMULATOR_FIRST_TOKEN_DELAY",
)

#: Fast pacing for nbval: a 300-token answer takes ~0.3 s. Not zero: the cancel demos in
#: 04 and 06 need a 2000-token answer to still be streaming after half a second.
TOKEN_DELAY = "0.001"
FIRST_TOKEN_DELAY = "0.01"


def notebook_env(
    ipython_dir: str | os.PathLike[str] | None = None,
    token_delay: str = TOKEN_DELAY,
    first_token_delay: str = FIRST_TOKEN_DELAY,
) -> dict[str, str]:
    """os.environ without provider settings, in offline mode, with the given pacing."""
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.update(
        N3_OFFLINE="1",
        N3_EMULATOR_TOKEN_DELAY=token_delay,
        N3_EMULATOR_FIRST_TOKEN_DELAY=first_token_delay,
        # nothing listens here: no local Ollama can change what the notebooks show
        OLLAMA_HOST="127.0.0.1:9",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONHASHSEED="0",
    )
    # the calls the notebooks make go to a scratch call log, not the user's own
    env["N3_LOG_DB"] = os.environ.get("N3_LOG_DB") or os.path.join(
        tempfile.gettempdir(), "n3-notebooks-log.db"
    )
    if ipython_dir is not None:  # no user profile or startup files
        env["IPYTHONDIR"] = str(ipython_dir)
    return env


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
