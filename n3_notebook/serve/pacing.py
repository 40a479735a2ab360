"""Stream pacing under load: write tokens as they come while the worker keeps up, in
batches of at most PACED_INTERVAL when it does not.

A worker relaying thousands of streams spends most of its CPU per network read and per
write (a wakeup, a recv, a send), not per token. While its event loop is late (measured by
a probe timer), each stream waits PACED_INTERVAL after a write before it reads again: the
upstream's tokens collect in the socket buffer meanwhile, so one read and one write then
carry several tokens. The first token of a stream is never held back (the wait comes after
a write), and the stream still ends with every token. When the loop has been on time for
HOLD seconds, streams go back to writing each read at once.

It lowers the CPU per token and the first-token overhead at thousands of streams
(benchmarks/service.py runs it on and off; figures in benchmarks/results/design-figures.md).
N3_SERVE_PACING_INTERVAL=0 turns it off."""

from __future__ import annotations

import asyncio

PROBE_EVERY = 0.05  # seconds between two probes of the loop's lateness
LAG_THRESHOLD = 0.01  # a probe this late means the loop is busy
HOLD = 1.0  # seconds of busy-ness pacing lasts after the last late probe
PACED_INTERVAL = 0.1  # seconds a stream waits after a write while the loop is busy


class LoadPacer:
    """One per app (a worker): `delay` is how long a stream waits after each write, 0.0
    while the loop keeps up. `lag` is the lateness of the latest probe, in seconds."""

    def __init__(
        self,
        *,
        interval: float = PACED_INTERVAL,
        threshold: float = LAG_THRESHOLD,
        hold: float = HOLD,
        probe_every: float = PROBE_EVERY,
    ) -> None:
        if not interval >= 0:  # also refuses NaN
            raise ValueError(
                f"the stream pacing interval is seconds, 0 (off) or more; got {interval}"
            )
        if not (threshold > 0 and hold >= 0 and probe_every > 0):
            raise ValueError("the pacer's threshold and probe interval must be positive")
        self.interval = interval
        self.threshold = threshold
        self.hold = hold
        self.probe_every = probe_every
        self.delay = 0.0
        self.lag = 0.0
        self._busy_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin probing the running loop (idempotent)."""
        if self._handle is None and self.interval > 0:
            self._loop = asyncio.get_running_loop()
            self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.delay = 0.0

    def _schedule(self) -> None:
        loop = self._loop
        assert loop is not None
        due = loop.time() + self.probe_every
        self._handle = loop.call_at(due, self._probe, due)

    def _probe(self, due: float) -> None:
        now = self._loop.time()  # type: ignore[union-attr]
        self.lag = now - due
        if self.lag > self.threshold:
            self._busy_until = now + self.hold
        self.delay = self.interval if now < self._busy_until else 0.0
        self._schedule()
