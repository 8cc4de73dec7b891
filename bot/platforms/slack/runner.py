"""Slack over Socket Mode (default) or HTTP at POST /slack/events, on slack_sdk.

Only ``bot/platforms/slack/`` imports ``slack_sdk``. The pieces:
:mod:`~bot.platforms.slack.socket` and :mod:`~bot.platforms.slack.http` (the edges: a payload
goes into the inbox before Slack is acknowledged), :mod:`~bot.platforms.slack.raw` (pure event
ids and ordering keys), :mod:`~bot.platforms.slack.listeners` (what a stored payload becomes),
:mod:`~bot.platforms.slack.adapter` (the Adapter: Web API calls, interactions; the
pace is the sender's budget) and
:mod:`~bot.platforms.slack.blocks` (pure Block Kit rendering and payload parsing).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Services
from bot.chat import Adapter
from bot.platforms.slack.adapter import SlackAdapter, delivery_error, make_client
from bot.platforms.slack.http import events_router
from bot.platforms.slack.listeners import Listeners
from bot.platforms.slack.socket import SocketEdge
from bot.platforms.slack.support import ThreadSurveys
from bot.settings import ConfigError

log = logging.getLogger(__name__)


class SlackSetupError(ConfigError):
    """Slack is not configured well enough to start; the message says what to set."""


class SlackRunner:
    """The bolt app, its listeners, and the connection (Socket Mode) or route (HTTP mode)."""

    def __init__(self, svc: Services, client: AsyncWebClient) -> None:
        settings = svc.settings
        self.svc = svc
        self.mode = settings.slack.mode
        self.slack = SlackAdapter(client)
        self.adapter: Adapter = self.slack
        secret = settings.slack_signing_secret
        app_token = settings.slack_app_token
        if self.mode == "http" and secret is None:
            raise SlackSetupError("slack.mode is http: set SURVEYBOT_SLACK_SIGNING_SECRET")
        if self.mode == "socket" and app_token is None:
            raise SlackSetupError(
                "slack.mode is socket: set SURVEYBOT_SLACK_APP_TOKEN (xapp-…, with the "
                "connections:write scope), or set slack.mode to http"
            )
        self.app_token = app_token.get_secret_value() if app_token else ""
        self.signing_secret = secret.get_secret_value() if secret else ""
        staff = frozenset(settings.staff.slack)
        self.listeners = Listeners(
            self.slack, svc.runtime.process, svc.dispatcher, svc.registry, staff,
            ThreadSurveys(svc, self.slack, set(staff)), svc.desk.press if svc.desk else None,
            svc.desk.note if svc.desk else None,
        )  # fmt: skip
        svc.inbox.processors["slack"] = self.listeners.process
        self._socket: SocketEdge | None = None

    @property
    def in_flight(self) -> int:
        """Stored payloads being handled right now (0 = idle)."""
        sender = self.svc.sender
        return self.listeners.in_flight + int(self.svc.inbox.busy or bool(sender and sender.busy))

    def router(self) -> APIRouter | None:
        if self.mode != "http":
            return None
        return events_router(self.svc.inbox.accept, self.signing_secret)

    async def start(self) -> None:
        client = self.slack.client
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            raise SlackSetupError(f"Slack: {delivery_error(exc)}") from exc
        log.info("Slack: connected as %s (%s) in %s, %s mode", auth.get("user"),
                 auth.get("user_id"), auth.get("team"), self.mode)  # fmt: skip
        if self.mode == "socket":
            self._socket = SocketEdge(self.app_token, client, self.svc.inbox.accept)
            await self._socket.connect()

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close()
            self._socket = None


def build_runner(svc: Services) -> SlackRunner:
    """The Slack runner for ``surveybot run`` (needs SURVEYBOT_SLACK_BOT_TOKEN)."""
    token = svc.settings.slack_bot_token
    if token is None:
        raise SlackSetupError("set SURVEYBOT_SLACK_BOT_TOKEN (xoxb-…) to run on Slack")
    client = make_client(token.get_secret_value(), svc.settings.slack.api_base_url)
    return SlackRunner(svc, client)
