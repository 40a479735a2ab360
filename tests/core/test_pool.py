"""ShardedTransport: limits split over shards, least-busy routing, slots given back."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from n3_notebook.core.http import make_client
from n3_notebook.core.pool import SHARD_SIZE, ShardedTransport
from n3_notebook.core.transport import StreamTransport
from n3_notebook.emulator import run_emulator


def test_limits_are_split_over_shards():
    t = ShardedTransport(max_connections=100, max_keepalive=20)
    assert t.shard_count == 100 // SHARD_SIZE
    limits = [s._pool._max_connections for s in t._shards]
    assert sum(limits) >= 100 and max(limits) <= SHARD_SIZE
    assert ShardedTransport(max_connections=3, max_keepalive=1).shard_count == 1


def test_client_transport_choice(monkeypatch):
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("N3_HTTP_TRANSPORT", raising=False)
    client = make_client(10.0)
    assert isinstance(client._transport, StreamTransport)
    assert client.follow_redirects is False
    monkeypatch.setenv("N3_HTTP_TRANSPORT", "httpx")
    assert isinstance(make_client(10.0)._transport, ShardedTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    proxied = make_client(10.0)._transport
    assert not isinstance(proxied, (ShardedTransport, StreamTransport))


async def test_requests_spread_and_slots_come_back():
    with run_emulator(token_delay=0.01) as emu:
        transport = ShardedTransport(max_connections=30, max_keepalive=30, shard_size=10)
        async with httpx.AsyncClient(transport=transport, base_url=emu.base_url("ollama")) as c:
            body = {"model": "llama3~long:50", "messages": [{"role": "user", "content": "x"}]}
            streams = [c.stream("POST", "/api/chat", json=body) for _ in range(9)]
            responses = [await s.__aenter__() for s in streams]
            assert transport.in_flight == 9
            assert sorted(transport._load) == [3, 3, 3]  # least busy shard each time
            for s in streams:
                await s.__aexit__(None, None, None)
            assert transport.in_flight == 0
            assert all(r.is_closed for r in responses)


async def test_slot_released_when_request_fails():
    transport = ShardedTransport(max_connections=10, max_keepalive=10)
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("http://127.0.0.1:9/")
    assert transport.in_flight == 0


async def test_slot_released_on_cancel():
    with run_emulator(token_delay=0.01) as emu:
        transport = ShardedTransport(max_connections=10, max_keepalive=10)
        async with httpx.AsyncClient(transport=transport, base_url=emu.base_url("ollama")) as c:
            body = {"model": "llama3~long:500", "messages": [{"role": "user", "content": "x"}]}

            async def read():
                async with c.stream("POST", "/api/chat", json=body) as r:
                    async for _ in r.aiter_bytes():
                        pass

            task = asyncio.create_task(read())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert transport.in_flight == 0
