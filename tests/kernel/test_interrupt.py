"""A kernel interrupt ends a %%llm, comparison or %%chain cell at once in every phase of a
request, and leaves nothing running (real kernel via jupyter_client).

ipykernel alone notices an interrupt of an awaiting cell only when some I/O wakes its loop
(ipython/ipykernel#881): every phase here is one where nothing arrives for >= 20 s, so a
cell that ends within the bound below was woken by the interrupt itself. The bound is
generous for a busy machine; measured figures are in benchmarks/results/interrupt.md."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from n3_notebook.emulator import run_emulator

from .conftest import KEY, loaded_kernel
from .harness import Execution, Kernel
from .servers import FullBacklog, RawServer, rate_limited

pytestmark = pytest.mark.kernel

BOUND = 1.0  # seconds from SIGINT to the cell's idle (measured: ~0.05 s)
QUIET = 30  # seconds each phase would otherwise wait


@dataclass
class Servers:
    emu: object
    silent: RawServer
    backlog: FullBacklog
    limited: RawServer
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    silent, backlog, limited = RawServer(), FullBacklog(), RawServer(rate_limited(QUIET))
    with run_emulator(token_delay=0.01, first_token_delay=0.02) as emu:
        env = {
            "OPENAI_BASE_URL": emu.base_url("openai"),
            "OPENAI_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": silent.url("http"),  # accepted, never answered
            "ANTHROPIC_API_KEY": KEY,
            "GEMINI_BASE_URL": silent.url("https"),  # TLS handshake never answered
            "GEMINI_API_KEY": KEY,
            "COHERE_BASE_URL": backlog.url(),  # connect() waits
            "CO_API_KEY": KEY,
            "N3_TEST_LIMITED": limited.url(),
        }
        yield Servers(emu, silent, backlog, limited, env)
    for s in (silent, backlog, limited):
        s.close()


@pytest.fixture(scope="module")
def kernel(servers: Servers) -> Iterator[Kernel]:
    env = dict(servers.env)
    env["OLLAMA_HOST"] = env.pop("N3_TEST_LIMITED")  # 429, retry-after 30 s
    with loaded_kernel(env) as k:
        k.run("%config LLMMagics.chunk_timeout = 0")
        yield k


def pump_until(kernel: Kernel, cond: Callable[[], bool], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "the phase was not reached"
        kernel.pump(0.02)


@dataclass
class Phase:
    """Two model strings held in one phase, and how to tell the phase was reached."""

    models: tuple[str, str]
    reached: Callable[[Servers], bool]
    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()


def _emu_requests(n: int) -> Callable[[Servers], bool]:
    return lambda s: len(s.emu.records) >= n  # type: ignore[attr-defined]


KINDS = ("llm", "compare", "chain")


def _queued(kind: str) -> Phase:
    # providers of their own (limit 1), each held by a background cell, then ours queue
    n = QUIET + 1 + 2 * KINDS.index(kind)
    models = (f"openai:gpt-4o-mini~slow_first:{n}", f"openai:gpt-4o~slow_first:{n + 1}")
    return Phase(
        models,
        _emu_requests(2),  # the two holders are in; ours wait for a slot
        setup=(
            "%config LLMMagics.max_concurrent = 1",
            *(f"%%llm {m} --background --no-widget\nhold" for m in models),
        ),
        teardown=("%llm cancel all", "%config LLMMagics.max_concurrent = 10"),
    )


PHASES: dict[str, Callable[[str], Phase]] = {
    "queued": lambda kind: _queued(kind),
    "connecting": lambda kind: Phase(
        (f"cohere:connect-{kind}-1", f"cohere:connect-{kind}-2"), lambda s: True
    ),
    "tls handshake": lambda kind: Phase(
        (f"gemini:tls-{kind}-1", f"gemini:tls-{kind}-2"),
        lambda s: s.silent.open_connections() >= 1,
    ),
    "waiting for headers": lambda kind: Phase(
        (f"anthropic:headers-{kind}-1", f"anthropic:headers-{kind}-2"),
        lambda s: s.silent.open_connections() >= 1,
    ),
    "first token": lambda kind: Phase(
        (f"openai:gpt-4o-mini~slow_first:{QUIET}", f"openai:gpt-4o~slow_first:{QUIET}"),
        _emu_requests(1),
    ),
    "streaming": lambda kind: Phase(
        ("openai:gpt-4o-mini~long:20000", "openai:gpt-4o~long:20000"),
        lambda s: bool(s.emu.records) and s.emu.records[-1].chunks_sent > 5,  # type: ignore[attr-defined]
    ),
    "stalled mid-stream": lambda kind: Phase(
        (f"openai:gpt-4o-mini~stall:{QUIET}@3", f"openai:gpt-4o~stall:{QUIET}@3"),
        lambda s: bool(s.emu.records) and s.emu.records[-1].chunks_sent >= 3,  # type: ignore[attr-defined]
    ),
    "sleeping before a retry": lambda kind: Phase(
        (f"ollama:retry-{kind}-1", f"ollama:retry-{kind}-2"),
        lambda s: s.limited.requests() >= 1,
    ),
}


def cell_code(kind: str, models: tuple[str, str]) -> str:
    if kind == "llm":
        return f"%%llm {models[0]} -o r\nTell me a story"
    if kind == "compare":
        return f"%%llm {models[0]} {models[1]} -o r\nTell me a story"
    return (
        f"%%chain -o r\nstep a: {models[0]}\n    Tell me a story\n"
        f"step b: {models[1]}\n    Tell me another\nstep c: {models[0]}\n    Sum up {{a}} {{b}}"
    )


LEFTOVERS = """
import asyncio
await asyncio.sleep(0.3)
ours = [t for t in asyncio.all_tasks() if "n3_notebook" in repr(t.get_coro())
        and t is not asyncio.current_task()]
