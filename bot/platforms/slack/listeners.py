"""What each stored Slack payload becomes, once the inbox hands it over: block_actions clicks,
DM messages (message.im events) and the /skip command become :class:`bot.chat.Inbound` for the
runtime; `/survey` by staff goes to ``Dispatcher.request``, its answer to staff through the
command's response_url (the envelope or request was acknowledged when the payload was stored).

Payloads are translated with the pure converters of :mod:`bot.platforms.slack.blocks`;
whatever fails is raised to the inbox (which retries, then quarantines). Payloads of kinds we do
not handle are done with at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from bot.chat import Address, Inbound, RawEvent, is_followup
from bot.conversation.credit import credited
from bot.conversation.dispatch import Dispatcher
from bot.conversation.runtime import UnknownFlow
from bot.conversation.triggers import not_staff, staff_reply, unknown_flow
from bot.platforms.slack import blocks as render
from bot.platforms.slack.adapter import SlackAdapter
from bot.platforms.slack.raw import problem
from bot.platforms.slack.support import ThreadSurveys
from bot.platforms.slack.threads import (
    SHORTCUT_ID,
    from_thread_reply,
    reaction_trigger,
    shortcut_trigger,
)
from bot.survey.loader import FlowRegistry

log = logging.getLogger(__name__)
JSON = dict[str, Any]


class Listeners:
    """Turns stored payloads into runtime calls; ``in_flight`` counts those under way."""

    def __init__(
        self,
        slack: SlackAdapter,
        process_inbound: Callable[[Inbound], Awaitable[object]],
        dispatcher: Dispatcher,
        registry: FlowRegistry,
        staff: Collection[str],
        threads: ThreadSurveys | None = None,  # surveys in support threads (✅, shortcut)
        press: Callable[[Inbound], Awaitable[object]] | None = None,  # alert buttons
        note: Callable[[Inbound], Awaitable[bool]] | None = None,  # replies to alerts
    ) -> None:
        self.slack = slack
        self.process_inbound = process_inbound  # Runtime.process: raises for the inbox
        self.dispatcher = dispatcher
        self.registry = registry
        self.staff = staff
        self.threads = threads
        self.press = press
        self.note = note
        self.in_flight = 0

    async def process(self, event: RawEvent) -> None:
        payload = json.loads(event.body)
        why = problem(payload)
        if why is not None or not isinstance(payload, dict):
            raise ValueError(why)
        self.in_flight += 1
        try:
            await self._route(payload)
        finally:
            self.in_flight -= 1

    async def _route(self, payload: JSON) -> None:
        command = payload.get("command")
        if command == "/survey":
            await self._survey(payload)
        elif command == "/skip":
            await self._hand_over(render.from_skip_command(payload))
        elif payload.get("type") == "block_actions":
            click = render.from_click(payload)
            alert = self.press is not None and is_followup(click.inbound.payload)
            await self._hand_over(click, self.press if alert else None)
        elif payload.get("type") == "message_action" and payload.get("callback_id") == SHORTCUT_ID:
            shortcut = shortcut_trigger(payload)
            if shortcut is not None and self.threads is not None:
                await self.threads.trigger(shortcut)
        elif payload.get("type") == "event_callback":
            reaction = reaction_trigger(payload)
            if reaction is not None:
                if self.threads is not None:
                    await self.threads.trigger(reaction)
                return
            incoming = render.from_message(payload) or from_thread_reply(payload)
            if incoming is not None and self.note is not None and incoming.inbound.ambient:
                if await self.note(incoming.inbound):
                    return  # a note on a staff alert (a reply in its thread)
            if incoming is not None:
                await self._hand_over(incoming)
        elif command is not None or payload.get("type") not in ("url_verification", None):
            log.debug("ignored a Slack payload of type %s", command or payload.get("type"))

    async def _survey(self, command: JSON) -> None:
        staff_user = str(command.get("user_id", ""))
        url = command.get("response_url")
        answer = await self._survey_answer(staff_user, command)
        if answer and isinstance(url, str):
            await self.slack.respond(url, answer)

    async def _survey_answer(self, staff_user: str, command: JSON) -> str:
        if staff_user not in self.staff:
            log.info("refused /survey from non-staff Slack user %s", staff_user)
            return not_staff("slack", staff_user, await self._locale(staff_user))
        flows = ", ".join(f"`{f}`" for f in self.registry.ids()) or "(none loaded)"
        try:
            parsed = render.parse_survey_command(str(command.get("text") or ""))
        except render.CommandError as exc:
            return f"{exc}\n{render.USAGE.format(flows=flows)}"
        if parsed is None:
            return render.USAGE.format(flows=flows)
        language = await self._locale(staff_user)  # the staff member's, from users.info
        if self.registry.get(parsed.flow_id) is None:
            return unknown_flow(parsed.flow_id, self.registry.ids(), language)
        address = Address(platform="slack", user_id=parsed.user_id, user_name=parsed.user_name)
        trigger = command.get("trigger_id")
        try:
            staff_name = (await self.slack.profile_of(staff_user)).name or staff_user
            result = await self.dispatcher.request(
                parsed.flow_id, address, credited(parsed.context, staff_name),
                triggered_by=f"slack:{staff_user}",
                idempotency_key=f"slack-cmd:{trigger}" if trigger else None,
            )  # fmt: skip
        except UnknownFlow as exc:
            return unknown_flow(exc.flow_id, self.registry.ids(), language)
        return staff_reply(result, parsed.flow_id, f"<@{parsed.user_id}>", language)

    async def _hand_over(
        self,
        incoming: render.Incoming,
        to: Callable[[Inbound], Awaitable[object]] | None = None,
    ) -> None:
        """Give the runtime (or ``to``) what the person did, with their locale and a handle on
        the interaction (its response_url) for notices."""
        ref, _ = self.slack.begin(incoming.channel, incoming.response_url)
        try:
            inbound = incoming.inbound
            locale = await self._locale(inbound.user_id)
            handle = to or self.process_inbound
            await handle(inbound.model_copy(update={"locale": locale, "ref": ref}))
        finally:
            self.slack.end(ref)

    async def _locale(self, user_id: str) -> str | None:
        if not user_id:
            return None
        return await self.slack.locale_of(Address(platform="slack", user_id=user_id))
