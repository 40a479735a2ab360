"""The response cache (core/cache.py): keys, persistence, concurrency, corruption, and
cache=True on the provider calls (a hit sends no request)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from n3_notebook import LLMResponse, OpenAIProvider, StreamConfig, Usage
from n3_notebook.core.cache import (
    CACHE_DIR_ENV,
    FILENAME,
    ResponseCache,
    cache_dir,
    cache_key,
    response_cache,
)
from n3_notebook.core.http import RequestSpec
from n3_notebook.emulator import Emulator, run_emulator

KEY = "sk-secret-KEY-do-not-store-0123456789"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    return tmp_path / "cache"


def answer(text: str = "hello", **meta: object) -> LLMResponse:
    return LLMResponse(
        content=text,
        model="m",
        provider="openai",
        finish_reason="stop",
        usage=Usage.of(3, 4),
        raw_finish_reason="stop",
        request_id="req_1",
        metadata=dict(meta),
    )


def spec(**body: object) -> RequestSpec:
    return RequestSpec("POST", "/chat/completions", json={"model": "m", **body})


def test_the_key_follows_everything_that_changes_the_answer() -> None:
    base = cache_key("openai", "offline", spec(messages=[{"role": "user", "content": "a"}]))
    assert base == cache_key("openai", "offline", spec(messages=[{"role": "user", "content": "a"}]))
    others = {
        cache_key("openai", "offline", spec(messages=[{"role": "user", "content": "b"}])),
        cache_key("openai", "offline", spec(messages=[], temperature=0.5)),
        cache_key("anthropic", "offline", spec(messages=[{"role": "user", "content": "a"}])),
        cache_key("openai", "http://x", spec(messages=[{"role": "user", "content": "a"}])),
    }
    assert base not in others and len(others) == 4


def test_entries_survive_a_new_process_view(cache_home: Path) -> None:
    first = ResponseCache(cache_home)
    assert first.put("k", answer("kept"))
    first.close()
    again = ResponseCache(cache_home)
    hit = again.get("k")
    assert hit is not None and hit.content == "kept" and hit.metadata["cached"] is True
    assert hit.usage == Usage.of(3, 4) and hit.finish_reason == "stop"
    assert again.get("other") is None
    stats = again.stats()
    assert (stats.entries, stats.hits, stats.misses, stats.error) == (1, 1, 1, None)
    assert again.clear() == 1 and again.stats().entries == 0


def test_incomplete_answers_are_not_kept(cache_home: Path) -> None:
    cache = ResponseCache(cache_home)
    bad = answer()
    bad.finish_reason = "cancelled"
    assert not cache.put("a", bad)
    assert not cache.put("b", answer(stopped_by="max_chunks"))
    assert cache.stats().entries == 0


def test_the_directory_comes_from_the_environment(cache_home: Path) -> None:
    assert cache_dir() == cache_home
    assert response_cache().path == cache_home / FILENAME


def test_a_corrupt_file_is_reported_once_and_bypassed(cache_home: Path) -> None:
    cache_home.mkdir(parents=True)
    (cache_home / FILENAME).write_bytes(b"this is not a database" * 100)
    cache = ResponseCache(cache_home)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get("k") is None
        assert not cache.put("k", answer())
        assert cache.get("k") is None
    assert len(caught) == 1 and "cannot be used" in str(caught[0].message)
    assert "N3_CACHE_DIR" in str(caught[0].message)
    assert cache.stats().error is not None


def test_an_unwritable_directory_is_bypassed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = ResponseCache(blocker / "sub")  # a directory under a regular file
    with pytest.warns(RuntimeWarning):
        assert cache.get("k") is None


_WRITER = """
import sys
from n3_notebook.core.cache import ResponseCache
from n3_notebook import LLMResponse, Usage
cache = ResponseCache(sys.argv[1])
tag, count = sys.argv[2], int(sys.argv[3])
for i in range(count):
    r = LLMResponse(content=tag * 50, model="m", provider="openai", finish_reason="stop",
                    usage=Usage.of(1, 2))
    assert cache.put(f"{tag}-{i}", r), cache.error
    if i == 0:
        print("started", flush=True)
