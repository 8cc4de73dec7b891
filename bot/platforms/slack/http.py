"""HTTP mode: POST /slack/events on the project's HTTP server.

A request must be signed by Slack (X-Slack-Signature, checked with the signing secret; 401
otherwise) and fit in ``MAX_BODY`` bytes (413). Its payload (the Events API body, an
interaction's ``payload`` field or a slash command's fields) is stored by the inbox (raw, or
handled at once and stored with its answer: :mod:`bot.conversation.first`) and only then is
Slack answered 200; when the inbox cannot take it, 503 (Slack retries events). A retry
(X-Slack-Retry-Num) of an event already stored is a duplicate by its event id. Slack's
``url_verification`` handshake is answered with its challenge.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier

from bot.chat import RawEvent
from bot.platforms.slack.raw import raw_event, text_event

EVENTS_PATH = "/slack/events"
MAX_BODY = 1_000_000
Accept = Callable[[Sequence[RawEvent]], Awaitable[None]]


def payload_of(body: bytes, content_type: str) -> object:
    """What Slack sent, as one JSON value: the event body, the interaction payload or the
    command's fields. Raises ValueError for a body that does not decode."""
    text = body.decode("utf-8")
    if content_type.startswith("application/json"):
        return json.loads(text)
    form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if "payload" in form:
        return json.loads(form["payload"])
    return form


def events_router(accept: Accept, signing_secret: str) -> APIRouter:
    verifier = SignatureVerifier(signing_secret)
    router = APIRouter(tags=["slack"])

    @router.post(EVENTS_PATH, summary="Slack events, interactivity and slash commands")
    async def slack_events(request: Request) -> Response:
        """Requests signed by Slack (X-Slack-Signature); anything else gets 401."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"detail": "request too large"}, 413)
        if not verifier.is_valid_request(bytes(body), dict(request.headers)):
            return JSONResponse({"detail": "invalid signature"}, 401)
        event: RawEvent
        try:
            payload: Any = payload_of(bytes(body), request.headers.get("content-type", ""))
        except ValueError:
            event = text_event(body.decode("utf-8", errors="replace"))
        else:
            if isinstance(payload, dict) and payload.get("type") == "url_verification":
                return JSONResponse({"challenge": payload.get("challenge")})
            event = raw_event(payload)
        try:
            await accept([event])
        except Exception:  # the inbox logged it once and marked the process unhealthy
            return JSONResponse({"detail": "cannot store the request now"}, 503)
        return Response(status_code=200)

    return router
