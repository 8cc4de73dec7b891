"""Socket Mode: slack_sdk's Socket Mode client, with a listener that puts each envelope's
payload into the inbox and only then acknowledges the envelope.

An envelope that is not acknowledged (the inbox cannot take it, or the process died first) is
delivered again by Slack (events; clicks and commands show the person Slack's timeout). Nothing
is dropped unseen: an envelope without a usable payload is stored as it came (and quarantined),
and so is a frame that is not even a JSON object, which slack_sdk would otherwise fail on with
a traceback (it has no envelope id, so there is nothing to acknowledge).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat import RawEvent
from bot.platforms.slack.raw import raw_event, text_event

log = logging.getLogger(__name__)
Accept = Callable[[Sequence[RawEvent]], Awaitable[None]]


def envelope_event(message: dict[str, Any], raw: str) -> RawEvent:
    payload = message.get("payload")
    return raw_event(payload) if isinstance(payload, dict) else text_event(raw)


def json_object(frame: str) -> bool:
    try:
        return isinstance(json.loads(frame), dict)
    except ValueError:
        return False


class _Client(SocketModeClient):
    """slack_sdk's client; a frame that is not a JSON object goes to ``unreadable``."""

    unreadable: Callable[[str], Awaitable[None]]

    async def enqueue_message(self, message: str) -> None:
        if json_object(message):
            await super().enqueue_message(message)
        else:
            await self.unreadable(message)


class SocketEdge:
    def __init__(self, app_token: str, client: AsyncWebClient, accept: Accept) -> None:
        self.accept = accept
        self.socket = _Client(
            app_token=app_token, web_client=client,
            logger=logging.getLogger("slack_sdk.surveybot"),
        )  # fmt: skip
        self.socket.unreadable = self._on_unreadable
        self.socket.message_listeners.append(self._on_message)  # type: ignore[arg-type]

    async def connect(self) -> None:
        await self.socket.connect()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.socket.close()  # type: ignore[no-untyped-call]

    async def _on_message(
        self, client: SocketModeClient, message: dict[str, Any], raw: str
    ) -> None:
        envelope_id = message.get("envelope_id")
        if not envelope_id:  # hello, disconnect: the client handles them
            return
        try:
            await self.accept([envelope_event(message, raw)])
        except Exception:  # not acknowledged: Slack delivers it again
            return
        await client.send_socket_mode_response({"envelope_id": envelope_id})

    async def _on_unreadable(self, frame: str) -> None:
        try:
            await self.accept([text_event(frame)])
        except Exception:  # the inbox logged why; Slack cannot send it again (no envelope)
            log.warning("a Socket Mode frame that is not JSON could not be stored")
