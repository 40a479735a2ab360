"""Distinctive fake keys for every provider, through success and failure paths: no key
appears in output, widget state, DEBUG logs, errors, reprs, %llm listings, the saved
notebook or the emulator's records; URLs with credentials are masked; no redirect is
followed with a key."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nbformat
import pytest
from nbclient import NotebookClient

from n3_notebook import APIStatusError, LLMError, RetryConfig, create_provider
from n3_notebook.emulator import run_emulator

KEYS = {
    "openai": "sk-proj-SECRETopenaiKEY7f3a9c0d1e2b",
    "anthropic": "sk-ant-api03-SECRETanthropicKEY9b8c7d",
    "gemini": "AIzaSyDSECRETgeminiKEY0123456789abcd",
    "cohere": "SECRETcohereKEYa1b2c3d4e5f6g7h8",
}
ENV = {
    "OPENAI_API_KEY": KEYS["openai"],
    "ANTHROPIC_API_KEY": KEYS["anthropic"],
    "GEMINI_API_KEY": KEYS["gemini"],
    "CO_API_KEY": KEYS["cohere"],
}
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
    "cohere": "command-r-plus",
}
FRAGMENTS = [k[8:24] for k in KEYS.values()]  # also catch partly echoed keys


def assert_clean(text: str, where: str) -> None:
    for key in KEYS.values():
        assert key not in text, f"a key leaked into {where}"
    for frag in FRAGMENTS:
        assert frag not in text, f"part of a key leaked into {where}"


@pytest.fixture(scope="module")
def emu():
    # each provider's route accepts only its own key
    with run_emulator(token_delay=0.001, api_keys={p: k for p, k in KEYS.items()}) as e:
        yield e


async def test_library_paths_leak_nothing(emu, caplog, monkeypatch):
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    caplog.set_level(logging.DEBUG)  # every logger, httpx included
    seen: list[str] = []

    def record(metrics) -> None:
        seen.append(repr(metrics))

    for name, model in MODELS.items():
        base = emu.base_url(name)
        good = create_provider(f"{name}:{model}", base_url=base, on_metrics=record)
        seen.append(repr(good))
        r = await good.agenerate("hello")
        seen += [repr(r), str(r.metadata)]
        async for chunk in good.stream_generate("hello"):
            seen.append(repr(chunk))
        for fault in (
            "invalid_key",
            "rate_limit:9",
            "status_500:9",
            "html_error:9",
            "midstream_error:2",
            "malformed:2",
        ):
            bad = create_provider(
                f"{name}:{model}~{fault}",
                base_url=base,
                retry=RetryConfig(max_attempts=2, base_delay=0.001),
            )
            with pytest.raises(LLMError) as info:
                async for _ in bad.stream_generate("hello"):
                    pass
            err = info.value
            seen += [str(err), repr(err), str(err.provider_message), str(err.__cause__)]
            await bad.aclose()
        wrong = create_provider(f"{name}:{model}", base_url=base, api_key="wrong-key-000000")
        with pytest.raises(LLMError) as info:
            await wrong.agenerate("hello")
        seen += [str(info.value), repr(info.value)]
        await good.aclose()
    assert_clean("\n".join(seen), "errors, reprs and metrics")
    assert_clean("\n".join(r.getMessage() for r in caplog.records), "DEBUG logs")
    assert_clean(
        repr(emu.records) + json.dumps([r.headers for r in emu.records]), "the emulator's records"
    )


def test_credentials_in_urls_are_masked():
    p = create_provider(
        "openai:gpt-4o-mini",
        api_key=KEYS["openai"],
        base_url="http://alice:hunter2secret@127.0.0.1:9/v1?key=AIzaQUERYsecret123456",
        retry=RetryConfig(max_attempts=1),
    )
    assert "hunter2secret" not in repr(p) and "AIzaQUERYsecret" not in repr(p)
    with pytest.raises(LLMError) as info:
        p.generate("hi")
    text = str(info.value) + repr(info.value)
    assert "hunter2secret" not in text and "AIzaQUERYsecret" not in text
    assert_clean(text, "a connection error")


def test_redirects_are_not_followed_with_the_key():
    """A server that redirects elsewhere never gets the key sent on: the other host sees
    nothing, and the user gets a clear error naming the (masked) target."""
    hits: list[dict] = []

    class Other(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{other.server_address[1]}/v1/chat/completions"

    class Redirector(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(307)
            self.send_header("location", target)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    first = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=first.serve_forever, daemon=True).start()
    try:
        p = create_provider(
            "openai:gpt-4o-mini",
            api_key=KEYS["openai"],
            base_url=f"http://127.0.0.1:{first.server_address[1]}/v1",
            retry=RetryConfig(max_attempts=1),
        )
        with pytest.raises(APIStatusError) as info:
            p.generate("hi")
        assert info.value.status_code == 307 and "redirect" in str(info.value)
        assert hits == []
        with pytest.raises(APIStatusError):
            asyncio.run(_stream_once(p))
        assert hits == []
    finally:
        first.shutdown()
        other.shutdown()


async def _stream_once(p):
    async for _ in p.stream_generate("hi"):
        pass


@pytest.mark.kernel
def test_saved_notebook_and_widget_state_leak_nothing(emu, tmp_path, monkeypatch):
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.base_url("anthropic"))
    monkeypatch.setenv("GEMINI_BASE_URL", emu.base_url("gemini"))
    monkeypatch.setenv("CO_API_URL", emu.base_url("cohere"))
    cells = [
        "%load_ext n3_notebook",
        "%llm providers",
        "%llm config",
        "%%llm openai:gpt-4o-mini -o ok\nSay hello",
        "%%llm openai:gpt-4o-mini anthropic:claude-3-5-haiku-latest gemini:gemini-2.0-flash "
        "cohere:command-r-plus cohere:command-r~invalid_key\nCompare",
        "%%llm anthropic:claude-3-5-haiku-latest~invalid_key\nFail",
        "%%llm gemini:gemini-2.0-flash~midstream_error:2\nFail later",
        "import os\nprint(repr(ok))\nprint({k: '***' for k in os.environ if k.endswith('KEY')})",
        "%llm last",
    ]
    nb = nbformat.v4.new_notebook()
    for src in cells:
        cell = nbformat.v4.new_code_cell(src)
        if "Fail" in src:
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=True, store_widget_state=True
    )
    client.execute()
    path = tmp_path / "secrets.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text()
    assert "widget-state" in saved or "application/vnd.jupyter.widget-view+json" in saved
    assert "Fail" in saved and "AuthenticationError" in saved  # the failures really ran
    assert_clean(saved, "the saved notebook (outputs and widget state)")
    assert_clean(repr(emu.records), "the emulator's records")
    assert os.environ["OPENAI_API_KEY"] == KEYS["openai"]
