"""A loopback server for benchmarks, run in its own process: OpenAI and Anthropic streams
from pre-encoded bytes, so the server is never what a benchmark measures.

The model name says what to send: `bench-<tokens>-<delay_ms>`, e.g. `bench-20000-0` (all at
once) or `bench-50-20` (50 tokens, one every 20 ms). Paced streams share one ticker per
pace, which writes what is due to every stream, so thousands of streams cost one timer,
not thousands (and frames that fell due together go out in one write). HTTP/1.1
keep-alive with chunked bodies. This is a measuring tool, not a product server: it parses
only what our clients send.

    python -m benchmarks.stream_server [--port P]     # prints "ready <port>" when listening
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from functools import lru_cache
from typing import Any

TOKEN = " token"
_OK = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"x-request-id: req_bench\r\nrequest-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@lru_cache(maxsize=64)
def openai_events(tokens: int) -> tuple[bytes, tuple[bytes, ...], bytes]:
    """(head, per-token frames, tail) of an OpenAI chat stream, chunked-encoded."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_bench",
    }

    def ev(obj: dict) -> bytes:
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    def choice(delta: dict, finish: str | None = None) -> dict:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    head = _chunk(ev(choice({"role": "assistant", "content": "", "refusal": None})))
    frame = _chunk(ev(choice({"content": TOKEN})))
    usage = {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": tokens + 5}
    tail = (
        _chunk(ev(choice({}, "stop")))
        + _chunk(ev({**base, "choices": [], "usage": usage}))
        + _chunk(b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    return head, (frame,) * tokens, tail


@lru_cache(maxsize=64)
def anthropic_events(tokens: int) -> tuple[bytes, tuple[bytes, ...], bytes]:
    def ev(name: str, obj: dict) -> bytes:
        return (
            f"event: {name}\ndata: ".encode()
            + json.dumps(obj, separators=(",", ":")).encode()
            + b"\n\n"
        )

    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-bench",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
    }
    head = _chunk(
        ev("message_start", start)
        + ev(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        + ev("ping", {"type": "ping"})
    )
    frame = _chunk(
        ev(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": TOKEN},
            },
        )
    )
    tail = (
        _chunk(
            ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            + ev(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": tokens},
                },
            )
            + ev("message_stop", {"type": "message_stop"})
        )
        + b"0\r\n\r\n"
    )
    return head, (frame,) * tokens, tail


class _Ticker:
    """Paces every stream with this delay on one shared clock of ticks, `delay` apart: a
    stream added during tick n gets frame k at tick n + k, never sooner. Each pass writes
    to every stream what is due; when the machine is too busy for a pass per tick, the
    frames that fell due meanwhile go out together, in one write, as a real server's
    socket buffer would send them, instead of the server lagging further behind."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.streams: list[list] = []  # [transport, frames, sent, tail, proto, start_tick]
        self.task: asyncio.Task | None = None
        self.origin = 0.0

    def _tick(self, now: float) -> int:
        return int((now - self.origin) / self.delay)

    def add(self, transport: asyncio.Transport, frames: tuple, tail: bytes, proto: Any) -> None:
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.origin = loop.time()
            self.task = loop.create_task(self._run())
        self.streams.append([transport, frames, 0, tail, proto, self._tick(loop.time())])

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0
        while self.streams:
            await asyncio.sleep(max(0.0, self.origin + (last + 1) * self.delay - loop.time()))
            last = tick = max(last + 1, self._tick(loop.time()))
            alive = []
            for s in self.streams:
                transport, frames, sent, tail, proto, start = s
                if transport.is_closing():
                    continue
                due = min(len(frames), tick - start)
                if due <= sent:
                    alive.append(s)
                    continue
                data = frames[sent] if due == sent + 1 else b"".join(frames[sent:due])
                s[2] = due
                if due < len(frames):
                    transport.write(data)
                    alive.append(s)
                else:
                    transport.write(data + tail)
                    proto.busy = False
                    proto.maybe_next()
            self.streams = alive


_tickers: dict[float, _Ticker] = {}


class BenchProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self.maybe_next()

    def maybe_next(self) -> None:
        if self.busy or self.transport is None or self.transport.is_closing():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1")
        lines = head.split("\r\n")
        path = lines[0].split(" ")[1]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        self.respond(path, body)

    def respond(self, path: str, body: bytes) -> None:
        assert self.transport is not None
        try:
            model = json.loads(body).get("model", "bench-100-0")
            _, tokens, delay_ms = model.split("-")[:3]
            n, delay = int(tokens), int(delay_ms) / 1000.0
        except (ValueError, AttributeError):
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            return
        make = anthropic_events if path.startswith("/v1/messages") else openai_events
        head, frames, tail = make(n)
        self.busy = True
        if delay <= 0:
            self.transport.write(_OK + head + b"".join(frames) + tail)
            self.busy = False
            asyncio.get_running_loop().call_soon(self.maybe_next)
            return
        self.transport.write(_OK + head)
        ticker = _tickers.get(delay)
        if ticker is None:
            ticker = _tickers[delay] = _Ticker(delay)
        ticker.add(self.transport, frames, tail, self)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BenchProtocol, "127.0.0.1", port, backlog=8192)
    actual = server.sockets[0].getsockname()[1]
    print(f"ready {actual}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream_server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


class ServerProcess:
    """Start the server in its own process; `with ServerProcess() as url:`."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> str:
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.stream_server"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.port = int(line.split()[1])
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


if __name__ == "__main__":
    main()
