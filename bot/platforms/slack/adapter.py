"""The Adapter protocol over Slack's Web API: prompts become Block Kit messages
(:mod:`bot.platforms.slack.blocks`) in the customer's DM or the thread's channel, a click is
settled with ``chat.update``, notices go to the person who acted as ephemeral messages.

Every Web API call goes to ``slack.api_base_url`` through one AsyncWebClient that retries
HTTP 429 after Retry-After (slack-sdk's AsyncRateLimitErrorRetryHandler), except for the
sender's calls: the pace of posts and updates is the sender's budget (``slack.rate_limit``),
where a 429 pauses the workspace and the sender posts again when Slack said. Nothing here
waits before a call, so an interaction's ack and its notice never queue behind sends.

An interaction (click, command, message) under way is registered with :meth:`SlackAdapter.begin`;
its ``ref`` travels in the Inbound so that ``acknowledge`` can release the listener that waits
to ack Slack, and answer through the interaction's ``response_url``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.chat import Address, Card, DeliveryError, Inbound, Platform, Prompt, Sent, Settled
from bot.conversation.budget import BUDGETED
from bot.platforms.slack import blocks as render
from bot.platforms.slack.blocks import Profile
from bot.platforms.slack.cards import card_message

log = logging.getLogger(__name__)
JSON = dict[str, Any]

LOCALE_TTL = 3600.0  # how long a users.info answer is trusted
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def delivery_error(exc: SlackApiError) -> DeliveryError:
    """A Slack API failure as the runtime's DeliveryError (permanent, or retry after N s)."""
    response = exc.response
    error = str(response.get("error") or "unknown_error")
    return render.delivery_error(error, response.status_code, dict(response.headers or {}))


