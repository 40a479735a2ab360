"""Provider batch APIs: many requests as one job, answered within hours at half price.

`amap(..., batch_api=True)` hands every row to the provider's batch endpoint (OpenAI
`/v1/files` + `/v1/batches`, Anthropic `/v1/messages/batches`; providers/batches.py says
how for each). This module runs the job the same way for all: submit, poll with growing
delays until the provider says it ended, read the per-request results, turn each into the
LLMResponse (or error) a direct call would have given, and cancel the remote job when the
caller is cancelled. A provider without a batch API says so before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from .errors import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    LLMError,
    LLMTimeoutError,
)
from .redact import mask_url
from .retry import RETRY_STATUSES

if TYPE_CHECKING:
    from .base import BaseProvider
    from .types import LLMResponse

__all__ = [
    "BatchAPI",
    "BatchJob",
    "BatchPolling",
    "BatchResult",
    "batch_call",
    "run_batch",
]

#: Consecutive failed polls (connection errors, 5xx) tolerated before giving up.
POLL_FAILURES = 5


@dataclass(frozen=True, slots=True)
class BatchPolling:
    """How a batch job is watched: the first wait, growth per poll, the longest wait, and
    how long to wait in all (None: as long as the provider keeps it, 24 h for both)."""

    first_delay: float = 2.0
    factor: float = 1.5
    max_delay: float = 60.0
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not (self.first_delay > 0 and self.max_delay >= self.first_delay and self.factor >= 1):
            raise ValueError(
                "BatchPolling needs first_delay > 0, max_delay >= first_delay and factor >= 1"
            )


@dataclass(slots=True)
class BatchJob:
    """A submitted job as the provider last described it."""

    id: str
    state: str
    done: bool
    raw: Mapping[str, Any] = field(default_factory=dict)


#: custom_id -> (HTTP status of that request, its response body or error body)
BatchResult = dict[str, tuple[int, Any]]


class BatchAPI:
    """One provider's batch protocol (see providers/batches.py)."""

    async def submit(
        self, provider: BaseProvider, requests: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> BatchJob:
        raise NotImplementedError

    async def poll(self, provider: BaseProvider, job: BatchJob) -> BatchJob:
        raise NotImplementedError

    async def results(self, provider: BaseProvider, job: BatchJob) -> BatchResult:
        raise NotImplementedError

    async def cancel(self, provider: BaseProvider, job: BatchJob) -> None:
        raise NotImplementedError


async def batch_call(
    provider: BaseProvider,
    method: str,
    path_or_url: str,
    *,
    json: Any = None,
    files: Any = None,
    data: Any = None,
) -> httpx.Response:
    """One whole request to the provider with its auth; errors typed as for a chat call.
    An absolute URL is followed only when it is on the provider's own base URL (the key
    is never sent elsewhere)."""
    if path_or_url.startswith(("http://", "https://")):
        origin = httpx.URL(provider.base_url)
        target = httpx.URL(path_or_url)
        if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
            raise APIStatusError(
                f"the provider pointed at {mask_url(path_or_url)}, which is not on its base "
                "URL; the API key is not sent there",
                provider=provider.name,
            )
        url = path_or_url
    else:
        url = provider.base_url + path_or_url
    try:
        response = await provider.client.request(
            method, url, json=json, files=files, data=data, headers=provider.auth_headers()
        )
    except httpx.HTTPError as exc:
        raise APIConnectionError(
            f"could not reach {mask_url(provider.base_url)} ({type(exc).__name__})",
            provider=provider.name,
        ) from exc
    if response.status_code >= 400:
        raise provider._status_error(response, response.content)
    return response


def _transient(exc: LLMError) -> bool:
    """A failed poll worth another one: the connection, a timeout, 408/409/429/5xx."""
    if isinstance(exc, APIConnectionError | LLMTimeoutError):
        return True
    return exc.status_code is not None and exc.status_code in RETRY_STATUSES


def _outcome(provider: BaseProvider, status: int, payload: Any) -> LLMResponse | LLMError:
    if status == 200:
        try:
            request_id = payload.get("id") if isinstance(payload, dict) else None
            return provider._answer(provider._parse_answer(payload), None, request_id)
        except LLMError as exc:
            return exc
    message = provider.error_message(payload) or f"HTTP {status}"
    cls = provider.error_class(status, payload)
    return cls(message, provider=provider.name, status_code=status, provider_message=message)


async def run_batch(
    provider: BaseProvider,
    bodies: Sequence[Mapping[str, Any]],
    polling: BatchPolling | None = None,
) -> list[LLMResponse | LLMError]:
    """Send `bodies` (request bodies as the adapter builds them) as one batch job and wait
    for it; one answer or error per body, in order."""
    api = provider.batch_api
    if api is None:
        raise ConfigurationError(
            f"{provider.display_name or provider.name} has no batch API here; batch_api=True "
            "works with OpenAI and Anthropic models. Run the map without batch_api."
        )
    polling = polling or BatchPolling()
    ids = [f"row-{i}" for i in range(len(bodies))]
    job = await api.submit(provider, list(zip(ids, bodies, strict=True)))
    loop = asyncio.get_running_loop()
    deadline = None if polling.timeout is None else loop.time() + polling.timeout
    delay = polling.first_delay
    failures = 0
    try:
        while not job.done:
            if deadline is not None and loop.time() + delay > deadline:
                raise LLMTimeoutError(
                    f"batch {job.id} did not end within {polling.timeout} s (state "
                    f"{job.state!r}); it was cancelled",
                    provider=provider.name,
                )
            await asyncio.sleep(delay)
            delay = min(polling.max_delay, delay * polling.factor)
            try:
                job = await api.poll(provider, job)
                failures = 0
            except LLMError as exc:
                failures += 1
                if not _transient(exc) or failures >= POLL_FAILURES:
                    raise
    except BaseException:
        if not job.done:
            with contextlib.suppress(Exception):
                await api.cancel(provider, job)
        raise
    results = await api.results(provider, job)
    out: list[LLMResponse | LLMError] = []
    for custom_id in ids:
        got = results.get(custom_id)
        if got is None:
            out.append(
                APIStatusError(
                    f"batch {job.id} ended ({job.state}) without an answer for this row "
                    "(cancelled or expired); run it again",
                    provider=provider.name,
                )
            )
        else:
            out.append(_outcome(provider, *got))
    return out
