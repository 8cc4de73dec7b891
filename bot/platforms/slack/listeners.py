"""What the bolt app does with each request: block_actions clicks, DM messages (message.im) and
the /skip command become :class:`bot.chat.Inbound` for ``Runtime.handle``; `/survey` by staff
goes to ``Dispatcher.request``.

Acknowledging. Slack wants every request acknowledged within 3 seconds and stops retrying once
it is. Here the acknowledgement goes out when the runtime calls ``acknowledge`` — after it has
committed the answer — or, at the latest, after ``ACK_DEADLINE`` seconds, while the work goes on
in the background. A crash before the commit therefore leaves the event unacknowledged and
Slack delivers it again; the event id makes the redelivery count once. DM messages are handled
in a global middleware rather than an ``@app.event`` listener because bolt acknowledges events
before their listener runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.app import Services
from bot.chat import Address, Inbound
from bot.conversation.runtime import UnknownFlow
from bot.conversation.triggers import staff_reply, unknown_flow
from bot.platforms.pacing import RecentIds
from bot.platforms.slack import blocks as render
from bot.platforms.slack.adapter import SlackAdapter

log = logging.getLogger(__name__)
JSON = dict[str, Any]
ACK_DEADLINE = 2.0  # seconds; Slack's limit is 3


class Listeners:
    """The bolt listeners and the work they started (``in_flight``)."""

    def __init__(self, svc: Services, slack: SlackAdapter, staff: set[str]) -> None:
        self.svc = svc
        self.slack = slack
        self.staff = staff
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seen = RecentIds()

    def register(self, app: AsyncApp) -> None:
        app.use(_DirectMessages(self))
        app.command("/survey")(self._on_survey)
        app.command("/skip")(self._on_skip)
        # every click, ours or forged: the runtime refuses what it does not know
        app.action({"type": "block_actions", "action_id": re.compile(".*")})(self._on_click)

    @property
    def in_flight(self) -> int:
        """Listeners and runtime calls under way (0 = idle)."""
        return len(self._tasks)

    async def finish(self, within: float) -> None:
        """Wait up to ``within`` seconds for the work under way (answers are committed before
        storage closes)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

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
        await ack()  # within Slack's 3 s; the answer follows through response_url
        language = await self._locale(staff_user)  # the staff member's, from users.info
        if self.svc.registry.get(parsed.flow_id) is None:
            text = unknown_flow(parsed.flow_id, self.svc.registry.ids(), language)
            await respond(text=text, response_type="ephemeral")
            return
        address = Address(platform="slack", user_id=parsed.user_id, user_name=parsed.user_name)
        try:
            result = await self.svc.dispatcher.request(
                parsed.flow_id, address, parsed.context, triggered_by=f"slack:{staff_user}"
            )
            text = staff_reply(result, parsed.flow_id, f"<@{parsed.user_id}>", language)
        except UnknownFlow as exc:
            text = unknown_flow(exc.flow_id, self.svc.registry.ids(), language)
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

    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners

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
        await self.listeners.on_message(body, int(retry) if str(retry).isdigit() else 0)
        return BoltResponse(status=200, body="")
