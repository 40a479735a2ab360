"""Security headers on every answer (pure ASGI middleware, on `http.response.start` only).

Every response: `x-content-type-options: nosniff`, `referrer-policy: no-referrer`.
JSON responses also: `cache-control: no-store` (answers may hold a user's prompt and the
model's reply), a `content-security-policy` that lets nothing load or frame them, and
`x-frame-options: DENY`. The HTML of /docs keeps its own (it loads the Swagger UI)."""

from __future__ import annotations

from typing import Any

ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
JSON_ONLY = [
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = add_security_headers(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with the security headers it lacks (names compared case-insensitively)."""
    present = {name.lower() for name, _ in headers}
    is_json = any(
        name.lower() == b"content-type" and value.startswith(b"application/json")
        for name, value in headers
    )
    extra = ALWAYS + JSON_ONLY if is_json else ALWAYS
    return headers + [(k, v) for k, v in extra if k not in present]


__all__ = ["SecurityHeaders", "add_security_headers"]
