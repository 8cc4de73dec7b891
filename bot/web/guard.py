"""ASGI middleware in front of every route: body limits, the API token before the body, and
the dashboard's security headers.

- **Body limits before work.** A request to a path in :data:`BODY_LIMITS` whose
  ``Content-Length`` is over the limit gets ``413`` before a byte of the body is read; a body
  without a length (chunked) is read here up to the limit and refused with ``413`` the moment
  it goes over, so no route ever holds more than the limit in memory. The platform webhook
  routes (``/telegram/webhook``, ``/slack/events``) are covered here, by path, without their
  runners knowing.
- **Auth before the body.** ``POST /api/v1/*`` with a wrong or missing bearer token gets
  ``401`` before the body is read (the routes' own dependency checks the same token again
  with :func:`token_matches`, for the OpenAPI description).
- **Dashboard headers.** ``GET /`` and ``/api/v1/report`` answers carry
  ``Content-Security-Policy``, ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``
  and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KiB = 1024
# path prefix -> largest body accepted, in bytes (documented in docs/http-api.md)
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/", 512 * KiB),
    ("/telegram/webhook", 1024 * KiB),
    ("/slack/events", 1024 * KiB),
)
DASHBOARD_PATHS = frozenset({"/", "/api/v1/report"})
DASHBOARD_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def token_matches(authorization: str, token: str) -> bool:
    """``Authorization: Bearer <token>`` names the API token (constant-time comparison)."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.strip().encode(), token.encode())


def body_limit(path: str) -> int | None:
    for prefix, limit in BODY_LIMITS:
        if path.startswith(prefix):
            return limit
    return None


class RequestGuard:
    """The middleware; ``token`` empty means the API is open (loopback only)."""

    def __init__(self, app: ASGIApp, token: str = "") -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in DASHBOARD_PATHS:
            send = _with_headers(send, DASHBOARD_HEADERS)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self.token and scope["method"] == "POST" and path.startswith("/api/v1/"):
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not token_matches(given, self.token):
                await _answer(send, 401, "missing or wrong bearer token",
                              [(b"www-authenticate", b"Bearer")])  # fmt: skip
                return
        limit = body_limit(path)
        if limit is None or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        body = await _read_capped(receive, limit)
        if body is None:
            await _too_large(send, limit)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_capped(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # waits for the disconnect, as the server's own would

    return replayed


def _with_headers(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            added = [(k, v) for k, v in extra if k not in names]
            message["headers"] = [*message.get("headers", []), *added]
        await send(message)

    return sending


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, f"request body too large: at most {limit} bytes")


async def _answer(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
