"""The batch protocols of OpenAI and Anthropic (core/batch.py runs them).

OpenAI: the requests as a JSONL file (`POST /files`, purpose "batch"; one line
`{"custom_id", "method", "url", "body"}` per request), then `POST /batches` with that file,
`GET /batches/{id}` until `completed` / `failed` / `expired` / `cancelled`, then the
output and error files' JSONL (`{"custom_id", "response": {"status_code", "body"}, "error"}`).

Anthropic: `POST /v1/messages/batches` with `{"requests": [{"custom_id", "params"}]}`,
`GET /v1/messages/batches/{id}` until `processing_status` is `ended`, then the JSONL at its
`results_url` (`{"custom_id", "result": {"type": "succeeded", "message"} | {"type":
"errored", "error"} | {"type": "canceled" | "expired"}}`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..core.base import BaseProvider
from ..core.batch import BatchAPI, BatchJob, BatchResult, batch_call
from ..core.errors import StreamProtocolError

__all__ = ["AnthropicBatchAPI", "OpenAIBatchAPI"]

_OPENAI_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
#: Anthropic error types -> the HTTP status the same error has on a direct call.
_ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _jsonl(provider: BaseProvider, data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise StreamProtocolError(
                f"a batch result line is not JSON: {line[:80]!r}", provider=provider.name
            ) from exc
        if isinstance(item, dict):
            out.append(item)
    return out


def _json(provider: BaseProvider, data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StreamProtocolError(
            f"the batch API answered with something that is not JSON: {data[:80]!r}",
            provider=provider.name,
        ) from exc
    if not isinstance(value, dict):
        raise StreamProtocolError(
            "the batch API answered with a non-object", provider=provider.name
        )
    return value


class OpenAIBatchAPI(BatchAPI):
    endpoint = "/v1/chat/completions"

    def _job(self, provider: BaseProvider, body: dict[str, Any]) -> BatchJob:
        state = str(body.get("status"))
        if state == "failed":
            errors = (body.get("errors") or {}).get("data") or []
            reasons = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise StreamProtocolError(
                f"batch {body.get('id')} failed: {reasons or 'no reason given'}",
                provider=provider.name,
            )
        return BatchJob(str(body.get("id")), state, state in _OPENAI_ENDED, body)

    async def submit(
        self, provider: BaseProvider, requests: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> BatchJob:
        lines = b"\n".join(
            orjson.dumps({"custom_id": cid, "method": "POST", "url": self.endpoint, "body": body})
            for cid, body in requests
        )
        upload = await batch_call(
            provider,
            "POST",
            "/files",
            files={"file": ("n3-batch.jsonl", lines, "application/jsonl")},
            data={"purpose": "batch"},
        )
        file_id = _json(provider, upload.content).get("id")
        created = await batch_call(
            provider,
            "POST",
            "/batches",
            json={
                "input_file_id": file_id,
                "endpoint": self.endpoint,
                "completion_window": "24h",
            },
        )
        return self._job(provider, _json(provider, created.content))

    async def poll(self, provider: BaseProvider, job: BatchJob) -> BatchJob:
        response = await batch_call(provider, "GET", f"/batches/{job.id}")
        return self._job(provider, _json(provider, response.content))

    async def results(self, provider: BaseProvider, job: BatchJob) -> BatchResult:
        out: BatchResult = {}
        for key in ("output_file_id", "error_file_id"):
            file_id = job.raw.get(key)
            if not file_id:
                continue
            content = await batch_call(provider, "GET", f"/files/{file_id}/content")
            for item in _jsonl(provider, content.content):
                response = item.get("response") or {}
                error = item.get("error")
                if response:
                    out[str(item.get("custom_id"))] = (
                        int(response.get("status_code") or 500),
                        response.get("body"),
                    )
                elif error:
                    out[str(item.get("custom_id"))] = (500, {"error": error})
        return out

    async def cancel(self, provider: BaseProvider, job: BatchJob) -> None:
        await batch_call(provider, "POST", f"/batches/{job.id}/cancel")


class AnthropicBatchAPI(BatchAPI):
    path = "/v1/messages/batches"

    def _job(self, body: dict[str, Any]) -> BatchJob:
        state = str(body.get("processing_status"))
        return BatchJob(str(body.get("id")), state, state == "ended", body)

    async def submit(
        self, provider: BaseProvider, requests: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> BatchJob:
        payload = {"requests": [{"custom_id": cid, "params": body} for cid, body in requests]}
        response = await batch_call(provider, "POST", self.path, json=payload)
        return self._job(_json(provider, response.content))

    async def poll(self, provider: BaseProvider, job: BatchJob) -> BatchJob:
        response = await batch_call(provider, "GET", f"{self.path}/{job.id}")
        return self._job(_json(provider, response.content))

    async def results(self, provider: BaseProvider, job: BatchJob) -> BatchResult:
        url = job.raw.get("results_url") or f"{self.path}/{job.id}/results"
        response = await batch_call(provider, "GET", str(url))
        out: BatchResult = {}
        for item in _jsonl(provider, response.content):
            result = item.get("result") or {}
            kind = result.get("type")
            custom_id = str(item.get("custom_id"))
            if kind == "succeeded":
                out[custom_id] = (200, result.get("message"))
            elif kind == "errored":
                error = result.get("error") or {}
                nested = error.get("error")
                inner: dict[str, Any] = nested if isinstance(nested, dict) else error
                status = _ANTHROPIC_STATUS.get(str(inner.get("type")), 500)
                out[custom_id] = (status, error)
        return out

    async def cancel(self, provider: BaseProvider, job: BatchJob) -> None:
        await batch_call(provider, "POST", f"{self.path}/{job.id}/cancel")
