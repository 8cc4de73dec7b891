"""HTTP mode: POST /slack/events on the project's HTTP server, through bolt's starlette
handler. Requests must be signed by Slack (X-Slack-Signature); anything else gets 401."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.app.async_app import AsyncApp

EVENTS_PATH = "/slack/events"


def events_router(app: AsyncApp) -> APIRouter:
    handler = AsyncSlackRequestHandler(app)
    router = APIRouter(tags=["slack"])

    @router.post(EVENTS_PATH, summary="Slack events, interactivity and slash commands")
    async def slack_events(request: Request) -> Response:
        """Requests signed by Slack (X-Slack-Signature); anything else gets 401."""
        return await handler.handle(request)

    return router
