"""Webhook mode: POST /telegram/webhook on the project's HTTP server.

A request must carry ``X-Telegram-Bot-Api-Secret-Token`` (403 otherwise) and fit in
``MAX_BODY`` bytes (413). The update is stored by the inbox (raw, or handled at once and stored
with its answer: :mod:`bot.conversation.first`) and only then answered 200; when
the inbox cannot take it (storage failing) or the bot is still starting, the answer is 503 and
Telegram delivers it again. A body that is not a valid update is stored all the same (it is
quarantined and listed by ``surveybot inbox``) and answered 200: retrying cannot make it parse.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bot.chat import RawEvent
from bot.platforms.telegram.raw import body_event

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1_000_000  # bytes; Telegram's updates are far smaller
Accept = Callable[[Sequence[RawEvent]], Awaitable[None]]


def webhook_router(accept: Accept, secret: str, ready: Callable[[], bool]) -> APIRouter:
    """The route Telegram posts updates to; ``ready()`` is False until the bot has started."""
    router = APIRouter()

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not secrets.compare_digest(given.encode(), secret.encode()):
            return JSONResponse({"detail": "wrong or missing secret token"}, 403)
        if not ready():
            return JSONResponse({"detail": "starting up"}, 503)  # Telegram retries
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"detail": "update too large"}, 413)
        try:
            await accept([body_event(bytes(body))])
        except Exception:  # the inbox logged it once and marked the process unhealthy
            return JSONResponse({"detail": "cannot store the update now"}, 503)
        return Response(status_code=200)

    return router