session = get_ipython().magics_manager.registry["LLMMagics"].session
transports = [p.client._transport for p in session.providers.values() if p._client]
print("pending", len(ours), "in_flight", sum(t.in_flight for t in transports))
"""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("phase_name", list(PHASES))
def test_interrupt_ends_the_cell_at_once(
    kernel: Kernel, servers: Servers, kind: str, phase_name: str
) -> None:
    servers.emu.reset()  # type: ignore[attr-defined]
    phase = PHASES[phase_name](kind)
    for code in phase.setup:
        assert kernel.run(code).status == "ok", code
    base_connections = len(servers.silent.connections)
    ex: Execution = kernel.submit(cell_code(kind, phase.models))
    pump_until(kernel, lambda: phase.reached(servers))
    kernel.pump(0.5)  # well inside the phase
    assert not ex.done, ex.text()
    kernel.interrupt()
    sent = time.monotonic()
    pump_until(kernel, lambda: ex.done, timeout=QUIET)
    took = time.monotonic() - sent
    kernel.wait(ex, 10)
    print(f"{kind:8} {phase_name:24} {took * 1000:.0f} ms")
    assert took < BOUND, f"{kind} in phase {phase_name!r} took {took:.2f}s to stop"
    assert ex.status == "error" and "interrupted" in ex.text(), ex.text()[-500:]
    assert "Traceback" not in ex.text()
    for code in phase.teardown:
        assert kernel.run(code).status == "ok", code
    # nothing left running: no task of ours, no request in flight, every connection closed
    out = kernel.run(LEFTOVERS).text()
    assert "pending 0 in_flight 0" in out, out
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and (
        servers.emu.open_connections()  # type: ignore[attr-defined]
        or servers.silent.open_connections()
    ):
        time.sleep(0.05)
    assert servers.emu.open_connections() == 0  # type: ignore[attr-defined]
    assert servers.silent.open_connections() == 0
    assert all(c.closed_at is not None for c in servers.silent.connections[base_connections:])
    assert kernel.run("print(40 + 2)").text().strip() == "42"
