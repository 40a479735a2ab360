"""Starting and stopping, disconnect observation, pacing overrides, the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from n3_notebook.emulator import (
    OFFLINE_API_KEY,
    Emulator,
    get_offline_emulator,
    run_emulator,
)

from .emu_wire import (
    anthropic_req,
    cohere_req,
    gemini_req,
    ollama_req,
    openai_req,
)

ROOT = Path(__file__).resolve().parents[2]


def _emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("n3-emulator:")]


# -- disconnects -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow() -> Emulator:
    with run_emulator(token_delay=0.05, first_token_delay=0) as emulator:
        yield emulator


@pytest.mark.parametrize(
    "req",
    [
        openai_req(stream=True),
        anthropic_req(stream=True),
        gemini_req(stream=True),
        cohere_req(stream=True),
        ollama_req(stream=True),
    ],
    ids=["openai", "anthropic", "gemini", "cohere", "ollama"],
)
async def test_client_close_is_seen_within_200ms(slow, req):
    slow.reset()
    path, body, headers = req
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{slow.port}") as client:
        async with client.stream("POST", path, json=body, headers=headers) as response:
            received = 0
            async for _ in response.aiter_raw():
                received += 1
                if received == 2:
                    break
            assert slow.open_connections() == 1
            closed_by_client = time.monotonic()
        record = await slow.wait_for_close(-1, timeout=2.0)
    assert record.closed_at is not None
    assert record.closed_at - closed_by_client < 0.2
    assert record.client_disconnected is True and record.completed is False
    assert 1 <= record.chunks_sent <= 5
    assert record.status == 200 and record.stream is True
    assert slow.open_connections() == 0


async def test_cancelled_non_stream_request_is_recorded(slow):
    slow.reset()
    path, body, headers = openai_req()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{slow.port}") as client:
        task = asyncio.create_task(client.post(path, json=body, headers=headers))
        await asyncio.sleep(0.2)
        assert slow.open_connections() == 1
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
    record = await slow.wait_for_close(-1, timeout=2.0)
    assert record.closed_at - cancelled_at < 0.2
    assert record.client_disconnected and record.chunks_sent == 0 and not record.completed


def test_wait_for_close_sync_and_timeout(slow):
    slow.reset()
    path, body, headers = ollama_req(options={"num_predict": 3})
    with httpx.Client(base_url=f"http://127.0.0.1:{slow.port}") as client:
        client.post(path, json=body, headers=headers)
    record = slow.wait_for_close_sync(0, timeout=2.0)
    assert record.completed and record.tokens_sent == 0 and record.chunks_sent == 1
    with pytest.raises(TimeoutError):
        slow.wait_for_close_sync(5, timeout=0.05)


def test_records_are_snapshots(emu):
    with httpx.Client(base_url=f"http://127.0.0.1:{emu.port}") as client:
        path, body, headers = openai_req()
        client.post(path, json=body, headers=headers)
    first = emu.records
    first[0].status = 999
    assert emu.records[0].status == 200


# -- starting and stopping -------------------------------------------------------------


def test_sync_start_twice_without_leaking_threads():
    before = len(_emulator_threads())
    for _ in range(2):
        with run_emulator(token_delay=0, first_token_delay=0) as emu:
            assert emu.running and emu.port > 0
            assert emu.base_urls == {
                "openai": f"http://127.0.0.1:{emu.port}/v1",
                "anthropic": f"http://127.0.0.1:{emu.port}",
                "gemini": f"http://127.0.0.1:{emu.port}",
                "cohere": f"http://127.0.0.1:{emu.port}",
                "ollama": f"http://127.0.0.1:{emu.port}",
            }
            assert emu.base_url("openai").endswith("/v1")
            r = httpx.get(f"{emu.base_url('ollama')}/api/tags")
            assert r.status_code == 200
        assert not emu.running
    assert len(_emulator_threads()) == before
    with pytest.raises(ValueError):
        emu.base_url("nope")


async def test_inside_a_running_loop():
    async with run_emulator(token_delay=0, first_token_delay=0) as a:
        async with run_emulator() as b:  # two at once, distinct ports
            assert a.port != b.port
            async with httpx.AsyncClient() as client:
                path, body, headers = cohere_req()
                r = await client.post(a.base_url("cohere") + path, json=body, headers=headers)
                assert r.status_code == 200
        with run_emulator(token_delay=0, first_token_delay=0) as c:  # sync form, same loop
            assert c.running
    assert not a.running


def test_stop_with_an_open_stream_does_not_hang():
    emu = run_emulator(token_delay=0.5, first_token_delay=0).start()
    path, body, headers = openai_req(stream=True)
    client = httpx.Client(base_url=f"http://127.0.0.1:{emu.port}")
    with client.stream("POST", path, json=body, headers=headers) as response:
        next(response.iter_raw())
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 3
    client.close()
    assert not emu.running


def test_port_in_use_is_an_error(emu):
    with pytest.raises(OSError):
        run_emulator(port=emu.port).start()


def test_offline_emulator_is_a_lazy_singleton():
    first = get_offline_emulator()
    assert get_offline_emulator() is first and first.running
    path, body, headers = openai_req("demo", max_tokens=2)
    headers = {"authorization": f"Bearer {OFFLINE_API_KEY}"}
    r = httpx.post(first.base_url("anthropic") + path, json=body, headers=headers)
    assert r.status_code == 200
    assert OFFLINE_API_KEY not in repr(first.records)


# -- pacing ----------------------------------------------------------------------------


def _timed_stream(emu: Emulator, tokens: int = 10) -> float:
    path, body, headers = ollama_req(stream=True, options={"num_predict": tokens})
    start = time.monotonic()
    httpx.post(f"http://127.0.0.1:{emu.port}{path}", json=body, headers=headers)
    return time.monotonic() - start


def test_env_vars_set_the_pace_and_arguments_win(monkeypatch):
    monkeypatch.setenv("N3_EMULATOR_TOKEN_DELAY", "0.03")
    monkeypatch.setenv("N3_EMULATOR_FIRST_TOKEN_DELAY", "0.2")
    with run_emulator() as emu:
        assert _timed_stream(emu) >= 0.2 + 9 * 0.03 - 0.01
    with run_emulator(token_delay=0, first_token_delay=0) as emu:
        assert _timed_stream(emu) < 0.2
        emu.set_pacing(token_delay=0.03, first_token_delay=0)
        assert _timed_stream(emu) >= 9 * 0.03 - 0.01
    monkeypatch.setenv("N3_EMULATOR_TOKEN_DELAY", "fast")
    with pytest.raises(ValueError, match="N3_EMULATOR_TOKEN_DELAY"):
        run_emulator()


def test_models_have_their_own_pace(monkeypatch):
    monkeypatch.delenv("N3_EMULATOR_TOKEN_DELAY", raising=False)
    monkeypatch.delenv("N3_EMULATOR_FIRST_TOKEN_DELAY", raising=False)
    with run_emulator(token_delay=0) as emu:  # first-token latency stays per model
        assert _timed_stream(emu, tokens=1) >= 0.15  # llama3: 0.15 s to the first token


# -- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_five_lines_serves_and_exits_cleanly(sig):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "n3_notebook.emulator",
            "--port",
            "0",
            "--token-delay",
            "0",
            "--first-token-delay",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(5)]
        names = [line.split(" ", 1)[0] for line in lines]
        assert names == ["openai", "anthropic", "gemini", "cohere", "ollama"]
        urls = dict(line.split(" ", 1) for line in lines)
        assert urls["openai"].endswith("/v1") and urls["openai"].startswith("http://127.0.0.1:")
        path, body, headers = openai_req()
        r = httpx.post(urls["anthropic"] + path, json=body, headers=headers, timeout=10)
        assert r.status_code == 200
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in proc.stderr.read()


def test_cli_reports_a_busy_port(emu):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "n3_notebook.emulator", "--port", str(emu.port)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr and done.stdout == ""


def test_record_list_is_bounded():
    from n3_notebook.emulator.recorder import Recorder

    recorder = Recorder(max_records=3)
    for index in range(5):
        record = recorder.open("GET", f"/{index}", [], [])
        recorder.close(record, completed=True)
    assert [r.path for r in recorder.snapshot()] == ["/2", "/3", "/4"]


def test_a_response_read_to_the_end_is_already_recorded_complete(emu):
    """No waiting needed after a full read: the record is updated before the last bytes go."""
    emu.reset()
    path, body, headers = openai_req(stream=True)
    with httpx.Client(base_url=f"http://127.0.0.1:{emu.port}") as client:
        for i in range(60):
            with client.stream("POST", path, json=body, headers=headers) as r:
                chunks = sum(1 for _ in r.iter_raw())
            rec = emu.records[i]
            assert rec.completed and rec.closed_at is not None, (i, rec)
            assert rec.chunks_sent >= chunks and rec.tokens_sent > 0
