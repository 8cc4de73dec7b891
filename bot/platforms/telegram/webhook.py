"""Webhook mode: POST /telegram/webhook on the project's HTTP server.

A request must carry ``X-Telegram-Bot-Api-Secret-Token`` (403 otherwise). The update is handled
before the answer goes back, so Telegram redelivers whatever a crash interrupted; while the bot
is still starting the answer is 503 (Telegram retries); a malformed update is logged and
answered 200 (retrying cannot make it parse).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TgApp = Application[Any, Any, Any, Any, Any, Any]


def webhook_router(application: TgApp, secret: str, ready: Callable[[], bool]) -> APIRouter:
    """The route Telegram posts updates to; ``ready()`` is False until the bot has started."""
    router = APIRouter()

    @router.post(WEBHOOK_PATH, include_in_schema=False)
    async def telegram_webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not secrets.compare_digest(given.encode(), secret.encode()):
            return JSONResponse({"detail": "wrong or missing secret token"}, 403)
        if not ready():
            return JSONResponse({"detail": "starting up"}, 503)  # Telegram retries
        try:
            update = Update.de_json(await request.json(), application.bot)
        except Exception as exc:
            log.warning("ignored a malformed Telegram update: %r", exc)
            return Response(status_code=200)
        await application.update_processor.process_update(
            update, application.process_update(update)
        )
        return Response(status_code=200)

    return router
