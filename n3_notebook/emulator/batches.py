"""Batch endpoints, from the providers' docs, on a fast clock.

OpenAI: ``POST /v1/files`` (multipart, purpose ``batch``), ``GET /v1/files/{id}`` and
``/v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``. Anthropic: ``POST /v1/messages/batches``,
``GET /v1/messages/batches/{id}``, ``GET /v1/messages/batches/{id}/results``,
``POST /v1/messages/batches/{id}/cancel``.

A job's answers are the ones a direct request would get (same text, same usage, same
per-request errors such as an unknown model); the job ends ``batch_seconds`` after it was
created (``N3_EMULATOR_BATCH_SECONDS``, default 1 s) instead of within 24 hours. A job
cancelled before it ended answers no row (OpenAI) or every row ``canceled`` (Anthropic).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .formats import AnthropicFormat, OpenAIFormat
from .formats.base import BadRequest, Context, ProviderFormat, json_response
from .models import Pacing, lookup_model
from .text import expected_answer

__all__ = ["BATCH_SECONDS_ENV", "BatchStore", "batch_routes"]

BATCH_SECONDS_ENV = "N3_EMULATOR_BATCH_SECONDS"
DEFAULT_BATCH_SECONDS = 1.0
OPENAI = OpenAIFormat()
ANTHROPIC = AnthropicFormat()


def _batch_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(BATCH_SECONDS_ENV, DEFAULT_BATCH_SECONDS)))
    except ValueError:
        return DEFAULT_BATCH_SECONDS


@dataclass
class _Job:
    id: str
    provider: str
    created: float
    due: float
    results: list[tuple[str, int, Any]]  # custom_id, status, body
    input_file_id: str | None = None
    cancelled_at: float | None = None
    files: dict[str, str] = field(default_factory=dict)  # "output" / "error" -> file id


class BatchStore:
    """Uploaded files and jobs of one emulator (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, tuple[str, bytes]] = {}  # id -> (filename, bytes)
        self.jobs: dict[str, _Job] = {}
        self.batch_seconds = _batch_seconds()

    def add_file(self, name: str, data: bytes) -> str:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        with self._lock:
            self.files[file_id] = (name, data)
        return file_id

    def add_job(self, job: _Job) -> None:
        with self._lock:
            self.jobs[job.id] = job

    def job(self, job_id: str, provider: str) -> _Job | None:
        with self._lock:
            job = self.jobs.get(job_id)
        return job if job is not None and job.provider == provider else None

    def reset(self) -> None:
        with self._lock:
            self.files.clear()
            self.jobs.clear()


def answer_one(fmt: ProviderFormat, body: Any, request: Request) -> tuple[int, Any]:
    """What a direct, non-streaming request with this body gets: (status, JSON body)."""
    ctx = Context(fmt.name, "", Pacing(0.0, 0.0), request_id=fmt.new_request_id())
    try:
        chat = fmt.parse(body, request, None)
    except BadRequest as exc:
        return _error(fmt, "bad_request", ctx, exc.message)
    ctx.model = chat.model
    profile = lookup_model(fmt.name, chat.model)
    if profile is None:
        return _error(fmt, "not_found", ctx)
    answer = expected_answer(
        fmt.name, profile.name, chat.messages, chat.system, chat.max_tokens, stop=chat.stop
    )
    fmt.prepare(ctx, chat)
    return 200, fmt.complete(answer, ctx)


def _error(
    fmt: ProviderFormat, kind: Any, ctx: Context, message: str | None = None
) -> tuple[int, Any]:
    response = fmt.error(kind, ctx, message)
    return response.status_code, json.loads(bytes(response.body))


def _store(request: Request) -> BatchStore:
    store: BatchStore = request.app.state.n3.batches
    return store


def _auth(request: Request, fmt: ProviderFormat) -> Response | None:
    ctx = Context(fmt.name, "", Pacing(0.0, 0.0), request_id=fmt.new_request_id())
    key = fmt.credentials(request)
    problem = request.app.state.n3.keys.check(fmt.name, key)
    if problem is not None:
        return fmt.error(problem, ctx, key=key)
    precheck = fmt.precheck(request)
    if precheck is not None:
        return fmt.error(precheck[0], ctx, precheck[1])
    return None


