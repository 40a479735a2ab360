"""Clients unchanged against the gateway: LangChain's ChatOpenAI (langchain-openai) and
simonw/llm's OpenAI-compatible model configuration (extra-openai-models.yaml) each stream a
chat through a route and a chain, with a token of the server as their API key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from n3_notebook.serve.gateway_config import parse_gateway_config

TOKEN = "tok-clients-0123456789abcdef"
ROUTES = '[routes]\nfast = ["openai:gpt-4o-mini~status_529:1000", "haiku"]\n'


@pytest.fixture
def gateway(serve: Any) -> Any:
    return serve(tokens={"clients": TOKEN}, gateway_config=parse_gateway_config(ROUTES))


def test_langchain_chat_openai(gateway: Any) -> None:
    chat_models = pytest.importorskip("langchain_openai")
    for model in ("fast", "chain:brief"):
        llm = chat_models.ChatOpenAI(
            model=model, base_url=f"{gateway.url}/v1", api_key=TOKEN, max_retries=0
        )
        pieces = [c.content for c in llm.stream("owls")]
        assert len(pieces) > 2 and "".join(pieces)
        answer = llm.invoke([("system", "Be brief."), ("human", "owls")])
        assert answer.content
        assert answer.usage_metadata["output_tokens"] > 0


def _llm_command() -> list[str] | None:
    exe = Path(sys.executable).with_name("llm")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("llm")
    return [found] if found else None


def test_simonw_llm_openai_compatible_model(gateway: Any, tmp_path: Path) -> None:
    pytest.importorskip("llm")
    command = _llm_command()
    if command is None:
        pytest.skip("the llm command is not installed")
    (tmp_path / "keys.json").write_text(json.dumps({"n3": TOKEN}))
    (tmp_path / "extra-openai-models.yaml").write_text(
        "".join(
            f"- model_id: n3-{name}\n"
            f"  model_name: {model}\n"
            f"  api_base: {gateway.url}/v1\n"
            "  api_key_name: n3\n"
            for name, model in (("fast", "fast"), ("brief", "chain:brief"))
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("N3_", "OPENAI_"))}
    env["LLM_USER_PATH"] = str(tmp_path)
    for model_id in ("n3-fast", "n3-brief"):
        out = subprocess.run(
            [*command, "-m", model_id, "--no-log", "owls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip()
