"""Slack: slack-bolt's AsyncApp over Socket Mode (default) or HTTP at POST /slack/events.

The adapter only translates (DESIGN.md "Data flow"): block_actions clicks, DM messages
(message.im) and the /skip command become :class:`Inbound` for ``Runtime.handle``; prompts
become Block Kit via ``slack_render``; `/survey` by staff goes to ``Dispatcher.request``.

Acknowledging. Slack wants every request acknowledged within 3 seconds and stops retrying once
it is. Here the acknowledgement goes out when the runtime calls ``acknowledge`` — after it has
committed the answer — or, at the latest, after ``ACK_DEADLINE`` seconds, while the work goes on
in the background. A crash before the commit therefore leaves the event unacknowledged and
Slack delivers it again; the event id makes the redelivery count once. DM messages are handled
in a global middleware rather than an ``@app.event`` listener because bolt acknowledges events
before their listener runs.

Every Web API call goes to ``slack.api_base_url`` through one AsyncWebClient that retries
HTTP 429 after Retry-After (slack-sdk's AsyncRateLimitErrorRetryHandler); posts are paced per
channel (about 1 message/s with short bursts).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.app import Services
from bot.chat import Address, DeliveryError, Inbound, Platform, Prompt, Sent
from bot.conversation.runtime import UnknownFlow
from bot.platforms.base import Adapter
from bot.platforms.pacing import ChannelPacer, RecentIds
from bot.platforms.slack import blocks as render
from bot.settings import ConfigError

log = logging.getLogger(__name__)
JSON = dict[str, Any]

ACK_DEADLINE = 2.0  # seconds; Slack's limit is 3
LOCALE_TTL = 3600.0  # how long a users.info answer is trusted
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def delivery_error(exc: SlackApiError) -> DeliveryError:
    """A Slack API failure as the runtime's DeliveryError (permanent, or retry after N s)."""
    response = exc.response
    error = str(response.get("error") or "unknown_error")
    return render.delivery_error(error, response.status_code, dict(response.headers or {}))


@dataclass
class _Interaction:
    """What the adapter needs while the runtime handles one click, command or message."""

    response_url: str | None = None  # for ephemeral notices to the person who acted
    acked: asyncio.Event = field(default_factory=asyncio.Event)


class SlackAdapter:
    platform: Platform = "slack"

    def __init__(self, client: AsyncWebClient, pacer: ChannelPacer | None = None) -> None:
        self.client = client
        self.pacer = pacer or ChannelPacer()
        self._dms: dict[str, str] = {}
        self._locales: dict[str, tuple[float, str | None]] = {}
        self._interactions: dict[str, _Interaction] = {}

    # Adapter protocol ------------------------------------------------------------------
    async def send(self, address: Address, prompt: Prompt) -> Sent:
        mention = address.user_id if address.chat_id else None
        text, blocks = render.prompt_message(prompt, mention_user=mention)
        try:
            channel = address.chat_id or await self.open_dm(address.user_id)
            response = await self._post(channel, text, blocks)
        except SlackApiError as exc:
            self._dms.pop(address.user_id, None)  # open the DM afresh next time
            raise delivery_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise DeliveryError(f"Slack unreachable: {exc!r}") from exc
        return Sent(chat_id=str(response["channel"]), message_id=str(response["ts"]))

    async def settle(self, inbound: Inbound, text: str) -> None:
        channel = self._channel_of(inbound)
        if channel is None or inbound.message_id is None:
            log.warning("cannot settle a Slack message without channel and ts: %s", inbound)
            return
        fallback, blocks = render.settled_message(text)
        try:
            await self.client.chat_update(
                channel=channel, ts=inbound.message_id, text=fallback, blocks=blocks
            )
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.warning("chat.update of %s/%s failed: %s", channel, inbound.message_id, exc)

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        interaction = self._interaction(inbound)
        if interaction is not None:
            interaction.acked.set()  # the waiting listener acks Slack now
        if not notice:
            return
        try:
            if interaction is not None and interaction.response_url:
                if await self._respond(interaction.response_url, notice):
                    return
            channel = self._channel_of(inbound) or await self.open_dm(inbound.user_id)
            text, blocks = render.notice_message(notice)
            if inbound.kind == "tap":
                await self.client.chat_postEphemeral(
                    channel=channel, user=inbound.user_id, text=text, blocks=blocks
                )
            else:
                await self._post(channel, text, blocks)
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.warning("could not show a notice to %s: %s", inbound.user_id, exc)

    async def locale_of(self, address: Address) -> str | None:
        """users.info's locale ("el-GR"), cached for an hour; None when Slack does not say."""
        cached = self._locales.get(address.user_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < LOCALE_TTL:
            return cached[1]
        locale: str | None = None
        try:
            info = await self.client.users_info(user=address.user_id, include_locale=True)
            user = info.get("user") or {}
            locale = user.get("locale") or None
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.info("users.info for %s failed: %s", address.user_id, exc)
            now -= LOCALE_TTL - 60  # retry in a minute
        if len(self._locales) > 10_000:
            self._locales.clear()
        self._locales[address.user_id] = (now, locale)
        return locale

    # helpers -----------------------------------------------------------------------------
    async def open_dm(self, user_id: str) -> str:
        channel = self._dms.get(user_id)
        if channel is None:
            opened = await self.client.conversations_open(users=user_id)
            channel = str(opened["channel"]["id"])
            if len(self._dms) > 10_000:
                self._dms.clear()
            self._dms[user_id] = channel
        return channel

    async def _post(self, channel: str, text: str, blocks: list[JSON]) -> Any:
        await self.pacer.wait(channel)
        return await self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
        )

    async def _respond(self, url: str, text: str) -> bool:
        """An ephemeral reply through a response_url; False if Slack refused it."""
        fallback, blocks = render.notice_message(text)
        hook = AsyncWebhookClient(url, retry_handlers=_retry_handlers())
        response = await hook.send(
            text=fallback, blocks=blocks, response_type="ephemeral", replace_original=False
        )
        if response.status_code != 200:
            log.info("response_url answered %s %s", response.status_code, response.body)
        return response.status_code == 200

    def begin(
        self, channel: str | None, response_url: str | None = None
    ) -> tuple[str, _Interaction]:
        """Register an interaction; its ``ref`` ("<channel>|<key>") goes in the Inbound."""
        key = uuid.uuid4().hex
        interaction = _Interaction(response_url=response_url)
        self._interactions[key] = interaction
        return f"{channel or ''}|{key}", interaction

    def end(self, ref: str | None) -> None:
        self._interactions.pop((ref or "").partition("|")[2], None)

    def _interaction(self, inbound: Inbound) -> _Interaction | None:
        return self._interactions.get((inbound.ref or "").partition("|")[2])

    def _channel_of(self, inbound: Inbound) -> str | None:
        return (inbound.ref or "").partition("|")[0] or inbound.chat_id