def _invalid(fmt: ProviderFormat, message: str, status: int = 400) -> Response:
    ctx = Context(fmt.name, "", Pacing(0.0, 0.0), request_id=fmt.new_request_id())
    response = fmt.error("bad_request", ctx, message)
    response.status_code = status
    return response


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- OpenAI ------------------------------------------------------------------------------


async def openai_upload(request: Request) -> Response:
    problem = _auth(request, OPENAI)
    if problem is not None:
        return problem
    form = await request.form()
    upload = form.get("file")
    if form.get("purpose") != "batch" or upload is None or isinstance(upload, str):
        return _invalid(OPENAI, "Expected a multipart 'file' and purpose 'batch'.")
    data = await upload.read()
    name = upload.filename or "upload.jsonl"
    file_id = _store(request).add_file(name, data)
    return json_response(_file_object(file_id, name, len(data), "batch"))


def _file_object(file_id: str, name: str, size: int, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(time.time()),
        "filename": name,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }


async def openai_file(request: Request) -> Response:
    problem = _auth(request, OPENAI)
    if problem is not None:
        return problem
    file_id = request.path_params["file_id"]
    stored = _store(request).files.get(file_id)
    if stored is None:
        return _invalid(OPENAI, f"No such File object: {file_id}", 404)
    if request.url.path.endswith("/content"):
        return Response(stored[1], media_type="application/octet-stream")
    return json_response(_file_object(file_id, stored[0], len(stored[1]), "batch"))


