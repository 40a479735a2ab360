"""Exception handlers: every error the framework raises (validation, 404/405, ServeError,
anything unexpected) answered in the service's one JSON error shape (errors.py)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..core.redact import redact
from .errors import ServeError, error_body, from_exception
from .jobs import json_error
from .limits import ERROR_TYPES
from .openai_wire import CHAT_ROUTE
from .openai_wire import error_body as openai_error_body
from .sse import dumps

logger = logging.getLogger("n3_notebook.serve")
HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed", **ERROR_TYPES}
#: Characters of a field's path an error repeats (the path holds the client's own keys).
FIELD_MAX = 100


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        details = []
        parts = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x != "body"]
            where = redact(".".join(loc)[:FIELD_MAX]) or "body"  # a client's key, cut short
            msg = str(e.get("msg", "invalid"))
            if e.get("type") == "json_invalid":
                where = "body"
                msg = f"the body is not valid JSON ({e.get('ctx', {}).get('error', msg)})"
            elif e.get("type") == "extra_forbidden":
                msg = "unknown field"
            parts.append(f"{where}: {msg}")
            details.append({"field": where, "message": msg, "type": e.get("type")})
        message = "; ".join(parts) or "invalid request"
        if request.url.path.endswith(CHAT_ROUTE):  # OpenAI's shape and status
            err = ServeError(
                400, "invalid_request", message, param=details[0]["field"] if details else None
            )
            return Response(dumps(openai_error_body(err)), 400, media_type="application/json")
        body = error_body("invalid_request", message, errors=details)
        return Response(dumps(body), 422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
        body = error_body(kind, str(exc.detail))
        return Response(dumps(body), exc.status_code, exc.headers, media_type="application/json")

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> Response:
        return json_error(exc)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        logger.error("unhandled %s in %s", type(exc).__name__, request.url.path)
        return json_error(from_exception(exc))


__all__ = ["install_error_handlers"]
