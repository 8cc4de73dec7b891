"""Socket Mode: slack_sdk's Socket Mode client, with a listener that puts each envelope's
payload into the inbox and only then acknowledges the envelope.

An envelope that is not acknowledged (the inbox cannot take it, or the process died first) is
delivered again by Slack (events; clicks and commands show the person Slack's timeout). The
listener sees every raw message, so even an envelope slack_sdk cannot make sense of is stored
(and quarantined) rather than dropped.
"""

from __future__ import annotations

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


class SocketEdge:
    def __init__(self, app_token: str, client: AsyncWebClient, accept: Accept) -> None:
        self.accept = accept
        self.socket = SocketModeClient(
            app_token=app_token, web_client=client,
            logger=logging.getLogger("slack_sdk.surveybot"),
        )  # fmt: skip
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