class _RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack-sdk's 429 retry, except under the sender's budget: there the 429 surfaces as a
    DeliveryError and the budget pauses (Slack's method tiers are per workspace)."""

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        return not BUDGETED.get() and await super()._can_retry_async(**kwargs)


@dataclass
class _Interaction:
    """What the adapter needs while the runtime handles one click, command or message."""

    response_url: str | None = None  # for ephemeral notices to the person who acted
    acked: asyncio.Event = field(default_factory=asyncio.Event)


class SlackAdapter:
    platform: Platform = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._dms: dict[str, str] = {}
        self._profiles: dict[str, tuple[float, Profile]] = {}
        self._interactions: dict[str, _Interaction] = {}

    # Adapter protocol ------------------------------------------------------------------
    async def send(self, address: Address, prompt: Prompt) -> Sent:
        mention = address.user_id if address.chat_id else None
        text, blocks = render.prompt_message(prompt, mention_user=mention)
        try:
            channel = address.chat_id or await self.open_dm(address.user_id)
            response = await self._post(channel, text, blocks, address.thread_id)
        except SlackApiError as exc:
            self._dms.pop(address.user_id, None)  # open the DM afresh next time
            raise delivery_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise DeliveryError(f"Slack unreachable: {exc!r}") from exc
        return Sent(chat_id=str(response["channel"]), message_id=str(response["ts"]))

    async def post_card(self, address: Address, card: Card) -> Sent:
        text, blocks = card_message(card)
        channel = address.chat_id or address.user_id
        try:
            response = await self._post(channel, text, blocks, address.thread_id)
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise DeliveryError(f"Slack unreachable: {exc!r}") from exc
        return Sent(chat_id=str(response["channel"]), message_id=str(response["ts"]))

    async def edit_card(self, address: Address, message_id: str, card: Card) -> None:
        text, blocks = card_message(card)
        channel = address.chat_id or address.user_id
        try:
            await self.client.chat_update(channel=channel, ts=message_id, text=text, blocks=blocks)
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except NETWORK_ERRORS as exc:
            raise DeliveryError(f"Slack unreachable: {exc!r}") from exc

    async def settle(self, inbound: Inbound, settled: Settled) -> None:
        channel = self._channel_of(inbound)
        if channel is None or inbound.message_id is None:
            log.warning("cannot settle a Slack message without channel and ts: %s", inbound)
            return
        fallback, blocks = render.settled_message(settled)
        try:
            await self.client.chat_update(
                channel=channel, ts=inbound.message_id, text=fallback, blocks=blocks
            )
        except SlackApiError as exc:
            if exc.response.status_code == 429:  # the sender pauses and updates again
                raise delivery_error(exc) from exc
            log.warning("chat.update of %s/%s failed: %s", channel, inbound.message_id, exc)
        except NETWORK_ERRORS as exc:
            log.warning("chat.update of %s/%s failed: %s", channel, inbound.message_id, exc)

    async def acknowledge(self, inbound: Inbound, notice: str | None = None) -> None:
        interaction = self._interaction(inbound)
        if interaction is not None:
            interaction.acked.set()  # the waiting listener acks Slack now
        if not notice:
            return
        try:
            if interaction is not None and interaction.response_url:
                if await self.respond(interaction.response_url, notice):
                    return
            channel = self._channel_of(inbound) or await self.open_dm(inbound.user_id)
            text, blocks = render.notice_message(notice)
            if inbound.kind == "tap":
                await self.client.chat_postEphemeral(
                    channel=channel,
                    user=inbound.user_id,
                    text=text,
                    blocks=blocks,
                    thread_ts=inbound.thread_id,
                )
            else:
                await self._post(channel, text, blocks, inbound.thread_id)
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.warning("could not show a notice to %s: %s", inbound.user_id, exc)

    async def locale_of(self, address: Address) -> str | None:
        """users.info's locale ("el-GR"), cached for an hour; None when Slack does not say
        (an external Slack Connect user is ``user_not_found``)."""
        return (await self.profile_of(address.user_id)).locale

    async def profile_of(self, user_id: str) -> Profile:
        """users.info's locale and name, cached for an hour (a failure for a minute)."""
        cached = self._profiles.get(user_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < LOCALE_TTL:
            return cached[1]
        profile = Profile()
        try:
            info = await self.client.users_info(user=user_id, include_locale=True)
            profile = render.profile(info.get("user") or {})
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.info("users.info for %s failed: %s", user_id, exc)
            now -= LOCALE_TTL - 60  # retry in a minute
        if len(self._profiles) > 10_000:
            self._profiles.clear()
        self._profiles[user_id] = (now, profile)
        return profile

    async def replies(self, channel: str, ts: str) -> list[JSON]:
        """The thread ``ts`` belongs to, root first (conversations.replies; a reply's ts may
        give only that reply, so its thread is asked for then). Raises SlackApiError."""
        answer = await self.client.conversations_replies(channel=channel, ts=ts, limit=200)
        messages: list[JSON] = list(answer.get("messages") or [])
        root = str(messages[0].get("thread_ts") or ts) if messages else ts
        if messages and root != str(messages[0].get("ts")):
            answer = await self.client.conversations_replies(channel=channel, ts=root, limit=200)
            messages = list(answer.get("messages") or [])
        return messages

    async def tell(
        self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None,
        response_url: str | None = None,
    ) -> None:  # fmt: skip
        """An ephemeral note to one person (staff): through ``response_url`` when there is one,
        else chat.postEphemeral in ``channel`` (in the thread). Failures are logged."""
        try:
            if response_url and await self.respond(response_url, text):
                return
            fallback, blocks = render.notice_message(text)
            await self.client.chat_postEphemeral(
                channel=channel, user=user_id, text=fallback, blocks=blocks, thread_ts=thread_ts
            )
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.warning("could not tell %s in %s: %s", user_id, channel, exc)

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

    async def _post(
        self, channel: str, text: str, blocks: list[JSON], thread_ts: str | None = None
    ) -> Any:
        return await self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
            unfurl_links=False, unfurl_media=False,
        )  # fmt: skip

    async def respond(self, url: str, text: str) -> bool:
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
    return [AsyncConnectionErrorRetryHandler(), _RateLimitRetry(max_retry_count=2)]


def make_client(token: str, api_base_url: str) -> AsyncWebClient:
    base = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
    return AsyncWebClient(token=token, base_url=base, retry_handlers=_retry_handlers())