def _retry_handlers() -> list[Any]:
    return [AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]


def make_client(token: str, api_base_url: str) -> AsyncWebClient:
    base = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
    return AsyncWebClient(token=token, base_url=base, retry_handlers=_retry_handlers())


class SlackSetupError(ConfigError):
    """Slack is not configured well enough to start; the message says what to set."""


class SlackRunner:
    """The bolt app, its listeners, and the connection (Socket Mode) or route (HTTP mode)."""

    def __init__(self, svc: Services, client: AsyncWebClient) -> None:
        settings = svc.settings
        self.svc = svc
        self.mode = settings.slack.mode
        rate = settings.surveys.send_rates.get("slack")
        pacer = ChannelPacer(rate.per_chat_per_second if rate else 1.0)
        self.slack = SlackAdapter(client, pacer)
        self.adapter: Adapter = self.slack
        self.staff = set(settings.staff.slack)
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
        self.app = AsyncApp(
            client=client,
            signing_secret=secret.get_secret_value() if secret else "",
            logger=logging.getLogger("slack_bolt.surveybot"),
            process_before_response=False,
            raise_error_for_unhandled_request=False,
        )
        self.app.use(_DirectMessages(self))
        self.app.command("/survey")(self._on_survey)
        self.app.command("/skip")(self._on_skip)
        # every click, ours or forged: the runtime refuses what it does not know
        self.app.action({"type": "block_actions", "action_id": re.compile(".*")})(self._on_click)
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seen = RecentIds()

    @property
    def in_flight(self) -> int:
        """Listeners and runtime calls under way (0 = idle)."""
        return len(self._tasks)

    @asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        """Count the running listener (bolt runs it in a task of its own) as work in flight."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    # PlatformRunner ----------------------------------------------------------------------
    def router(self) -> APIRouter | None:
        if self.mode != "http":
            return None
        handler = AsyncSlackRequestHandler(self.app)
        router = APIRouter(tags=["slack"])

        @router.post("/slack/events", summary="Slack events, interactivity and slash commands")
        async def slack_events(request: Request) -> Response:
            """Requests signed by Slack (X-Slack-Signature); anything else gets 401."""
            return await handler.handle(request)

        return router

    async def start(self) -> None:
        client = self.slack.client
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            raise SlackSetupError(f"Slack: {delivery_error(exc)}") from exc
        log.info("Slack: connected as %s (%s) in %s, %s mode", auth.get("user"),
                 auth.get("user_id"), auth.get("team"), self.mode)  # fmt: skip
        if self.mode == "socket":
            self._socket = AsyncSocketModeHandler(self.app, self.app_token, web_client=client)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._tasks:  # answers under way are committed before storage closes
            await asyncio.wait(set(self._tasks), timeout=10)

    # listeners: bolt passes arguments by name (ack, command, respond, body) ----------------
    async def _on_survey(self, ack: AsyncAck, command: JSON, respond: AsyncRespond) -> None:
        async with self._working():
            if self._first(command.get("trigger_id")):
                await self._survey(ack, command, respond)
            await _ack_once(ack)

    async def _survey(self, ack: AsyncAck, command: JSON, respond: AsyncRespond) -> None:
        staff_user = str(command.get("user_id", ""))
        if staff_user not in self.staff:
            log.info("refused /survey from non-staff Slack user %s", staff_user)
            await ack(text=render.not_staff(staff_user))
            return
        flows = ", ".join(f"`{f}`" for f in self.svc.registry.ids()) or "(none loaded)"
        try:
            parsed = render.parse_survey_command(str(command.get("text") or ""))
        except render.CommandError as exc:
            await ack(text=f"{exc}\n{render.USAGE.format(flows=flows)}")
            return
        if parsed is None:
            await ack(text=render.USAGE.format(flows=flows))
            return
        if self.svc.registry.get(parsed.flow_id) is None:
            await ack(text=render.unknown_flow(parsed.flow_id, flows))
            return
        await ack()
        address = Address(platform="slack", user_id=parsed.user_id, user_name=parsed.user_name)
        try:
            result = await self.svc.dispatcher.request(
                parsed.flow_id, address, parsed.context, triggered_by=f"slack:{staff_user}"
            )
            text = render.confirmation(parsed.flow_id, parsed.user_id, result)
        except UnknownFlow as exc:
            text = render.unknown_flow(exc.flow_id, flows)
        except Exception:
            log.exception("/survey %s for %s failed", parsed.flow_id, parsed.user_id)
            text = "Something went wrong while sending the survey; the logs say more."
        await respond(text=text, response_type="ephemeral")

    async def _on_skip(self, ack: AsyncAck, command: JSON) -> None:
        async with self._working():
            if self._first(command.get("trigger_id")):
                await self._hand_over(render.from_skip_command(command), ack)
            await _ack_once(ack)

    async def _on_click(self, ack: AsyncAck, body: JSON) -> None:
        async with self._working():
            if self._first(body.get("trigger_id")):
                await self._hand_over(render.from_click(body), ack)
            await _ack_once(ack)

    async def on_message(self, body: JSON, retry_num: int) -> None:
        """A message event, from _DirectMessages (which acks on return)."""
        incoming = render.from_message(body)
        if incoming is None:
            return
        if not self._first(body.get("event_id")):
            log.info("ignored Slack redelivery %s of event %s", retry_num, body.get("event_id"))
            return
        async with self._working():
            await self._hand_over(incoming, None)

    # plumbing ----------------------------------------------------------------------------
    def _first(self, delivery_id: object) -> bool:
        """False for a delivery this process has seen (Socket Mode redelivers an envelope
        that was not acked in time; HTTP retries carry X-Slack-Retry-Num)."""
        return not delivery_id or self._seen.add(str(delivery_id))

    async def _hand_over(self, incoming: render.Incoming, ack: AsyncAck | None) -> None:
        """Give the runtime what the person did; return (and ack) once the runtime
        acknowledged it, finished, or ``ACK_DEADLINE`` passed. Its work goes on meanwhile."""
        ref, interaction = self.slack.begin(incoming.channel, incoming.response_url)
        task = self._spawn(self._handle(incoming.inbound, ref))
        waiter = asyncio.ensure_future(interaction.acked.wait())
        try:
            await asyncio.wait({task, waiter}, timeout=ACK_DEADLINE, return_when="FIRST_COMPLETED")
        finally:
            waiter.cancel()
        if ack is not None:
            await _ack_once(ack)

    async def _handle(self, inbound: Inbound, ref: str) -> None:
        try:
            locale = await self._locale(inbound.user_id)  # may wait on a 429: ACK_DEADLINE holds
            await self.svc.runtime.handle(inbound.model_copy(update={"locale": locale, "ref": ref}))
        finally:
            self.slack.end(ref)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _locale(self, user_id: str) -> str | None:
        if not user_id:
            return None
        return await self.slack.locale_of(Address(platform="slack", user_id=user_id))


async def _ack_once(ack: AsyncAck) -> None:
    """bolt's ack() replaces an earlier answer (and its text) when called again."""
    if ack.response is None:
        await ack()


class _DirectMessages(AsyncMiddleware):
    """Message events, handled before bolt's event listeners (which would ack first)."""

    def __init__(self, runner: SlackRunner) -> None:
        self.runner = runner

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body = req.body
        event = body.get("event") if body.get("type") == "event_callback" else None
        if not isinstance(event, dict) or event.get("type") != "message":
            return await next()
        retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
        await self.runner.on_message(body, int(retry) if str(retry).isdigit() else 0)
        return BoltResponse(status=200, body="")


def build_runner(svc: Services) -> SlackRunner:
    """The Slack runner for ``surveybot run`` (needs SURVEYBOT_SLACK_BOT_TOKEN)."""
    token = svc.settings.slack_bot_token
    if token is None:
        raise SlackSetupError("set SURVEYBOT_SLACK_BOT_TOKEN (xoxb-…) to run on Slack")
    client = make_client(token.get_secret_value(), svc.settings.slack.api_base_url)
    return SlackRunner(svc, client)