async def openai_create_batch(request: Request) -> Response:
    problem = _auth(request, OPENAI)
    if problem is not None:
        return problem
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _invalid(OPENAI, "We could not parse the JSON body of your request.")
    store = _store(request)
    stored = store.files.get(str(body.get("input_file_id")))
    if stored is None:
        return _invalid(OPENAI, f"No such File object: {body.get('input_file_id')}", 404)
    endpoint = body.get("endpoint")
    if endpoint != "/v1/chat/completions" or body.get("completion_window") != "24h":
        return _invalid(OPENAI, "endpoint must be /v1/chat/completions, completion_window 24h")
    results: list[tuple[str, int, Any]] = []
    for number, line in enumerate(stored[1].splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            return _invalid(OPENAI, f"Line {number} of the input file is not valid JSON.")
        if not isinstance(item, dict) or item.get("url") != endpoint:
            return _invalid(OPENAI, f"Line {number}: url must be {endpoint}.")
        status, answer = answer_one(OPENAI, item.get("body"), request)
        results.append((str(item.get("custom_id")), status, answer))
    now = time.time()
    job = _Job(
        f"batch_{uuid.uuid4().hex[:24]}",
        "openai",
        now,
        now + store.batch_seconds,
        results,
        input_file_id=str(body.get("input_file_id")),
    )
    store.add_job(job)
    return json_response(_openai_batch(job, store))


def _openai_batch(job: _Job, store: BatchStore) -> dict[str, Any]:
    now = time.time()
    ended = now >= job.due
    if job.cancelled_at is not None:
        status = "cancelled"
    elif ended:
        status = "completed"
        if not job.files:
            for kind, ok in (("output", True), ("error", False)):
                lines = [
                    json.dumps(
                        {
                            "id": f"batch_req_{uuid.uuid4().hex[:24]}",
                            "custom_id": cid,
                            "response": {
                                "status_code": status_code,
                                "request_id": f"req_{uuid.uuid4().hex}",
                                "body": answer,
                            },
                            "error": None,
                        }
                    )
                    for cid, status_code, answer in job.results
                    if (status_code == 200) == ok
                ]
                if lines:
                    data = ("\n".join(lines) + "\n").encode()
                    job.files[kind] = store.add_file(f"batch_{kind}.jsonl", data)
    else:
        status = "in_progress"
    failed = sum(1 for _, s, _ in job.results if s != 200)
    done = status == "completed"
    return {
        "id": job.id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": job.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": job.files.get("output"),
        "error_file_id": job.files.get("error"),
        "created_at": int(job.created),
        "in_progress_at": int(job.created),
        "expires_at": int(job.created + 86400),
        "completed_at": int(job.due) if done else None,
        "cancelled_at": int(job.cancelled_at) if job.cancelled_at else None,
        "request_counts": {
            "total": len(job.results),
            "completed": len(job.results) - failed if done else 0,
            "failed": failed if done else 0,
        },
        "metadata": None,
    }


async def openai_batch(request: Request) -> Response:
    problem = _auth(request, OPENAI)
    if problem is not None:
        return problem
    store = _store(request)
    job = store.job(request.path_params["batch_id"], "openai")
    if job is None:
        return _invalid(OPENAI, f"No batch found with id '{request.path_params['batch_id']}'", 404)
    cancel = request.url.path.endswith("/cancel")
    if cancel and job.cancelled_at is None and time.time() < job.due:
        job.cancelled_at = time.time()
    return json_response(_openai_batch(job, store))


# -- Anthropic ---------------------------------------------------------------------------


async def anthropic_create_batch(request: Request) -> Response:
    problem = _auth(request, ANTHROPIC)
    if problem is not None:
        return problem
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return _invalid(ANTHROPIC, "requests: Field required (a non-empty list)")
    results = []
    for item in requests:
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            return _invalid(ANTHROPIC, "requests: each needs a custom_id and params")
        status, answer = answer_one(ANTHROPIC, item.get("params"), request)
        results.append((item["custom_id"], status, answer))
    store = _store(request)
    now = time.time()
    job = _Job(
        f"msgbatch_{uuid.uuid4().hex[:24]}", "anthropic", now, now + store.batch_seconds, results
    )
    store.add_job(job)
    return json_response(_anthropic_batch(job, request))


def _anthropic_batch(job: _Job, request: Request) -> dict[str, Any]:
    now = time.time()
    ended_at = job.cancelled_at if job.cancelled_at is not None else job.due
    ended = now >= ended_at
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for _, status, _ in job.results:
        if not ended:
            counts["processing"] += 1
        elif job.cancelled_at is not None:
            counts["canceled"] += 1
        else:
            counts["succeeded" if status == 200 else "errored"] += 1
    root = str(request.base_url).rstrip("/")
    return {
        "id": job.id,
        "type": "message_batch",
        "processing_status": "ended" if ended else "in_progress",
        "request_counts": counts,
        "ended_at": _iso(ended_at) if ended else None,
        "created_at": _iso(job.created),
        "expires_at": _iso(job.created + 86400),
        "archived_at": None,
        "cancel_initiated_at": _iso(job.cancelled_at),
        "results_url": f"{root}/v1/messages/batches/{job.id}/results" if ended else None,
    }


async def anthropic_batch(request: Request) -> Response:
    problem = _auth(request, ANTHROPIC)
    if problem is not None:
        return problem
    job = _store(request).job(request.path_params["batch_id"], "anthropic")
    if job is None:
        ctx = Context("anthropic", "", Pacing(0.0, 0.0), request_id=ANTHROPIC.new_request_id())
        return ANTHROPIC.error("not_found", ctx, "Batch not found")
    path = request.url.path
    if path.endswith("/cancel") and job.cancelled_at is None and time.time() < job.due:
        job.cancelled_at = time.time()
    if path.endswith("/results"):
        if time.time() < (job.cancelled_at or job.due):
            return _invalid(ANTHROPIC, "Batch is still processing; results are not ready.")
        lines = []
        for cid, status, answer in job.results:
            if job.cancelled_at is not None:
                result: dict[str, Any] = {"type": "canceled"}
            elif status == 200:
                result = {"type": "succeeded", "message": answer}
            else:
                result = {"type": "errored", "error": answer}
            lines.append(json.dumps({"custom_id": cid, "result": result}))
        return Response(("\n".join(lines) + "\n").encode(), media_type="application/binary")
    return json_response(_anthropic_batch(job, request))


def batch_routes() -> list[Route]:
    return [
        Route("/v1/files", openai_upload, methods=["POST"]),
        Route("/v1/files/{file_id}", openai_file, methods=["GET"]),
        Route("/v1/files/{file_id}/content", openai_file, methods=["GET"]),
        Route("/v1/batches", openai_create_batch, methods=["POST"]),
        Route("/v1/batches/{batch_id}", openai_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", openai_batch, methods=["POST"]),
        Route("/v1/messages/batches", anthropic_create_batch, methods=["POST"]),
        Route("/v1/messages/batches/{batch_id}", anthropic_batch, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}/results", anthropic_batch, methods=["GET"]),
        Route("/v1/messages/batches/{batch_id}/cancel", anthropic_batch, methods=["POST"]),
    ]