print("done", flush=True)
"""


def test_two_processes_write_at_once(cache_home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(cache_home), tag, "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
    cache = ResponseCache(cache_home)
    assert cache.stats().entries == 600
    assert cache.get("a-299") is not None and cache.get("b-0") is not None


def test_a_process_killed_while_writing_leaves_a_readable_cache(cache_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(cache_home), "k", "100000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    cache = ResponseCache(cache_home)
    stats = cache.stats()
    assert stats.error is None and stats.entries >= 1
    assert cache.get("k-0") is not None
    assert cache.put("after", answer())


async def test_agenerate_with_cache_answers_a_rerun_without_a_request(emu: Emulator) -> None:
    async with OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY) as p:
        emu.reset()
        first = await p.agenerate("What is a cache?", cache=True, temperature=0)
        assert not first.metadata.get("cached")
        again = await p.agenerate("What is a cache?", cache=True, temperature=0)
        assert again.metadata["cached"] is True and again.content == first.content
        assert again.usage == first.usage
        assert len(emu.records) == 1
        other = await p.agenerate("What is a cache?", cache=True, temperature=0.7)
        assert not other.metadata.get("cached") and len(emu.records) == 2
        plain = await p.agenerate("What is a cache?", temperature=0)
        assert not plain.metadata.get("cached") and len(emu.records) == 3
    blob = (Path(os.environ[CACHE_DIR_ENV]) / FILENAME).read_bytes()
    wal = Path(os.environ[CACHE_DIR_ENV]) / (FILENAME + "-wal")
    blob += wal.read_bytes() if wal.exists() else b""
    assert KEY.encode() not in blob


async def test_a_stream_is_replayed_from_the_cache(emu: Emulator) -> None:
    async with OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY) as p:
        emu.reset()
        chunks = [c async for c in p.stream_generate("Tell me about streams", cache=True)]
        text = "".join(c.content for c in chunks)
        replay = [c async for c in p.stream_generate("Tell me about streams", cache=True)]
        assert len(emu.records) == 1
        assert "".join(c.content for c in replay) == text
        assert replay[-1].finish_reason == "stop"
        assert (replay[-1].metadata or {}).get("cached") is True
        assert replay[-1].usage == chunks[-1].usage
        # the non-streaming call finds the streamed answer (same key)
        whole = await p.agenerate("Tell me about streams", cache=True)
        assert whole.metadata["cached"] is True and whole.content == text
        assert len(emu.records) == 1


async def test_a_cut_short_stream_is_not_kept(emu: Emulator) -> None:
    async with OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY) as p:
        emu.reset()
        cfg = StreamConfig(max_chunks=2)
        [c async for c in p.stream_generate("Long one", stream_config=cfg, cache=True)]
        full = await p.agenerate("Long one", cache=True)
        assert not full.metadata.get("cached") and len(emu.records) == 2


def test_blocking_generate_uses_the_cache(emu: Emulator) -> None:
    p = OpenAIProvider("gpt-4o-mini", base_url=emu.base_url("openai"), api_key=KEY)
    emu.reset()
    a = p.generate("sync question", cache=True)
    b = p.generate("sync question", cache=True)
    assert b.metadata["cached"] and a.content == b.content and len(emu.records) == 1


def test_the_cache_is_written_by_sqlite_in_wal_mode(cache_home: Path) -> None:
    cache = ResponseCache(cache_home)
    cache.put("k", answer())
    code = textwrap.dedent(
        f"""
        import sqlite3
        c = sqlite3.connect({str(cache_home / FILENAME)!r})
        print(c.execute("PRAGMA journal_mode").fetchone()[0])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "wal"
